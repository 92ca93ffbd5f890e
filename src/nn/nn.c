/* Modules (torch.nn layers): each owns its parameters and buffers and runs the
 * functional op in forward. A Sequential owns its children; names and the
 * flattened parameter and state lists follow PyTorch's state_dict. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "nn_internal.h"
#include "ops/unary_table.h"

#define MAX_OWN 5 /* batch norm: weight, bias, running_mean, running_var, num_batches_tracked */

typedef struct kind_info {
    const char *name;
    ag_tensor *(*forward)(ag_module *m, ag_tensor *x);
} kind_info;

struct ag_module {
    const kind_info *kind;
    bool training;
    int nparam, nbuf;                  /* own[0..nparam) parameters, then buffers */
    const char *own_names[MAX_OWN];
    ag_tensor *own[MAX_OWN];
    ag_conv2d_params conv;
    ag_pool2d_params pool;
    ag_unary_op op;
    float f[3];                        /* op parameters, eps, momentum, dropout p */
    int iarg;                          /* axis, batch-norm dims, normalized ndim */
    int64_t batches_tracked;
    int nchild, capchild;
    ag_module **child;
    char **child_names;
    /* The Sequential that owns this module (NULL at the top): a module belongs to
     * one tree, and changes are announced up the chain. */
    ag_module *parent;
    /* Flattened lists, rebuilt when this module's tree changed since they were
     * built: version goes up on m and all its ancestors at every change, and
     * flat_version is the version the lists were built for (0: none). */
    uint64_t version, flat_version;
    int nflat_p, nflat_s;
    ag_tensor **flat_s;                /* state_dict order: own params, own buffers, children */
    char **flat_sn;
    ag_tensor **flat_p;                /* the parameter slots among them, same order */
    char **flat_pn;
};

/* ---- construction -------------------------------------------------------------- */

static ag_module *module_new(const kind_info *k)
{
    ag_module *m = calloc(1, sizeof *m);
    if (!m) {
        ag_set_error(AG_ERR_OOM, "%s: out of host memory", k->name);
        return NULL;
    }
    m->kind = k;
    m->training = true;
    m->version = 1;
    return m;
}

/* A tensor the module keeps, created outside whatever scope the caller has open. */
static bool add_own(ag_module *m, const char *name, ag_tensor *t, bool param)
{
    if (!t) return false;
    ag_retain(t);
    if (param && ag_set_requires_grad(t, true) != AG_OK) {
        ag_release(t);
        return false;
    }
    m->own_names[m->nparam + m->nbuf] = name;
    m->own[m->nparam + m->nbuf] = t;
    if (param)
        m->nparam++;
    else
        m->nbuf++;
    return true;
}

static ag_module *finish(ag_module *m, bool ok)
{
    ag_scope_end();
    if (ok) return m;
    ag_module_free(m);
    return NULL;
}

static bool positive(const char *op, const char *what, int64_t v)
{
    if (v > 0) return true;
    ag_set_error(AG_ERR_ARG, "%s: %s must be > 0 (got %lld)", op, what, (long long)v);
    return false;
}

/* ---- forward functions ---------------------------------------------------------- */

static ag_tensor *fw_linear(ag_module *m, ag_tensor *x)
{
    return ag_linear(x, m->own[0], m->nparam > 1 ? m->own[1] : NULL);
}

static ag_tensor *fw_conv2d(ag_module *m, ag_tensor *x)
{
    return ag_conv2d(x, m->own[0], m->nparam > 1 ? m->own[1] : NULL, &m->conv);
}

static ag_tensor *fw_max_pool(ag_module *m, ag_tensor *x) { return ag_max_pool2d(x, &m->pool); }
static ag_tensor *fw_avg_pool(ag_module *m, ag_tensor *x) { return ag_avg_pool2d(x, &m->pool); }

static ag_tensor *fw_batch_norm(ag_module *m, ag_tensor *x)
{
    if (!x) return NULL;
    int nd = ag_ndim(x);
    bool ok = m->iarg == 1 ? (nd == 2 || nd == 3) : nd == 4;
    if (!ok) {
        char s[160];
        ag_shape_str(x, s, sizeof s);
        ag_set_error(AG_ERR_SHAPE, "BatchNorm%dd: expected input %s, got %s", m->iarg,
                     m->iarg == 1 ? "[N, C] or [N, C, L]" : "[N, C, H, W]", s);
        return NULL;
    }
    ag_tensor *y = ag_batch_norm(x, m->own[2], m->own[3], m->own[0], m->own[1], m->training,
                                 m->f[1], m->f[0]);
    if (y && m->training) {
        int32_t nbt = (int32_t)++m->batches_tracked;
        if (ag_from_host(m->own[4], &nbt, sizeof nbt) != AG_OK) return NULL;
    }
    return y;
}

static ag_tensor *fw_layer_norm(ag_module *m, ag_tensor *x)
{
    return ag_layer_norm(x, m->iarg, m->own[0], m->own[1], m->f[0]);
}

