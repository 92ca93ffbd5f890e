#!/usr/bin/env bash
# Data parallelism over MPI (`mpirun -np N anygrad train`), one process per
# rank, one thread each:
#  - the same global batch and seed give the same training with N = 1, 2, 3
#    (uneven parts), 4: parameters and optimizer state within TOL of one
#    process after 2 epochs (46 Adam steps), the logged losses too;
#  - batch norm: each rank normalises with its own part's statistics and the
#    running statistics are averaged over the ranks after every epoch;
#  - checkpoints resume with another rank count;
#  - ranks on different devices (the CPU and PoCL) train one model;
#  - a rank killed mid-epoch, a rank that fails and a rank that stops
#    answering each end the job with a message and a failed exit status, and
#    the last checkpoint stays loadable.
# Exit 77 (skipped) without mpirun or with an anygrad built without MPI.
# Usage: tests/mpi.sh BUILD_DIR
set -u
BUILD=${1:-build}
AG=$BUILD/cli/anygrad
DIFF=$BUILD/tests/st-diff
DATA=${AG_FASHION_DIR:-/usr/share/datasets/fashion-mnist}
command -v mpirun >/dev/null || { echo "mpi: skipped (no mpirun: apt-get install openmpi-bin)"; exit 77; }
# root (CI containers) needs Open MPI's consent; one thread per rank
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 AG_NUM_THREADS=1
export OMPI_MCA_rmaps_base_oversubscribe=1 # 3 and 4 ranks on a 2-core machine
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }

# Adam with lr 1e-3 moves each weight by about lr per step; summing a batch's
# gradient in N parts instead of one changes its last bits (relative 1e-7),
# which Adam's normalisation can turn into a different step for weights whose
# gradient is near 0. 46 steps then bound the drift by ~46 * 1e-3 * (the share
# of such steps): measured 3e-6 (N = 2, 4) and 2e-5 (N = 3); TOL leaves room.
TOL=1e-4
base=(--layers "linear 64, relu, linear" --limit 3000 --data "$DATA" --seed 7 --log-every 2)
mlp=("${base[@]}" --device cpu)

run() { # NAME NP ARGS...: trains, saving NAME.st and NAME.csv; NP 0 = no mpirun
    local name=$1 np=$2
    shift 2
    local cmd=("$AG" train "$@" --save "$tmp/$name.st" --log "$tmp/$name.csv")
    [ "$np" -gt 0 ] && cmd=(mpirun -np "$np" "${cmd[@]}")
    timeout 300 "${cmd[@]}" >"$tmp/$name.out" 2>&1
}

within() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }

# the largest difference between two logs' loss columns
loss_diff() {
    paste -d, "$1" "$2" | awk -F, 'NR > 1 { d = $3 - $13; if (d < 0) d = -d; if (d > m) m = d } END { printf "%.3g\n", m + 0 }'
}

if ! run n1 0 "${mlp[@]}" --epochs 2; then
    bad "one process: $(tail -n 3 "$tmp/n1.out")"
    exit 1
fi
run n2 2 "${mlp[@]}" --epochs 2
if grep -q "built without MPI" "$tmp/n2.out"; then
    echo "mpi: skipped (anygrad was built without MPI)"
    exit 77
