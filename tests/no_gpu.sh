#!/usr/bin/env bash
# With the OpenCL and Vulkan loaders unloadable, anygrad still runs on the CPU,
# `anygrad devices` says why each GPU backend is missing, and naming a missing
# backend is a clear error. And with the loaders present, naming the CPU
# (AG_DEVICE=cpu, --device cpu) loads no GPU stack at all: the probe stops at
# the backend named. Usage: tests/no_gpu.sh BUILD_DIR
set -u
BUILD=${1:-build}
export AG_OPENCL_LIBRARY=/nonexistent/libOpenCL.so.1 AG_VULKAN_LIBRARY=/nonexistent/libvulkan.so.1
fail=0
check() { # description, command...
    local what=$1
    shift
    if ! "$@"; then
        echo "FAIL: $what"
        fail=1
    fi
}
out=$("$BUILD/cli/anygrad" devices 2>&1)
rc=$?
echo "$out"
check "devices exits 0" test "$rc" -eq 0
check "the CPU is listed and selected" grep -qE '^\* 0 +cpu ' <<<"$out"
check "no OpenCL or Vulkan device is listed" bash -c '! grep -qE "^[ *] [0-9]+ +(opencl|vulkan) " <<<"$0"' "$out"
if grep -q AG_HAVE_OPENCL "$BUILD/build.ninja" 2>/dev/null; then
    check "the OpenCL reason is given" grep -q 'opencl unavailable: .*cannot load the OpenCL loader' <<<"$out"
fi
if grep -q AG_HAVE_VULKAN "$BUILD/build.ninja" 2>/dev/null; then
    check "the Vulkan reason is given" grep -q 'vulkan unavailable: .*cannot load the Vulkan loader' <<<"$out"
fi
err=$(AG_DEVICE=opencl "$BUILD/examples/linear_regression" 2>&1)
rc=$?
check "AG_DEVICE=opencl fails" test "$rc" -ne 0
check "and names what is unavailable" grep -q 'opencl unavailable' <<<"$err"
check "training runs on the CPU" bash -c "\"$BUILD/examples/linear_regression\" >/dev/null"

# the dynamic loader's own log of what it opened (dlopen included)
unset AG_OPENCL_LIBRARY AG_VULKAN_LIBRARY
gpu_libs() { LD_DEBUG=files "$@" 2>&1 >/dev/null | grep -cE 'file=[^ ]*lib(vulkan|OpenCL)\.so' ; }
n=$(AG_DEVICE=cpu gpu_libs "$BUILD/examples/linear_regression")
check "AG_DEVICE=cpu opens no GPU loader (opened $n)" test "$n" -eq 0
if grep -qE 'AG_HAVE_(OPENCL|VULKAN)' "$BUILD/build.ninja" 2>/dev/null; then
    n=$(gpu_libs "$BUILD/examples/linear_regression")
    check "the default probe does open them (opened $n)" test "$n" -gt 0
fi
# a backend's name never falls back to a device whose name merely contains it
# (PoCL's name mentions the CPU): with the CPU backend refused, "cpu" fails
err=$(AG_CPU_ISA=AVX512 AG_DEVICE=cpu "$BUILD/examples/linear_regression" 2>&1)
rc=$?
check "AG_DEVICE=cpu without a CPU backend fails (rc $rc)" test "$rc" -ne 0
check "and says why" grep -q 'cpu unavailable: AG_CPU_ISA=AVX512' <<<"$err"
exit $fail
