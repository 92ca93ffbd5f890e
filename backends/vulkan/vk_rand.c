/* Random fill (uniform, normal) and dropout (backends/vulkan/shaders/rand_fill.comp,
 * rand_dropout.comp): Philox-4x32-10 with the mapping of backend.h, so every
 * element is a function of (seed, stream, index) alone; the uniform values and
 * the dropout masks equal the CPU backend's bit for bit, normal values agree
 * to about an ulp (own log, cos and a correctly rounded sqrt). */
#include "vk.h"

static ag_status check_f32_dense(const char *op, const char *what, const ag_view *v, int32_t *off)
{
    ag_status s = ag_check_view("vulkan", op, what, v, AG_F32);
    if (s != AG_OK) return s;
    if (!ag_view_is_contiguous(v)) return ag_set_error(AG_ERR_ARG, "vulkan %s: %s must be contiguous", op, what);
    return ag_offset32("vulkan", op, v, off);
}

/* Laid out as Params in backends/vulkan/shaders/rand_fill.comp. */
typedef struct rand_params {
    int32_t normal, n, yo;
    uint32_t k0, k1, s0, s1;
    float a, b;
} rand_params;

ag_status vk_rand(void *ctx, const ag_rand_args *r, const ag_view *y)
{
    if (!r) return ag_set_error(AG_ERR_ARG, "vulkan rand: NULL arguments");
    if (r->dist != AG_RAND_UNIFORM && r->dist != AG_RAND_NORMAL)
        return ag_set_error(AG_ERR_ARG, "vulkan rand: unknown distribution %d", (int)r->dist);
    rand_params p = {.normal = r->dist == AG_RAND_NORMAL,
                     .k0 = (uint32_t)r->seed, .k1 = (uint32_t)(r->seed >> 32),
                     .s0 = (uint32_t)r->stream, .s1 = (uint32_t)(r->stream >> 32)};
    ag_status s = check_f32_dense("rand", "y", y, &p.yo);
    if (s != AG_OK) return s;
    int64_t n = ag_view_numel(y);
    p.n = (int32_t)n;
    /* uniform: low end and span, the span rounded in float as the CPU does */
    p.a = r->a;
    p.b = p.normal ? r->b : r->b - r->a;
    size_t blocks = p.normal ? ((size_t)n + 1) / 2 : ((size_t)n + 3) / 4;
    return vk_run1(ctx, "rand_fill", &p, sizeof p, VK_BUFS(y->buf), blocks);
}

/* Laid out as Params in backends/vulkan/shaders/rand_dropout.comp. */
typedef struct dropout_params {
    int32_t n, yo, mo, xo, has_mask;
    uint32_t k0, k1, s0, s1;
    float p, scale;
} dropout_params;

/* mask may be NULL when the caller needs no gradient */
ag_status vk_dropout(void *ctx, const ag_rand_args *r, float p, const ag_view *y,
                     const ag_view *mask, const ag_view *x)
{
    if (!r) return ag_set_error(AG_ERR_ARG, "vulkan dropout: NULL arguments");
    if (!(p >= 0.0f && p <= 1.0f))
        return ag_set_error(AG_ERR_ARG, "vulkan dropout: p = %g is outside [0, 1]", (double)p);
    dropout_params d = {.has_mask = mask != NULL, .p = p,
                        .k0 = (uint32_t)r->seed, .k1 = (uint32_t)(r->seed >> 32),
                        .s0 = (uint32_t)r->stream, .s1 = (uint32_t)(r->stream >> 32)};
    ag_status s = check_f32_dense("dropout", "y", y, &d.yo);
    if (s == AG_OK) s = check_f32_dense("dropout", "x", x, &d.xo);
    if (s == AG_OK && mask) s = check_f32_dense("dropout", "mask", mask, &d.mo);
    if (s != AG_OK) return s;
    int64_t n = ag_view_numel(y);
    if (ag_view_numel(x) != n || (mask && ag_view_numel(mask) != n))
        return ag_set_error(AG_ERR_SHAPE,
                            "vulkan dropout: y, mask and x sizes differ (%lld, %lld, %lld)",
                            (long long)n, (long long)(mask ? ag_view_numel(mask) : n),
                            (long long)ag_view_numel(x));
    /* p == 1 drops everything; 1 / (1 - p) would make 0 * inf = NaN */
    d.scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    d.n = (int32_t)n;
    return vk_run1(ctx, "rand_dropout", &d, sizeof d,
                   VK_BUFS(y->buf, mask ? mask->buf : NULL, x->buf), ((size_t)n + 3) / 4);
}