static ag_tensor *fw_dropout(ag_module *m, ag_tensor *x) { return ag_dropout(x, m->f[0], m->training); }
static ag_tensor *fw_embedding(ag_module *m, ag_tensor *x) { return ag_embedding(x, m->own[0]); }
static ag_tensor *fw_flatten(ag_module *m, ag_tensor *x)
{
    (void)m;
    return ag_flatten(x, 1, -1);
}
static ag_tensor *fw_activation(ag_module *m, ag_tensor *x) { return ag_unary(m->op, x, m->f[0], m->f[1]); }
static ag_tensor *fw_softmax(ag_module *m, ag_tensor *x) { return ag_softmax(x, m->iarg); }
static ag_tensor *fw_log_softmax(ag_module *m, ag_tensor *x) { return ag_log_softmax(x, m->iarg); }

/* Each child's output is let go as soon as the next child has used it: an
 * activation that no backward reads is then freed during the forward pass. */
static ag_tensor *fw_sequential(ag_module *m, ag_tensor *x)
{
    if (!x) return NULL;
    ag_tensor *h = ag_retain(x); /* an empty Sequential is the identity */
    for (int i = 0; i < m->nchild && h; i++) {
        ag_scope_begin();
        ag_tensor *y = ag_retain(ag_module_forward(m->child[i], h));
        ag_scope_end();
        ag_release(h);
        h = y;
    }
    return ag__own(h);
}

static const kind_info K_LINEAR = {"Linear", fw_linear}, K_CONV2D = {"Conv2d", fw_conv2d},
    K_MAXPOOL = {"MaxPool2d", fw_max_pool}, K_AVGPOOL = {"AvgPool2d", fw_avg_pool},
    K_BN1 = {"BatchNorm1d", fw_batch_norm}, K_BN2 = {"BatchNorm2d", fw_batch_norm},
    K_LN = {"LayerNorm", fw_layer_norm}, K_DROPOUT = {"Dropout", fw_dropout},
    K_EMBEDDING = {"Embedding", fw_embedding}, K_FLATTEN = {"Flatten", fw_flatten},
    K_SOFTMAX = {"Softmax", fw_softmax}, K_LOG_SOFTMAX = {"LogSoftmax", fw_log_softmax},
    K_SEQUENTIAL = {"Sequential", fw_sequential};

/* Activation modules: PyTorch's class name per unary op (the op table's Module). */
#define ACT_ROW(E, name, np, pn, doc, module, ...) [AG_UNARY_##E] = {module, fw_activation},
static const kind_info K_ACT[AG_UNARY_COUNT] = {AG_UNARY_TABLE(ACT_ROW)};
#undef ACT_ROW

/* ---- layers ------------------------------------------------------------------------ */

/* U(-1/sqrt(fan_in), 1/sqrt(fan_in)) bias, as nn.Linear and nn.Conv2d. */
static ag_tensor *default_bias(int64_t n, double fan_in)
{
    float bound = (float)(1.0 / sqrt(fan_in));
    return ag_rand(1, &n, -bound, bound);
}

static ag_tensor *default_weight(int ndim, const int64_t *shape)
{
    ag_tensor *w = ag_empty(ndim, shape, AG_F32);
    if (w && ag_init_kaiming_uniform(w, sqrtf(5.0f), AG_FAN_IN) != AG_OK) return NULL;
    return w;
}

ag_module *ag_linear_new(int64_t in_features, int64_t out_features, bool bias)
{
    if (!positive("Linear", "in_features", in_features) ||
        !positive("Linear", "out_features", out_features))
        return NULL;
    ag_module *m = module_new(&K_LINEAR);
    if (!m) return NULL;
    ag_scope_begin();
    int64_t ws[2] = {out_features, in_features};
    bool ok = add_own(m, "weight", default_weight(2, ws), true);
    if (ok && bias) ok = add_own(m, "bias", default_bias(out_features, (double)in_features), true);
    return finish(m, ok);
}

ag_module *ag_conv2d_new(int64_t in_channels, int64_t out_channels, int kh, int kw,
                         const ag_conv2d_params *p, bool bias)
{
    ag_conv2d_params c = {{1, 1}, {0, 0}, {1, 1}, 1};
    if (p) c = *p;
    if (!positive("Conv2d", "in_channels", in_channels) ||
        !positive("Conv2d", "out_channels", out_channels) || !positive("Conv2d", "kh", kh) ||
        !positive("Conv2d", "kw", kw) || !positive("Conv2d", "groups", c.groups))
        return NULL;
    if (in_channels % c.groups || out_channels % c.groups) {
        ag_set_error(AG_ERR_ARG, "Conv2d: in_channels %lld and out_channels %lld must be "
                                 "divisible by groups %d", (long long)in_channels,
                     (long long)out_channels, c.groups);
        return NULL;
    }
    ag_module *m = module_new(&K_CONV2D);
    if (!m) return NULL;
    m->conv = c;
    ag_scope_begin();
    int64_t ws[4] = {out_channels, in_channels / c.groups, kh, kw};
    bool ok = add_own(m, "weight", default_weight(4, ws), true);
    if (ok && bias)
        ok = add_own(m, "bias", default_bias(out_channels, (double)ws[1] * kh * kw), true);
    return finish(m, ok);
}

