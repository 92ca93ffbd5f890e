/* Soak: thousands of small training steps on one device, creating and dropping
 * device tensors every step; host RSS and live device buffers are reported at
 * the start (after warm-up) and the end, and the run fails if either grew.
 *
 * Usage: soak [--device NAME] [--steps N]   (default: the default device, 3000) */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anygrad.h"

static long rss_kib(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

int main(int argc, char **argv)
{
    const char *devname = NULL;
    long steps = 3000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--device") && i + 1 < argc) devname = argv[++i];
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atol(argv[++i]);
        else {
            fprintf(stderr, "usage: soak [--device NAME] [--steps N]\n");
            return 2;
        }
    }
    if (steps < 100) {
        fprintf(stderr, "soak: --steps must be at least 100\n");
        return 2;
    }
    ag_device *dev = devname ? ag_device_by_name(devname) : ag_device_default();
    if (!dev) {
        fprintf(stderr, "soak: %s\n", ag_last_error());
        return 1;
    }
    ag_set_default_device(dev);
    ag_manual_seed(7);
    ag_module *layers[] = {ag_linear_new(64, 128, true), ag_relu_new(), ag_dropout_new(0.1f),
                           ag_linear_new(128, 10, true)};
    ag_module *m = ag_sequential_new(4, layers);
    int np = 0;
    ag_tensor *const *params = m ? ag_module_parameters(m, &np) : NULL;
    ag_optim_config cfg = ag_optim_defaults(AG_OPTIM_ADAM, 1e-3f);
    ag_optim *opt = params ? ag_optim_new(&cfg, np, params) : NULL;
    if (!opt) {
        fprintf(stderr, "soak: %s\n", ag_last_error());
        return 1;
    }
    float xs[32 * 64];
    int32_t ys[32];
    const int64_t xshape[2] = {32, 64}, yshape[1] = {32};
    long rss0 = 0;
    int64_t live0 = 0;
    const long warm = steps / 10;
    float loss_v = NAN;
    for (long s = 0; s < steps; s++) {
        for (int i = 0; i < 32 * 64; i++) xs[i] = sinf(0.01f * (float)(s * 64 + i));
        for (int i = 0; i < 32; i++) ys[i] = (int32_t)((s + i) % 10);
        ag_scope_begin();
        ag_tensor *x = ag_from_f32(xs, 2, xshape), *y = ag_from_i32(ys, 1, yshape);
        ag_tensor *loss = ag_cross_entropy(ag_module_forward(m, x), y, AG_REDUCTION_MEAN, 0.0f);
        ag_status st = loss ? ag_optim_zero_grad(opt) : ag_last_status();
        if (st == AG_OK) st = ag_backward(loss, NULL);
        if (st == AG_OK) st = ag_optim_step(opt);
        if (st == AG_OK && s % 100 == 0) st = ag_item(loss, &loss_v);
        ag_scope_end();
        if (st != AG_OK) {
            fprintf(stderr, "soak: step %ld: %s\n", s, ag_last_error());
            return 1;
        }
        if (s == warm) {
            ag_device_sync(dev);
            rss0 = rss_kib();
            live0 = ag_debug_live_buffers();
        }
    }
    ag_device_sync(dev);
    long rss1 = rss_kib();
    int64_t live1 = ag_debug_live_buffers();
    printf("soak on %s: %ld steps, loss %.4f; after warm-up RSS %ld KiB, %lld live buffers; "
           "at the end RSS %ld KiB, %lld live buffers\n",
           ag_device_name(dev), steps, loss_v, rss0, (long long)live0, rss1, (long long)live1);
    ag_optim_free(opt);
    ag_module_free(m);
    /* a little slack for allocator and driver bookkeeping, none for buffers */
    if (live1 != live0 || rss1 > rss0 + rss0 / 20 + 1024) {
        fprintf(stderr, "soak: memory grew\n");
        return 1;
    }
    return 0;
}
