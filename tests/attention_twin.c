/* Writes a causal self-attention module and a pre-LN transformer block with
 * their inputs, outputs and parameter gradients, for tests/torch_attention.py
 * to recompute in PyTorch (nn.MultiheadAttention, nn.TransformerEncoderLayer)
 * after load_state_dict(strict=True). usage: attention-twin OUT_DIR */
#include <stdio.h>
#include <stdlib.h>

#include "anygrad.h"

/* y = m(x) and d sum(y * g) / d params; writes DIR/NAME.safetensors (the
 * module) and DIR/NAME-io.safetensors (x, g, y, grad.<param>). */
static int twin(const char *dir, const char *name, ag_module *m)
{
    char path[512];
    int rc = 1;
    ag_scope_begin();
    ag_tensor *x = ag_randn(3, (int64_t[]){2, 7, 16}, 0.0f, 1.0f);
    ag_tensor *g = ag_randn(3, (int64_t[]){2, 7, 16}, 0.0f, 1.0f);
    ag_tensor *y = m ? ag_module_forward(m, x) : NULL;
    ag_tensor *loss = y ? ag_sum_all(ag_mul(y, g)) : NULL;
    int np = 0;
    ag_tensor *const *ps = m ? ag_module_parameters(m, &np) : NULL;
    const char *const *pn = m ? ag_module_parameter_names(m, &np) : NULL;
    if (!loss || !ps || !pn || ag_backward(loss, NULL) != AG_OK || np > 32) goto out;
    const char *names[40] = {"x", "g", "y"};
    ag_tensor *ts[40] = {x, g, y};
    char gn[32][96];
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

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: attention-twin OUT_DIR\n");
        return 2;
    }
    ag_manual_seed(11);
    int rc = twin(argv[1], "mha", ag_multihead_attention_new(16, 4, 0.0f, true, true));
    rc |= twin(argv[1], "block", ag_transformer_block_new(16, 4, 64, 0.0f, true));
    return rc;
}