static ag_module *pool_new(const kind_info *k, const ag_pool2d_params *p)
{
    if (!p) {
        ag_set_error(AG_ERR_ARG, "%s: parameters are NULL (the kernel size is needed)", k->name);
        return NULL;
    }
    for (int d = 0; d < 2; d++)
        if (p->kernel[d] < 1 || p->stride[d] < 0 || p->padding[d] < 0) {
            ag_set_error(AG_ERR_ARG, "%s: kernel %dx%d must be positive, stride %dx%d and "
                         "padding %dx%d non-negative", k->name, p->kernel[0], p->kernel[1],
                         p->stride[0], p->stride[1], p->padding[0], p->padding[1]);
            return NULL;
        }
    ag_module *m = module_new(k);
    if (!m) return NULL;
    m->pool = *p;
    for (int d = 0; d < 2; d++)
        if (m->pool.stride[d] == 0) m->pool.stride[d] = m->pool.kernel[d];
    return m;
}

ag_module *ag_max_pool2d_new(const ag_pool2d_params *p) { return pool_new(&K_MAXPOOL, p); }
ag_module *ag_avg_pool2d_new(const ag_pool2d_params *p) { return pool_new(&K_AVGPOOL, p); }

ag_module *ag_batch_norm_new(int64_t num_features, int dims)
{
    if (dims != 1 && dims != 2) {
        ag_set_error(AG_ERR_ARG, "BatchNorm: dims must be 1 or 2 (got %d)", dims);
        return NULL;
    }
    if (!positive(dims == 1 ? "BatchNorm1d" : "BatchNorm2d", "num_features", num_features))
        return NULL;
    ag_module *m = module_new(dims == 1 ? &K_BN1 : &K_BN2);
    if (!m) return NULL;
    m->iarg = dims;
    m->f[0] = 1e-5f; /* eps */
    m->f[1] = 0.1f;  /* momentum */
    ag_scope_begin();
    const int64_t c = num_features;
    bool ok = add_own(m, "weight", ag_ones(1, &c), true) && add_own(m, "bias", ag_zeros(1, &c), true) &&
              add_own(m, "running_mean", ag_zeros(1, &c), false) &&
              add_own(m, "running_var", ag_ones(1, &c), false) &&
              add_own(m, "num_batches_tracked", ag_empty(0, NULL, AG_I32), false);
    if (ok) {
        int32_t zero = 0;
        ok = ag_from_host(m->own[4], &zero, sizeof zero) == AG_OK;
    }
    return finish(m, ok);
}

ag_module *ag_layer_norm_new(int ndim, const int64_t *shape)
{
    if (ndim < 1 || ndim > AG_MAX_DIMS || !shape) {
        ag_set_error(AG_ERR_ARG, "LayerNorm: needs 1 to %d normalised dimensions (got %d%s)",
                     AG_MAX_DIMS, ndim, shape ? "" : ", shape NULL");
        return NULL;
    }
    for (int d = 0; d < ndim; d++)
        if (!positive("LayerNorm", "every normalised size", shape[d])) return NULL;
    ag_module *m = module_new(&K_LN);
    if (!m) return NULL;
    m->iarg = ndim;
    m->f[0] = 1e-5f;
    ag_scope_begin();
    bool ok = add_own(m, "weight", ag_ones(ndim, shape), true) &&
              add_own(m, "bias", ag_zeros(ndim, shape), true);
    return finish(m, ok);
}

ag_module *ag_dropout_new(float p)
{
    if (!(p >= 0.0f && p <= 1.0f)) {
        ag_set_error(AG_ERR_ARG, "Dropout: probability %g is not in [0, 1]", p);
        return NULL;
    }
    ag_module *m = module_new(&K_DROPOUT);
    if (m) m->f[0] = p;
    return m;
}

ag_module *ag_embedding_new(int64_t num_embeddings, int64_t dim)
{
    if (!positive("Embedding", "num_embeddings", num_embeddings) ||
        !positive("Embedding", "embedding_dim", dim))
        return NULL;
    ag_module *m = module_new(&K_EMBEDDING);
    if (!m) return NULL;
    ag_scope_begin();
    int64_t ws[2] = {num_embeddings, dim};
    bool ok = add_own(m, "weight", ag_randn(2, ws, 0.0f, 1.0f), true);
    return finish(m, ok);
}

ag_module *ag_flatten_new(void) { return module_new(&K_FLATTEN); }

