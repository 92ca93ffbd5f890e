/* Fused optimizer steps: one pass over param, grad and state, following
 * PyTorch's single-tensor update rules. */
#include <math.h>

#include "cpu.h"

#define PAR_MIN 32768
#define PAR if(n > PAR_MIN) num_threads(cpu_threads())

static void sgd(const ag_optim_config *c, float lr, int64_t step, int64_t n, float *p,
                const float *gr, float *buf)
{
    float wd = c->weight_decay, mom = c->momentum, damp = 1.0f - c->dampening;
    bool first = step <= 1, nesterov = c->nesterov;
    OMP(omp parallel for schedule(static) PAR)
    for (int64_t i = 0; i < n; i++) {
        float g = gr[i];
        if (wd != 0) g += wd * p[i];
        if (buf) {
            float b = first ? g : mom * buf[i] + damp * g;
            buf[i] = b;
            g = nesterov ? g + mom * b : b;
        }
        p[i] -= lr * g;
    }
}

static void rmsprop(const ag_optim_config *c, float lr, int64_t n, float *p, const float *gr,
                    float *sq, float *buf)
{
    float wd = c->weight_decay, alpha = c->alpha, eps = c->eps, mom = c->momentum;
    OMP(omp parallel for schedule(static) PAR)
    for (int64_t i = 0; i < n; i++) {
        float g = gr[i];
        if (wd != 0) g += wd * p[i];
        float s = alpha * sq[i] + (1.0f - alpha) * g * g;
        sq[i] = s;
        float avg = sqrtf(s) + eps;
        if (buf) {
            float b = mom * buf[i] + g / avg;
            buf[i] = b;
            p[i] -= lr * b;
        } else {
            p[i] -= lr * g / avg;
        }
    }
}

static void adam(const ag_optim_config *c, float lr, int64_t step, bool decoupled, int64_t n,
                 float *p, const float *gr, float *m, float *v)
{
    float wd = c->weight_decay, b1 = c->beta1, b2 = c->beta2, eps = c->eps;
    /* the bias corrections are host scalars in double, as in PyTorch */
    double bc1 = 1.0 - pow((double)b1, (double)step), bc2 = 1.0 - pow((double)b2, (double)step);
    float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    float decay = decoupled ? (float)(1.0 - (double)lr * wd) : 1.0f;
    float l2 = decoupled ? 0.0f : wd;
    OMP(omp parallel for schedule(static) PAR)
    for (int64_t i = 0; i < n; i++) {
        float pi = p[i] * decay;
        float g = gr[i];
        if (l2 != 0) g += l2 * pi;
        /* lerp(m, g, 1 - b1), the form PyTorch uses */
        float mi = m[i] + (1.0f - b1) * (g - m[i]);
        float vi = b2 * v[i] + (1.0f - b2) * g * g;
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        p[i] = pi - step_size * (mi / denom);
    }
}

static ag_status check(const char *what, const ag_view *v, int64_t n, bool needed)
{
    if (!v) {
        if (needed)
            return ag_set_error(AG_ERR_ARG, "optim_step: the %s view is missing", what);
        return AG_OK;
    }
    if (v->dtype != AG_F32)
        return ag_set_error(AG_ERR_DTYPE, "optim_step: %s must be f32, got %s", what,
                            v->dtype == AG_I32 ? "i32" : "another dtype");
    if (cpu_numel(v) != n)
        return ag_set_error(AG_ERR_SHAPE, "optim_step: %s has %lld elements, param has %lld",
                            what, (long long)cpu_numel(v), (long long)n);
    return AG_OK;
}

ag_status cpu_optim_step(void *ctx, const ag_optim_args *o, const ag_view *param,
                         const ag_view *grad, const ag_view *s0, const ag_view *s1)
{
    (void)ctx;
    if (!o || !param || !grad) return ag_set_error(AG_ERR_ARG, "optim_step: NULL argument");
    const ag_optim_config *c = &o->cfg;
    int64_t n = cpu_numel(param);
    bool sgd_k = c->kind == AG_OPTIM_SGD, rms_k = c->kind == AG_OPTIM_RMSPROP;
    bool adam_k = c->kind == AG_OPTIM_ADAM || c->kind == AG_OPTIM_ADAMW;
    if (!sgd_k && !rms_k && !adam_k)
        return ag_set_error(AG_ERR_ARG, "optim_step: unknown optimizer kind %d", (int)c->kind);
    if (o->step < 1)
        return ag_set_error(AG_ERR_ARG, "optim_step: step must be 1-based, got %lld",
                            (long long)o->step);
    ag_status s = check("param", param, n, true);
    if (!s) s = check("grad", grad, n, true);
    if (!s) s = check("state 0", s0, n, (sgd_k && c->momentum != 0) || rms_k || adam_k);
    if (!s) s = check("state 1", s1, n, (rms_k && c->momentum > 0) || adam_k);
    if (s) return s;

    float *p = cpu_f32(param);
    const float *g = cpu_f32(grad);
    if (sgd_k) sgd(c, o->lr, o->step, n, p, g, c->momentum != 0 ? cpu_f32(s0) : NULL);
    else if (rms_k) rmsprop(c, o->lr, n, p, g, cpu_f32(s0), c->momentum > 0 ? cpu_f32(s1) : NULL);
    else adam(c, o->lr, o->step, c->kind == AG_OPTIM_ADAMW, n, p, g, cpu_f32(s0), cpu_f32(s1));
    return AG_OK;
}
