#!/usr/bin/env bash
# Installs the Debian packages anygrad needs. `deps.sh demo` (make deps, make
# demo): to build the library and the tool, run them on any GPU with a driver or
# on the CPU, and train on Fashion-MNIST. `deps.sh test` (make deps-test, make
# test) adds the test suite's: Check, the software GPU drivers CI tests on
# (PoCL and rusticl for OpenCL, lavapipe for Vulkan), the OpenCL simulator, the
# validation layer, clang and its fuzzing runtime, valgrind, OpenBLAS for the
# GEMM benchmark. Silent when everything is present. Installs what is missing with
# apt-get as root, or through `sudo -n` when that works without a password;
# otherwise prints the command to run and exits 1. Packages in `optional` are
# left out where the release does not have them (older releases ship libFuzzer
# inside libclang-common-NN-dev).
set -eu

set_name=${1:-test}
case "$set_name" in
demo | test) ;;
*) echo "usage: deps.sh [demo|test]" >&2; exit 2 ;;
esac

packages=(
    build-essential  # gcc, make, libc headers
    meson
    ninja-build
    pkg-config
    zlib1g-dev
    libsleef-dev     # vectorised math for the CPU SIMD kernels
    opencl-c-headers # OpenCL backend: headers to build (the driver loads at run time)
    ocl-icd-libopencl1  # the OpenCL ICD loader, opened with dlopen
    libclblast1      # CLBlast, the OpenCL backend's GEMM (dlopen; own kernel without it)
    libvulkan-dev    # Vulkan backend: headers to build (the loader opens at run time)
    glslc            # compiles backends/vulkan/shaders/*.comp to SPIR-V at build time
    libvulkan1       # the Vulkan loader, opened with dlopen
    dataset-fashion-mnist  # /usr/share/datasets/fashion-mnist: examples and training
    fortunes         # /usr/share/games/fortunes: the text the character-level GPT example learns
    libopenmpi-dev   # MPI for training on several processes (ag_dist_*, mpirun anygrad train)
    openmpi-bin      # mpirun
)
if [ "$set_name" = test ]; then
    packages+=(
        check            # unit-test framework (check.pc)
        libsubunit-dev   # check.pc links -lsubunit
        libopenblas-dev  # reference SGEMM for bench/gemm
        pocl-opencl-icd  # OpenCL on the CPU: what CI tests the OpenCL backend on
        mesa-opencl-icd  # rusticl: a second OpenCL driver (flushes subnormals as many GPUs do)
        oclgrind         # OpenCL simulator: the kernels under race and bounds checks
        mesa-vulkan-drivers     # lavapipe: Vulkan on the CPU, what CI tests the backend on
        vulkan-validationlayers # the Khronos validation layer for the validated test run
        clang            # the code must also build with clang; the fuzz step of make test
        libclang-rt-dev  # libFuzzer and the sanitizer runtimes for clang (fuzz/)
        valgrind
    )
fi

optional=(libclang-rt-dev)

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps.sh: no dpkg-query (not Debian/Ubuntu?); cannot check packages." >&2
    echo "deps.sh: make sure these (or your system's equivalents) are installed: ${packages[*]}" >&2
    exit 0
fi

# The native architecture's package (with arm64 added by deps-arm.sh, a bare
# name matches both and prints two statuses), else an architecture-all one.
arch=$(dpkg --print-architecture)
missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p:$arch" 2>/dev/null ||
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps.sh: missing packages: ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
else
    echo "deps.sh: not root and no password-less sudo; install them with:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
${sudo[@]+"${sudo[@]}"} apt-get update -qq
install=()
for p in "${missing[@]}"; do
    if [[ " ${optional[*]} " == *" $p "* ]] && ! apt-cache show "$p" >/dev/null 2>&1; then
        echo "deps.sh: $p is not in this release; leaving it out" >&2
        continue
    fi
    install+=("$p")
done
[ ${#install[@]} -eq 0 ] && exit 0
${sudo[@]+"${sudo[@]}"} apt-get install -y -qq --no-install-recommends "${install[@]}"