ag_module *ag_activation_new(ag_unary_op op, float p0, float p1)
{
    if ((unsigned)op >= AG_UNARY_COUNT || !K_ACT[op].name) {
        ag_set_error(AG_ERR_ARG, "activation module: unknown unary op %d", (int)op);
        return NULL;
    }
    ag_module *m = module_new(&K_ACT[op]);
    if (m) {
        m->op = op;
        m->f[0] = p0;
        m->f[1] = p1;
    }
    return m;
}

ag_module *ag_relu_new(void) { return ag_activation_new(AG_UNARY_RELU, 0, 0); }
ag_module *ag_gelu_new(void) { return ag_activation_new(AG_UNARY_GELU_ERF, 0, 0); }
ag_module *ag_tanh_new(void) { return ag_activation_new(AG_UNARY_TANH, 0, 0); }
ag_module *ag_sigmoid_new(void) { return ag_activation_new(AG_UNARY_SIGMOID, 0, 0); }
ag_module *ag_silu_new(void) { return ag_activation_new(AG_UNARY_SILU, 0, 0); }
ag_module *ag_leaky_relu_new(float slope) { return ag_activation_new(AG_UNARY_LEAKY_RELU, slope, 0); }

static ag_module *softmax_like(const kind_info *k, int axis)
{
    ag_module *m = module_new(k);
    if (m) m->iarg = axis;
    return m;
}

ag_module *ag_softmax_new(int axis) { return softmax_like(&K_SOFTMAX, axis); }
ag_module *ag_log_softmax_new(int axis) { return softmax_like(&K_LOG_SOFTMAX, axis); }

/* ---- attention ------------------------------------------------------------------------ */

/* Constructors of modules with children (below Sequential's helpers). */
static ag_module *with_children(ag_module *m, int n, const char *const *names, ag_module *const *kids);

/* nn.MultiheadAttention(E, H, dropout, bias, batch_first=True) as self-attention:
 * x [N, L, E]; own in_proj_weight [3E, E] (q, k, v rows), in_proj_bias [3E];
 * child out_proj (Linear). f[0] dropout, f[1] causal, iarg heads. */
static ag_tensor *fw_mha(ag_module *m, ag_tensor *x)
{
    int64_t E = ag_dim(m->own[0], 1), H = m->iarg, sh[AG_MAX_DIMS];
    int nd = ag_shape(x, sh);
    if (nd != 3 || sh[2] != E) {
        char str[160];
        ag_shape_str(x, str, sizeof str);
        return ag_set_error(AG_ERR_SHAPE, "MultiheadAttention: expected input [N, L, %lld], got %s",
                            (long long)E, str), NULL;
    }
    int64_t N = sh[0], L = sh[1];
    ag_scope_begin();
    ag_tensor *qkv = ag_linear(x, m->own[0], m->nparam > 1 ? m->own[1] : NULL); /* [N, L, 3E] */
    ag_tensor *h[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3 && qkv; i++) { /* [N, L, E] -> [N, H, L, E / H] */
        ag_tensor *part = ag_reshape(ag_slice(qkv, 2, i * E, (i + 1) * E, 1), 4, (int64_t[]){N, L, H, E / H});
        h[i] = part ? ag_transpose(part, 1, 2) : NULL;
    }
    ag_tensor *a = h[0] && h[1] && h[2]
                       ? ag_scaled_dot_product_attention(h[0], h[1], h[2], NULL, m->training ? m->f[0] : 0.0f,
                                                         m->f[1] != 0.0f, 0.0f)
                       : NULL;
    if (a) a = ag_reshape(ag_transpose(a, 1, 2), 3, (int64_t[]){N, L, E});
    return ag__done(a ? ag_module_forward(m->child[0], a) : NULL);
}

/* nn.TransformerEncoderLayer(d, H, ff, dropout, activation="gelu",
 * batch_first=True, norm_first=True): x + attn(norm1(x)), then
 * x + linear2(gelu(linear1(norm2(x)))), dropout after the attention, inside
 * the MLP and after it. Children in PyTorch's order: self_attn, linear1,
 * dropout, linear2, norm1, norm2, dropout1, dropout2. */
enum { TB_ATTN, TB_LIN1, TB_DROP, TB_LIN2, TB_NORM1, TB_NORM2, TB_DROP1, TB_DROP2, TB_N };
static ag_tensor *fw_block(ag_module *m, ag_tensor *x)
{
    ag_module *const *c = m->child;
    ag_scope_begin();
    ag_tensor *a = ag_module_forward(c[TB_DROP1], ag_module_forward(c[TB_ATTN], ag_module_forward(c[TB_NORM1], x)));
    ag_tensor *h = a ? ag_add(x, a) : NULL;
    ag_tensor *f = h ? ag_module_forward(c[TB_NORM2], h) : NULL;
    if (f) f = ag_module_forward(c[TB_DROP], ag_gelu(ag_module_forward(c[TB_LIN1], f)));
    if (f) f = ag_module_forward(c[TB_DROP2], ag_module_forward(c[TB_LIN2], f));
    return ag__done(f ? ag_add(h, f) : NULL);
}