fi
echo "equivalence with one process (2 epochs, global batch 128, seed 7):"
printf '  %-4s %-10s %-10s %-12s %s\n' N "final loss" "test acc" "max |dparam|" "max |dloss| per logged step"
for n in 1 2 3 4; do
    if [ "$n" -gt 2 ] && ! run "n$n" "$n" "${mlp[@]}" --epochs 2; then
        bad "N = $n: $(tail -n 3 "$tmp/n$n.out")"
        continue
    fi
    [ "$n" -eq 2 ] && [ "$(grep -c '^epoch 2/2' "$tmp/n2.out")" -ne 1 ] && { bad "N = 2: $(tail -n 3 "$tmp/n2.out")"; continue; }
    d=$("$DIFF" "$tmp/n1.st" "$tmp/n$n.st" | cut -d' ' -f1)
    l=$(loss_diff "$tmp/n1.csv" "$tmp/n$n.csv")
    final=$(tail -n 1 "$tmp/n$n.csv" | cut -d, -f3)
    acc=$(sed -n 's/.*test accuracy \([0-9.]*\).*/\1/p' "$tmp/n$n.out")
    printf '  %-4s %-10s %-10s %-12s %s\n' "$n" "$final" "$acc" "$d" "$l"
    if ! within "$d" "$TOL" || ! within "$l" "$TOL"; then
        bad "N = $n differs from one process by $d in the parameters, $l in the loss (tolerance $TOL)"
    elif [ "$n" -gt 1 ] && [ "$(grep -c '^epoch ' "$tmp/n$n.out")" -ne 2 ]; then
        bad "N = $n: rank 0 did not print each epoch once"
    fi
done
[ "$fail" -eq 0 ] && ok "N = 2, 3, 4 train as one process does (within $TOL)"
# the same rank count twice: the same bits (the reduction order is fixed)
if run n3b 3 "${mlp[@]}" --epochs 2 && [ "$("$DIFF" "$tmp/n3.st" "$tmp/n3b.st" | cut -d' ' -f1)" = 0 ]; then
    ok "N = 3 twice: bit-identical checkpoints"
else
    bad "N = 3 twice: $("$DIFF" "$tmp/n3.st" "$tmp/n3b.st" 2>&1)"
fi

# the guide's program (docs/guide.md, section 11): the library's loop, checked
# against one process on whole batches
if out=$(timeout 120 mpirun -np 3 "$BUILD/examples/guide/11_dist" 2>&1) && grep -q "all checks passed" <<<"$out"; then
    ok "guide 11_dist with 3 ranks: $(grep -m1 -o 'largest difference.*' <<<"$out")"
else
    bad "guide 11_dist with 3 ranks: $(tail -n 3 <<<"$out")"
fi

# batch norm: local batch statistics (as PyTorch's DDP without SyncBatchNorm),
# running statistics averaged over the ranks after every epoch. The test set is
# evaluated in parts, each rank with its own statistics: only when they are the
# same on every rank does rank 0's checkpoint alone give the printed test loss
# (without the averaging: 0.9045 against 0.9110 printed).
bn=(--layers "linear 64, batchnorm, relu, linear" --limit 3000 --data "$DATA" --seed 7 --device cpu --epochs 2)
if run b1 0 "${bn[@]}" && run b2 2 "${bn[@]}" &&
    "$AG" eval "$tmp/b2.st" --data "$DATA" --device cpu >"$tmp/b2.eval" 2>&1; then
    a1=$(sed -n 's/.*test accuracy \([0-9.]*\).*/\1/p' "$tmp/b1.out")
    a2=$(sed -n 's/.*test accuracy \([0-9.]*\).*/\1/p' "$tmp/b2.out")
    printed=$(grep -o 'test loss [0-9.]*, test accuracy [0-9.]*' "$tmp/b2.out")
    evaluated="$(grep -o 'test loss [0-9.]*' "$tmp/b2.eval"), $(grep -o 'test accuracy [0-9.]*' "$tmp/b2.eval")"
    if ! within "$(awk -v a="$a1" -v b="$a2" 'BEGIN { d = a - b; print d < 0 ? -d : d }')" 0.03; then
        bad "batch norm: N = 2 test accuracy $a2, one process $a1"
    elif [ "$printed" != "$evaluated" ]; then
        bad "batch norm: the ranks' running statistics differ: training printed '$printed', rank 0's checkpoint gives '$evaluated'"
    else
        ok "batch norm: N = 2 test accuracy $a2 (one process $a1); rank 0's checkpoint gives the $printed the ranks computed together"
    fi
else
    bad "batch norm: $(tail -n 3 "$tmp/b2.out" "$tmp/b2.eval" 2>/dev/null)"
fi

