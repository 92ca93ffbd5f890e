# Sourced by the bench scripts. peak_rss FILE CMD... runs CMD, returns its exit
# status and appends to FILE the peak resident memory, in MB, of the largest
# process it waited for (getrusage(RUSAGE_CHILDREN) through python3, which
# every script comparing with PyTorch has anyway).
peak_rss() {
    local out=$1
    shift
    python3 -c '
import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "a") as f:
    f.write("%.1f\n" % (resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024))
sys.exit(rc)' "$out" "$@"
}
