/* Fused optimizer steps: one pass over param, grad and state, following
 * PyTorch's single-tensor update rules. */
#include <math.h>

#include "cpu.h"
#include "cpu_simd.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

/* Parameters a step takes before it is split over the threads: below these a
 * fork and join costs more than it saves (batch-1 SGD momentum training on 2
 * cores: 10.5k instead of 8.7k steps a second). SGD is a few loads and stores
 * an element; RMSProp and Adam divide and take a square root, ~3.5x the time. */
#define PAR_MIN_SGD (1 << 18)
#define PAR_MIN_DIV (1 << 16)

/* Optimizer state decays geometrically (momentum 0.9, Adam's averages) and, for
 * weights whose gradient stays zero (dead ReLUs, unused embeddings), ends up in
 * subnormal floats, which this hardware computes many times slower: batch-1 SGD
 * training spent 40% of its step there. The update runs with subnormal inputs
 * and results flushed to zero (SSE's FTZ/DAZ, AArch64's FZ), which changes only
 * values below 1.2e-38. The caller's mode is restored afterwards. */
typedef struct { unsigned long long saved; } flush_mode;

static flush_mode flush_begin(void)
{
    flush_mode m = {0};
#if defined(__x86_64__) || defined(__i386__)
    m.saved = _mm_getcsr();
    _mm_setcsr((unsigned)m.saved | 0x8040u); /* FTZ (bit 15) | DAZ (bit 6) */
#elif defined(__aarch64__)
    m.saved = __builtin_aarch64_get_fpcr64();
    __builtin_aarch64_set_fpcr64(m.saved | (1ull << 24)); /* FZ */
#endif
    return m;
}

static void flush_end(flush_mode m)
{
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr((unsigned)m.saved);
#elif defined(__aarch64__)
    __builtin_aarch64_set_fpcr64(m.saved);
#else
    (void)m;
#endif
}

/* The scalar kernels; the vector ones (cpu_simd.h) repeat each update operation
 * for operation, so every ISA gives the same parameters. */

static void sgd(int64_t n, const cpu_optim_hp *h, float *p, const float *gr, float *buf,
                float *unused)
{
    (void)unused;
    for (int64_t i = 0; i < n; i++) {
        float g = gr[i];
        if (h->wd != 0) g += h->wd * p[i];
        if (buf) {
            float b = h->first ? g : h->mom * buf[i] + h->damp * g;
            buf[i] = b;
            g = h->nesterov ? g + h->mom * b : b;
        }
        p[i] -= h->lr * g;
    }
}

static void rmsprop(int64_t n, const cpu_optim_hp *h, float *p, const float *gr, float *sq,
                    float *buf)
{
    for (int64_t i = 0; i < n; i++) {
        float g = gr[i];
        if (h->wd != 0) g += h->wd * p[i];
        float s = h->alpha * sq[i] + (1.0f - h->alpha) * g * g;
        sq[i] = s;
        float avg = sqrtf(s) + h->eps;
        if (buf) {
            float b = h->mom * buf[i] + g / avg;
            buf[i] = b;
            p[i] -= h->lr * b;
        } else {
            p[i] -= h->lr * g / avg;
        }
    }
}

static void adam(int64_t n, const cpu_optim_hp *h, float *p, const float *gr, float *m, float *v)
{
    for (int64_t i = 0; i < n; i++) {
        float pi = p[i] * h->decay;
        float g = gr[i];
        if (h->l2 != 0) g += h->l2 * pi;
        /* lerp(m, g, 1 - b1), the form PyTorch uses */
        float mi = m[i] + (1.0f - h->b1) * (g - m[i]);
        float vi = h->b2 * v[i] + (1.0f - h->b2) * g * g;
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / h->bc2_sqrt + h->eps;
        p[i] = pi - h->step_size * (mi / denom);
    }
}

static const cpu_optim_ops scalar_optim = {.sgd = sgd, .rmsprop = rmsprop, .adam = adam};

/* Splits [0, n) over the threads at multiples of 16 floats (a cache line), so no
 * two threads write one line. */
static void run_chunks(simd_optim_fn fn, int64_t par_min, int64_t n, const cpu_optim_hp *h, float *p,
                       const float *g, float *s0, float *s1)
{
    int nt = n > par_min ? cpu_threads() : 1;
    if (nt <= 1) { /* no OpenMP at all: see cpu_run_parts */
        flush_mode m = flush_begin();
        fn(n, h, p, g, s0, s1);
        flush_end(m);
        return;
    }
    OMP(omp parallel for schedule(static) num_threads(nt))
    for (int t = 0; t < nt; t++) {
        int64_t i0 = n * t / nt & ~(int64_t)15;
        int64_t i1 = t + 1 == nt ? n : n * (t + 1) / nt & ~(int64_t)15;
        if (i1 > i0) { /* per thread: the mode is per thread */
            flush_mode m = flush_begin();
            fn(i1 - i0, h, p + i0, g + i0, s0 ? s0 + i0 : NULL, s1 ? s1 + i0 : NULL);
            flush_end(m);
        }
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
    if (ag_view_numel(v) != n)
        return ag_set_error(AG_ERR_SHAPE, "optim_step: %s has %lld elements, param has %lld",
                            what, (long long)ag_view_numel(v), (long long)n);
    return AG_OK;
}

ag_status cpu_optim_step(void *ctx, const ag_optim_args *o, const ag_view *param,
                         const ag_view *grad, const ag_view *s0, const ag_view *s1)
{
    (void)ctx;
    if (!o || !param || !grad) return ag_set_error(AG_ERR_ARG, "optim_step: NULL argument");
    const ag_optim_config *c = &o->cfg;
    int64_t n = ag_view_numel(param);
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

    cpu_optim_hp h = {.lr = o->lr, .wd = c->weight_decay, .mom = c->momentum,
                      .damp = 1.0f - c->dampening, .alpha = c->alpha, .eps = c->eps,
                      .b1 = c->beta1, .b2 = c->beta2, .first = o->step <= 1,
                      .nesterov = c->nesterov, .decay = 1.0f};
    const cpu_simd_ops *simd = cpu_simd();
    const cpu_optim_ops *k = simd ? &simd->optim : &scalar_optim;
    float *p = cpu_f32(param);
    const float *g = cpu_f32(grad);
    if (sgd_k) {
        run_chunks(k->sgd, PAR_MIN_SGD, n, &h, p, g, c->momentum != 0 ? cpu_f32(s0) : NULL, NULL);
    } else if (rms_k) {
        run_chunks(k->rmsprop, PAR_MIN_DIV, n, &h, p, g, cpu_f32(s0), c->momentum > 0 ? cpu_f32(s1) : NULL);
    } else {
        /* the bias corrections are host scalars in double, as in PyTorch */
        double bc1 = 1.0 - pow((double)c->beta1, (double)o->step);
        double bc2 = 1.0 - pow((double)c->beta2, (double)o->step);
        bool decoupled = c->kind == AG_OPTIM_ADAMW;
        h.step_size = (float)(o->lr / bc1);
        h.bc2_sqrt = (float)sqrt(bc2);
        h.decay = decoupled ? (float)(1.0 - (double)o->lr * c->weight_decay) : 1.0f;
        h.l2 = decoupled ? 0.0f : c->weight_decay;
        run_chunks(k->adam, PAR_MIN_DIV, n, &h, p, g, cpu_f32(s0), cpu_f32(s1));
    }
    return AG_OK;
}