static const kind_info K_MHA = {"MultiheadAttention", fw_mha},
                       K_BLOCK = {"TransformerEncoderLayer", fw_block};

ag_module *ag_multihead_attention_new(int64_t embed_dim, int64_t num_heads, float dropout, bool bias,
                                      bool causal)
{
    static const char k[] = "MultiheadAttention";
    if (!positive(k, "embed_dim", embed_dim) || !positive(k, "num_heads", num_heads)) return NULL;
    if (embed_dim % num_heads || num_heads > INT32_MAX) {
        ag_set_error(AG_ERR_ARG, "%s: embed_dim %lld is not divisible by num_heads %lld", k,
                     (long long)embed_dim, (long long)num_heads);
        return NULL;
    }
    if (!(dropout >= 0.0f && dropout <= 1.0f)) {
        ag_set_error(AG_ERR_ARG, "%s: dropout %g is not in [0, 1]", k, (double)dropout);
        return NULL;
    }
    ag_module *m = module_new(&K_MHA);
    if (!m) return NULL;
    m->iarg = (int)num_heads;
    m->f[0] = dropout;
    m->f[1] = causal ? 1.0f : 0.0f;
    ag_scope_begin();
    /* as PyTorch: Xavier-uniform in_proj_weight, zero biases */
    ag_tensor *w = ag_empty(2, (int64_t[]){3 * embed_dim, embed_dim}, AG_F32);
    bool ok = w && ag_init_xavier_uniform(w, 1.0f) == AG_OK && add_own(m, "in_proj_weight", w, true);
    if (ok && bias) ok = add_own(m, "in_proj_bias", ag_zeros(1, (int64_t[]){3 * embed_dim}), true);
    ag_module *out = ok ? ag_linear_new(embed_dim, embed_dim, bias) : NULL;
    if (out && bias) ok = ag_init_constant(ag_module_get(out, "bias"), 0.0f) == AG_OK;
    m = finish(m, ok && out);
    if (!m || !out) {
        ag_module_free(out);
        return NULL;
    }
    return with_children(m, 1, (const char *[]){"out_proj"}, &out);
}

ag_module *ag_transformer_block_new(int64_t d_model, int64_t num_heads, int64_t dim_feedforward,
                                    float dropout, bool causal)
{
    if (!positive("TransformerEncoderLayer", "dim_feedforward", dim_feedforward)) return NULL;
    ag_module *m = module_new(&K_BLOCK);
    if (!m) return NULL;
    const int64_t d = d_model;
    ag_module *kids[TB_N] = {
        ag_multihead_attention_new(d_model, num_heads, dropout, true, causal),
        ag_linear_new(d_model, dim_feedforward, true), ag_dropout_new(dropout),
        ag_linear_new(dim_feedforward, d_model, true), ag_layer_norm_new(1, &d),
        ag_layer_norm_new(1, &d), ag_dropout_new(dropout), ag_dropout_new(dropout)};
    static const char *const names[TB_N] = {"self_attn", "linear1", "dropout", "linear2",
                                            "norm1", "norm2", "dropout1", "dropout2"};
    return with_children(m, TB_N, names, kids);
}

/* GPT: children wte, wpe, h (Sequential of blocks), ln_f, lm_head; iarg context. */
enum { GPT_WTE, GPT_WPE, GPT_H, GPT_LN, GPT_HEAD, GPT_N };
static ag_tensor *fw_gpt(ag_module *m, ag_tensor *idx)
{
    int64_t sh[AG_MAX_DIMS];
    int nd = idx ? ag_shape(idx, sh) : 0;
    if (!idx) return NULL;
    if (ag_dtype_of(idx) != AG_I32 || nd != 2 || sh[1] < 1 || sh[1] > m->iarg) {
        char str[160];
        ag_shape_str(idx, str, sizeof str);
        return ag_set_error(ag_dtype_of(idx) != AG_I32 ? AG_ERR_DTYPE : AG_ERR_SHAPE, "GPT: expected int32 token indices [B, T] with 1 <= T <= "
                                          "%d (the context), got %s %s", m->iarg,
                            ag_dtype_name(ag_dtype_of(idx)), str), NULL;
    }
    ag_module *const *c = m->child;
    ag_scope_begin();
    int32_t *pos = malloc((size_t)sh[1] * sizeof *pos);
    for (int64_t t = 0; pos && t < sh[1]; t++) pos[t] = (int32_t)t;
    ag_tensor *p = pos ? ag_from_i32(pos, 1, (int64_t[]){sh[1]}) : NULL;
    free(pos);
    if (!p && ag_last_status() == AG_OK) ag_set_error(AG_ERR_OOM, "GPT: out of host memory");
    ag_tensor *x = p ? ag_add(ag_module_forward(c[GPT_WTE], idx), ag_module_forward(c[GPT_WPE], p)) : NULL;
    x = ag_module_forward(c[GPT_LN], ag_module_forward(c[GPT_H], x));
    return ag__done(ag_module_forward(c[GPT_HEAD], x));
}