# a batch whose parts leave a rank one sample: refused before training
out=$(timeout 60 mpirun -np 2 "$AG" train "${bn[@]}" --batch 3 2>&1)
if [ $? -ne 0 ] && grep -q "leaves a rank batches of one sample" <<<"$out" && ! grep -q '^epoch' <<<"$out"; then
    ok "batch norm: --batch 3 over 2 ranks refused (a part of one sample)"
else
    bad "batch norm with parts of one sample: $(tail -n 3 <<<"$out")"
fi

# resume across rank counts: epoch 1 with N ranks, epoch 2 with M
for pair in "2 3" "0 2" "4 0"; do
    set -- $pair
    if run "r$1" "$1" "${mlp[@]}" --epochs 1 &&
        cp "$tmp/r$1.st" "$tmp/r$1-$2.st" && cp "$tmp/r$1.csv" "$tmp/r$1-$2.csv" &&
        { c=("$AG" train --resume "$tmp/r$1-$2.st" --data "$DATA" --limit 3000 --device cpu --epochs 2 --log "$tmp/r$1-$2.csv")
          [ "$2" -gt 0 ] && c=(mpirun -np "$2" "${c[@]}")
          timeout 300 "${c[@]}" >"$tmp/r$1-$2.out" 2>&1; }; then
        d=$("$DIFF" "$tmp/n1.st" "$tmp/r$1-$2.st" | cut -d' ' -f1)
        if within "$d" "$TOL"; then
            ok "resume: epoch 1 with N = ${1/#0/1}, epoch 2 with N = ${2/#0/1}: within $d of one process"
        else
            bad "resume N = $1 -> $2: parameters differ by $d"
        fi
    else
        bad "resume N = $1 -> $2: $(tail -n 3 "$tmp/r$1-$2.out" 2>/dev/null)"
    fi
done

# ranks on different devices: rank 0 on the CPU, rank 1 on PoCL (when present)
if "$AG" devices 2>/dev/null | grep -qE "^[ *] [0-9]+ +opencl .*pthread|^[ *] [0-9]+ +opencl .*cpu"; then
    if timeout 300 mpirun -np 1 -x AG_DEVICE=cpu "$AG" train "${base[@]}" --epochs 2 : \
        -np 1 -x AG_DEVICE=opencl "$AG" train "${base[@]}" --epochs 2 >"$tmp/mixed.out" 2>&1; then
        ok "ranks on the CPU and PoCL train together: $(grep -m1 -o 'test accuracy [0-9.]*' "$tmp/mixed.out")"
    else
        bad "mixed devices: $(tail -n 3 "$tmp/mixed.out")"
    fi
fi

# Waits for a background job, killing it after 60 s (a hang fails the test
# instead of the suite); returns its exit status.
wait_job() {
    ( sleep 60; kill -9 "$1" 2>/dev/null ) &
    local guard=$! rc
    wait "$1"
    rc=$?
    kill "$guard" 2>/dev/null
    return "$rc"
}

# The pid of rank R of a running job whose command line holds MARK.
rank_pid() {
    for p in $(pgrep -f -- "$2"); do
        tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1" && { echo "$p"; return; }
    done
}

long=(--layers "linear 64, relu, linear" --limit 20000 --data "$DATA" --seed 7 --device cpu --epochs 500)
# SIGUSR1 (or SIGINT) to one rank: every rank stops after the same step, rank 0
# saves it, the job exits 130 (mpirun itself ends its ranks on Ctrl-C)
mpirun -np 2 "$AG" train "${long[@]}" --save "$tmp/usr1.st" >"$tmp/usr1.out" 2>&1 &
job=$!
for _ in $(seq 300); do grep -q '^epoch 1/' "$tmp/usr1.out" 2>/dev/null && break; sleep 0.1; done
victim=$(rank_pid 1 "$tmp/usr1.st")
[ -n "$victim" ] && kill -USR1 "$victim"
wait_job "$job"
rc=$?
if [ "$rc" -eq 130 ] && grep -q '^interrupted in epoch .*saved to' "$tmp/usr1.out" &&
    "$AG" eval "$tmp/usr1.st" --data "$DATA" --device cpu 2>&1 | grep -q 'steps$'; then
    ok "SIGUSR1 to rank 1: $(grep -m1 -o '^interrupted in epoch [0-9]* after step [0-9]*' "$tmp/usr1.out"), exit 130, saved"
