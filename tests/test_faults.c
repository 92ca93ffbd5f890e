/* Fault injection: every device allocation, upload and kernel launch of a
 * training step is made to fail in turn (ag_debug_fault). Each failure must
 * come back as an error that says it was injected, leave no device buffer
 * behind, and leave the model trainable: the next step succeeds. Builds are
 * exercised by tests/faults.sh in fresh processes (they happen once each).
 * Every file-system step of a checkpoint save is made to fail in turn too: the
 * checkpoint it would have replaced must survive bit for bit. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anygrad.h"
#include "suites.h"

typedef struct net {
    ag_module *m;
    ag_optim *opt;
} net;

static net net_new(void)
{
    ag_manual_seed(3);
    ag_module *layers[] = {ag_linear_new(8, 16, true), ag_relu_new(), ag_linear_new(16, 4, true)};
    net n = {ag_sequential_new(3, layers), NULL};
    ck_assert_msg(n.m != NULL, "%s", ag_last_error());
    int np;
    ag_tensor *const *p = ag_module_parameters(n.m, &np);
    ag_optim_config c = ag_optim_defaults(AG_OPTIM_ADAM, 0.01f);
    n.opt = ag_optim_new(&c, np, p);
    ck_assert_msg(n.opt != NULL, "%s", ag_last_error());
    return n;
}

static void net_free(net *n)
{
    ag_optim_free(n->opt);
    ag_module_free(n->m);
}

/* One step as a training loop does it: a batch uploaded from the host, forward,
 * loss, backward, optimizer step, the loss read back. */
static ag_status step(net *n, float *loss_out)
{
    float xs[32 * 8];
    int32_t ys[32];
    for (int i = 0; i < 32 * 8; i++) xs[i] = sinf(0.37f * (float)i);
    for (int i = 0; i < 32; i++) ys[i] = i % 4;
    const int64_t xshape[2] = {32, 8}, yshape[1] = {32};
    ag_scope_begin();
    ag_tensor *x = ag_from_f32(xs, 2, xshape), *y = ag_from_i32(ys, 1, yshape);
    ag_tensor *loss = ag_cross_entropy(ag_module_forward(n->m, x), y, AG_REDUCTION_MEAN, 0.0f);
    ag_status s = loss ? ag_optim_zero_grad(n->opt) : ag_last_status();
    if (s == AG_OK) s = ag_backward(loss, NULL);
    if (s == AG_OK) s = ag_optim_step(n->opt);
    float v = NAN;
    if (s == AG_OK) s = ag_item(loss, &v);
    ag_scope_end();
    if (loss_out) *loss_out = v;
    return s == AG_OK ? AG_OK : (ag_last_status() ? ag_last_status() : s);
}

static void walk(ag_fault_point point)
{
    net n = net_new();
    ck_assert_int_eq(step(&n, NULL), AG_OK); /* optimizer state exists from here on */
    ck_assert_int_eq(ag_debug_fault(point, 0), AG_OK);
    ck_assert_int_eq(step(&n, NULL), AG_OK);
    int64_t events = ag_debug_fault_events(point);
    ck_assert_msg(events > 0, "a training step has no %s events", point == AG_FAULT_ALLOC ? "alloc" : "such");
    const int64_t live = ag_debug_live_buffers();
    for (int64_t k = 1; k <= events; k++) {
        ck_assert_int_eq(ag_debug_fault(point, k), AG_OK);
        ag_clear_error();
        ag_status s = step(&n, NULL);
        ck_assert_msg(s != AG_OK, "fault %lld of %lld did not fail the step", (long long)k, (long long)events);
        ck_assert_msg(strstr(ag_last_error(), "injected fault") != NULL,
                      "fault %lld: the error does not say so: %s", (long long)k, ag_last_error());
        ck_assert_int_eq(ag_debug_fault(point, 0), AG_OK);
        /* fewer is fine: zero_grad may have dropped the gradients before the failure */
        ck_assert_msg(ag_debug_live_buffers() <= live, "fault %lld: %lld buffers leaked", (long long)k,
                      (long long)(ag_debug_live_buffers() - live));
        float loss;
        s = step(&n, &loss);
        ck_assert_msg(s == AG_OK && isfinite(loss), "after fault %lld the next step failed: %s",
                      (long long)k, ag_last_error());
        ck_assert_msg(ag_debug_live_buffers() == live, "after fault %lld: %lld buffers more than before",
                      (long long)k, (long long)(ag_debug_live_buffers() - live));
    }
    net_free(&n);
}

START_TEST(t_fault_alloc) { walk(AG_FAULT_ALLOC); }
END_TEST

START_TEST(t_fault_upload) { walk(AG_FAULT_UPLOAD); }
END_TEST

START_TEST(t_fault_launch) { walk(AG_FAULT_LAUNCH); }
END_TEST

