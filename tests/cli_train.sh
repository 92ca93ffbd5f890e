#!/usr/bin/env bash
# End-to-end check of `anygrad train`, `eval` and `plot` on a slice of
# Fashion-MNIST (a few seconds): train one epoch and save; eval the checkpoint;
# resume for a second epoch and compare with an uninterrupted two-epoch run;
# check the CSV log and the SVG plot; bad arguments exit 2, bad files 1.
# Usage: tests/cli_train.sh [BUILD_DIR]   (default build, or $BUILD)
# Prints one line per check and "cli_train: N passed, N failed"; exits 1 on failure.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${1:-${BUILD:-build}}
AG=$BUILD/cli/anygrad
DATA=${AG_FASHION_DIR:-/usr/share/datasets/fashion-mnist}
if [ ! -x "$AG" ]; then
    echo "cli_train: $AG is not built"
    echo "cli_train: 0 passed, 1 failed"
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { echo "ok    $1"; pass=$((pass + 1)); }
bad() {
    echo "FAIL  $1"
    [ -n "${2:-}" ] && [ -f "$2" ] && sed 's/^/      | /' "$2" | tail -n 20
    fail=$((fail + 1))
}

# The same slice, seed and settings in every run; --log-every 0 keeps one row an epoch.
common=(--model mlp --limit 3000 --data "$DATA" --seed 7 --log-every 0)

# 1. one epoch, saved, logged and plotted
if "$AG" train "${common[@]}" --epochs 1 --save "$tmp/a.st" --log "$tmp/a.csv" \
    --plot "$tmp/a.svg" >"$tmp/out1" 2>&1 &&
    grep -q '^epoch 1/1 ' "$tmp/out1" && grep -q '^summary: ' "$tmp/out1" && [ -s "$tmp/a.st" ]; then
    ok "train 1 epoch (epoch line, summary, checkpoint)"
else
    bad "train 1 epoch" "$tmp/out1"
fi

# 2. eval reports the accuracy the training run measured, above a clear bar
# (about 0.72 after one epoch on 2700 images; chance is 0.10)
"$AG" eval "$tmp/a.st" --data "$DATA" >"$tmp/out2" 2>&1
rc=$?
acc=$(sed -n 's/^test accuracy \([0-9.]*\) (10000 images)$/\1/p' "$tmp/out2")
logged=$(awk -F, 'NR == 2 { printf "%.4f", $6 }' "$tmp/a.csv" 2>/dev/null)
if [ "$rc" -eq 0 ] && [ -n "$acc" ] && awk -v a="$acc" 'BEGIN { exit !(a >= 0.65) }' &&
    [ "$acc" = "$logged" ]; then
    ok "eval: test accuracy $acc (logged $logged, bar 0.65)"
else
    bad "eval (rc $rc, accuracy '${acc}', logged '${logged}')" "$tmp/out2"
fi

# 3. resume to epoch 2: settings come from the checkpoint, the log is continued
if "$AG" train --resume "$tmp/a.st" --data "$DATA" --epochs 2 --save "$tmp/b.st" \
    --log "$tmp/a.csv" --plot "$tmp/a.svg" >"$tmp/out3" 2>&1 &&
    grep -q '^epoch 2/2 ' "$tmp/out3" && ! grep -q '^epoch 1/2 ' "$tmp/out3" &&
    [ "$(wc -l <"$tmp/a.csv")" -eq 3 ] && "$AG" eval "$tmp/b.st" --data "$DATA" 2>&1 | grep -q 'epoch 2'; then
    ok "resume one more epoch (log has 2 rows, checkpoint at epoch 2)"
else
    bad "resume" "$tmp/out3"
fi

# 4. resuming changes nothing: the same epoch-2 row as an uninterrupted run
# (every column but the time)
if "$AG" train "${common[@]}" --epochs 2 --log "$tmp/s.csv" >"$tmp/out4" 2>&1 &&
    [ "$(cut -d, -f1-7 "$tmp/s.csv")" = "$(cut -d, -f1-7 "$tmp/a.csv")" ]; then
    ok "resumed run equals the uninterrupted run"
