# Sourced by the PyTorch comparisons: the OpenBLAS kernels to give Debian's
# PyTorch. OpenBLAS 0.3.21 does not recognise every CPU and then falls back to
# slow generic kernels (Prescott), so "auto" names the best the CPU supports.
# usage: CORETYPE=$(openblas_coretype auto|own|NAME)
openblas_coretype() {
    local flags
    flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
    if [ "$1" != auto ]; then
        echo "$1"
        return
    fi
    case "$flags" in
    *avx512_bf16*) echo Cooperlake ;;
    *avx512f*) echo SkylakeX ;;
    *avx2*) echo Haswell ;;
    *) echo own ;;
    esac
}
