#!/usr/bin/env bash
# The anygrad command line's argument handling, end to end and without
# training: every command's bad arguments exit 2 with a message (and nothing
# else happens), help and version exit 0, and the inputs fuzz_cli (fuzz/) found
# stay fixed. Usage: tests/cli_args.sh [BUILD_DIR]
# Prints one line per check and "cli_args: N passed, N failed"; exits 1 on failure.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${1:-${BUILD:-build}}
AG=$BUILD/cli/anygrad
if [ ! -x "$AG" ]; then
    echo "cli_args: $AG is not built"
    echo "cli_args: 0 passed, 1 failed"
    exit 1
fi
AG=$(cd "$(dirname "$AG")" && pwd)/anygrad # the checks run in an empty directory
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
pass=0
fail=0

# expect STATUS PATTERN ARG...: exit status and a line of output matching PATTERN
# (grep -E); no file may appear in the working directory.
expect() {
    local want=$1 pattern=$2
    shift 2
    "$AG" "$@" >out 2>&1 </dev/null
    local rc=$?
    local made
    made=$(ls | grep -vx out)
    if [ "$rc" -eq "$want" ] && grep -qE -- "$pattern" out && [ -z "$made" ]; then
        echo "ok    anygrad $* -> $rc"
        pass=$((pass + 1))
    else
        echo "FAIL  anygrad $* -> $rc (want $want, /$pattern/)${made:+, made: $made}"
        sed 's/^/      | /' out | head -n 5
        fail=$((fail + 1))
        rm -f -- $made
    fi
}

expect 2 '^anygrad: which command\?'
expect 0 '^usage: anygrad ' --help
expect 0 '^usage: anygrad ' help
expect 0 '^anygrad [0-9]' --version
expect 2 "^anygrad: unknown command 'bogus'" bogus
expect 2 "^anygrad: unknown command ''" ''

expect 0 '^usage: anygrad train ' train --epochs 2 --help
expect 2 "unknown option '--bogus'" train --bogus 1
expect 2 "unknown option 'mlp'" train mlp
expect 2 '^anygrad train: --optimizer needs a value' train --optimizer
expect 2 "bad value '-1' for --epochs" train --epochs -1
expect 2 "bad value '1e' for --lr" train --lr 1e
expect 2 "bad value 'nan' for --lr" train --lr nan
expect 2 "bad value '9223372036854775808' for --seed" train --seed 9223372036854775808
expect 2 '--save needs a non-empty value' train --save ''
expect 2 "unknown --model 'rnn'" train --model rnn
expect 2 "unknown --optimizer 'lbfgs'" train --optimizer lbfgs
expect 2 "unknown --schedule 'linear'" train --schedule linear
expect 2 '--momentum applies to sgd and rmsprop, not adam' train --momentum 0.5
expect 2 'unknown device' train --device nosuchdevice --data "$tmp/none"

expect 0 '^usage: anygrad eval ' eval --help
expect 2 'which checkpoint\?' eval
expect 2 "unexpected argument '-x'" eval -x
expect 2 "unexpected argument ''" eval ''
expect 2 "unexpected argument 'b.st'" eval a.st b.st
expect 2 '--model needs a non-empty value' eval a.st --model
expect 2 "unknown --model 'rnn'" eval a.st --model rnn

expect 0 '^usage: anygrad plot ' plot -h
expect 2 'needs a log file and an output file' plot a.csv
expect 2 "unexpected argument ''" plot '' b.svg
expect 2 "unexpected argument '--title'" plot a.csv b.svg --title

expect 0 '^usage: anygrad devices ' devices --help
expect 2 "unknown option '--bogus'" devices --bogus

expect 0 '^usage: anygrad check ' check -h
expect 0 '^relu ' check --list --bogus
expect 2 '--device needs a non-empty value' check --device
expect 2 '--op needs a non-empty value' check --op ''
expect 2 "unknown option 'x'" check x

echo "cli_args: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
