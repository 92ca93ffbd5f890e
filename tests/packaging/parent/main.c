/* The smallest program through the subproject: y = relu(x) on the default device. */
#include <stdio.h>
#include <anygrad.h>

int main(void)
{
    const float xs[3] = {-1, 0, 2};
    const int64_t n = 3;
    ag_tensor *x = ag_from_f32(xs, 1, &n), *y = ag_relu(x);
    float out[3];
    if (!y || ag_to_host(y, out, sizeof out) != AG_OK) {
        fprintf(stderr, "%s\n", ag_last_error());
        return 1;
    }
    printf("%g %g %g\n", out[0], out[1], out[2]);
    ag_release(y);
    ag_release(x);
    return 0;
}