else
    bad "SIGUSR1 to rank 1: exit $rc: $(grep -v '^epoch' "$tmp/usr1.out" | tail -n 3)"
fi

# a rank killed mid-epoch: mpirun ends the others; the checkpoint of the last
# finished epoch loads
mpirun -np 2 "$AG" train "${long[@]}" --save "$tmp/kill.st" >"$tmp/kill.out" 2>&1 &
job=$!
for _ in $(seq 300); do [ -s "$tmp/kill.st" ] && break; sleep 0.1; done
sleep 0.3
victim=$(rank_pid 1 "$tmp/kill.st")
t0=$SECONDS
[ -n "$victim" ] && kill -9 "$victim"
wait_job "$job"
rc=$?
if [ -z "$victim" ]; then
    bad "rank killed: no rank 1 found to kill ($(tail -n 2 "$tmp/kill.out"))"
elif [ "$rc" -eq 0 ] || [ $((SECONDS - t0)) -ge 55 ]; then
    bad "rank killed: exit $rc after $((SECONDS - t0)) s"
elif ! "$AG" eval "$tmp/kill.st" --data "$DATA" --device cpu >"$tmp/kill.eval" 2>&1; then
    bad "rank killed: the checkpoint does not load: $(tail -n 2 "$tmp/kill.eval")"
elif ls "$tmp" | grep -v -e '\.st$' -e '\.csv$' -e '\.out$' -e '\.eval$' | grep -q .; then
    bad "rank killed: left files behind: $(ls "$tmp")"
else
    ok "rank 1 killed: the job ended in $((SECONDS - t0)) s (exit $rc, \"$(grep -m1 -o 'process rank 1.*' "$tmp/kill.out" | head -c 60)\"); $(grep -o 'epoch [0-9]*' "$tmp/kill.eval" | head -n 1) checkpoint loads"
fi

# a rank that fails (an injected allocation failure on rank 1 only)
timeout 120 mpirun -np 1 "$AG" train "${long[@]}" --epochs 2 : \
    -np 1 -x AG_FAULT=alloc:2000 "$AG" train "${long[@]}" --epochs 2 >"$tmp/fault.out" 2>&1
rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q "injected fault" "$tmp/fault.out" &&
    grep -q "rank 1: failed" "$tmp/fault.out"; then
    ok "a failing rank ends the job (exit $rc): $(grep -m1 'rank 1: failed' "$tmp/fault.out")"
else
    bad "failing rank: exit $rc: $(tail -n 4 "$tmp/fault.out")"
fi

# a rank that stops answering: the other gives up after AG_DIST_TIMEOUT seconds
AG_DIST_TIMEOUT=3 mpirun -np 2 -x AG_DIST_TIMEOUT "$AG" train "${long[@]}" --save "$tmp/stop.st" >"$tmp/stop.out" 2>&1 &
job=$!
for _ in $(seq 300); do [ -s "$tmp/stop.st" ] && break; sleep 0.1; done
victim=$(rank_pid 1 "$tmp/stop.st")
[ -n "$victim" ] && kill -STOP "$victim"
wait_job "$job"
rc=$?
[ -n "$victim" ] && kill -CONT "$victim" 2>/dev/null
if [ -n "$victim" ] && [ "$rc" -ne 0 ] && [ "$rc" -ne 137 ] && grep -q "waited 3 s" "$tmp/stop.out"; then
    ok "a stopped rank: rank 0 gave up after 3 s (exit $rc): $(grep -m1 -o 'rank 0 waited.*died' "$tmp/stop.out")"
else
    bad "stopped rank: exit $rc: $(tail -n 4 "$tmp/stop.out")"
fi

[ "$fail" -eq 0 ] && echo "mpi: passed" || echo "mpi: FAILED"
exit "$fail"