static const kind_info K_GPT = {"GPT", fw_gpt};

ag_module *ag_gpt_new(int64_t vocab, int64_t context, int64_t layers, int64_t heads, int64_t width,
                      float dropout)
{
    static const char k[] = "GPT";
    if (!positive(k, "vocab", vocab) || !positive(k, "context", context) ||
        !positive(k, "layers", layers) || !positive(k, "heads", heads) || !positive(k, "width", width))
        return NULL;
    if (context > INT32_MAX || layers > 4096 || width > ((int64_t)1 << 24)) {
        ag_set_error(AG_ERR_ARG, "GPT: context %lld, layers %lld or width %lld too large",
                     (long long)context, (long long)layers, (long long)width);
        return NULL;
    }
    ag_module *m = module_new(&K_GPT);
    ag_module **blocks = m ? calloc((size_t)layers, sizeof *blocks) : NULL;
    if (!blocks) {
        if (m) ag_set_error(AG_ERR_OOM, "GPT: out of host memory");
        ag_module_free(m);
        return NULL;
    }
    m->iarg = (int)context;
    /* the blocks first, then the embeddings: the draws of examples/char_gpt.c */
    for (int64_t i = 0; i < layers; i++) blocks[i] = ag_transformer_block_new(width, heads, 4 * width, dropout, true);
    const int64_t C = width;
    ag_module *kids[GPT_N] = {ag_embedding_new(vocab, C), ag_embedding_new(context, C),
                              ag_sequential_new((int)layers, blocks), ag_layer_norm_new(1, &C),
                              ag_linear_new(C, vocab, false)};
    free(blocks);
    static const char *const names[GPT_N] = {"wte", "wpe", "h", "ln_f", "lm_head"};
    if (!(m = with_children(m, GPT_N, names, kids))) return NULL;
    static const int normal[3] = {GPT_WTE, GPT_WPE, GPT_HEAD};
    for (int i = 0; i < 3; i++)
        if (ag_init_normal(ag_module_get(m->child[normal[i]], "weight"), 0.0f, 0.02f) != AG_OK) {
            ag_module_free(m);
            return NULL;
        }
    return m;
}

/* ---- Sequential ------------------------------------------------------------------------ */

ag_module *ag_sequential_new(int n, ag_module *const *modules)
{
    bool bad = n < 0 || (n > 0 && !modules);
    for (int i = 0; !bad && i < n; i++) bad = !modules[i];
    ag_module *m = bad ? NULL : module_new(&K_SEQUENTIAL);
    for (int i = 0; m && i < n; i++) {
        if (ag_sequential_add(m, NULL, modules[i]) != AG_OK) {
            for (int j = i + 1; j < n; j++) ag_module_free(modules[j]);
            ag_module_free(m);
            return NULL;
        }
    }
    if (m) return m;
    /* NULL children come from failed constructors: keep their error. */
    for (int i = 0; modules && i < n; i++) ag_module_free(modules[i]);
    if (n < 0 || (n > 0 && !modules))
        ag_set_error(AG_ERR_ARG, "Sequential: bad module list (n %d)", n);
    else if (ag_last_status() == AG_OK)
        ag_set_error(AG_ERR_ARG, "Sequential: a module is NULL");
    return NULL;
}

/* Whether a is m or one of m's ancestors. */
static bool is_ancestor(const ag_module *a, const ag_module *m)
{
    for (; m; m = m->parent)
        if (m == a) return true;
    return false;
}

/* m's contents changed: every cached list in its tree that includes m is stale. */
static void changed(ag_module *m)
{
    for (; m; m = m->parent) m->version++;
}

static bool valid_name(const char *s)
{
    if (!*s) return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_') return false;
    return true;
}

/* Makes child (checked: valid, no parent, not an ancestor) m's last child; on
 * failure child is freed. */
static ag_status append_child(ag_module *m, const char *name, ag_module *child)
{
    ag_status s = AG_OK;
    if (m->nchild == m->capchild) {
        int cap = m->capchild ? m->capchild * 2 : 8;
        ag_module **c = realloc(m->child, (size_t)cap * sizeof *c);
        if (c) m->child = c;
        char **cn = c ? realloc(m->child_names, (size_t)cap * sizeof *cn) : NULL;
        if (cn) m->child_names = cn;
        if (!c || !cn) s = ag_set_error(AG_ERR_OOM, "%s: out of host memory", m->kind->name);
        else m->capchild = cap;
    }
    char *copy = s == AG_OK ? strdup(name) : NULL;
    if (s == AG_OK && !copy) s = ag_set_error(AG_ERR_OOM, "%s: out of host memory", m->kind->name);
    if (s != AG_OK) {
        ag_module_free(child);
        return s;
    }
    ag_module_train(child, m->training);
    child->parent = m;
    m->child[m->nchild] = child;
    m->child_names[m->nchild++] = copy;
    changed(m);
    return AG_OK;
}

