/* Writes a causal self-attention module, a pre-LN transformer block and a GPT
 * (ag_gpt_new) with their inputs, outputs and parameter gradients, for
 * tests/torch_attention.py to recompute in PyTorch (nn.MultiheadAttention,
 * nn.TransformerEncoderLayer, bench/gpt_twin.py's GPT) after
 * load_state_dict(strict=True). With CKPT, a checkpoint of anygrad train
 * --model gpt, also its logits for fixed tokens (DIR/ckpt-io.safetensors).
 * usage: attention-twin OUT_DIR [CKPT] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anygrad.h"

/* y = m(x) and d sum(y * g) / d params; writes DIR/NAME.safetensors (the
 * module) and DIR/NAME-io.safetensors (x, g, y, grad.<param>). */
static int twin(const char *dir, const char *name, ag_module *m)
{
    char path[512];
    int rc = 1;
    ag_scope_begin();
    /* a GPT takes tokens [2, 7] and gives [2, 7, vocab] */
    bool gpt = m && !strcmp(ag_module_kind(m), "GPT");
    int64_t out = gpt ? ag_dim(ag_module_get(m, "lm_head.weight"), 0) : 16;
    int32_t tok[14];
    for (int i = 0; i < 14; i++) tok[i] = (int32_t)((i * 7 + 3) % out);
    ag_tensor *x = gpt ? ag_from_i32(tok, 2, (int64_t[]){2, 7}) : ag_randn(3, (int64_t[]){2, 7, 16}, 0.0f, 1.0f);
    ag_tensor *g = ag_randn(3, (int64_t[]){2, 7, out}, 0.0f, 1.0f);
    ag_tensor *y = m ? ag_module_forward(m, x) : NULL;
    ag_tensor *loss = y ? ag_sum_all(ag_mul(y, g)) : NULL;
    int np = 0;
    ag_tensor *const *ps = m ? ag_module_parameters(m, &np) : NULL;
    const char *const *pn = m ? ag_module_parameter_names(m, &np) : NULL;
    if (!loss || !ps || !pn || ag_backward(loss, NULL) != AG_OK || np > 64) goto out;
    const char *names[72] = {"x", "g", "y"};
    ag_tensor *ts[72] = {x, g, y};
    char gn[64][96];
    for (int i = 0; i < np; i++) {
        snprintf(gn[i], sizeof gn[i], "grad.%s", pn[i]);
        names[3 + i] = gn[i];
        ts[3 + i] = ag_grad(ps[i]);
        if (!ts[3 + i]) goto out;
    }
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
    if (ag_module_save(m, path) != AG_OK) goto out;
    snprintf(path, sizeof path, "%s/%s-io.safetensors", dir, name);
    if (ag_safetensors_save(path, 3 + np, names, ts, 0, NULL) != AG_OK) goto out;
    rc = 0;
out:
    if (rc) fprintf(stderr, "attention-twin %s: %s\n", name, ag_last_error());
    ag_scope_end();
    ag_module_free(m);
    return rc;
}

static int64_t meta_int(const ag_tensor_dict *d, const char *key)
{
    const char *v = ag_tensor_dict_meta(d, key);
    return v ? atoll(v) : 0;
}

/* The logits of a --model gpt checkpoint for tokens 0, 1, 2, ... (mod the
 * vocabulary), [1, context], into DIR/ckpt-io.safetensors. */
static int checkpoint_logits(const char *dir, const char *ckpt)
{
    ag_tensor_dict *d = ag_safetensors_load(ckpt);
    const char *vocab = d ? ag_tensor_dict_meta(d, "anygrad.vocab") : NULL;
    int64_t V = vocab ? (int64_t)strlen(vocab) / 2 : 0, T = d ? meta_int(d, "anygrad.context") : 0;
    ag_module *m = V && T ? ag_gpt_new(V, T, meta_int(d, "anygrad.blocks"), meta_int(d, "anygrad.heads"),
                                       meta_int(d, "anygrad.width"), 0.0f)
                          : NULL;
    int rc = 1;
    ag_scope_begin();
    int32_t *tok = T ? malloc((size_t)T * sizeof *tok) : NULL;
    for (int64_t t = 0; tok && t < T; t++) tok[t] = (int32_t)(t % V);
    ag_tensor *y = m && tok && ag_module_load(m, ckpt) == AG_OK
                       ? ag_module_forward(m, ag_from_i32(tok, 2, (int64_t[]){1, T}))
                       : NULL;
    char path[512];
    snprintf(path, sizeof path, "%s/ckpt-io.safetensors", dir);
    if (y && ag_safetensors_save(path, 1, (const char *[]){"y"}, &y, 0, NULL) == AG_OK) rc = 0;
    else fprintf(stderr, "attention-twin %s: %s\n", ckpt, ag_last_error());
    ag_scope_end();
    free(tok);
    ag_module_free(m);
    ag_tensor_dict_free(d);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: attention-twin OUT_DIR [GPT_CHECKPOINT]\n");
        return 2;
    }
    ag_manual_seed(11);
    int rc = twin(argv[1], "mha", ag_multihead_attention_new(16, 4, 0.0f, true, true));
    rc |= twin(argv[1], "block", ag_transformer_block_new(16, 4, 64, 0.0f, true));
    rc |= twin(argv[1], "gpt", ag_gpt_new(11, 7, 2, 2, 16, 0.0f));
    if (argc == 3) rc |= checkpoint_logits(argv[1], argv[2]);
    return rc;
}
