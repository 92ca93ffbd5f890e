/* Modules, initialisation, data loading (IDX, CSV, loader), safetensors and
 * checkpoints, and a short Fashion-MNIST run. Files go to a private temporary
 * directory per test. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "anygrad.h"
#include "suites.h"

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

#define OK(call) ck_assert_msg((call) == AG_OK, "%s: %s", #call, ag_last_error())
#define NN(expr) nonnull((expr), #expr)

static void *nonnull(void *p, const char *expr)
{
    ck_assert_msg(p != NULL, "%s: %s", expr, ag_last_error());
    return p;
}

static char tmpdir[256];

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ag-modules-XXXXXX");
    ck_assert_msg(mkdtemp(tmpdir), "mkdtemp failed");
    ag_clear_error();
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

static const char *tpath(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f, "cannot write %s", path);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

static float *host_f32(ag_tensor *t)
{
    size_t n = (size_t)ag_numel(t);
    float *v = malloc(n * 4 + 4);
    OK(ag_to_host(t, v, n * 4));
    return v;
}

static void expect_equal(ag_tensor *a, ag_tensor *b, const char *what)
{
    ck_assert_int_eq(ag_numel(a), ag_numel(b));
    float *x = host_f32(a), *y = host_f32(b);
    for (int64_t i = 0; i < ag_numel(a); i++)
        ck_assert_msg(x[i] == y[i], "%s: element %lld: %g != %g", what, (long long)i, x[i], y[i]);
    free(x);
    free(y);
}

/* ---- modules -------------------------------------------------------------------- */

START_TEST(test_forward_matches_ops)
{
    ag_manual_seed(3);
    ag_scope_begin();
    int64_t xs[2] = {4, 6}, is[4] = {2, 3, 8, 8};
    ag_tensor *x = ag_randn(2, xs, 0, 1), *img = ag_randn(4, is, 0, 1);
    ag_module *lin = NN(ag_linear_new(6, 5, true));
    expect_equal(NN(ag_module_forward(lin, x)),
                 ag_linear(x, ag_module_get(lin, "weight"), ag_module_get(lin, "bias")), "linear");
    ag_conv2d_params cp = {{2, 1}, {1, 2}, {1, 1}, 1};
    ag_module *conv = NN(ag_conv2d_new(3, 4, 3, 5, &cp, true));
    expect_equal(NN(ag_module_forward(conv, img)),
                 ag_conv2d(img, ag_module_get(conv, "weight"), ag_module_get(conv, "bias"), &cp),
                 "conv2d");
    ag_pool2d_params pp = {{2, 2}, {0, 0}, {0, 0}}, pp2 = {{2, 2}, {2, 2}, {0, 0}};
    ag_module *mp = NN(ag_max_pool2d_new(&pp)), *ap = NN(ag_avg_pool2d_new(&pp));
    expect_equal(ag_module_forward(mp, img), ag_max_pool2d(img, &pp2), "max_pool (stride 0)");
    expect_equal(ag_module_forward(ap, img), ag_avg_pool2d(img, &pp2), "avg_pool");
    ag_module *act = NN(ag_gelu_new()), *fl = NN(ag_flatten_new());
    expect_equal(ag_module_forward(act, x), ag_gelu(x), "gelu");
    ag_tensor *f = NN(ag_module_forward(fl, img));
    ck_assert_int_eq(ag_ndim(f), 2);
    ck_assert_int_eq(ag_dim(f, 1), 3 * 64);
    int64_t ln_shape[1] = {6};
    ag_module *ln = NN(ag_layer_norm_new(1, ln_shape));
    expect_equal(ag_module_forward(ln, x), ag_layer_norm(x, 1, NULL, NULL, 1e-5f), "layer_norm");
    int32_t ids[3] = {0, 4, 2};
    int64_t three = 3;
    ag_module *emb = NN(ag_embedding_new(5, 7));
    ag_tensor *idx = ag_from_i32(ids, 1, &three);
    expect_equal(ag_module_forward(emb, idx), ag_embedding(idx, ag_module_get(emb, "weight")),
                 "embedding");
    ag_scope_end();
    ag_module *all[] = {lin, conv, mp, ap, act, fl, ln, emb};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) ag_module_free(all[i]);
}
END_TEST

START_TEST(test_names_shapes_counts)
{
    ag_module *layers[] = {ag_linear_new(784, 256, true), ag_relu_new(),
                           ag_linear_new(256, 10, false)};
    ag_module *seq = NN(ag_sequential_new(3, layers));
    int n;
    const char *const *names = ag_module_parameter_names(seq, &n);
    ck_assert_int_eq(n, 3);
    ck_assert_str_eq(names[0], "0.weight");
    ck_assert_str_eq(names[1], "0.bias");
    ck_assert_str_eq(names[2], "2.weight");
    ck_assert_int_eq(ag_dim(ag_module_get(seq, "0.weight"), 0), 256);
    ck_assert_int_eq(ag_dim(ag_module_get(seq, "0.weight"), 1), 784);
    ck_assert_int_eq(ag_module_num_parameters(seq), 784 * 256 + 256 + 2560);
    ck_assert_str_eq(ag_module_kind(seq), "Sequential");
    ag_module_free(seq);

    /* named children, nesting, batch-norm buffers */
    ag_module *net = NN(ag_sequential_new(0, NULL));
    ag_conv2d_params g = {{1, 1}, {0, 0}, {1, 1}, 2};
    OK(ag_sequential_add(net, "conv1", ag_conv2d_new(4, 6, 3, 2, &g, true)));
    OK(ag_sequential_add(net, "bn1", ag_batch_norm_new(6, 2)));
    ag_module *inner[] = {ag_linear_new(3, 2, true)};
    OK(ag_sequential_add(net, "head", ag_sequential_new(1, inner)));
    ck_assert_int_eq(ag_sequential_add(net, "bn1", ag_relu_new()), AG_ERR_ARG);
    ck_assert_int_eq(ag_sequential_add(net, "bad.name", ag_relu_new()), AG_ERR_ARG);
    const char *const want[] = {"conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias",
                                "bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked",
                                "head.0.weight", "head.0.bias"};
    names = ag_module_state_names(net, &n);
    ck_assert_int_eq(n, 9);
    for (int i = 0; i < n; i++) ck_assert_str_eq(names[i], want[i]);
    ag_module_parameters(net, &n);
    ck_assert_int_eq(n, 6);
    ag_tensor *w = ag_module_get(net, "conv1.weight");
    int64_t s[AG_MAX_DIMS];
    ck_assert_int_eq(ag_shape(w, s), 4);
    ck_assert(s[0] == 6 && s[1] == 2 && s[2] == 3 && s[3] == 2);
    ag_module_free(net);

    /* errors */
    ck_assert_ptr_null(ag_linear_new(0, 3, true));
    ck_assert_int_eq(ag_last_status(), AG_ERR_ARG);
    ck_assert_ptr_null(ag_batch_norm_new(3, 3));
    ag_module *bad[] = {ag_relu_new(), ag_linear_new(-1, 2, true)};
    ck_assert_ptr_null(ag_sequential_new(2, bad));
    ck_assert_msg(strstr(ag_last_error(), "in_features"), "%s", ag_last_error());
}
END_TEST

static void stats(ag_tensor *t, double *mean, double *var, double *maxabs)
{
    float *v = host_f32(t);
    double s = 0, s2 = 0, m = 0;
    int64_t n = ag_numel(t);
    for (int64_t i = 0; i < n; i++) {
        s += v[i];
        s2 += (double)v[i] * v[i];
        if (fabs(v[i]) > m) m = fabs(v[i]);
    }
    *mean = s / n;
    *var = s2 / n - *mean * *mean;
    *maxabs = m;
    free(v);
}

/* The attention modules: PyTorch's state_dict names and shapes, causal
 * attention that ignores later positions, and refused arguments. */