/* Gives m its n children (frees them and m if one is NULL or does not fit). */
static ag_module *with_children(ag_module *m, int n, const char *const *names, ag_module *const *kids)
{
    int i = 0;
    while (i < n && kids[i] && append_child(m, names[i], kids[i]) == AG_OK) i++;
    if (i == n) return m;
    for (int j = i + 1; j < n; j++) ag_module_free(kids[j]); /* kids[i] failed: freed or NULL */
    if (ag_last_status() == AG_OK) ag_set_error(AG_ERR_OOM, "%s: a part could not be made", m->kind->name);
    ag_module_free(m);
    return NULL;
}

ag_status ag_sequential_add(ag_module *seq, const char *name, ag_module *child)
{
    ag_status s = AG_OK;
    char idx[24];
    if (!name) {
        snprintf(idx, sizeof idx, "%d", seq ? seq->nchild : 0);
        name = idx;
    }
    if (!seq || seq->kind != &K_SEQUENTIAL)
        s = ag_set_error(AG_ERR_ARG, "ag_sequential_add: not a Sequential");
    else if (!child)
        s = ag_last_status() != AG_OK ? ag_last_status()
                                      : ag_set_error(AG_ERR_ARG, "ag_sequential_add: child is NULL");
    else if (child->parent)
        s = ag_set_error(AG_ERR_ARG, "ag_sequential_add: the %s already belongs to a Sequential",
                         child->kind->name);
    else if (is_ancestor(child, seq))
        s = ag_set_error(AG_ERR_ARG, "ag_sequential_add: a Sequential cannot contain itself or "
                                     "one of its ancestors");
    else if (!valid_name(name))
        s = ag_set_error(AG_ERR_ARG, "ag_sequential_add: name '%s' must be letters, digits or '_'",
                         name);
    for (int i = 0; s == AG_OK && i < seq->nchild; i++)
        if (!strcmp(seq->child_names[i], name))
            s = ag_set_error(AG_ERR_ARG, "ag_sequential_add: name '%s' is already used", name);
    if (s == AG_OK) return append_child(seq, name, child);
    /* A child owned by another tree (or by seq's own) stays with its owner. */
    if (child && !child->parent && !is_ancestor(child, seq)) ag_module_free(child);
    return s;
}

int ag_module_num_children(const ag_module *m) { return m ? m->nchild : 0; }

ag_module *ag_module_child(const ag_module *m, int index)
{
    if (!m || index < 0 || index >= m->nchild) {
        ag_set_error(AG_ERR_ARG, "ag_module_child: index %d out of range", index);
        return NULL;
    }
    return m->child[index];
}

const char *ag_module_kind(const ag_module *m) { return m ? m->kind->name : "(null)"; }

/* ---- use ------------------------------------------------------------------------------- */

ag_tensor *ag_module_forward(ag_module *m, ag_tensor *x)
{
    if (!m) return ag_set_error(AG_ERR_ARG, "ag_module_forward: module is NULL"), NULL;
    if (!ag__valid("ag_module_forward", x)) return NULL;
    return m->kind->forward(m, x);
}

static void free_flat(ag_module *m)
{
    for (int i = 0; i < m->nflat_s; i++) free(m->flat_sn[i]);
    free(m->flat_s);
    free(m->flat_sn);
    free(m->flat_p);
    free(m->flat_pn);
    m->flat_s = m->flat_p = NULL;
    m->flat_sn = m->flat_pn = NULL;
    m->nflat_s = m->nflat_p = 0;
    m->flat_version = 0;
}

void ag_module_free(ag_module *m)
{
    if (!m) return;
    for (int i = 0; i < m->nparam + m->nbuf; i++) ag_release(m->own[i]);
    for (int i = 0; i < m->nchild; i++) {
        ag_module_free(m->child[i]);
        free(m->child_names[i]);
    }
    free(m->child);
    free(m->child_names);
    free_flat(m);
    free(m);
}

void ag_module_train(ag_module *m, bool training)
{
    if (!m) return;
    m->training = training;
    for (int i = 0; i < m->nchild; i++) ag_module_train(m->child[i], training);
}

bool ag_module_is_training(const ag_module *m) { return m && m->training; }

/* ---- flattened parameters and state ------------------------------------------------------- */

/* Visits own tensors then children, as state_dict does; params_only skips buffers. */
typedef struct walker {
    int n;
    ag_tensor **t;   /* NULL while counting */
    char **names;
    bool *is_param;  /* per entry: a parameter slot (whatever its requires_grad) */
    bool oom;
} walker;

