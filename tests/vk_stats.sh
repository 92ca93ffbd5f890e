#!/usr/bin/env bash
# AG_VULKAN_STATS=1 counts the commands a run records, and the barriers are
# placed only between dependent commands: the quick matmul check records the
# same dispatches with AG_VULKAN_BARRIERS=all (a barrier before every command)
# and without, and fewer barriers without; shaders declare inf/NaN preservation
# where the device offers it, and subgroup shaders require the planned subgroup
# size where the device can run it. Exit 77 without a Vulkan device.
# Usage: tests/vk_stats.sh BUILD_DIR
set -u
BUILD=${1:-build}
if ! "$BUILD/cli/anygrad" devices 2>/dev/null | grep -qE "^[ *] [0-9]+ +vulkan "; then
    echo "vk_stats: skipped (no Vulkan device)"
    exit 77
fi
run() { # extra env...
    env "$@" AG_VULKAN_STATS=1 "$BUILD/cli/anygrad" check --quick --no-model --op matmul --device vulkan 2>&1 |
        sed -n 's/^anygrad vulkan: \([0-9]*\) dispatches, \([0-9]*\) copies, \([0-9]*\) barriers, \([0-9]*\) submits, \([0-9]*\) host waits$/\1 \2 \3 \4 \5/p'
}
read -r d1 c1 b1 s1 w1 <<<"$(run AG_VULKAN_BARRIERS=)"
read -r d2 c2 b2 s2 w2 <<<"$(run AG_VULKAN_BARRIERS=all)"
echo "default:      ${d1:-?} dispatches, ${c1:-?} copies, ${b1:-?} barriers, ${s1:-?} submits, ${w1:-?} host waits"
echo "barriers=all: ${d2:-?} dispatches, ${c2:-?} copies, ${b2:-?} barriers, ${s2:-?} submits, ${w2:-?} host waits"
if [ -z "${d1:-}" ] || [ -z "${d2:-}" ]; then
    echo "FAIL: no statistics line"
    exit 1
fi
if [ "$d1" -ne "$d2" ] || [ "$d1" -eq 0 ] || [ "$b2" -ne $((d2 + c2)) ] || [ "$b1" -ge "$b2" ]; then
    echo "FAIL: expected equal dispatch counts, a barrier per command with barriers=all, fewer without"
    exit 1
fi
# float controls: lavapipe offers f32 inf/NaN preservation, so every shader
# declares it (validated in the vulkan-validated run; `devices -v` says so)
if "$BUILD/cli/anygrad" devices -v 2>/dev/null | grep -q "llvmpipe.*(Vulkan" &&
    ! "$BUILD/cli/anygrad" devices -v 2>/dev/null | grep -q "inf/NaN preserved: yes (float controls)"; then
    echo "FAIL: lavapipe offers VK_KHR_shader_float_controls with NaN preservation, not declared"
    exit 1
fi
# subgroup size control: lavapipe offers VK_EXT_subgroup_size_control (8 only),
# so the shaders that use subgroup operations are created requiring 8; a size
# the device cannot run (subgroup32, as drivers that report one size and run
# another) and the portable paths require none
sized() { # extra env...
    env "$@" AG_VULKAN_STATS=1 "$BUILD/cli/anygrad" check --quick --no-model --op sum --device vulkan 2>&1 |
        sed -n 's/^anygrad vulkan: \([0-9]*\) pipelines, \([0-9]*\) with a required subgroup size$/\1 \2/p'
}
if "$BUILD/cli/anygrad" devices -v 2>/dev/null | grep -q "llvmpipe.*(Vulkan"; then
    read -r p1 q1 <<<"$(sized AG_VULKAN_EMULATE=)"
    read -r p2 q2 <<<"$(sized AG_VULKAN_EMULATE=subgroup32)"
    read -r p3 q3 <<<"$(sized AG_VULKAN_PORTABLE=1)"
    echo "subgroup size required: ${q1:-?} of ${p1:-?} pipelines; subgroup32: ${q2:-?} of ${p2:-?}; portable: ${q3:-?} of ${p3:-?}"
    if ! "$BUILD/cli/anygrad" devices -v 2>/dev/null | grep -q "subgroup: 8 (arithmetic), required of 8-8 (size control)"; then
        echo "FAIL: lavapipe offers VK_EXT_subgroup_size_control, not used"
        exit 1
    fi
    if [ -z "${q1:-}" ] || [ "$q1" -lt 1 ] || [ "$q1" -ge "$p1" ] || [ "${q2:-1}" -ne 0 ] || [ "${q3:-1}" -ne 0 ]; then
        echo "FAIL: expected some (not all) pipelines to require the subgroup size, none when it is emulated or portable"
        exit 1
    fi
fi
echo "vk_stats: passed"