START_TEST(test_attention_modules)
{
    ag_scope_begin();
    ag_module *b = ag_transformer_block_new(8, 2, 32, 0.0f, true);
    ck_assert_msg(b != NULL, "%s", ag_last_error());
    static const char *const want[] = {
        "self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
        "self_attn.out_proj.bias", "linear1.weight", "linear1.bias", "linear2.weight",
        "linear2.bias", "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"};
    static const int64_t rows[] = {24, 24, 8, 8, 32, 32, 8, 8, 8, 8, 8, 8};
    int n = 0;
    const char *const *names = ag_module_parameter_names(b, &n);
    ag_tensor *const *ps = ag_module_parameters(b, &n);
    ck_assert_int_eq(n, 12);
    for (int i = 0; i < n; i++) {
        ck_assert_str_eq(names[i], want[i]);
        ck_assert_msg(ag_dim(ps[i], 0) == rows[i], "%s: %lld rows", names[i], (long long)ag_dim(ps[i], 0));
    }
    ck_assert_str_eq(ag_module_kind(b), "TransformerEncoderLayer");
    ck_assert_int_eq(ag_module_num_parameters(b), 3 * 8 * 8 + 3 * 8 + 8 * 8 + 8 + 2 * 8 * 32 + 32 + 8 + 4 * 8);

    /* causal: changing the last position leaves the earlier outputs as they were */
    ag_module *m = ag_multihead_attention_new(8, 2, 0.0f, true, true);
    ck_assert_msg(m != NULL, "%s", ag_last_error());
    ag_manual_seed(3);
    ag_tensor *x = ag_randn(3, (int64_t[]){1, 4, 8}, 0.0f, 1.0f);
    float hx[32], y1[32], y2[32];
    ck_assert_int_eq(ag_to_host(x, hx, sizeof hx), AG_OK);
    ck_assert_int_eq(ag_to_host(ag_module_forward(m, x), y1, sizeof y1), AG_OK);
    for (int i = 24; i < 32; i++) hx[i] += 5.0f;
    ck_assert_int_eq(ag_from_host(x, hx, sizeof hx), AG_OK);
    ck_assert_int_eq(ag_to_host(ag_module_forward(m, x), y2, sizeof y2), AG_OK);
    for (int i = 0; i < 24; i++) ck_assert_msg(y1[i] == y2[i], "position %d saw a later one", i / 8);
    int changed = 0;
    for (int i = 24; i < 32; i++) changed += y1[i] != y2[i];
    ck_assert_msg(changed > 0, "the last position ignored its own input");

    ck_assert_ptr_null(ag_module_forward(m, ag_zeros(2, (int64_t[]){4, 8})));
    ck_assert_int_eq(ag_last_status(), AG_ERR_SHAPE);
    ck_assert_ptr_null(ag_multihead_attention_new(10, 4, 0.0f, true, false));
    ck_assert_int_eq(ag_last_status(), AG_ERR_ARG);
    ck_assert_ptr_null(ag_multihead_attention_new(8, 2, 1.5f, true, false));
    ck_assert_int_eq(ag_last_status(), AG_ERR_ARG);
    ck_assert_ptr_null(ag_transformer_block_new(8, 3, 32, 0.0f, false));
    ck_assert_int_eq(ag_last_status(), AG_ERR_ARG);
    ck_assert_ptr_null(ag_transformer_block_new(8, 2, 0, 0.0f, false));
    ck_assert_int_eq(ag_last_status(), AG_ERR_ARG);
    ag_module_free(m);
    ag_module_free(b);
    ag_scope_end();
}
END_TEST

START_TEST(test_gpt_module)
{
    ag_scope_begin();
    ag_manual_seed(5);
    ag_module *g = ag_gpt_new(11, 6, 2, 2, 8, 0.0f);
    ck_assert_msg(g != NULL, "%s", ag_last_error());
    ck_assert_str_eq(ag_module_kind(g), "GPT");
    int n = 0;
    const char *const *names = ag_module_parameter_names(g, &n);
    ck_assert_int_eq(n, 2 + 2 * 12 + 2 + 1);
    ck_assert_str_eq(names[0], "wte.weight");
    ck_assert_str_eq(names[1], "wpe.weight");
    ck_assert_str_eq(names[2], "h.0.self_attn.in_proj_weight");
    ck_assert_str_eq(names[14], "h.1.self_attn.in_proj_weight");
    ck_assert_str_eq(names[n - 1], "lm_head.weight");
    ck_assert_int_eq(ag_dim(ag_module_get(g, "wpe.weight"), 0), 6);
    ck_assert_int_eq(ag_dim(ag_module_get(g, "lm_head.weight"), 0), 11);
    /* GPT-2's N(0, 0.02) for the embeddings */
    float w[88];
    ck_assert_int_eq(ag_to_host(ag_module_get(g, "wte.weight"), w, sizeof w), AG_OK);
    double sq = 0.0;
    for (int i = 0; i < 88; i++) sq += (double)w[i] * w[i];
    ck_assert_msg(sqrt(sq / 88) > 0.01 && sqrt(sq / 88) < 0.03, "wte std %g", sqrt(sq / 88));

    /* logits [B, T, vocab]; causal: a later token leaves earlier logits alone */
    int32_t t1[8] = {1, 2, 3, 4, 5, 6, 7, 8}, t2[8] = {1, 2, 3, 9, 5, 6, 7, 10};
    ag_tensor *y1 = ag_module_forward(g, ag_from_i32(t1, 2, (int64_t[]){2, 4}));
    ag_tensor *y2 = ag_module_forward(g, ag_from_i32(t2, 2, (int64_t[]){2, 4}));
    ck_assert_msg(y1 && y2, "%s", ag_last_error());
    ck_assert_int_eq(ag_ndim(y1), 3);
    ck_assert_int_eq(ag_dim(y1, 2), 11);
    float a[88], b[88];
    ck_assert_int_eq(ag_to_host(y1, a, sizeof a), AG_OK);
    ck_assert_int_eq(ag_to_host(y2, b, sizeof b), AG_OK);
    for (int i = 0; i < 33; i++) ck_assert_msg(a[i] == b[i], "logit %d of a token before the change", i);
    int changed = 0;
    for (int i = 33; i < 44; i++) changed += a[i] != b[i];
    ck_assert_int_gt(changed, 0);

    /* refused: floats, a 1-D input, T past the context, bad sizes */
    ck_assert_ptr_null(ag_module_forward(g, ag_zeros(2, (int64_t[]){1, 4})));
    ck_assert_int_eq(ag_last_status(), AG_ERR_DTYPE);
    ck_assert_ptr_null(ag_module_forward(g, ag_from_i32(t1, 1, (int64_t[]){4})));
    ck_assert_int_eq(ag_last_status(), AG_ERR_SHAPE);
    ck_assert_ptr_null(ag_module_forward(g, ag_from_i32(t1, 2, (int64_t[]){1, 7}) ));
    ck_assert_int_eq(ag_last_status(), AG_ERR_SHAPE);
    ck_assert_ptr_null(ag_gpt_new(0, 6, 2, 2, 8, 0.0f));
    ck_assert_int_eq(ag_last_status(), AG_ERR_ARG);
    ck_assert_ptr_null(ag_gpt_new(11, 6, 2, 3, 8, 0.0f));
    ck_assert_int_eq(ag_last_status(), AG_ERR_ARG);
    ck_assert_ptr_null(ag_gpt_new(11, 6, 2, 2, INT64_MAX / 2, 0.0f)); /* 4 x width would overflow */
    ck_assert_int_eq(ag_last_status(), AG_ERR_ARG);
    ag_module_free(g);
    ag_scope_end();
}
END_TEST

