#!/usr/bin/env bash
# Packaging, as a user of the installed library and as a parent meson project:
#  1. `meson install` of BUILD into a scratch prefix installs anygrad.h, the
#     shared and static libraries and anygrad.pc;
#  2. the README's example builds with `pkg-config --cflags --libs anygrad` and
#     runs (w = 2.000, b = 1.000);
#  3. the same example links libanygrad.a statically (pkg-config --static; the
#     system libraries stay shared: Debian ships no static SLEEF) and needs no
#     libanygrad.so at run time;
#  4. a parent project (tests/packaging/parent) builds anygrad as a subproject at
#     meson's default buildtype (debug) with its tests, benchmarks, examples and
#     CLI switched off, and runs.
set -eu
cd "$(dirname "$0")/.."
root=$PWD
BUILD=${1:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

meson install -C "$BUILD" --destdir "$tmp/dest" --no-rebuild >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; exit 1; }
pc=$(find "$tmp/dest" -name anygrad.pc | head -n 1)
[ -n "$pc" ] || { echo "anygrad.pc not installed"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$tmp/dest
libdir=$(dirname "$(dirname "$pc")")
for f in "$libdir/libanygrad.a" "$libdir/libanygrad.so"; do
    [ -e "$f" ] || { echo "not installed: ${f#$tmp/dest}"; exit 1; }
done
echo "installed: $(cd "$tmp/dest" && find . -type f | sort | tr '\n' ' ')"
libs_private=$(pkg-config --static --libs anygrad)
echo "pkg-config --static --libs: $libs_private"
# anygrad.pc's own lines repeat nothing (what the packages it requires add,
# such as MPI's -lm, is theirs)
dups=$(sed -n 's/^\(Libs.private\|Requires.private\): //p' "$pc" | tr ', ' '\n\n' | grep . | sort | uniq -d)
[ -z "$dups" ] || { echo "repeated in anygrad.pc: $dups"; exit 1; }

# the README's example itself (its first C block), so the two cannot drift apart
ex=$tmp/readme_example.c
awk '/^```c$/ {on = 1; next} on && /^```$/ {exit} on' README.md >"$ex"
[ -s "$ex" ] || { echo "no C example found in README.md"; exit 1; }
cc -std=c11 -Wall -Wextra -Werror "$ex" -o "$tmp/shared" $(pkg-config --cflags --libs anygrad)
out=$(LD_LIBRARY_PATH=$libdir AG_DEVICE=cpu "$tmp/shared")
echo "shared: $out"
[ "$out" = "w = 2.000, b = 1.000" ]

static_libs=$(sed 's/-lanygrad/-Wl,-Bstatic -lanygrad -Wl,-Bdynamic/' <<<"$libs_private")
cc -std=c11 -Wall -Wextra -Werror "$ex" -o "$tmp/static" $(pkg-config --cflags anygrad) $static_libs
if ldd "$tmp/static" | grep -q libanygrad; then
    echo "the static build still needs libanygrad.so"; exit 1
fi
out=$(AG_DEVICE=cpu "$tmp/static")
echo "static: $out"
[ "$out" = "w = 2.000, b = 1.000" ]

cp -r tests/packaging/parent "$tmp/parent"
mkdir -p "$tmp/parent/subprojects"
ln -s "$root" "$tmp/parent/subprojects/anygrad"
(unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR; cd "$tmp/parent" && meson setup build >"$tmp/sub.log" 2>&1 && ninja -C build >>"$tmp/sub.log" 2>&1) ||
    { tail -n 40 "$tmp/sub.log"; exit 1; }
targets=$(grep -cE '^build [^:]*\.(o|so[.0-9]*|a|spv|c)[ :]' "$tmp/parent/build/build.ninja" || true)
out=$(AG_DEVICE=cpu "$tmp/parent/build/parent")
echo "subproject (buildtype $(meson introspect --buildoptions "$tmp/parent/build" |
    python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="buildtype"][0])'), $targets build edges): $out"
[ "$out" = "0 0 2" ]
