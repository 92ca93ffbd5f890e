/* Fused optimizer step (SGD, RMSProp, Adam, AdamW): one element-wise shader
 * (shaders/optim_step.comp), the update rules of backends/cpu/cpu_optim.c in
 * the same operation order. */
#include <math.h>

#include "vk.h"

/* Laid out as Params in shaders/optim_step.comp. */
typedef struct optim_params {
    int32_t kind, n, po, go, s0o, s1o;
    float lr, wd, mom, damp, alpha, eps, b1, b2;
    float step_size, bc2_sqrt, decay, l2;
    int32_t first, nesterov, has_s0, has_s1;
} optim_params;

enum { OPT_SGD, OPT_RMSPROP, OPT_ADAM };

static bool dense(const ag_view *v)
{
    int64_t expect = 1;
    for (int d = v->ndim - 1; d >= 0; d--) {
        if (v->shape[d] != 1 && v->stride[d] != expect) return false;
        expect *= v->shape[d];
    }
    return true;
}

/* A present view: valid, f32, contiguous, n elements; its offset into *off. */
static ag_status check(const char *what, const ag_view *v, int64_t n, bool needed, int32_t *off)
{
    *off = 0;
    if (!v) {
        if (needed)
            return ag_set_error(AG_ERR_ARG, "vulkan optim_step: the %s view is missing", what);
        return AG_OK;
    }
    ag_status s = ag_check_view("vulkan", "optim_step", what, v, AG_F32);
    if (s != AG_OK) return s;
    if (ag_view_numel(v) != n)
        return ag_set_error(AG_ERR_SHAPE, "vulkan optim_step: %s has %lld elements, param has %lld",
                            what, (long long)ag_view_numel(v), (long long)n);
    if (!dense(v))
        return ag_set_error(AG_ERR_ARG, "vulkan optim_step: %s must be contiguous", what);
    return ag_offset32("vulkan", "optim_step", v, off);
}

ag_status vk_optim_step(void *ctx, const ag_optim_args *o, const ag_view *param,
                        const ag_view *grad, const ag_view *s0, const ag_view *s1)
{
    if (!o || !param || !grad)
        return ag_set_error(AG_ERR_ARG, "vulkan optim_step: NULL argument");
    const ag_optim_config *c = &o->cfg;
    bool sgd_k = c->kind == AG_OPTIM_SGD, rms_k = c->kind == AG_OPTIM_RMSPROP;
    bool adam_k = c->kind == AG_OPTIM_ADAM || c->kind == AG_OPTIM_ADAMW;
    if (!sgd_k && !rms_k && !adam_k)
        return ag_set_error(AG_ERR_ARG, "vulkan optim_step: unknown optimizer kind %d",
                            (int)c->kind);
    if (o->step < 1)
        return ag_set_error(AG_ERR_ARG, "vulkan optim_step: step must be 1-based, got %lld",
                            (long long)o->step);
    int64_t n = ag_view_numel(param);
    bool use_s0 = (sgd_k && c->momentum != 0) || rms_k || adam_k;
    bool use_s1 = (rms_k && c->momentum > 0) || adam_k;
    optim_params h = {.kind = sgd_k ? OPT_SGD : rms_k ? OPT_RMSPROP : OPT_ADAM,
                      .lr = o->lr, .wd = c->weight_decay, .mom = c->momentum,
                      .damp = 1.0f - c->dampening, .alpha = c->alpha, .eps = c->eps,
                      .b1 = c->beta1, .b2 = c->beta2, .decay = 1.0f, .first = o->step <= 1,
                      .nesterov = c->nesterov, .has_s0 = use_s0, .has_s1 = use_s1};
    ag_status s = check("param", param, n, true, &h.po);
    if (s == AG_OK) s = check("grad", grad, n, true, &h.go);
    if (s == AG_OK) s = check("state 0", use_s0 ? s0 : NULL, n, use_s0, &h.s0o);
    if (s == AG_OK) s = check("state 1", use_s1 ? s1 : NULL, n, use_s1, &h.s1o);
    if (s != AG_OK) return s;
    if (adam_k) {
        /* the bias corrections are host scalars in double, as in PyTorch and the CPU */
        double bc1 = 1.0 - pow((double)c->beta1, (double)o->step);
        double bc2 = 1.0 - pow((double)c->beta2, (double)o->step);
        bool decoupled = c->kind == AG_OPTIM_ADAMW;
        h.step_size = (float)(o->lr / bc1);
        h.bc2_sqrt = (float)sqrt(bc2);
        h.decay = decoupled ? (float)(1.0 - (double)o->lr * c->weight_decay) : 1.0f;
        h.l2 = decoupled ? 0.0f : c->weight_decay;
    }
    h.n = (int32_t)n;
    return vk_run1(ctx, "optim_step", &h, sizeof h,
                   VK_BUFS(param->buf, grad->buf, use_s0 ? s0->buf : NULL,
                           use_s1 ? s1->buf : NULL),
                   (size_t)n);
}