START_TEST(test_init_statistics)
{
    ag_manual_seed(11);
    ag_module *lin = NN(ag_linear_new(400, 500, true));
    double mean, var, mx, bound = 1.0 / sqrt(400.0);
    stats(ag_module_get(lin, "weight"), &mean, &var, &mx);
    ck_assert_msg(mx <= bound && mx > 0.99 * bound, "Linear weight max |w| %g, bound %g", mx, bound);
    ck_assert_msg(fabs(mean) < 0.02 * bound, "Linear weight mean %g", mean);
    ck_assert_msg(fabs(var / (bound * bound / 3) - 1) < 0.02, "Linear weight var %g", var);
    stats(ag_module_get(lin, "bias"), &mean, &var, &mx);
    ck_assert(mx <= bound);
    /* same seed, same weights */
    ag_manual_seed(11);
    ag_module *again = NN(ag_linear_new(400, 500, true));
    expect_equal(ag_module_get(lin, "weight"), ag_module_get(again, "weight"), "reseeded init");
    ag_module_free(again);

    ag_tensor *w = ag_module_get(lin, "weight");
    OK(ag_init_kaiming_normal(w, 0.0f, AG_FAN_IN));
    stats(w, &mean, &var, &mx);
    ck_assert_msg(fabs(var / (2.0 / 400) - 1) < 0.02, "kaiming_normal var %g", var);
    OK(ag_init_kaiming_normal(w, 0.0f, AG_FAN_OUT));
    stats(w, &mean, &var, &mx);
    ck_assert_msg(fabs(var / (2.0 / 500) - 1) < 0.02, "kaiming_normal fan_out var %g", var);
    OK(ag_init_xavier_uniform(w, 1.0f));
    stats(w, &mean, &var, &mx);
    double xb = sqrt(6.0 / 900);
    ck_assert_msg(mx <= xb && fabs(var / (xb * xb / 3) - 1) < 0.02, "xavier max %g var %g", mx, var);
    OK(ag_init_constant(w, 0.5f));
    stats(w, &mean, &var, &mx);
    ck_assert(mean == 0.5 && mx == 0.5);
    ck_assert(ag_requires_grad(w));
    ck_assert_int_eq(ag_init_kaiming_uniform(ag_module_get(lin, "bias"), 0, AG_FAN_IN), AG_ERR_SHAPE);
    ag_module_free(lin);
}
END_TEST

START_TEST(test_train_eval)
{
    ag_manual_seed(5);
    ag_scope_begin();
    int64_t xs[2] = {64, 50};
    ag_tensor *x = ag_add_scalar(ag_randn(2, xs, 0, 1), 3.0f);
    ag_module *drop = NN(ag_dropout_new(0.5f));
    ag_module *bn = NN(ag_batch_norm_new(50, 1));
    ag_module *layers[] = {drop, bn};
    ag_module *seq = NN(ag_sequential_new(2, layers));
    ck_assert(ag_module_is_training(drop));
    float *y = host_f32(NN(ag_module_forward(drop, x))), *xv = host_f32(x);
    int zeros = 0;
    for (int i = 0; i < 64 * 50; i++) {
        if (y[i] == 0) zeros++;
        else ck_assert_msg(fabsf(y[i] - 2 * xv[i]) < 1e-5f, "kept values scale by 1/(1-p)");
    }
    ck_assert_msg(zeros > 1450 && zeros < 1750, "dropout zeroed %d of 3200", zeros);
    free(y);
    /* one training pass moves the running mean 10% of the way to the batch mean */
    NN(ag_module_forward(bn, x));
    int32_t nbt;
    OK(ag_to_host(ag_module_get(bn, "num_batches_tracked"), &nbt, 4));
    ck_assert_int_eq(nbt, 1);
    float *rm = host_f32(ag_module_get(bn, "running_mean"));
    ck_assert_msg(fabsf(rm[0] - 0.3f) < 0.06f, "running_mean %g after one batch", rm[0]);
    free(rm);
    ag_module_train(seq, false);
    ck_assert(!ag_module_is_training(drop) && !ag_module_is_training(bn));
    expect_equal(ag_module_forward(drop, x), x, "dropout in eval mode");
    ag_tensor *want = ag_batch_norm(x, ag_module_get(bn, "running_mean"),
                                    ag_module_get(bn, "running_var"), NULL, NULL, false, 0.1f, 1e-5f);
    expect_equal(ag_module_forward(seq, x), want, "eval batch norm uses running stats");
    OK(ag_to_host(ag_module_get(bn, "num_batches_tracked"), &nbt, 4));
    ck_assert_int_eq(nbt, 1);
    free(xv);
    ag_scope_end();
    ag_module_free(seq);
}
END_TEST

/* ---- IDX and CSV ------------------------------------------------------------------ */

START_TEST(test_idx)
{
    /* 3 images of 2x2 bytes, 3 labels, an int32 vector */
    const uint8_t img[] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2,
                           0, 255, 51, 102, 1, 2, 3, 4, 5, 6, 7, 8};
    const uint8_t lab[] = {0, 0, 8, 1, 0, 0, 0, 3, 9, 0, 4};
    const uint8_t ints[] = {0, 0, 0x0C, 1, 0, 0, 0, 2, 0xFF, 0xFF, 0xFF, 0xFE, 0, 0, 1, 0};
    write_file(tpath("img"), img, sizeof img);
    write_file(tpath("lab"), lab, sizeof lab);
    write_file(tpath("ints"), ints, sizeof ints);
    ag_tensor *t = NN(ag_idx_load(tpath("img")));
    ck_assert_int_eq(ag_dtype_of(t), AG_F32);
    ck_assert_int_eq(ag_ndim(t), 3);
    float *v = host_f32(t);
    ck_assert(v[0] == 0 && v[1] == 1.0f && fabsf(v[2] - 0.2f) < 1e-7f && fabsf(v[11] - 8 / 255.0f) < 1e-7f);
    free(v);
    ag_release(t);
    t = NN(ag_idx_load(tpath("lab")));
    int32_t l[3], iv[2];
    ck_assert_int_eq(ag_dtype_of(t), AG_I32);
    OK(ag_to_host(t, l, sizeof l));
    ck_assert(l[0] == 9 && l[1] == 0 && l[2] == 4);
    ag_release(t);
    t = NN(ag_idx_load(tpath("ints")));
    OK(ag_to_host(t, iv, sizeof iv));
    ck_assert(iv[0] == -2 && iv[1] == 256);
    ag_release(t);

    /* truncated, extra bytes, bad magic, too many dims */
    struct { const char *name, *why; size_t n; uint8_t patch_at, patch; } bad[] = {
        {"trunc_data", "truncated", sizeof img - 1, 0, 0},
        {"trunc_dims", "truncated", 10, 0, 0},
        {"short_magic", "magic", 3, 0, 0},
        {"bad_magic", "bad magic", sizeof img, 0, 1},
        {"bad_type", "bad magic", sizeof img, 2, 0x0A},
        {"no_dims", "dimensions", sizeof img, 3, 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t buf[sizeof img];
        memcpy(buf, img, sizeof img);
        if (bad[i].patch || bad[i].patch_at) buf[bad[i].patch_at] = bad[i].patch;
        write_file(tpath(bad[i].name), buf, bad[i].n);
        ag_clear_error();
        ck_assert_ptr_null(ag_idx_load(tpath(bad[i].name)));
        ck_assert_int_eq(ag_last_status(), AG_ERR_IO);
        ck_assert_msg(strstr(ag_last_error(), bad[i].why), "%s: %s", bad[i].name, ag_last_error());
    }
    uint8_t extra[sizeof lab + 1];
    memcpy(extra, lab, sizeof lab);
    extra[sizeof lab] = 7;
    write_file(tpath("extra"), extra, sizeof extra);
    ck_assert_ptr_null(ag_idx_load(tpath("extra")));
    ck_assert_msg(strstr(ag_last_error(), "extra data"), "%s", ag_last_error());
    ck_assert_ptr_null(ag_idx_load(tpath("missing")));
    ck_assert_int_eq(ag_last_status(), AG_ERR_IO);

    /* gzip: a truncated and a corrupted copy of the real label file */
    FILE *f = fopen(FASHION_DIR "/t10k-labels-idx1-ubyte.gz", "rb");
    if (!f) {
        ck_abort_msg("Fashion-MNIST is not installed (" FASHION_DIR "); run `make deps`");
        return;
    }
    static uint8_t gz[8192];
    size_t n = fread(gz, 1, sizeof gz, f);
    fclose(f);
    write_file(tpath("trunc.gz"), gz, n / 2);
    ck_assert_ptr_null(ag_idx_load(tpath("trunc.gz")));
    ck_assert_int_eq(ag_last_status(), AG_ERR_IO);
    for (size_t i = 200; i < 400; i++) gz[i] ^= 0x5A;
    write_file(tpath("corrupt.gz"), gz, n);
    ck_assert_ptr_null(ag_idx_load(tpath("corrupt.gz")));
    ck_assert_int_eq(ag_last_status(), AG_ERR_IO);
}
END_TEST

