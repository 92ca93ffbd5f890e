#!/usr/bin/env bash
# With the OpenCL and Vulkan loaders unloadable, anygrad still runs on the CPU,
# `anygrad devices` says why each GPU backend is missing, and naming a missing
# backend is a clear error. And with the loaders present, naming the CPU
# (AG_DEVICE=cpu, --device cpu) loads no GPU stack at all: the probe stops at
# the backend named; the default probe lists the GPU backends from a child
# process, so their drivers stay out of a process that runs on the CPU, and a
# driver that crashes or hangs there costs only its backend. Usage: tests/no_gpu.sh BUILD_DIR
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
# "main" counts what the program's own process opened, "other" what its
# children did (the default probe lists GPU backends from a child process)
gpu_libs() { # main|other command...
    local which=$1
    shift
    LD_DEBUG=files "$@" 2>&1 >/dev/null | awk -v which="$which" '
        NR == 1 { main = $1 }
        /file=[^ ]*lib(vulkan|OpenCL)\.so/ { if (($1 == main) == (which == "main")) n++ }
        END { print n + 0 }'
}
n=$(AG_DEVICE=cpu gpu_libs main "$BUILD/examples/linear_regression")
check "AG_DEVICE=cpu opens no GPU loader (opened $n)" test "$n" -eq 0
n=$(AG_DEVICE=cpu gpu_libs other "$BUILD/examples/linear_regression")
check "AG_DEVICE=cpu probes no GPU backend in a child either (opened $n)" test "$n" -eq 0
if grep -qE 'AG_HAVE_(OPENCL|VULKAN)' "$BUILD/build.ninja" 2>/dev/null; then
    # the CPU is chosen (software GPUs are never the default): the drivers the
    # probe needed to list the GPU backends stay out of this process
    n=$(gpu_libs other "$BUILD/examples/linear_regression")
    check "the default probe opens the GPU loaders in a child (opened $n)" test "$n" -gt 0
    n=$(gpu_libs main "$BUILD/examples/linear_regression")
    check "and not in the process, which runs on the CPU (opened $n)" test "$n" -eq 0
    n=$(AG_PROBE=inprocess gpu_libs main "$BUILD/examples/linear_regression")
    check "AG_PROBE=inprocess opens them in the process (opened $n)" test "$n" -gt 0
    backend=vulkan
    grep -q AG_HAVE_VULKAN "$BUILD/build.ninja" || backend=opencl
    n=$(AG_DEVICE=$backend gpu_libs main "$BUILD/examples/linear_regression")
    check "AG_DEVICE=$backend opens its loader in the process (opened $n)" test "$n" -gt 0

    # a driver that crashes or hangs while it is opened costs its backend, not
    # the process: a stand-in loader whose constructor does either
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    printf '%s\n' '#include <signal.h>' '#include <unistd.h>' \
        '__attribute__((constructor)) static void init(void) {' \
        '#ifdef HANG' '    for (;;) pause();' '#else' '    raise(SIGSEGV);' '#endif' '}' >"$tmp/bad.c"
    ${CC:-cc} -shared -fPIC -o "$tmp/libcrash.so" "$tmp/bad.c" &&
        ${CC:-cc} -DHANG -shared -fPIC -o "$tmp/libhang.so" "$tmp/bad.c"
    check "the stand-in drivers build" test -f "$tmp/libhang.so"
    var=AG_$(tr a-z A-Z <<<"$backend")_LIBRARY
    out=$(env "$var=$tmp/libcrash.so" "$BUILD/cli/anygrad" devices 2>&1)
    rc=$?
    check "a crashing $backend driver: devices exits 0 (rc $rc)" test "$rc" -eq 0
    check "and says the driver crashed" grep -q "$backend unavailable: the $backend driver crashed .*signal 11" <<<"$out"
    start=$(date +%s)
    out=$(env "$var=$tmp/libhang.so" AG_PROBE_TIMEOUT=1 "$BUILD/examples/linear_regression" 2>&1)
    rc=$?
    took=$(($(date +%s) - start))
    check "a hanging $backend driver: training still runs on the CPU (rc $rc)" test "$rc" -eq 0
    check "after the probe's timeout (took $took s)" test "$took" -lt 30
    out=$(env "$var=$tmp/libhang.so" AG_PROBE_TIMEOUT=1 "$BUILD/cli/anygrad" devices 2>&1)
    check "and devices says it hung" grep -q "$backend unavailable: the $backend driver did not list its devices within 1.0 s" <<<"$out"
fi
# a backend's name never falls back to a device whose name merely contains it
# (PoCL's name mentions the CPU): with the CPU backend refused, "cpu" fails
err=$(AG_CPU_ISA=AVX512 AG_DEVICE=cpu "$BUILD/examples/linear_regression" 2>&1)
rc=$?
check "AG_DEVICE=cpu without a CPU backend fails (rc $rc)" test "$rc" -ne 0
check "and says why" grep -q 'cpu unavailable: AG_CPU_ISA=AVX512' <<<"$err"
exit $fail