static void walk(const ag_module *m, const char *prefix, walker *w)
{
    for (int i = 0; i < m->nparam + m->nbuf; i++, w->n++) {
        if (!w->t) continue;
        size_t len = strlen(prefix) + strlen(m->own_names[i]) + 1;
        char *s = malloc(len);
        if (!s) {
            w->oom = true;
            continue;
        }
        snprintf(s, len, "%s%s", prefix, m->own_names[i]);
        w->t[w->n] = m->own[i];
        w->names[w->n] = s;
        w->is_param[w->n] = i < m->nparam;
    }
    for (int c = 0; c < m->nchild; c++) {
        size_t len = strlen(prefix) + strlen(m->child_names[c]) + 2;
        char *p = malloc(len);
        if (!p) {
            w->oom = true;
            continue;
        }
        snprintf(p, len, "%s%s.", prefix, m->child_names[c]);
        walk(m->child[c], p, w);
        free(p);
    }
}

/* The state list is the owner of the names; the parameter list points into it.
 * Parameters are chosen by slot, as PyTorch keeps frozen ones in parameters(). */
static bool refresh(ag_module *m)
{
    if (m->flat_version == m->version) return true;
    free_flat(m);
    walker count = {0};
    walk(m, "", &count);
    int n = count.n;
    m->flat_s = calloc((size_t)n + 1, sizeof *m->flat_s);
    m->flat_sn = calloc((size_t)n + 1, sizeof *m->flat_sn);
    m->flat_p = calloc((size_t)n + 1, sizeof *m->flat_p);
    m->flat_pn = calloc((size_t)n + 1, sizeof *m->flat_pn);
    bool *is_param = calloc((size_t)n + 1, sizeof *is_param);
    walker w = {.t = m->flat_s, .names = m->flat_sn, .is_param = is_param};
    bool ok = m->flat_s && m->flat_sn && m->flat_p && m->flat_pn && is_param;
    if (ok) walk(m, "", &w);
    m->nflat_s = m->flat_sn ? n : 0; /* free_flat frees the names made so far */
    if (!ok || w.oom) {
        free(is_param);
        free_flat(m);
        ag_set_error(AG_ERR_OOM, "module: out of host memory listing parameters");
        return false;
    }
    for (int i = 0; i < n; i++)
        if (is_param[i]) {
            m->flat_p[m->nflat_p] = m->flat_s[i];
            m->flat_pn[m->nflat_p++] = m->flat_sn[i];
        }
    free(is_param);
    m->flat_version = m->version;
    return true;
}

static bool list_ok(const char *op, ag_module *m, int *n)
{
    if (n) *n = 0;
    if (!m) return ag_set_error(AG_ERR_ARG, "%s: module is NULL", op), false;
    return refresh(m);
}

ag_tensor *const *ag_module_parameters(ag_module *m, int *n)
{
    if (!list_ok("ag_module_parameters", m, n)) return NULL;
    if (n) *n = m->nflat_p;
    return m->flat_p;
}

const char *const *ag_module_parameter_names(ag_module *m, int *n)
{
    if (!list_ok("ag_module_parameter_names", m, n)) return NULL;
    if (n) *n = m->nflat_p;
    return (const char *const *)m->flat_pn;
}

int64_t ag_module_num_parameters(ag_module *m)
{
    int n;
    ag_tensor *const *p = ag_module_parameters(m, &n);
    if (!p) return -1;
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += ag_numel(p[i]);
    return total;
}

ag_tensor *const *ag_module_state(ag_module *m, int *n)
{
    if (!list_ok("ag_module_state", m, n)) return NULL;
    if (n) *n = m->nflat_s;
    return m->flat_s;
}

const char *const *ag_module_state_names(ag_module *m, int *n)
{
    if (!list_ok("ag_module_state_names", m, n)) return NULL;
    if (n) *n = m->nflat_s;
    return (const char *const *)m->flat_sn;
}

ag_tensor *ag_module_get(ag_module *m, const char *name)
{
    if (!name) return ag_set_error(AG_ERR_ARG, "ag_module_get: name is NULL"), NULL;
    if (!list_ok("ag_module_get", m, NULL)) return NULL;
    for (int i = 0; i < m->nflat_s; i++)
        if (!strcmp(m->flat_sn[i], name)) return m->flat_s[i];
    return NULL;
}

/* After a load, host-side counters follow the loaded buffers. */
ag_status ag__module_sync_counters(ag_module *m)
{
    if (!m) return AG_OK;
    if (m->kind == &K_BN1 || m->kind == &K_BN2) {
        int32_t v = 0;
        ag_status s = ag_to_host(m->own[4], &v, sizeof v);
        if (s != AG_OK) return s;
        m->batches_tracked = v;
    }
    for (int i = 0; i < m->nchild; i++) {
        ag_status s = ag__module_sync_counters(m->child[i]);
        if (s != AG_OK) return s;
    }
    return AG_OK;
}