START_TEST(test_csv)
{
    const char *good = "a,b,c\n1, 2.5 ,-3\r\n\n4e2,5,6\n";
    write_file(tpath("good.csv"), good, strlen(good));
    ag_tensor *t = NN(ag_csv_load(tpath("good.csv"), true));
    ck_assert(ag_dim(t, 0) == 2 && ag_dim(t, 1) == 3);
    float *v = host_f32(t);
    ck_assert(v[0] == 1 && v[1] == 2.5f && v[2] == -3 && v[3] == 400 && v[5] == 6);
    free(v);
    ag_release(t);
    const char *const bad[][2] = {{"1,2\n3\n", "fields"}, {"1,x\n", "not a number"},
                                  {"1,,2\n", "empty"}, {"h\n", "no data"}};
    for (size_t i = 0; i < 4; i++) {
        write_file(tpath("bad.csv"), bad[i][0], strlen(bad[i][0]));
        ck_assert_ptr_null(ag_csv_load(tpath("bad.csv"), i == 3));
        ck_assert_int_eq(ag_last_status(), AG_ERR_IO);
        ck_assert_msg(strstr(ag_last_error(), bad[i][1]), "%s", ag_last_error());
    }
}
END_TEST

/* ---- loader ------------------------------------------------------------------------ */

/* Sample i of x is [i, 10 i]; y is i. Collects one epoch's y values. */
static int64_t epoch_order(ag_loader *l, int64_t epoch, int32_t *out, int64_t *batches)
{
    OK(ag_loader_start_epoch(l, epoch));
    ag_tensor *x, *y;
    int64_t n = 0;
    *batches = 0;
    ag_scope_begin();
    while (ag_loader_next(l, &x, &y)) {
        int64_t b = ag_dim(y, 0);
        float xv[64];
        OK(ag_to_host(y, out + n, (size_t)b * 4));
        OK(ag_to_host(x, xv, (size_t)b * 8));
        for (int64_t i = 0; i < b; i++) ck_assert(xv[2 * i + 1] == 10 * (float)out[n + i]);
        n += b;
        (*batches)++;
    }
    ck_assert_int_eq(ag_last_status(), AG_OK);
    ag_scope_end();
    return n;
}

START_TEST(test_loader)
{
    enum { N = 23 };
    float xs[2 * N];
    int32_t ys[N];
    for (int i = 0; i < N; i++) {
        xs[2 * i] = (float)i;
        xs[2 * i + 1] = 10.0f * i;
        ys[i] = i;
    }
    int64_t xshape[2] = {N, 2}, yshape = N;
    ag_tensor *x = ag_from_f32(xs, 2, xshape), *y = ag_from_i32(ys, 1, &yshape);
    ag_loader_config cfg = {.batch_size = 5, .shuffle = true, .seed = 42};
    ag_loader *l = NN(ag_loader_new(x, y, &cfg)), *l2 = NN(ag_loader_new(x, y, &cfg));
    ck_assert_int_eq(ag_loader_num_batches(l), 5);
    int32_t a[N], b[N], c[N];
    int64_t nb;
    ck_assert_int_eq(epoch_order(l, 0, a, &nb), N);
    ck_assert_int_eq(nb, 5);
    ck_assert_int_eq(epoch_order(l2, 0, b, &nb), N);
    ck_assert_msg(!memcmp(a, b, sizeof a), "same seed and epoch, same order");
    epoch_order(l, 1, c, &nb);
    ck_assert_msg(memcmp(a, c, sizeof a), "another epoch, another order");
    bool seen[N] = {false}, sorted = true;
    for (int i = 0; i < N; i++) {
        ck_assert(c[i] >= 0 && c[i] < N && !seen[c[i]]);
        seen[c[i]] = true;
        if (a[i] != i) sorted = false;
    }
    ck_assert(!sorted);
    ag_loader_free(l2);

    cfg.drop_last = true;
    cfg.shuffle = false;
    l2 = NN(ag_loader_new(x, y, &cfg));
    ck_assert_int_eq(ag_loader_num_batches(l2), 4);
    ck_assert_int_eq(epoch_order(l2, 0, b, &nb), 20);
    for (int i = 0; i < 20; i++) ck_assert_int_eq(b[i], i);
    ag_loader_free(l2);

    /* split: disjoint, complete, reproducible */
    ag_loader *tr, *va;
    OK(ag_loader_split(l, 0.3, &tr, &va));
    ck_assert_int_eq(ag_loader_size(va), 7);
    ck_assert_int_eq(ag_loader_size(tr), 16);
    int64_t nt = epoch_order(tr, 0, a, &nb), nv = epoch_order(va, 0, a + nt, &nb);
    ck_assert_int_eq(nt + nv, N);
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < N; i++) {
        ck_assert(!seen[a[i]]);
        seen[a[i]] = true;
    }
    ag_loader_free(tr);
    ag_loader_free(va);

    /* normalisation with the loader's own statistics */
    float mean[2], sd[2];
    OK(ag_loader_stats(l, true, mean, sd));
    ck_assert(fabsf(mean[0] - 11.0f) < 1e-5f && fabsf(mean[1] - 110.0f) < 1e-4f);
    OK(ag_loader_set_normalize(l, 2, mean, sd));
    OK(ag_loader_start_epoch(l, 0));
    ag_tensor *bx, *by;
    ck_assert(ag_loader_next(l, &bx, &by));
    float xv[10];
    int32_t yv[5];
    OK(ag_to_host(bx, xv, sizeof xv));
    OK(ag_to_host(by, yv, sizeof yv));
    ck_assert(fabsf(xv[0] - (yv[0] - mean[0]) / sd[0]) < 1e-5f);
    ag_release(bx);
    ag_release(by);
    ck_assert_int_eq(ag_loader_set_normalize(l, 3, mean, sd), AG_ERR_SHAPE);
    ag_loader_free(l);
    cfg.batch_size = 0;
    ck_assert_ptr_null(ag_loader_new(x, y, &cfg));
    ag_release(x);
    ag_release(y);
}
END_TEST

/* Images kept as u8 (ag_idx_load_raw) load into batches bit-identical to the
 * f32 path's, with the same statistics, after the source tensors are released
 * (the loader holds them); and a header's claim is checked against the file
 * before anything is allocated. */