/* ---- checkpoint saves ------------------------------------------------------ */

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = malloc(cap);
    ck_assert_ptr_nonnull(b);
    for (size_t k; (k = fread(b + n, 1, cap - n, f)) > 0;) {
        n += k;
        if (n == cap) {
            b = realloc(b, cap *= 2);
            ck_assert_ptr_nonnull(b);
        }
    }
    fclose(f);
    *len = n;
    return b;
}

/* Entries of dir other than . and .., as one "a b c" string. */
static int list_dir(const char *dir, char *out, size_t size)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    out[0] = '\0';
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        size_t at = strlen(out);
        snprintf(out + at, size - at, "%s%s", n++ ? " " : "", e->d_name);
    }
    closedir(d);
    return n;
}

static int open_fds(void)
{
    char names[4096];
    return list_dir("/proc/self/fd", names, sizeof names);
}

/* The model's parameters read back to the host, concatenated. */
static float *params_host(const net *n, size_t *count)
{
    int np;
    ag_tensor *const *p = ag_module_parameters(n->m, &np);
    size_t total = 0;
    for (int i = 0; i < np; i++) total += (size_t)ag_numel(p[i]);
    float *v = malloc(total * sizeof *v);
    ck_assert_ptr_nonnull(v);
    for (int i = 0, at = 0; i < np; at += (int)ag_numel(p[i]), i++)
        ck_assert_int_eq(ag_to_host(p[i], v + at, (size_t)ag_numel(p[i]) * sizeof *v), AG_OK);
    *count = total;
    return v;
}

/* Every file-system step of saving a checkpoint over an older one fails in
 * turn: the save reports the injected fault, the older file is unchanged and
 * loads as before, no temporary file or descriptor is left, no buffer leaks. */
