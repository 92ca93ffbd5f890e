#!/usr/bin/env bash
# The shared library exports exactly the functions anygrad.h declares (AG_API):
# nothing internal leaks into the ABI, and nothing declared is missing.
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build}
lib=$(ls "$BUILD"/libanygrad.so.[0-9]* 2>/dev/null | head -n 1)
[ -n "$lib" ] || { echo "no libanygrad.so in $BUILD"; exit 1; }
header=$(mktemp)
exported=$(mktemp)
trap 'rm -f "$header" "$exported"' EXIT
# every AG_API declaration, multi-line ones included (the name precedes the first '(')
sed -n 's/^AG_API [^(]*[ *]\(ag_[a-z0-9_]*\)(.*/\1/p' include/anygrad.h | sort -u >"$header"
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sort -u >"$exported"
undeclared=$(comm -13 "$header" "$exported")
missing=$(comm -23 "$header" "$exported")
[ -z "$undeclared" ] || { echo "exported but not in anygrad.h:"; echo "$undeclared"; }
[ -z "$missing" ] || { echo "declared in anygrad.h but not exported:"; echo "$missing"; }
# a declaration without AG_API would be hidden: every top-level ag_ function line must carry it
bare=$(grep -nE '^(const )?[a-z_][a-z0-9_]*( \*| )(const \*)?\*?ag_[a-z0-9_]+\(' include/anygrad.h |
       grep -v ':typedef' || true)
[ -z "$bare" ] || { echo "declarations without AG_API:"; echo "$bare"; }
echo "symbols: $(wc -l <"$header") declared, $(wc -l <"$exported") exported"
[ -z "$undeclared$missing$bare" ]