START_TEST(test_loader_u8)
{
    enum { N = 37, H = 3, W = 4 };
    uint8_t img[16 + N * H * W], lab[8 + N];
    const uint8_t ih[16] = {0, 0, 8, 3, 0, 0, 0, N, 0, 0, 0, H, 0, 0, 0, W};
    const uint8_t lh[8] = {0, 0, 8, 1, 0, 0, 0, N};
    memcpy(img, ih, 16);
    memcpy(lab, lh, 8);
    for (int i = 0; i < N * H * W; i++) img[16 + i] = (uint8_t)((i * 37 + i / 5) % 256);
    for (int i = 0; i < N; i++) lab[8 + i] = (uint8_t)(i % 10);
    write_file(tpath("u8img"), img, sizeof img);
    write_file(tpath("u8lab"), lab, sizeof lab);

    ag_tensor *xr = NN(ag_idx_load_raw(tpath("u8img"))), *yr = NN(ag_idx_load_raw(tpath("u8lab")));
    ck_assert_int_eq(ag_dtype_of(xr), AG_U8);
    ck_assert_int_eq(ag_dtype_of(yr), AG_U8);
    ck_assert(ag_ndim(xr) == 3 && ag_dim(xr, 0) == N && ag_dim(xr, 2) == W);
    static uint8_t back[N * H * W];
    OK(ag_to_host(xr, back, sizeof back));
    ck_assert(!memcmp(back, img + 16, sizeof back));
    ag_tensor *xf = NN(ag_idx_load(tpath("u8img"))), *yf = NN(ag_idx_load(tpath("u8lab")));

    ag_loader_config cfg = {.batch_size = 8, .shuffle = true, .seed = 3};
    ag_loader *lu = NN(ag_loader_new(xr, yr, &cfg)), *lf = NN(ag_loader_new(xf, yf, &cfg));
    ag_release(xr);
    ag_release(yr);
    ag_release(xf);
    ag_release(yf);
    float mu[H * W], su[H * W], mf[H * W], sf[H * W];
    OK(ag_loader_stats(lu, true, mu, su));
    OK(ag_loader_stats(lf, true, mf, sf));
    ck_assert(!memcmp(mu, mf, sizeof mu) && !memcmp(su, sf, sizeof su));
    OK(ag_loader_stats(lu, false, mu, su));
    OK(ag_loader_stats(lf, false, mf, sf));
    ck_assert(mu[0] == mf[0] && su[0] == sf[0]);
    for (int pass = 0; pass < 2; pass++) { /* raw, then normalised */
        if (pass) {
            OK(ag_loader_set_normalize(lu, 1, mu, su));
            OK(ag_loader_set_normalize(lf, 1, mf, sf));
        }
        for (int e = 0; e < 2; e++) {
            OK(ag_loader_start_epoch(lu, e));
            OK(ag_loader_start_epoch(lf, e));
            int batches = 0;
            ag_tensor *bu, *bf, *lbu, *lbf;
            while (ag_loader_next(lu, &bu, &lbu)) {
                ck_assert(ag_loader_next(lf, &bf, &lbf));
                ck_assert_int_eq(ag_dtype_of(bu), AG_F32);
                ck_assert_int_eq(ag_dtype_of(lbu), AG_I32);
                int64_t b = ag_dim(bu, 0);
                float vu[8 * H * W], vf[8 * H * W];
                int32_t iu[8], jf[8];
                OK(ag_to_host(bu, vu, (size_t)(b * H * W) * 4));
                OK(ag_to_host(bf, vf, (size_t)(b * H * W) * 4));
                OK(ag_to_host(lbu, iu, (size_t)b * 4));
                OK(ag_to_host(lbf, jf, (size_t)b * 4));
                ck_assert_msg(!memcmp(vu, vf, (size_t)(b * H * W) * 4), "pass %d epoch %d batch %d",
                              pass, e, batches);
                ck_assert(!memcmp(iu, jf, (size_t)b * 4));
                ag_release(bu);
                ag_release(bf);
                ag_release(lbu);
                ag_release(lbf);
                batches++;
            }
            ck_assert_int_eq(ag_last_status(), AG_OK);
            ck_assert_int_eq(batches, 5);
        }
    }
    ag_loader *tr, *va;
    OK(ag_loader_split(lu, 0.25, &tr, &va));
    ck_assert(ag_loader_size(tr) + ag_loader_size(va) == N);
    ag_loader_free(tr);
    ag_loader_free(va);
    ag_loader_free(lu);
    ag_loader_free(lf);

    /* claims beyond the file: refused from the header alone */
    const uint8_t big[16] = {0, 0, 8, 3, 0, 0, 0x10, 0, 0, 0, 1, 0, 0, 0, 1, 0}; /* 4096x256x256 */
    uint8_t plain[16 + 1000] = {0};
    memcpy(plain, big, 16);
    write_file(tpath("claim"), plain, sizeof plain);
    ck_assert_ptr_null(ag_idx_load_raw(tpath("claim")));
    ck_assert_int_eq(ag_last_status(), AG_ERR_IO);
    ck_assert_msg(strstr(ag_last_error(), "truncated") && strstr(ag_last_error(), "the file has 1000"),
                  "%s", ag_last_error());
    gzFile g = gzopen(tpath("claim.gz"), "wb9");
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(gzwrite(g, plain, sizeof plain), (int)sizeof plain);
    gzclose(g);
    ck_assert_ptr_null(ag_idx_load(tpath("claim.gz")));
    ck_assert_int_eq(ag_last_status(), AG_ERR_IO);
    ck_assert_msg(strstr(ag_last_error(), "holds at most"), "%s", ag_last_error());
}
END_TEST

/* ---- safetensors --------------------------------------------------------------------- */

