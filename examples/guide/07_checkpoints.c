/* Guide, section 7: checkpoints. A saved and loaded model gives identical
 * outputs; a training checkpoint resumes with identical losses; raw
 * safetensors files round-trip tensors and metadata. Files go to a temporary
 * directory that is removed at the end. Exits 1 on any mismatch. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anygrad.h"
#include "check.h"

/* The same architecture every time; the seed decides the initial weights. */
static ag_module *build(uint64_t seed)
{
    ag_manual_seed(seed);
    ag_module *layers[] = {ag_linear_new(4, 8, true), ag_tanh_new(), ag_linear_new(8, 1, true)};
    return ag_sequential_new(3, layers);
}

static ag_optim *adam_for(ag_module *m)
{
    int np = 0;
    ag_tensor *const *params = ag_module_parameters(m, &np);
    ag_optim_config cfg = ag_optim_defaults(AG_OPTIM_ADAM, 0.01f);
    return params ? ag_optim_new(&cfg, np, params) : NULL;
}

/* k full-batch steps; the losses go to losses[0..k). */
static bool train(ag_module *m, ag_optim *opt, ag_tensor *x, ag_tensor *y, int k, float *losses)
{
    bool ok = m && opt;
    for (int i = 0; i < k && ok; i++) {
        ag_scope_begin();
        ag_tensor *loss = ag_mse_loss(ag_module_forward(m, x), y, AG_REDUCTION_MEAN);
        ok = ag_optim_zero_grad(opt) == AG_OK && ag_backward(loss, NULL) == AG_OK &&
             ag_optim_step(opt) == AG_OK && ag_item(loss, &losses[i]) == AG_OK;
        ag_scope_end();
    }
    return ok;
}

static bool outputs(ag_module *m, ag_tensor *x, float out[32])
{
    ag_no_grad_begin();
    ag_scope_begin();
    bool ok = ag_to_host(ag_module_forward(m, x), out, 32 * sizeof(float)) == AG_OK;
    ag_scope_end();
    ag_no_grad_end();
    return ok;
}

int main(void)
{
    /* Everything this program writes goes to a fresh directory, removed at the end. */
    char dir[256];
    if (!guide_tmpdir(dir, sizeof dir)) return 1;
    char model_path[320], ckpt_path[320], raw_path[320];
    snprintf(model_path, sizeof model_path, "%s/model.safetensors", dir);
    snprintf(ckpt_path, sizeof ckpt_path, "%s/checkpoint.safetensors", dir);
    snprintf(raw_path, sizeof raw_path, "%s/raw.safetensors", dir);

    ag_manual_seed(100);
    const int64_t xs[2] = {32, 4}, ys[2] = {32, 1};
    ag_tensor *x = ag_randn(2, xs, 0.0f, 1.0f), *y = ag_randn(2, ys, 0.0f, 1.0f);

    ag_module *net = build(1);
    ag_optim *opt = adam_for(net);
    float losses[5], resumed[5], a[32], b[32];
    CHECK(train(net, opt, x, y, 5, losses));

    /* ---- the model alone: state under PyTorch's names ---- */
    CHECK(ag_module_save(net, model_path) == AG_OK);
    ag_module *copy = build(2); /* other initial weights */
    CHECK(outputs(net, x, a) && outputs(copy, x, b) && memcmp(a, b, sizeof a) != 0);
    CHECK(ag_module_load(copy, model_path) == AG_OK);
    CHECK(outputs(copy, x, b) && memcmp(a, b, sizeof a) == 0);

    /* A model of another shape is refused, and left as it was. */
    ag_module *wl[] = {ag_linear_new(4, 16, true), ag_tanh_new(), ag_linear_new(16, 1, true)};
    ag_module *wide = ag_sequential_new(3, wl);
    float w1[32], w2[32];
    CHECK(outputs(wide, x, w1));
    CHECK(ag_module_load(wide, model_path) == AG_ERR_SHAPE);
    printf("expected error: %s\n", ag_last_error());
    ag_clear_error();
    CHECK(outputs(wide, x, w2) && memcmp(w1, w2, sizeof w1) == 0);
    ag_module_free(wide);

    /* ---- a training checkpoint: model, optimizer state, epoch ---- */
    CHECK(ag_checkpoint_save(ckpt_path, net, opt, 3) == AG_OK);
    CHECK(train(net, opt, x, y, 5, losses)); /* steps 6..10 of the original run */

    ag_module *net2 = build(3);
    ag_optim *opt2 = adam_for(net2); /* built the same way as the saved one */
    int64_t epoch = -1;
    CHECK(ag_checkpoint_load(ckpt_path, net2, opt2, &epoch) == AG_OK);
    CHECK(epoch == 3 && ag_optim_steps(opt2) == 5);
    CHECK(train(net2, opt2, x, y, 5, resumed));
    CHECK(memcmp(losses, resumed, sizeof losses) == 0); /* exactly the same run */
    printf("resumed losses: %.6f ... %.6f (identical to the uninterrupted run)\n",
           (double)resumed[0], (double)resumed[4]);

    /* ---- raw safetensors: any named tensors plus string metadata ---- */
    const int64_t es[2] = {3, 2}, is = 3;
    const float ev[6] = {1, 2, 3, 4, 5, 6};
    const int32_t iv[3] = {7, 8, 9};
    ag_tensor *emb = ag_from_f32(ev, 2, es), *ids = ag_from_i32(iv, 1, &is);
    const char *names[2] = {"embedding", "ids"};
    ag_tensor *tensors[2] = {emb, ids};
    const char *meta[2] = {"author", "guide"}; /* key, value pairs */
    CHECK(ag_safetensors_save(raw_path, 2, names, tensors, 1, meta) == AG_OK);

    ag_tensor_dict *d = ag_safetensors_load(raw_path);
    ag_tensor *kept = NULL;
    if (CHECK(d != NULL)) {
        CHECK(d->n == 2 && !strcmp(ag_tensor_dict_meta(d, "author"), "guide"));
        float e2[6];
        int32_t i2[3];
        CHECK(ag_to_host(ag_tensor_dict_get(d, "embedding"), e2, sizeof e2) == AG_OK);
        CHECK(ag_to_host(ag_tensor_dict_get(d, "ids"), i2, sizeof i2) == AG_OK);
        CHECK(!memcmp(e2, ev, sizeof ev) && !memcmp(i2, iv, sizeof iv));
        kept = ag_retain(ag_tensor_dict_get(d, "ids")); /* outlives the dict */
        ag_tensor_dict_free(d);
    }
    CHECK(ag_numel(kept) == 3);
    ag_release(kept);

    /* The module file is a safetensors file too. */
    d = ag_safetensors_load(model_path);
    if (CHECK(d != NULL)) {
        CHECK(d->n == 4 && ag_tensor_dict_get(d, "2.bias") != NULL);
        ag_tensor_dict_free(d);
    }

    ag_release(emb);
    ag_release(ids);
    ag_optim_free(opt2);
    ag_module_free(net2);
    ag_optim_free(opt);
    ag_module_free(net);
    ag_module_free(copy);
    ag_release(x);
    ag_release(y);
    unlink(model_path);
    unlink(ckpt_path);
    unlink(raw_path);
    CHECK(rmdir(dir) == 0);
    CHECK(ag_debug_live_buffers() == 0);
    if (failed) fprintf(stderr, "07_checkpoints: %d check(s) failed\n", failed);
    else printf("07_checkpoints: all checks passed\n");
    return failed ? 1 : 0;
}