START_TEST(t_fault_write)
{
    char dir[] = "/tmp/ag-faults-XXXXXX", path[96], other[96];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/ck.safetensors", dir);
    snprintf(other, sizeof other, "%s/count.safetensors", dir);

    net n = net_new();
    ck_assert_int_eq(step(&n, NULL), AG_OK);
    ck_assert_int_eq(ag_checkpoint_save(path, n.m, n.opt, 1), AG_OK);
    ck_assert_int_eq(ag_checkpoint_save(other, n.m, n.opt, 1), AG_OK);
    size_t old_len, nold;
    unsigned char *old = read_file(path, &old_len);
    float *old_params = params_host(&n, &nold);
    ck_assert_int_eq(step(&n, NULL), AG_OK); /* the state to save differs from the file's */

    /* the events of one save over an existing file */
    ck_assert_int_eq(ag_debug_fault(AG_FAULT_WRITE, 0), AG_OK);
    ck_assert_int_eq(ag_checkpoint_save(other, n.m, n.opt, 2), AG_OK);
    const int64_t events = ag_debug_fault_events(AG_FAULT_WRITE);
    /* create, chmod, fdopen, length, header, 12 tensors (4 parameters, 8 Adam
     * moments), flush, sync, close, rename: 21 */
    ck_assert_msg(events == 21, "a checkpoint save has %lld write events, want 21", (long long)events);

    const int64_t live = ag_debug_live_buffers();
    const int fds = open_fds();
    char names[512];
    for (int64_t k = 1; k <= events; k++) {
        ck_assert_int_eq(ag_debug_fault(AG_FAULT_WRITE, k), AG_OK);
        ag_clear_error();
        ag_status s = ag_checkpoint_save(path, n.m, n.opt, 2);
        ck_assert_int_eq(ag_debug_fault(AG_FAULT_WRITE, 0), AG_OK);
        ck_assert_msg(s == AG_ERR_IO, "write fault %lld of %lld: status %d", (long long)k,
                      (long long)events, (int)s);
        ck_assert_msg(strstr(ag_last_error(), "injected fault") != NULL,
                      "write fault %lld: the error does not say so: %s", (long long)k, ag_last_error());
        size_t len;
        unsigned char *now = read_file(path, &len);
        ck_assert_msg(len == old_len && !memcmp(now, old, len),
                      "write fault %lld changed the old checkpoint", (long long)k);
        free(now);
        ck_assert_int_eq(list_dir(dir, names, sizeof names), 2);
        ck_assert_msg(strstr(names, "ck.safetensors") && strstr(names, "count.safetensors"),
                      "write fault %lld left %s", (long long)k, names);
        ck_assert_int_eq(open_fds(), fds);
        ck_assert_int_eq(ag_debug_live_buffers(), live);
    }

    /* the old file still loads, with the old values */
    net back = net_new();
    int64_t epoch = -1;
    ck_assert_int_eq(ag_checkpoint_load(path, back.m, back.opt, &epoch), AG_OK);
    ck_assert_int_eq(epoch, 1);
    size_t nback;
    float *loaded = params_host(&back, &nback);
    ck_assert_int_eq(nback, nold);
    ck_assert_msg(!memcmp(loaded, old_params, nold * sizeof *loaded), "old values did not load");
    free(loaded);

    /* and without a fault the same save replaces it */
    ck_assert_int_eq(ag_checkpoint_save(path, n.m, n.opt, 2), AG_OK);
    ck_assert_int_eq(ag_checkpoint_load(path, back.m, back.opt, &epoch), AG_OK);
    ck_assert_int_eq(epoch, 2);
    loaded = params_host(&back, &nback);
    ck_assert_msg(memcmp(loaded, old_params, nold * sizeof *loaded), "the new save kept the old values");
    free(loaded);

    net_free(&back);
    net_free(&n);
    free(old_params);
    free(old);
    unlink(path);
    unlink(other);
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* ---- OpenCL objects ------------------------------------------------------------ */

static void cl_counts(int64_t *c)
{
    for (int t = 0; t < AG_CL_OBJECT_COUNT; t++) c[t] = ag_debug_live_cl_objects((ag_cl_object)t);
}

static const char *const CL_TYPES[AG_CL_OBJECT_COUNT] = {"contexts", "queues", "programs",
                                                         "kernels", "mem objects"};

/* Training on an OpenCL device creates programs, kernels and buffers; a
 * teardown of the device (ag_debug_device_reset) releases every one of them
 * and the old context and queue: each count returns to what a fresh device
 * had. A Vulkan device is torn down the same way (the validated run's layer
 * reports any object left at vkDestroyDevice) and must work afterwards. On the
 * CPU only the argument checks run. */
START_TEST(t_device_teardown)
{
    ck_assert_int_eq(ag_debug_live_cl_objects(AG_CL_OBJECT_COUNT), -1);
    ck_assert_int_eq(ag_debug_device_reset(NULL), AG_ERR_ARG);
    ck_assert_int_eq(ag_debug_device_reset(ag_device_by_name("cpu")), AG_ERR_UNSUPPORTED);
    ag_device *dev = ag_device_default();
    ck_assert_ptr_nonnull(dev);
    float loss;
    net n;
    if (!strcmp(ag_device_backend(dev), "vulkan")) {
        for (int round = 0; round < 2; round++) {
            n = net_new();
            ck_assert_msg(step(&n, &loss) == AG_OK && isfinite(loss), "%s", ag_last_error());
            net_free(&n);
            ck_assert_msg(ag_debug_device_reset(dev) == AG_OK, "%s", ag_last_error());
        }
    }
    if (strcmp(ag_device_backend(dev), "opencl")) return;

    ck_assert_msg(ag_debug_live_buffers() == 0, "%lld device buffers alive before the test",
                  (long long)ag_debug_live_buffers());
    ck_assert_msg(ag_debug_device_reset(dev) == AG_OK, "%s", ag_last_error());
    int64_t base[AG_CL_OBJECT_COUNT], now[AG_CL_OBJECT_COUNT];
    cl_counts(base);
    ck_assert_int_ge(base[AG_CL_CONTEXT], 1);
    ck_assert_int_eq(base[AG_CL_QUEUE], base[AG_CL_CONTEXT]);

    n = net_new();
    for (int i = 0; i < 3; i++) ck_assert_int_eq(step(&n, NULL), AG_OK);
    cl_counts(now);
    /* proof that the counts see the step: it built kernels and made buffers */
    for (int t = AG_CL_PROGRAM; t <= AG_CL_MEM; t++)
        ck_assert_msg(now[t] > base[t], "a training step made no %s (%lld)", CL_TYPES[t],
                      (long long)now[t]);
    ck_assert_int_eq(now[AG_CL_CONTEXT], base[AG_CL_CONTEXT]);
    net_free(&n);
    ck_assert_int_eq(ag_debug_live_buffers(), 0);
    ck_assert_msg(ag_debug_device_reset(dev) == AG_OK, "%s", ag_last_error());
    cl_counts(now);
    for (int t = 0; t < AG_CL_OBJECT_COUNT; t++)
        ck_assert_msg(now[t] == base[t], "%s: %lld after the teardown, %lld before the step",
                      CL_TYPES[t], (long long)now[t], (long long)base[t]);

    /* the device works after its teardown */
    n = net_new();
    ck_assert_msg(step(&n, &loss) == AG_OK && isfinite(loss), "%s", ag_last_error());
    net_free(&n);
}
END_TEST

START_TEST(t_fault_args)
{
    ck_assert_int_eq(ag_debug_fault(AG_FAULT_COUNT, 1), AG_ERR_ARG);
    ck_assert_int_eq(ag_debug_fault(AG_FAULT_ALLOC, -1), AG_ERR_ARG);
    ck_assert_int_eq(ag_debug_fault_events(AG_FAULT_COUNT), -1);
}
END_TEST

Suite *suite_faults(void)
{
    Suite *s = suite_create("faults");
    TCase *tc = h_tcase_create("faults");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, t_fault_alloc);
    tcase_add_test(tc, t_fault_upload);
    tcase_add_test(tc, t_fault_launch);
    tcase_add_test(tc, t_fault_write);
    tcase_add_test(tc, t_device_teardown);
    tcase_add_test(tc, t_fault_args);
    suite_add_tcase(s, tc);
    return s;
}