else
    bad "resume equality" "$tmp/out4"
    diff "$tmp/s.csv" "$tmp/a.csv" | sed 's/^/      | /'
fi

# 5. the plot is a complete SVG with curves, ticks and a legend
svg=$tmp/a.svg
if [ -s "$svg" ] && head -c 100 "$svg" | grep -q '^<?xml' && grep -q '<svg xmlns=' "$svg" &&
    tail -n 1 "$svg" | grep -q '^</svg>$' && [ "$(grep -c '<polyline' "$svg")" -ge 3 ] &&
    grep -q 'class="xtick"' "$svg" && grep -q '>validation</text>' "$svg" &&
    { ! command -v xmllint >/dev/null || xmllint --noout "$svg" 2>"$tmp/out5"; }; then
    ok "plot: well-formed SVG with curves, ticks and legend"
else
    bad "plot" "$tmp/out5"
fi
if "$AG" plot "$tmp/a.csv" "$tmp/p.svg" >"$tmp/out6" 2>&1 && [ -s "$tmp/p.svg" ]; then
    ok "anygrad plot redraws a log"
else
    bad "anygrad plot" "$tmp/out6"
fi

# 6. exit statuses: 2 for bad arguments, 1 for bad files
expect() { # status, description, command...
    local want=$1 what=$2
    shift 2
    "$@" >"$tmp/outx" 2>&1
    local rc=$?
    if [ "$rc" -eq "$want" ] && [ -s "$tmp/outx" ]; then
        ok "$what exits $want"
    else
        bad "$what exits $rc, want $want" "$tmp/outx"
    fi
}
expect 2 "train --epochs -1" "$AG" train --epochs -1
expect 2 "train --model rnn" "$AG" train --model rnn --data "$DATA"
expect 2 "train --optimizer with no value" "$AG" train --optimizer
expect 2 "train --bogus" "$AG" train --bogus 1
expect 2 "eval without a file" "$AG" eval
printf 'not a checkpoint' >"$tmp/bad.st"
expect 1 "eval of a corrupt file" "$AG" eval "$tmp/bad.st" --data "$DATA"
expect 1 "train with a missing data directory" "$AG" train --data "$tmp/none" --epochs 1

# 7. regressions
# Mismatched image and label files: a clean error naming both counts.
mkdir "$tmp/mism"
ln -s "$(cd "$DATA" && pwd)/t10k-images-idx3-ubyte.gz" "$tmp/mism/train-images-idx3-ubyte.gz"
ln -s "$(cd "$DATA" && pwd)/train-labels-idx1-ubyte.gz" "$tmp/mism/train-labels-idx1-ubyte.gz"
expect 1 "train with 10000 images but 60000 labels" "$AG" train --data "$tmp/mism" --epochs 1
grep -q '10000 images of 784 pixels (28x28) but 60000 labels' "$tmp/outx" ||
    bad "mismatched counts message" "$tmp/outx"
