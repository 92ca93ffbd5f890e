/* Fused optimizer step (SGD, RMSProp, Adam, AdamW) on the GPU backends: the
 * checks and the host-side scalars of the update rules of
 * backends/cpu/cpu_optim.c, which the kernels apply in the same order. */
#include <math.h>

#include "plan.h"

/* A present view: valid, f32, contiguous, n elements; its offset into *off. */
static ag_status check(const char *backend, const char *what, const ag_view *v, int64_t n,
                       bool needed, int32_t *off)
{
    *off = 0;
    if (!v) {
        if (needed)
            return ag_set_error(AG_ERR_ARG, "%s optim_step: the %s view is missing", backend,
                                what);
        return AG_OK;
    }
    ag_status s = ag_check_view(backend, "optim_step", what, v, AG_F32);
    if (s != AG_OK) return s;
    if (ag_view_numel(v) != n)
        return ag_set_error(AG_ERR_SHAPE, "%s optim_step: %s has %lld elements, param has %lld",
                            backend, what, (long long)ag_view_numel(v), (long long)n);
    if (!ag_view_is_contiguous(v))
        return ag_set_error(AG_ERR_ARG, "%s optim_step: %s must be contiguous", backend, what);
    return ag_offset32(backend, "optim_step", v, off);
}

ag_status ag_optim_step_plan(const char *backend, const ag_optim_args *o, const ag_view *param,
                             const ag_view *grad, const ag_view *s0, const ag_view *s1,
                             ag_optim_plan *pl)
{
    if (!o || !param || !grad)
        return ag_set_error(AG_ERR_ARG, "%s optim_step: NULL argument", backend);
    const ag_optim_config *c = &o->cfg;
    bool sgd_k = c->kind == AG_OPTIM_SGD, rms_k = c->kind == AG_OPTIM_RMSPROP;
    bool adam_k = c->kind == AG_OPTIM_ADAM || c->kind == AG_OPTIM_ADAMW;
    if (!sgd_k && !rms_k && !adam_k)
        return ag_set_error(AG_ERR_ARG, "%s optim_step: unknown optimizer kind %d", backend,
                            (int)c->kind);
    if (o->step < 1)
        return ag_set_error(AG_ERR_ARG, "%s optim_step: step must be 1-based, got %lld", backend,
                            (long long)o->step);
    int64_t n = ag_view_numel(param);
    bool use_s0 = (sgd_k && c->momentum != 0) || rms_k || adam_k;
    bool use_s1 = (rms_k && c->momentum > 0) || adam_k;
    *pl = (ag_optim_plan){
        .kind = sgd_k ? AG_OPTIM_KERNEL_SGD : rms_k ? AG_OPTIM_KERNEL_RMSPROP : AG_OPTIM_KERNEL_ADAM,
        .hp = {.lr = o->lr, .wd = c->weight_decay, .mom = c->momentum,
               .damp = 1.0f - c->dampening, .alpha = c->alpha, .eps = c->eps, .b1 = c->beta1,
               .b2 = c->beta2, .decay = 1.0f, .first = o->step <= 1, .nesterov = c->nesterov,
               .has_s0 = use_s0, .has_s1 = use_s1},
    };
    ag_status s = check(backend, "param", param, n, true, &pl->po);
    if (s == AG_OK) s = check(backend, "grad", grad, n, true, &pl->go);
    if (s == AG_OK) s = check(backend, "state 0", use_s0 ? s0 : NULL, n, use_s0, &pl->s0o);
    if (s == AG_OK) s = check(backend, "state 1", use_s1 ? s1 : NULL, n, use_s1, &pl->s1o);
    if (s != AG_OK) return s;
    if (adam_k) {
        /* the bias corrections are host scalars in double, as in PyTorch and the CPU */
        double bc1 = 1.0 - pow((double)c->beta1, (double)o->step);
        double bc2 = 1.0 - pow((double)c->beta2, (double)o->step);
        bool decoupled = c->kind == AG_OPTIM_ADAMW;
        pl->hp.step_size = (float)(o->lr / bc1);
        pl->hp.bc2_sqrt = (float)sqrt(bc2);
        pl->hp.decay = decoupled ? (float)(1.0 - (double)o->lr * c->weight_decay) : 1.0f;
        pl->hp.l2 = decoupled ? 0.0f : c->weight_decay;
    }
    pl->n = (int32_t)n; /* param passed the int32 check */
    return AG_OK;
}
