#!/usr/bin/env bash
# Every meson buildtype builds warning-free (-Dwerror=true) with gcc and clang:
# the optimisers' passes (maybe-uninitialized, format-truncation, use-after-free)
# differ per buildtype, and users and parent projects build with any of them.
# Compile only; one line "buildtype CC-TYPE: passed|failed|skipped (...)" each,
# read by tests/run.sh. Build folders: $BT_BUILD/CC-TYPE (kept, so a rerun is
# incremental).
set -u
cd "$(dirname "$0")/.."
BT_BUILD=${BT_BUILD:-build-bt}
rc=0
for cc in gcc clang; do
    for bt in plain debug debugoptimized release minsize; do
        name=$cc-$bt
        if ! command -v "$cc" >/dev/null; then
            echo "buildtype $name: skipped ($cc not installed)"
            continue
        fi
        if [ "$cc" = gcc ] && [ "$bt" = debugoptimized ]; then
            echo "buildtype $name: skipped (the main build, make test's -Dwerror=true)"
            continue
        fi
        dir=$BT_BUILD/$name
        log=$dir.log
        mkdir -p "$BT_BUILD"
        [ -f "$dir/build.ninja" ] || rm -rf "$dir"
        t0=$SECONDS
        if { [ -f "$dir/build.ninja" ] ||
                 CC=$cc meson setup "$dir" --buildtype="$bt" -Dwerror=true >"$log" 2>&1; } &&
               ninja -C "$dir" >"$log" 2>&1; then
            echo "buildtype $name: passed ($((SECONDS - t0)) s)"
        else
            echo "buildtype $name: failed; first diagnostics:"
            grep -E 'warning:|error:' "$log" | head -n 10 | sed 's/^/    /'
            rc=1
        fi
    done
done
exit $rc