# Users' own IDX files: plain (not gzipped), 26 classes, 12x16 images; the
# sample shape and class count come from the files and travel in the
# checkpoint; a test label past the classes is named, not trained on.
own=$tmp/own
mkdir "$own"
python3 - "$own" <<'PY'
import random, struct, sys
d = sys.argv[1]
rnd = random.Random(3)
def idx(path, dims, data):
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", x) for x in dims) + bytes(data))
for split, n in (("train", 780), ("t10k", 260)):
    labels = [i % 26 for i in range(n)]
    rnd.shuffle(labels)
    pix = []
    for k in labels:  # class k: a bright 2x2 block at its own place, over noise
        img = [rnd.randrange(60) for _ in range(12 * 16)]
        r, c = 2 * (k // 8) + 2, 2 * (k % 8)
        for dr in (0, 1):
            for dc in (0, 1):
                img[(r + dr) * 16 + c + dc] = 255
        pix += img
    idx("%s/%s-images-idx3-ubyte" % (d, split), (n, 12, 16), pix)
    idx("%s/%s-labels-idx1-ubyte" % (d, split), (n,), labels)
bad = bytearray(open("%s/t10k-labels-idx1-ubyte" % d, "rb").read())
bad[8 + 5] = 30
import os
os.makedirs(d + "/bad", exist_ok=True)
open(d + "/bad/t10k-labels-idx1-ubyte", "wb").write(bad)
for f in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"):
    os.symlink("%s/%s" % (d, f), "%s/bad/%s" % (d, f))
PY
# own_model NAME HEADER_PATTERN MODEL_ARGS...: trains on $own, checks the header
# line, then eval rebuilds the model from the checkpoint and scores >= 0.5.
own_model() {
    local name=$1 pattern=$2
    shift 2
    if "$AG" train "$@" --data "$own" --epochs 3 --batch 32 --seed 1 --val-frac 0 \
        --save "$tmp/own_$name.st" >"$tmp/outo" 2>&1 && grep -qE "$pattern" "$tmp/outo" &&
        "$AG" eval "$tmp/own_$name.st" --data "$own" >"$tmp/oute" 2>&1 &&
        acc=$(sed -n 's/^test accuracy \([0-9.]*\) (260 images)$/\1/p' "$tmp/oute") &&
        awk -v a="$acc" 'BEGIN { exit !(a >= 0.5) }'; then
        ok "own data, $name: 12x16 images, 26 classes from the files; eval accuracy $acc (chance 0.04)"
    else
        bad "own data, $name" "$tmp/outo"
        sed 's/^/      | /' "$tmp/oute" 2>/dev/null
    fi
}
own_model mlp "ReLU MLP on 1x12x16 -> .* -> 26 classes" --model mlp
own_model cnn "TF-tutorial CNN on 1x12x16 -> .* -> 26 classes" --model cnn
# A model from --layers: built for the data's shape, rebuilt by eval from the checkpoint.
L="conv 8 3 pad=1, relu, maxpool 2, flatten, linear 32, relu, dropout 0.1, linear"
own_model layers "custom \(1x12x16 -> $L -> 26 classes\), 13258 parameters" --layers "$L"
expect 2 "--layers: linear on images without flatten" "$AG" train --layers "conv 4 3, relu, linear" --data "$own" --epochs 1
grep -q 'layer 3 (linear) gets images of 4x10x14: put flatten before it' "$tmp/outx" ||
    bad "--layers message" "$tmp/outx"
expect 1 "own data: a test label past the 26 classes" "$AG" train --data "$own/bad" --epochs 1
grep -q 'label 5 is 30, outside the 26 classes' "$tmp/outx" || bad "bad test label message" "$tmp/outx"
expect 1 "own data: resumed onto other data" "$AG" train --resume "$tmp/own_mlp.st" --data "$DATA" --epochs 4
grep -q 'the model takes 1x12x16' "$tmp/outx" || bad "resume onto other data message" "$tmp/outx"
# A resume without --save writes its epochs back into the checkpoint it
# resumed (the README's example used to train and keep nothing).
cp "$tmp/a.st" "$tmp/c.st"
if "$AG" train --resume "$tmp/c.st" --data "$DATA" --epochs 2 >"$tmp/outc" 2>&1 &&
    grep -q "saving to $tmp/c.st" "$tmp/outc" &&
    "$AG" eval "$tmp/c.st" --data "$DATA" 2>&1 | grep -q 'epoch 2'; then
    ok "resume without --save saves back into the checkpoint"
else
    bad "resume without --save" "$tmp/outc"
fi
# Ctrl-C: the step in progress ends, the steps so far are saved, exit 130;
# resuming goes on after the last step and ends with the same weights, bit for
# bit, as a run never stopped (dropout too: the generator is seeded per step).
sigint=(env --default-signal=INT)
intl=(--layers "linear 64, relu, dropout 0.2, linear" --data "$DATA" --epochs 6 --seed 3)
"$AG" train "${intl[@]}" --save "$tmp/unint.st" --log "$tmp/unint.csv" >"$tmp/outu" 2>&1
# a script's background job starts with SIGINT ignored, which anygrad keeps (as
# under nohup); a terminal's Ctrl-C reaches a job that does not ignore it
"${sigint[@]}" "$AG" train "${intl[@]}" --save "$tmp/int.st" --log "$tmp/int.csv" >"$tmp/outi" 2>&1 &
pid=$!
for _ in $(seq 300); do grep -q '^epoch 1/6' "$tmp/outi" 2>/dev/null && break; sleep 0.05; done
kill -INT "$pid"
wait "$pid"
rc=$?
if [ "$rc" -eq 130 ] && grep -qE '^interrupted (in epoch [2-6] after step [0-9]+ of [0-9]+: saved to|at the end of epoch [1-6]: saved to)' "$tmp/outi" &&
    "$AG" train --resume "$tmp/int.st" --data "$DATA" --log "$tmp/int.csv" >"$tmp/outr" 2>&1 &&
    [ "$("$BUILD/tests/st-diff" "$tmp/unint.st" "$tmp/int.st" | cut -d' ' -f1)" = 0 ] &&
    [ "$(cut -d, -f1-7,9- "$tmp/unint.csv")" = "$(cut -d, -f1-7,9- "$tmp/int.csv")" ]; then
    ok "Ctrl-C: exit 130, $(grep '^interrupted' "$tmp/outi" | cut -c1-60)...; resumed: the same weights and log as a run never stopped"
else
    bad "Ctrl-C (exit $rc; $("$BUILD/tests/st-diff" "$tmp/unint.st" "$tmp/int.st" 2>&1))" "$tmp/outi"
fi
# A CSV table (header, label in column 0, features of very different scales):
# per-feature normalisation, 3 classes, eval of the test file from the checkpoint.
python3 - "$tmp" <<'PY'
import random, sys
r = random.Random(1)
for name, n in (("train.csv", 900), ("test.csv", 300)):
    with open("%s/%s" % (sys.argv[1], name), "w") as f:
        f.write("species,height_cm,weight_g,age_days,noise\n")
        for i in range(n):
            k = r.randrange(3)
            f.write("%d,%.2f,%.1f,%.1f,%.3f\n" % (k, 10 + 5 * k + r.gauss(0, 1.5),
                    1000 + 400 * k + r.gauss(0, 150), r.uniform(0, 365), r.gauss(0, 1)))
PY
if "$AG" train --data "$tmp/train.csv" --test-data "$tmp/test.csv" --label-column 0 --epochs 10 \
    --seed 1 --save "$tmp/tab.st" >"$tmp/outv" 2>&1 && grep -q 'ReLU MLP on 1x1x4 -> .* -> 3 classes' "$tmp/outv" &&
    "$AG" eval "$tmp/tab.st" --data "$tmp/test.csv" >"$tmp/oute" 2>&1 &&
    acc=$(sed -n 's/^test accuracy \([0-9.]*\) (300 rows)$/\1/p' "$tmp/oute") &&
    awk -v a="$acc" 'BEGIN { exit !(a >= 0.9) }'; then
    ok "CSV data: 4 features, 3 classes from the file; eval accuracy $acc (chance 0.33)"
else
    bad "CSV data" "$tmp/outv"
    sed 's/^/      | /' "$tmp/oute" 2>/dev/null
fi
# predict: one row a sample, the classes' probabilities summing to 1, and the
# predicted classes score the accuracy eval reported (with the labels there or not).
cut -d, -f2- "$tmp/test.csv" >"$tmp/feat.csv"
if "$AG" predict "$tmp/tab.st" --data "$tmp/feat.csv" --out "$tmp/pred.csv" >"$tmp/outp" 2>&1 &&
    "$AG" predict "$tmp/tab.st" --data "$tmp/test.csv" >"$tmp/pred2.csv" 2>>"$tmp/outp" &&
    cmp -s "$tmp/pred.csv" "$tmp/pred2.csv" &&
    pacc=$(paste -d, "$tmp/pred.csv" "$tmp/test.csv" | awk -F, 'NR > 1 { n++; s = $3 + $4 + $5;
        if (s < 0.999 || s > 1.001) bad = 1; hit += ($2 == $6) } END { if (bad || n != 300) print "bad"; else printf "%.4f", hit / n }') &&
    [ "$pacc" = "$acc" ]; then
    ok "predict: 300 rows, probabilities sum to 1, accuracy $pacc as eval's"
else
    bad "predict (accuracy '${pacc:-}' vs eval '${acc:-}')" "$tmp/outp"
fi
expect 1 "CSV data: a label column that holds no class numbers" "$AG" train --data "$tmp/train.csv" --epochs 1
grep -q 'data row 1 has label .* in column 4' "$tmp/outx" || bad "CSV label message" "$tmp/outx"
# anygrad bench: a row of numbers for the device (timings are not judged here).
if "$AG" bench --quick --device cpu >"$tmp/outb" 2>&1 &&
    grep -qE '^cpu:0 +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ ' "$tmp/outb"; then
    ok "bench --quick --device cpu: $(grep '^cpu:0' "$tmp/outb" | awk '{ print $2, $3, $4, $5 }')"
else
    bad "bench" "$tmp/outb"
fi
# Outputs that cannot be written fail before any training.
expect 1 "--save into a missing directory" "$AG" train "${common[@]}" --epochs 1 --save "$tmp/none/m.st"
grep -q 'cannot write into' "$tmp/outx" && ! grep -q '^epoch' "$tmp/outx" ||
    bad "--save into a missing directory: not refused up front" "$tmp/outx"
expect 1 "--log onto a directory" "$AG" train "${common[@]}" --epochs 1 --log "$tmp"
grep -q 'is a directory' "$tmp/outx" && ! grep -q '^epoch' "$tmp/outx" ||
    bad "--log onto a directory: not refused up front" "$tmp/outx"
# A header with more columns than a metrics log has.
printf 'epoch,step,loss,train_acc,val_acc,test_acc,lr,seconds,val_loss,test_loss,extra\n1,1,1,1,1,1,1,1,1,1,1\n' >"$tmp/h9.csv"
expect 1 "plot of an 11-column header" "$AG" plot "$tmp/h9.csv" "$tmp/h9.svg"
grep -q 'not a metrics log' "$tmp/outx" && [ ! -e "$tmp/h9.svg" ] ||
    bad "11-column header message" "$tmp/outx"
# Validation and test losses are logged; --eval-every 2 evaluates epochs 2 and 3 (the last).
if "$AG" train "${common[@]}" --epochs 3 --eval-every 2 --log "$tmp/te.csv" >"$tmp/outt" 2>&1 &&
    [ "$(head -n 1 "$tmp/te.csv")" = "epoch,step,loss,train_acc,val_acc,test_acc,lr,seconds,val_loss,test_loss" ] &&
    [ "$(awk -F, 'NR > 1 { printf "%s", ($6 == "" ? "-" : "t") ($9 == "" ? "-" : "v") }' "$tmp/te.csv")" = "-vtvtv" ] &&
    [ "$(grep -c '^epoch .*  test acc ' "$tmp/outt")" -eq 2 ]; then
    ok "--eval-every 2: test set at epochs 2 and 3; val_loss and test_loss logged"
else
    bad "--eval-every and the loss columns" "$tmp/outt"
    cat "$tmp/te.csv" 2>/dev/null | sed 's/^/      | /'
fi
# Values closer than any tick step: a finite plot, quickly.
printf 'epoch,train_acc\n1,10000000000\n2,10000000000.000002\n' >"$tmp/close.csv"
if timeout 10 "$AG" plot "$tmp/close.csv" "$tmp/close.svg" >"$tmp/outc" 2>&1 &&
    [ "$(grep -c 'class="ytick"' "$tmp/close.svg")" -lt 40 ] && tail -n 1 "$tmp/close.svg" | grep -q '^</svg>$'; then
    ok "plot of values closer than their precision ends"
else
    bad "plot of nearly equal values" "$tmp/outc"
fi
# A plot that cannot be renamed into place (the target is a directory) leaves no temp file.
mkdir "$tmp/dir.svg"
expect 1 "plot onto a directory" "$AG" plot "$tmp/a.csv" "$tmp/dir.svg"
if ls "$tmp" | grep -q '\.tmp'; then bad "temp files left: $(ls "$tmp" | grep '\.tmp')"; else ok "no temp files left"; fi
# Nothing trained: neither a log nor a plot is claimed (or written).
notrain() { # description, arguments...
    local what=$1
    shift
    if "$AG" train "$@" --log "$tmp/n.csv" --plot "$tmp/n.svg" >"$tmp/outn" 2>&1 &&
        ! grep -qE '^(log|plot): ' "$tmp/outn" && [ ! -e "$tmp/n.csv" ] && [ ! -e "$tmp/n.svg" ]; then
        ok "$what: no log or plot claimed"
    else
        bad "$what claims or writes a log or plot" "$tmp/outn"
    fi
}
notrain "--epochs 0" "${common[@]}" --epochs 0
notrain "resume at the last epoch" --resume "$tmp/b.st" --data "$DATA" --epochs 2

# --layers @FILE: a layer a line (or commas), comments and blank lines; the
# checkpoint records the description itself, so eval needs no file
printf '# a small MLP\nlinear 32   # hidden\nrelu,\n\ndropout 0.1, linear\n' >"$tmp/model.layers"
if "$AG" train --layers "@$tmp/model.layers" --data "$DATA" --limit 1000 --epochs 1 --save "$tmp/lf.st" >"$tmp/outlf" 2>&1 &&
    grep -q 'linear 32, relu, dropout 0.1, linear -> 10 classes' "$tmp/outlf" &&
    rm "$tmp/model.layers" && "$AG" eval "$tmp/lf.st" --data "$DATA" >"$tmp/outlf2" 2>&1; then
    ok "--layers @FILE: $(grep -o 'linear 32, relu, dropout 0.1, linear' "$tmp/outlf"); eval without the file"
else
    bad "--layers @FILE" "$tmp/outlf"
fi
if out=$("$AG" train --layers "@$tmp/none.layers" --data "$DATA" 2>&1); [ $? -eq 2 ] && grep -q "none.layers: No such file" <<<"$out"; then
    ok "--layers @missing: exit 2, $out"
else
    bad "--layers @missing: $out" /dev/null
fi

# One run at a time saves to a path: a second run saving there, also through a
# symbolic link, is refused before it trains.
ln -s claim.st "$tmp/claim-link.st"
"$AG" train "${common[@]}" --epochs 50 --save "$tmp/claim.st" >"$tmp/outcl" 2>&1 &
pid=$!
for _ in $(seq 200); do grep -q 'training,' "$tmp/outcl" 2>/dev/null && break; sleep 0.05; done
out=$("$AG" train "${common[@]}" --epochs 1 --save "$tmp/claim-link.st" 2>&1)
rc=$?
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
if [ "$rc" -eq 1 ] && grep -q "another anygrad train on this machine is saving to .*claim.st" <<<"$out" &&
    ! grep -q '^epoch' <<<"$out"; then
    ok "a second run saving to the same file is refused: $(grep -o 'another.*' <<<"$out" | cut -c1-60)..."
else
    bad "second run to the same --save (exit $rc): $out" /dev/null
fi

# --model gpt: a character-level transformer on a text file (Debian's GPL-3
# text), its checkpoint, a resume after Ctrl-C that ends bit-identical to a run
# never stopped (batches are drawn from the generator reseeded per step), and
# anygrad sample.
text=/usr/share/common-licenses/GPL-3
gpt=(--model gpt --text "$text" --blocks 1 --heads 2 --width 32 --context 32 --batch 8 --lr 1e-2
     --warmup 5 --eval-every 20 --eval-batches 3)
if "$AG" train "${gpt[@]}" --steps 60 --save "$tmp/g1.st" --log "$tmp/g1.csv" >"$tmp/outg1" 2>&1 &&
    grep -q '^step 60/60 ' "$tmp/outg1" &&
    awk -F, 'NR > 1 && $9 != "" { v = $9 } END { exit !(v > 0 && v < 3.6) }' "$tmp/g1.csv"; then
    ok "gpt: 60 steps, $(grep -o 'validation loss [0-9.]*' "$tmp/outg1") (uniform: $(awk 'BEGIN { printf "%.2f", log(80) }') for ~80 symbols)"
else
    bad "gpt training" "$tmp/outg1"
fi
"$AG" train "${gpt[@]}" --steps 300 --save "$tmp/g2.st" >"$tmp/outg2" 2>&1
"${sigint[@]}" "$AG" train "${gpt[@]}" --steps 300 --save "$tmp/g3.st" >"$tmp/outg3" 2>&1 &
pid=$!
for _ in $(seq 300); do grep -q '^step 20/' "$tmp/outg3" 2>/dev/null && break; sleep 0.05; done
kill -INT "$pid"
wait "$pid"
rc=$?
if [ "$rc" -eq 130 ] && grep -q '^interrupted after step [0-9]*: saved to' "$tmp/outg3" &&
    "$AG" train --resume "$tmp/g3.st" >"$tmp/outg4" 2>&1 &&
    [ "$("$BUILD/tests/st-diff" "$tmp/g2.st" "$tmp/g3.st" | cut -d' ' -f1)" = 0 ]; then
    ok "gpt: $(grep -o '^interrupted after step [0-9]*' "$tmp/outg3"), resumed: the same weights as a run never stopped"
else
    bad "gpt Ctrl-C and resume (exit $rc; $("$BUILD/tests/st-diff" "$tmp/g2.st" "$tmp/g3.st" 2>&1))" "$tmp/outg3"
fi
s1=$("$AG" sample "$tmp/g1.st" --prompt "The " --tokens 40 --seed 5 2>&1)
s2=$("$AG" sample "$tmp/g1.st" --prompt "The " --tokens 40 --seed 5 2>&1)
s3=$("$AG" sample "$tmp/g1.st" --prompt "The " --tokens 40 --seed 6 --top-k 5 --temperature 0.7 2>&1)
if [ "$s1" = "$s2" ] && [ "$s1" != "$s3" ] && [ "${#s1}" -ge 44 ] && [ "${s1:0:4}" = "The " ]; then
    ok "sample: the prompt then 40 characters; the same seed, the same text"
else
    bad "sample: '$s1' / '$s2' / '$s3'" /dev/null
fi
expect2() { # WHAT PATTERN ARGS...: exit 2 with a message matching PATTERN
    local what=$1 pat=$2
    shift 2
    local out
    out=$("$AG" "$@" 2>&1)
    if [ $? -eq 2 ] && grep -q -- "$pat" <<<"$out"; then ok "$what: exit 2"; else bad "$what: $out" /dev/null; fi
}
expect2 "sample: a prompt outside the vocabulary" "not in the model's vocabulary" sample "$tmp/g1.st" --prompt "€"
expect2 "sample: a classifier checkpoint" "not a checkpoint of anygrad train --model gpt" sample "$tmp/a.st"
expect2 "eval: a gpt checkpoint" "anygrad sample" eval "$tmp/g1.st"
expect2 "gpt: --width not a multiple of --heads" "not a multiple of --heads" train --model gpt --width 30 --heads 4
expect2 "gpt: --layers" "--layers describes a classifier" train --model gpt --layers "linear 8"
if out=$("$AG" train --model gpt --text "$tmp/none.txt" 2>&1); [ $? -eq 1 ] && grep -q "none.txt: No such file" <<<"$out"; then
    ok "gpt: a missing --text: exit 1"
else
    bad "gpt: missing --text: $out" /dev/null
fi

echo "cli_train: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