START_TEST(test_safetensors_round_trip)
{
    ag_manual_seed(9);
    int64_t s1[2] = {3, 4}, s2[1] = {5}, s0[2] = {0, 7};
    int32_t iv[5] = {-1, 2, 1 << 30, 0, 7};
    ag_tensor *t[4] = {ag_randn(2, s1, 0, 1), ag_from_i32(iv, 1, s2), ag_scalar(2.5f),
                       ag_zeros(2, s0)};
    const char *names[4] = {"layer.weight", "idx \"quoted\"", "scalar", "empty"};
    const char *meta[4] = {"format", "pt", "note", "line\nbreak"};
    OK(ag_safetensors_save(tpath("a.safetensors"), 4, names, t, 2, meta));
    ag_tensor_dict *d = NN(ag_safetensors_load(tpath("a.safetensors")));
    ck_assert_int_eq(d->n, 4);
    for (int i = 0; i < 4; i++) {
        ag_tensor *u = ag_tensor_dict_get(d, names[i]);
        ck_assert_msg(u, "missing %s", names[i]);
        ck_assert_int_eq(ag_dtype_of(u), ag_dtype_of(t[i]));
        ck_assert_int_eq(ag_ndim(u), ag_ndim(t[i]));
        if (ag_dtype_of(u) == AG_F32) expect_equal(u, t[i], names[i]);
    }
    int32_t back[5];
    OK(ag_to_host(ag_tensor_dict_get(d, names[1]), back, sizeof back));
    ck_assert(!memcmp(back, iv, sizeof iv));
    ck_assert_str_eq(ag_tensor_dict_meta(d, "note"), "line\nbreak");
    ag_tensor_dict_free(d);
    for (int i = 0; i < 4; i++) ag_release(t[i]);
    /* no temporary files left behind */
    char cmd[400];
    snprintf(cmd, sizeof cmd, "test $(ls '%s' | wc -l) -eq 1", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* A file with the given header text and n data bytes. */
static void raw_st(const char *name, const char *header, size_t n, uint64_t claimed)
{
    size_t hl = strlen(header);
    uint64_t len = claimed ? claimed : hl;
    uint8_t *buf = calloc(1, 8 + hl + n);
    for (int k = 0; k < 8; k++) buf[k] = (uint8_t)(len >> (8 * k));
    memcpy(buf + 8, header, hl);
    write_file(tpath(name), buf, 8 + hl + n);
    free(buf);
}

START_TEST(test_safetensors_rejects)
{
    const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    raw_st("ok", ok, 8, 0);
    ag_tensor_dict *d = NN(ag_safetensors_load(tpath("ok")));
    ag_tensor_dict_free(d);
    const struct { const char *name, *header; size_t n; uint64_t claimed; const char *why; } bad[] = {
        {"trunc", ok, 4, 0, "run past"},
        {"huge", ok, 8, 1ull << 40, "limit"},
        {"past", ok, 0, 200, "does not fit"},
        {"json", "{\"a\":{\"dtype\":\"F32\",}}", 0, 0, "JSON"},
        {"notobj", "[1,2]", 0, 0, "'{'"},
        {"dtype", "{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, "unknown dtype"},
        {"outside", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, 0, "run past"},
        {"size", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, 0, "span"},
        {"overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, 0, "overlaps"},
        {"hole", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, 0, "belong to no"},
        {"dup", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, 0, "twice"},
        {"negshape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, 0, "non-negative"},
        {"offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, 0, "begin > end"},
        {"meta", "{\"__metadata__\":{\"k\":1}}", 0, 0, "not a string"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        raw_st(bad[i].name, bad[i].header, bad[i].n, bad[i].claimed);
        ag_clear_error();
        ck_assert_ptr_null(ag_safetensors_load(tpath(bad[i].name)));
        ck_assert_msg(ag_last_status() == AG_ERR_IO, "%s: %s", bad[i].name, ag_last_error());
        ck_assert_msg(strstr(ag_last_error(), bad[i].why), "%s: %s", bad[i].name, ag_last_error());
    }
    write_file(tpath("tiny"), "abc", 3);
    ck_assert_ptr_null(ag_safetensors_load(tpath("tiny")));
    ck_assert_int_eq(ag_last_status(), AG_ERR_IO);
}
END_TEST

/* Lists handed out stay valid until that module (or one inside it) changes;
 * parameters are the parameter slots, frozen or not. */
START_TEST(test_lists_stable)
{
    ag_module *m = NN(ag_sequential_new(2, (ag_module *[]){ag_linear_new(3, 4, true), ag_relu_new()}));
    int n, np;
    const char *const *names = NN((void *)ag_module_state_names(m, &n));
    ag_tensor *const *params = NN((void *)ag_module_parameters(m, &np));
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(np, 2);
    ag_module *other = NN(ag_sequential_new(1, (ag_module *[]){ag_relu_new()}));
    OK(ag_sequential_add(other, "fc", ag_linear_new(2, 2, false)));
    ck_assert_ptr_eq(ag_module_parameters(m, &np), params);
    ck_assert_ptr_eq(ag_module_state_names(m, &n), names);
    ck_assert_str_eq(names[0], "0.weight");
    ag_module_free(other);

    /* changing a nested Sequential refreshes its ancestors' lists */
    ag_module *inner = NN(ag_sequential_new(0, NULL));
    OK(ag_sequential_add(m, "inner", inner));
    names = ag_module_state_names(m, &n);
    ck_assert_int_eq(n, 2);
    OK(ag_sequential_add(inner, "fc", ag_linear_new(4, 2, true)));
    names = ag_module_state_names(m, &n);
    ck_assert_int_eq(n, 4);
    ck_assert_str_eq(names[3], "inner.fc.bias");
    ck_assert_int_eq(ag_module_num_parameters(m), 3 * 4 + 4 + 4 * 2 + 2);

    /* a frozen parameter is still a parameter (as in PyTorch) */
    ag_module *lin = NN(ag_linear_new(4, 3, true));
    OK(ag_set_requires_grad(ag_module_get(lin, "weight"), false));
    ag_module_parameters(lin, &np);
    ck_assert_int_eq(np, 2);
    ag_module_free(ag_sequential_new(0, NULL));
    ag_module_parameters(lin, &np);
    ck_assert_int_eq(np, 2);
    ck_assert_int_eq(ag_module_num_parameters(lin), 15);
    ag_module *bn = NN(ag_batch_norm_new(3, 1));
    ag_module_parameters(bn, &np);
    ck_assert_int_eq(np, 2); /* buffers are not parameters */
    ag_module_free(bn);
    ag_module_free(lin);
    ag_module_free(m);
}
END_TEST

/* Children take the Sequential's mode all the way down; a module belongs to one
 * Sequential, and cycles are refused (the module stays with its owner). */
START_TEST(test_sequential_add_rules)
{
    ag_module *outer = NN(ag_sequential_new(0, NULL));
    ag_module_train(outer, false);
    ag_module *inner = NN(ag_sequential_new(1, (ag_module *[]){ag_dropout_new(0.5f)}));
    OK(ag_sequential_add(outer, "block", inner));
    ck_assert(!ag_module_is_training(inner));
    ck_assert(!ag_module_is_training(ag_module_child(inner, 0)));
    int64_t sh[2] = {1, 64};
    ag_tensor *x = ag_ones(2, sh);
    ag_tensor *y = NN(ag_module_forward(outer, x));
    expect_equal(y, x, "eval-mode dropout");
    ag_release(y);
    ag_release(x);

    ag_clear_error();
    ck_assert_int_eq(ag_sequential_add(inner, "loop", outer), AG_ERR_ARG);   /* cycle */
    ck_assert_int_eq(ag_sequential_add(inner, "self", inner), AG_ERR_ARG);   /* itself */
    ag_module *b = NN(ag_sequential_new(0, NULL));
    ck_assert_int_eq(ag_sequential_add(b, "again", inner), AG_ERR_ARG);      /* two owners */
    ck_assert_int_eq(ag_sequential_add(outer, "again", inner), AG_ERR_ARG);
    ck_assert_ptr_null(ag_sequential_new(1, (ag_module *[]){inner}));
    ck_assert_int_eq(ag_last_status(), AG_ERR_ARG);
    ck_assert_int_eq(ag_module_num_children(outer), 1);
    ck_assert_int_eq(ag_module_num_children(inner), 1);
    ck_assert_int_eq(ag_module_num_children(b), 0);
    ag_module_free(b);
    ag_module_free(outer);
}
END_TEST

/* ---- checkpoints ------------------------------------------------------------------------ */

static ag_module *small_net(uint64_t seed)
{
    ag_manual_seed(seed);
    ag_module *l[] = {ag_linear_new(6, 16, true), ag_tanh_new(), ag_batch_norm_new(16, 1),
                      ag_linear_new(16, 3, true)};
    return ag_sequential_new(4, l);
}

/* k Adam steps on fixed data; losses into out. */
static void train_steps(ag_module *m, ag_optim *opt, int k, float *out)
{
    float xs[32 * 6];
    int32_t ys[32];
    for (int i = 0; i < 32 * 6; i++) xs[i] = sinf(0.37f * i);
    for (int i = 0; i < 32; i++) ys[i] = i % 3;
    int64_t xsh[2] = {32, 6}, n = 32;
    for (int s = 0; s < k; s++) {
        ag_scope_begin();
        ag_tensor *x = ag_from_f32(xs, 2, xsh), *y = ag_from_i32(ys, 1, &n);
        ag_tensor *loss = ag_cross_entropy(ag_module_forward(m, x), y, AG_REDUCTION_MEAN, 0);
        OK(ag_optim_zero_grad(opt));
        OK(ag_backward(loss, NULL));
        OK(ag_optim_step(opt));
        OK(ag_item(loss, &out[s]));
        ag_scope_end();
    }
}

static ag_optim *adam_for(ag_module *m)
{
    int n;
    ag_tensor *const *p = ag_module_parameters(m, &n);
    ag_optim_config c = ag_optim_defaults(AG_OPTIM_ADAM, 0.01f);
    return NN(ag_optim_new(&c, n, p));
}

START_TEST(test_checkpoint_resume)
{
    ag_module *m = NN(small_net(1));
    ag_optim *opt = adam_for(m);
    float warm[4], cont[5], resumed[5];
    train_steps(m, opt, 4, warm);
    OK(ag_checkpoint_save(tpath("ck.safetensors"), m, opt, 7));
    train_steps(m, opt, 5, cont);

    ag_module *m2 = NN(small_net(2)); /* different initial weights */
    ag_optim *opt2 = adam_for(m2);
    int64_t epoch = 0;
    OK(ag_checkpoint_load(tpath("ck.safetensors"), m2, opt2, &epoch));
    ck_assert_int_eq(epoch, 7);
    ck_assert_int_eq(ag_optim_steps(opt2), 4);
    train_steps(m2, opt2, 5, resumed);
    for (int i = 0; i < 5; i++)
        ck_assert_msg(cont[i] == resumed[i], "step %d: loss %.9g uninterrupted, %.9g resumed", i,
                      cont[i], resumed[i]);

    /* module-only files ignore nothing but optimizer entries; mismatches fail cleanly */
    OK(ag_module_load(m2, tpath("ck.safetensors")));
    OK(ag_module_save(m, tpath("m.safetensors")));
    ag_tensor_dict *d = NN(ag_safetensors_load(tpath("m.safetensors")));
    ck_assert_int_eq(d->n, 9);
    ck_assert_ptr_nonnull(ag_tensor_dict_get(d, "2.running_var"));
    ag_tensor_dict_free(d);
    ag_module *other[] = {ag_linear_new(6, 15, true)};
    ag_module *wrong = NN(ag_sequential_new(1, other));
    ck_assert_int_eq(ag_module_load(wrong, tpath("m.safetensors")), AG_ERR_SHAPE);
    ck_assert_msg(strstr(ag_last_error(), "0.weight"), "%s", ag_last_error());
    ag_optim_config sgd = ag_optim_defaults(AG_OPTIM_SGD, 0.1f);
    int np;
    ag_tensor *const *p = ag_module_parameters(m2, &np);
    ag_optim *o3 = NN(ag_optim_new(&sgd, np, p));
    ck_assert_int_ne(ag_checkpoint_load(tpath("ck.safetensors"), m2, o3, NULL), AG_OK);
    ck_assert_msg(strstr(ag_last_error(), "Adam"), "%s", ag_last_error());
    ag_optim_free(o3);
    ag_module_free(wrong);
    ag_optim_free(opt);
    ag_optim_free(opt2);
    ag_module_free(m);
    ag_module_free(m2);
}
END_TEST

/* A failed load changes nothing: a step count out of range is caught before the
 * weights are copied (it used to fail only after them). */
START_TEST(test_checkpoint_bad_steps_leave_model)
{
    ag_manual_seed(1);
    ag_module *m = NN(ag_linear_new(3, 2, true));
    ag_optim *o = adam_for(m);
    OK(ag_checkpoint_save(tpath("ck.st"), m, o, 3));
    ag_tensor_dict *d = NN(ag_safetensors_load(tpath("ck.st")));
    ag_manual_seed(2);
    ag_module *m2 = NN(ag_linear_new(3, 2, true));
    ag_optim *o2 = adam_for(m2);
    float before[6], after[6];
    OK(ag_to_host(ag_module_get(m2, "weight"), before, sizeof before));
    const char *keys[2] = {"optimizer.steps", "optimizer.param_steps"};
    const char *vals[2] = {"9000000000000000000", "0,9000000000000000000"};
    for (int k = 0; k < 2; k++) {
        const char *meta[32];
        ck_assert_int_le(d->nmeta, 16);
        for (int i = 0; i < d->nmeta; i++) {
            meta[2 * i] = d->meta_keys[i];
            meta[2 * i + 1] = strcmp(d->meta_keys[i], keys[k]) ? d->meta_values[i] : vals[k];
        }
        OK(ag_safetensors_save(tpath("bad.st"), d->n, (const char *const *)d->names, d->tensors,
                               d->nmeta, meta));
        int64_t ep = -7;
        ck_assert_int_ne(ag_checkpoint_load(tpath("bad.st"), m2, o2, &ep), AG_OK);
        ck_assert_msg(strstr(ag_last_error(), "range"), "%s", ag_last_error());
        ck_assert_int_eq(ep, -7);
        ck_assert_int_eq(ag_optim_steps(o2), 0);
        OK(ag_to_host(ag_module_get(m2, "weight"), after, sizeof after));
        ck_assert_msg(!memcmp(before, after, sizeof before), "%s: weights changed", keys[k]);
    }
    ag_tensor_dict_free(d);
    ag_optim_free(o);
    ag_optim_free(o2);
    ag_module_free(m);
    ag_module_free(m2);
}
END_TEST

static unsigned file_mode(const char *path)
{
    struct stat st;
    ck_assert_msg(stat(path, &st) == 0, "stat %s", path);
    return (unsigned)(st.st_mode & 0777);
}

/* Saved files get 0666 less the umask, or keep an existing file's mode (not
 * mkstemp's 0600). */
START_TEST(test_safetensors_file_mode)
{
    ag_tensor *t = ag_scalar(1.0f);
    const char *name = "x";
    mode_t old = umask(022);
    OK(ag_safetensors_save(tpath("new.st"), 1, &name, &t, 0, NULL));
    ck_assert_uint_eq(file_mode(tpath("new.st")), 0644);
    umask(077);
    OK(ag_safetensors_save(tpath("private.st"), 1, &name, &t, 0, NULL));
    ck_assert_uint_eq(file_mode(tpath("private.st")), 0600);
    ck_assert_int_eq(chmod(tpath("new.st"), 0640), 0);
    OK(ag_safetensors_save(tpath("new.st"), 1, &name, &t, 0, NULL));
    ck_assert_uint_eq(file_mode(tpath("new.st")), 0640);
    umask(old);
    ag_release(t);
}
END_TEST

/* A save through a symbolic link replaces the file it points to and keeps the
 * link; FIFOs, directories and device nodes are refused, never replaced by a
 * regular file; no temporary file is left behind; and checkpoint metadata of
 * the caller's is kept, the library's own keys refused. */
START_TEST(test_safetensors_save_targets)
{
    ag_tensor *t = ag_scalar(2.0f);
    const char *name = "x";
    write_file(tpath("tgt.st"), "old", 3);
    unlink(tpath("ln.st"));
    unlink(tpath("dl.st"));
    ck_assert_int_eq(symlink("tgt.st", tpath("ln.st")), 0);
    ck_assert_int_eq(symlink("made.st", tpath("dl.st")), 0);
    OK(ag_safetensors_save(tpath("ln.st"), 1, &name, &t, 0, NULL));
    OK(ag_safetensors_save(tpath("dl.st"), 1, &name, &t, 0, NULL));
    struct stat st;
    ck_assert(lstat(tpath("ln.st"), &st) == 0 && S_ISLNK(st.st_mode));
    ck_assert(lstat(tpath("dl.st"), &st) == 0 && S_ISLNK(st.st_mode));
    ag_tensor_dict *d = NN(ag_safetensors_load(tpath("tgt.st")));
    ag_tensor_dict_free(d);
    d = NN(ag_safetensors_load(tpath("made.st")));
    ag_tensor_dict_free(d);
    /* a chain of links ending nowhere: the links stay, the file appears at the end */
    unlink(tpath("c1.st"));
    unlink(tpath("c2.st"));
    unlink(tpath("cend.st"));
    ck_assert_int_eq(symlink("c2.st", tpath("c1.st")), 0);
    ck_assert_int_eq(symlink("cend.st", tpath("c2.st")), 0);
    OK(ag_safetensors_save(tpath("c1.st"), 1, &name, &t, 0, NULL));
    ck_assert(lstat(tpath("c2.st"), &st) == 0 && S_ISLNK(st.st_mode));
    ck_assert(lstat(tpath("cend.st"), &st) == 0 && S_ISREG(st.st_mode));
    unlink(tpath("fifo.st"));
    ck_assert_int_eq(mkfifo(tpath("fifo.st"), 0644), 0);
    ck_assert_int_eq(ag_safetensors_save(tpath("fifo.st"), 1, &name, &t, 0, NULL), AG_ERR_IO);
    ck_assert_msg(strstr(ag_last_error(), "FIFO"), "%s", ag_last_error());
    ck_assert(lstat(tpath("fifo.st"), &st) == 0 && S_ISFIFO(st.st_mode));
    mkdir(tpath("dir.st"), 0755);
    ck_assert_int_eq(ag_safetensors_save(tpath("dir.st"), 1, &name, &t, 0, NULL), AG_ERR_IO);
    ck_assert_msg(strstr(ag_last_error(), "directory"), "%s", ag_last_error());
    unlink(tpath("ln2.st"));
    ck_assert_int_eq(symlink("fifo.st", tpath("ln2.st")), 0);
    ck_assert_int_eq(ag_safetensors_save(tpath("ln2.st"), 1, &name, &t, 0, NULL), AG_ERR_IO);
    ck_assert(lstat(tpath("fifo.st"), &st) == 0 && S_ISFIFO(st.st_mode));

    ag_module *m = NN(ag_linear_new(2, 2, true));
    const char *kv[4] = {"mine", "42", "epoch", "7"};
    OK(ag_checkpoint_save_meta(tpath("meta.st"), m, NULL, 3, 1, kv));
    d = NN(ag_safetensors_load(tpath("meta.st")));
    ck_assert_str_eq(ag_tensor_dict_meta(d, "mine"), "42");
    ck_assert_str_eq(ag_tensor_dict_meta(d, "epoch"), "3");
    ag_tensor_dict_free(d);
    ck_assert_int_eq(ag_checkpoint_save_meta(tpath("meta2.st"), m, NULL, 3, 2, kv), AG_ERR_ARG);
    ck_assert_msg(strstr(ag_last_error(), "\"epoch\""), "%s", ag_last_error());
    /* refused also when this save would not write them itself */
    const char *kv2[2] = {"optimizer.kind", "sgd"}, *kv3[2] = {"epoch", "abc"};
    ck_assert_int_eq(ag_checkpoint_save_meta(tpath("meta2.st"), m, NULL, 3, 1, kv2), AG_ERR_ARG);
    ck_assert_int_eq(ag_checkpoint_save_meta(tpath("meta2.st"), m, NULL, -1, 1, kv3), AG_ERR_ARG);
    const char *kv4[4] = {"mine", "1", "mine", "2"};
    ck_assert_int_eq(ag_checkpoint_save_meta(tpath("meta2.st"), m, NULL, 3, 2, kv4), AG_ERR_ARG);
    ck_assert_msg(strstr(ag_last_error(), "twice"), "%s", ag_last_error());
    ag_module_free(m);

    /* nothing named *.tmp.* is left in the directory */
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q '\\.tmp\\.'", tmpdir);
    ck_assert_msg(system(cmd) != 0, "temporary files left in %s", tmpdir);
    ag_release(t);
}
END_TEST

/* Duplicate names are found by sorting: a header of many entries loads (or is
 * rejected) in well under a second, not minutes. */
START_TEST(test_safetensors_many_names)
{
    enum { N = 60000 };
    const char *one = "\"t%07d\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},";
    size_t cap = (size_t)N * 64 + 64, at = 0;
    char *h = malloc(cap);
    h[at++] = '{';
    for (int i = 0; i < N; i++) at += (size_t)snprintf(h + at, cap - at, one, i == N - 1 ? 17 : i);
    h[at - 1] = '}';
    h[at] = '\0';
    raw_st("many.st", h, 0, 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ag_clear_error();
    ck_assert_ptr_null(ag_safetensors_load(tpath("many.st")));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ck_assert_int_eq(ag_last_status(), AG_ERR_IO);
    ck_assert_msg(strstr(ag_last_error(), "'t0000017' appears twice"), "%s", ag_last_error());
    double sec = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    ck_assert_msg(sec < 2.0, "%d-entry header took %.2f s", N, sec);
    free(h);
}
END_TEST

/* ---- real data ---------------------------------------------------------------------------- */

START_TEST(test_fashion_mnist_short_run)
{
    if (access(FASHION_DIR "/train-images-idx3-ubyte.gz", R_OK) != 0) {
        ck_abort_msg("Fashion-MNIST is not installed (" FASHION_DIR "): run `make deps` "
                     "(Debian package dataset-fashion-mnist)");
        return;
    }
    ag_scope_begin();
    ag_tensor *xtr = NN(ag_idx_load(FASHION_DIR "/train-images-idx3-ubyte.gz"));
    ag_tensor *ytr = NN(ag_idx_load(FASHION_DIR "/train-labels-idx1-ubyte.gz"));
    ag_tensor *xte = NN(ag_idx_load(FASHION_DIR "/t10k-images-idx3-ubyte.gz"));
    ag_tensor *yte = NN(ag_idx_load(FASHION_DIR "/t10k-labels-idx1-ubyte.gz"));
    ck_assert(ag_dim(xtr, 0) == 60000 && ag_dim(xtr, 1) == 28 && ag_dim(yte, 0) == 10000);
    int64_t s[2] = {-1, 784};
    ag_tensor *x = ag_reshape(ag_slice(xtr, 0, 0, 4000, 1), 2, s);
    ag_tensor *y = ag_slice(ytr, 0, 0, 4000, 1);
    ag_tensor *xt = ag_reshape(ag_slice(xte, 0, 0, 2000, 1), 2, s);
    ag_tensor *yt = ag_contiguous(ag_slice(yte, 0, 0, 2000, 1));
    ag_loader_config cfg = {.batch_size = 64, .shuffle = true, .seed = 1};
    ag_loader *l = NN(ag_loader_new(x, y, &cfg));
    ck_assert_str_eq(ag_device_backend(ag_device_of(xtr)), "cpu"); /* data files load to the CPU */
    xt = ag_retain(NN(ag_to_device(xt, ag_device_default())));
    yt = ag_retain(NN(ag_to_device(yt, ag_device_default())));
    ag_scope_end();

    ag_manual_seed(1);
    ag_module *layers[] = {ag_linear_new(784, 128, true), ag_relu_new(), ag_linear_new(128, 10, true)};
    ag_module *m = NN(ag_sequential_new(3, layers));
    ag_optim *opt = adam_for(m);
    ag_optim_set_lr(opt, 2e-3f);
    for (int e = 0; e < 2; e++) {
        ag_loader_start_epoch(l, e);
        ag_tensor *bx, *by;
        ag_scope_begin();
        while (ag_loader_next(l, &bx, &by)) {
            ag_tensor *loss = ag_cross_entropy(ag_module_forward(m, bx), by, AG_REDUCTION_MEAN, 0);
            OK(ag_optim_zero_grad(opt));
            OK(ag_backward(loss, NULL));
            OK(ag_optim_step(opt));
        }
        ag_scope_end();
    }
    ag_no_grad_begin();
    ag_scope_begin();
    int32_t pred[2000], lab[2000];
    OK(ag_to_host(ag_argmax(ag_module_forward(m, xt), 1, false), pred, sizeof pred));
    OK(ag_to_host(yt, lab, sizeof lab));
    ag_scope_end();
    ag_no_grad_end();
    int correct = 0;
    for (int i = 0; i < 2000; i++) correct += pred[i] == lab[i];
    double acc = correct / 2000.0;
    fprintf(stderr, "fashion-mnist short run: test accuracy %.4f on 2000 images after 2 epochs "
                    "over 4000\n", acc);
    ck_assert_msg(acc >= 0.76, "test accuracy %.4f below the 0.76 bar", acc);
    ag_optim_free(opt);
    ag_module_free(m);
    ag_loader_free(l);
    ag_release(xt);
    ag_release(yt);
}
END_TEST

Suite *suite_modules(void)
{
    Suite *s = suite_create("modules");
    TCase *tm = h_tcase_create("modules");
    tcase_add_test(tm, test_forward_matches_ops);
    tcase_add_test(tm, test_names_shapes_counts);
    tcase_add_test(tm, test_attention_modules);
    tcase_add_test(tm, test_gpt_module);
    tcase_add_test(tm, test_init_statistics);
    tcase_add_test(tm, test_train_eval);
    tcase_add_test(tm, test_lists_stable);
    tcase_add_test(tm, test_sequential_add_rules);
    suite_add_tcase(s, tm);
    TCase *td = h_tcase_create("data");
    tcase_add_checked_fixture(td, setup, teardown);
    tcase_add_test(td, test_idx);
    tcase_add_test(td, test_csv);
    tcase_add_test(td, test_loader);
    tcase_add_test(td, test_loader_u8);
    tcase_add_test(td, test_safetensors_round_trip);
    tcase_add_test(td, test_safetensors_rejects);
    tcase_add_test(td, test_checkpoint_resume);
    tcase_add_test(td, test_checkpoint_bad_steps_leave_model);
    tcase_add_test(td, test_safetensors_file_mode);
    tcase_add_test(td, test_safetensors_save_targets);
    tcase_add_test(td, test_safetensors_many_names);
    suite_add_tcase(s, td);
    TCase *tr = h_tcase_create("fashion");
    tcase_set_timeout(tr, 300);
    tcase_add_test(tr, test_fashion_mnist_short_run);
    suite_add_tcase(s, tr);
    return s;
}
