#!/usr/bin/env bash
# Installs what the aarch64 cross build and its emulated test run need (called
# by `make test-arm`): the cross compiler, qemu's user-mode emulator, and the
# arm64 builds of the libraries through Debian multiarch. Silent when
# everything is present. Installs what is missing with apt-get as root, or
# through `sudo -n` when that works without a password; otherwise prints the
# commands to run and exits 1.
set -eu

arch=arm64
packages=(
    meson
    ninja-build
    pkg-config
    gcc-aarch64-linux-gnu   # cross compiler, with the arm64 libc and libgomp
    qemu-user               # qemu-aarch64 runs the test binary
    "libsleef-dev:$arch"    # SLEEF's Advanced SIMD functions for the NEON kernels
    "check:$arch"           # unit-test framework (check.pc)
    "libsubunit-dev:$arch"  # check.pc links -lsubunit
    "zlib1g-dev:$arch"
    # the tests run on the arm64 libc and libgomp from multiarch, loader included:
    # the cross toolchain's own copies (/usr/aarch64-linux-gnu) may lag the
    # multiarch libc by an update, and a mixed pair hangs fork() (Check forks)
    "libgomp1:$arch"
)

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps-arm.sh: no dpkg-query (not Debian/Ubuntu?); cannot check packages." >&2
    echo "deps-arm.sh: make sure these (or your system's equivalents) are installed: ${packages[*]}" >&2
    exit 0
fi

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

# apt only offers arm64 packages once dpkg knows the architecture
add_arch=false
dpkg --print-foreign-architectures | grep -qx "$arch" || add_arch=true

echo "deps-arm.sh: missing packages: ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
else
    echo "deps-arm.sh: not root and no password-less sudo; install them with:" >&2
    $add_arch && echo "  sudo dpkg --add-architecture $arch" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$add_arch && ${sudo[@]+"${sudo[@]}"} dpkg --add-architecture "$arch"
${sudo[@]+"${sudo[@]}"} apt-get update -qq
${sudo[@]+"${sudo[@]}"} apt-get install -y -qq --no-install-recommends "${missing[@]}"
