/* Optimizers (SGD, RMSProp, Adam, AdamW), gradient clipping and learning-rate
 * schedules. The update itself is one fused backend kernel per parameter; this
 * file validates, owns the state tensors and counts steps. Formulas follow
 * PyTorch's documented algorithms. */
#include <math.h>
#include <stdlib.h>

#include "core.h"
#include "optim_state.h"

struct ag_optim {
    ag_optim_config cfg;   /* cfg.lr is the current rate */
    int64_t steps;         /* completed ag_optim_step calls */
    int64_t *pstep;        /* per parameter: updates it received (PyTorch's state['step']) */
    int n;
    ag_tensor **params;    /* retained */
    ag_tensor **s0, **s1;  /* per-parameter state, NULL where the kind needs none */
};

static const char *const kind_names[] = {"SGD", "RMSProp", "Adam", "AdamW"};

ag_optim_config ag_optim_defaults(ag_optim_kind kind, float lr)
{
    /* Fields a kind ignores still get PyTorch's values, so changing cfg.kind
     * afterwards gives a sensible config. */
    ag_optim_config c = {
        .kind = kind, .lr = lr, .momentum = 0.0f, .dampening = 0.0f, .nesterov = false,
        .alpha = 0.99f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
        .weight_decay = kind == AG_OPTIM_ADAMW ? 0.01f : 0.0f,
    };
    return c;
}

/* Which state slots a kind uses (see ag_optim_args in backend.h). */
static bool uses_s0(const ag_optim_config *c)
{
    return c->kind != AG_OPTIM_SGD || c->momentum != 0.0f;
}

static bool uses_s1(const ag_optim_config *c)
{
    return c->kind == AG_OPTIM_ADAM || c->kind == AG_OPTIM_ADAMW ||
           (c->kind == AG_OPTIM_RMSPROP && c->momentum != 0.0f);
}

#define K_SGD (1u << AG_OPTIM_SGD)
#define K_RMS (1u << AG_OPTIM_RMSPROP)
#define K_ADAM ((1u << AG_OPTIM_ADAM) | (1u << AG_OPTIM_ADAMW))
#define K_ALL (K_SGD | K_RMS | K_ADAM)

static ag_status check_config(const ag_optim_config *c)
{
    if (!c) return ag_set_error(AG_ERR_ARG, "ag_optim_new: config is NULL");
    if ((int)c->kind < AG_OPTIM_SGD || (int)c->kind > AG_OPTIM_ADAMW)
        return ag_set_error(AG_ERR_ARG, "ag_optim_new: unknown optimizer kind %d", (int)c->kind);
    /* Only the fields the kind reads are checked; "!(x >= 0)" also rejects NaN. */
    const struct {
        unsigned kinds;
        bool bad;
        const char *field, *want;
        double got;
    } rules[] = {
        {K_ALL, !(c->lr >= 0.0f), "lr", ">= 0", c->lr},
        {K_ALL, !(c->weight_decay >= 0.0f), "weight_decay", ">= 0", c->weight_decay},
        {K_SGD | K_RMS, !(c->momentum >= 0.0f), "momentum", ">= 0", c->momentum},
        {K_SGD, !(c->dampening >= 0.0f), "dampening", ">= 0", c->dampening},
        {K_SGD, c->nesterov && !(c->momentum > 0.0f), "momentum", "> 0 with nesterov",
         c->momentum},
        {K_SGD, c->nesterov && c->dampening != 0.0f, "dampening", "0 with nesterov",
         c->dampening},
        {K_RMS, !(c->alpha >= 0.0f && c->alpha <= 1.0f), "alpha", "in [0, 1]", c->alpha},
        {K_RMS | K_ADAM, !(c->eps >= 0.0f), "eps", ">= 0", c->eps},
        {K_ADAM, !(c->beta1 >= 0.0f && c->beta1 < 1.0f), "beta1", "in [0, 1)", c->beta1},
        {K_ADAM, !(c->beta2 >= 0.0f && c->beta2 < 1.0f), "beta2", "in [0, 1)", c->beta2},
    };
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
        if ((rules[i].kinds & (1u << c->kind)) && rules[i].bad)
            return ag_set_error(AG_ERR_ARG, "ag_optim_new: %s %s must be %s (got %g)",
                                kind_names[c->kind], rules[i].field, rules[i].want, rules[i].got);
    return AG_OK;
}

static ag_status check_params(int n, ag_tensor *const *params)
{
    if (n <= 0 || !params)
        return ag_set_error(AG_ERR_ARG, "ag_optim_new: needs at least one parameter (got %d%s)",
                            n, params ? "" : ", params NULL");
    for (int i = 0; i < n; i++) {
        const ag_tensor *p = params[i];
        char shape[64];
        if (!p) return ag_set_error(AG_ERR_ARG, "ag_optim_new: params[%d] is NULL", i);
        if (!ag__valid("ag_optim_new", p)) return ag_last_status();
        ag__shape_fmt(p->ndim, p->shape, shape, sizeof shape);
        if (p->dtype != AG_F32)
            return ag_set_error(AG_ERR_DTYPE, "ag_optim_new: params[%d] %s is %s, not f32", i,
                                shape, ag_dtype_name(p->dtype));
        if (p->node)
            return ag_set_error(AG_ERR_ARG,
                                "ag_optim_new: params[%d] %s is not a leaf (it was computed "
                                "by an op); optimise the tensor it came from",
                                i, shape);
        if (!p->requires_grad)
            return ag_set_error(AG_ERR_ARG, "ag_optim_new: params[%d] %s does not require grad",
                                i, shape);
        if (!ag__is_contiguous(p))
            return ag_set_error(AG_ERR_ARG, "ag_optim_new: params[%d] %s is not contiguous", i,
                                shape);
        /* A repeated parameter would be stepped twice per ag_optim_step. */
        for (int j = 0; j < i; j++)
            if (params[j] == p)
                return ag_set_error(AG_ERR_ARG, "ag_optim_new: params[%d] repeats params[%d]",
                                    i, j);
    }
    return AG_OK;
}

/* A zero state tensor shaped like p on p's device, owned by the optimizer.
 * Call inside a scope: the scope drops its reference, ours is kept. */
static ag_tensor *zero_state(const ag_tensor *p)
{
    ag_device *dev = ag__dev(p);
    ag_tensor *t = ag__empty_on(dev, AG_F32, p->ndim, p->shape);
    if (!t) return NULL;
    ag_view v = ag__view(t);
    if (AG_LAUNCH(dev, fill, &v, 0.0) != AG_OK) return NULL;
    return ag_retain(t);
}

ag_optim *ag_optim_new(const ag_optim_config *cfg, int nparams, ag_tensor *const *params)
{
    if (check_config(cfg) != AG_OK || check_params(nparams, params) != AG_OK) return NULL;

    ag_optim *o = calloc(1, sizeof *o);
    if (o) {
        o->params = calloc((size_t)nparams, sizeof *o->params);
        o->s0 = calloc((size_t)nparams, sizeof *o->s0);
        o->s1 = calloc((size_t)nparams, sizeof *o->s1);
        o->pstep = calloc((size_t)nparams, sizeof *o->pstep);
    }
    if (!o || !o->params || !o->s0 || !o->s1 || !o->pstep) {
        ag_optim_free(o);
        ag_set_error(AG_ERR_OOM, "ag_optim_new: out of host memory for %d parameters", nparams);
        return NULL;
    }
    o->cfg = *cfg;
    for (int i = 0; i < nparams; i++) o->params[i] = ag_retain(params[i]);
    o->n = nparams;

    /* States are allocated up front so that running out of device memory shows
     * here rather than in the middle of training. */
    bool ok = true;
    ag_scope_begin();
    for (int i = 0; i < nparams && ok; i++) {
        if (uses_s0(cfg) && !(o->s0[i] = zero_state(params[i]))) ok = false;
        if (ok && uses_s1(cfg) && !(o->s1[i] = zero_state(params[i]))) ok = false;
    }
    ag_scope_end();
    if (!ok) {
        ag_optim_free(o);
        return NULL;
    }
    return o;
}

static ag_status step_param(const ag_optim_args *args, ag_tensor *p, ag_tensor *s0,
                            ag_tensor *s1, int index)
{
    ag_tensor *grad = p->grad;
    if (grad->dtype != AG_F32 || !ag__same_shape(grad, p) || ag__dev(grad) != ag__dev(p)) {
        char ps[64], gs[64];
        ag__shape_fmt(p->ndim, p->shape, ps, sizeof ps);
        ag__shape_fmt(grad->ndim, grad->shape, gs, sizeof gs);
        return ag_set_error(AG_ERR_STATE,
                            "ag_optim_step: gradient of params[%d] %s is %s %s on %s; expected "
                            "f32 of the same shape on the parameter's device",
                            index, ps, gs, ag_dtype_name(grad->dtype), ag__dev(grad)->name);
    }
    ag_device *dev = ag__dev(p);
    ag_status s = AG_OK;
    ag__bump_version(p);
    ag_scope_begin();
    ag_tensor *g = ag__contiguous(grad);
    if (!g) {
        s = ag_last_status();
    } else {
        ag_view pv = ag__view(p), gv = ag__view(g), v0, v1;
        if (s0) v0 = ag__view(s0);
        if (s1) v1 = ag__view(s1);
        s = AG_LAUNCH(dev, optim_step, args, &pv, &gv, s0 ? &v0 : NULL, s1 ? &v1 : NULL);
    }
    ag_scope_end();
    return s;
}

/* The optimizer holds a reference to each parameter, so a dead one means
 * the caller released it once too often. */
static ag_status params_alive(const char *op, const ag_optim *opt)
{
    for (int i = 0; i < opt->n; i++)
        if (!ag__alive(opt->params[i]))
            return ag_set_error(AG_ERR_STATE, "%s: params[%d] was released while the optimizer "
                                              "still held it (one ag_release too many)", op, i);
    return AG_OK;
}

ag_status ag_optim_step(ag_optim *opt)
{
    if (!opt) return ag_set_error(AG_ERR_ARG, "ag_optim_step: optimizer is NULL");
    ag_optim_args args = {.cfg = opt->cfg, .lr = opt->cfg.lr};
    ag_status s = params_alive("ag_optim_step", opt);
    if (s != AG_OK) return s;
    for (int i = 0; i < opt->n; i++) {
        ag_tensor *p = opt->params[i];
        if (!p->grad) continue; /* not reached by backward: PyTorch skips it too */
        /* Bias correction and momentum start count this parameter's own updates. */
        args.step = opt->pstep[i] + 1;
        s = step_param(&args, p, opt->s0[i], opt->s1[i], i);
        if (s != AG_OK) return s;
        opt->pstep[i]++;
    }
    opt->steps++;
    return AG_OK;
}

ag_status ag_optim_zero_grad(ag_optim *opt)
{
    if (!opt) return ag_set_error(AG_ERR_ARG, "ag_optim_zero_grad: optimizer is NULL");
    ag_status first = params_alive("ag_optim_zero_grad", opt);
    if (first != AG_OK) return first;
    for (int i = 0; i < opt->n; i++) {
        ag_status s = ag_zero_grad(opt->params[i]);
        if (first == AG_OK) first = s;
    }
    return first;
}

ag_status ag_optim_set_lr(ag_optim *opt, float lr)
{
    if (!opt) return ag_set_error(AG_ERR_ARG, "ag_optim_set_lr: optimizer is NULL");
    if (!(lr >= 0.0f))
        return ag_set_error(AG_ERR_ARG, "ag_optim_set_lr: lr must be >= 0 (got %g)", lr);
    opt->cfg.lr = lr;
    return AG_OK;
}

float ag_optim_lr(const ag_optim *opt)
{
    if (!opt) {
        ag_set_error(AG_ERR_ARG, "ag_optim_lr: optimizer is NULL");
        return NAN;
    }
    return opt->cfg.lr;
}

int64_t ag_optim_steps(const ag_optim *opt)
{
    if (!opt) {
        ag_set_error(AG_ERR_ARG, "ag_optim_steps: optimizer is NULL");
        return -1;
    }
    return opt->steps;
}

void ag_optim_free(ag_optim *opt)
{
    if (!opt) return;
    for (int i = 0; i < opt->n; i++) {
        if (opt->s0) ag_release(opt->s0[i]);
        if (opt->s1) ag_release(opt->s1[i]);
        ag_release(opt->params[i]);
    }
    free(opt->params);
    free(opt->s0);
    free(opt->s1);
    free(opt->pstep);
    free(opt);
}

/* ---- gradient clipping ---------------------------------------------------- */

/* Sum of squares of every gradient, in double. Partial sums stay on the device
 * while consecutive parameters share one, so a GPU syncs once per device run. */
static ag_status grad_sq_sum(int n, ag_tensor *const *params, double *total)
{
    ag_tensor *acc = NULL;
    float part;
    *total = 0.0;
    for (int i = 0; i < n; i++) {
        ag_tensor *g = params[i]->grad;
        if (!g) continue;
        ag_tensor *sq = ag_sum_all(ag_square(g));
        if (!sq) return ag_last_status();
        if (acc && ag__dev(acc) == ag__dev(sq)) {
            acc = ag_add(acc, sq);
            if (!acc) return ag_last_status();
            continue;
        }
        if (acc) {
            if (ag_item(acc, &part) != AG_OK) return ag_last_status();
            *total += part;
        }
        acc = sq;
    }
    if (acc) {
        if (ag_item(acc, &part) != AG_OK) return ag_last_status();
        *total += part;
    }
    return AG_OK;
}

/* g := g * coef, written back into the gradient's own storage. The product goes
 * through a temporary because the backend contract forbids aliased outputs. */
static ag_status scale_grad(ag_tensor *g, float coef)
{
    ag_tensor *scaled = ag__unary_raw(AG_UNARY_MUL_SCALAR, g, coef, 0.0f);
    if (!scaled) return ag_last_status();
    ag_view dst = ag__view(g), src = ag__view(scaled);
    ag__bump_version(g);
    return AG_LAUNCH(ag__dev(g), copy, &dst, &src);
}

ag_status ag_clip_grad_norm(int n, ag_tensor *const *params, float max_norm, float *total_norm)
{
    if (total_norm) *total_norm = NAN;
    if (n < 0 || (n > 0 && !params))
        return ag_set_error(AG_ERR_ARG, "ag_clip_grad_norm: bad parameter list (n %d%s)", n,
                            params ? "" : ", params NULL");
    if (!(max_norm >= 0.0f))
        return ag_set_error(AG_ERR_ARG, "ag_clip_grad_norm: max_norm must be >= 0 (got %g)",
                            max_norm);
    for (int i = 0; i < n; i++) {
        if (!params[i]) return ag_set_error(AG_ERR_ARG, "ag_clip_grad_norm: params[%d] is NULL", i);
        if (!ag__valid("ag_clip_grad_norm", params[i])) return ag_last_status();
        const ag_tensor *g = params[i]->grad;
        if (g && g->dtype != AG_F32)
            return ag_set_error(AG_ERR_DTYPE, "ag_clip_grad_norm: gradient of params[%d] is %s",
                                i, ag_dtype_name(g->dtype));
    }

    double sumsq = 0.0;
    ag_no_grad_begin();
    ag_scope_begin();
    ag_status s = grad_sq_sum(n, params, &sumsq);
    float norm = (float)sqrt(sumsq);
    /* NaN norms fail the comparison and leave the gradients alone. */
    if (s == AG_OK && norm > max_norm) {
        float coef = (float)((double)max_norm / ((double)norm + 1e-6));
        for (int i = 0; i < n && s == AG_OK; i++)
            if (params[i]->grad) s = scale_grad(params[i]->grad, coef);
    }
    ag_scope_end();
    ag_no_grad_end();
    if (s == AG_OK && total_norm) *total_norm = norm;
    return s;
}

/* ---- learning-rate schedules ----------------------------------------------- */

float ag_lr_step_decay(float base_lr, int64_t step, int64_t step_size, float gamma)
{
    if (step_size <= 0) {
        ag_set_error(AG_ERR_ARG, "ag_lr_step_decay: step_size must be > 0 (got %lld)",
                     (long long)step_size);
        return NAN;
    }
    if (step < 0) step = 0;
    return (float)((double)base_lr * pow((double)gamma, (double)(step / step_size)));
}

float ag_lr_cosine(float base_lr, int64_t step, int64_t total_steps, float min_lr)
{
    if (total_steps <= 0) {
        ag_set_error(AG_ERR_ARG, "ag_lr_cosine: total_steps must be > 0 (got %lld)",
                     (long long)total_steps);
        return NAN;
    }
    if (step < 0) step = 0;
    if (step > total_steps) step = total_steps;
    const double pi = 3.14159265358979323846;
    double t = (double)step / (double)total_steps;
    return (float)(min_lr + ((double)base_lr - min_lr) * (1.0 + cos(pi * t)) / 2.0);
}

float ag_lr_warmup(float base_lr, int64_t step, int64_t warmup_steps)
{
    if (warmup_steps <= 0) return base_lr; /* no warm-up */
    if (step < 0) step = 0;
    double f = (double)(step + 1) / (double)warmup_steps;
    return (float)((double)base_lr * (f < 1.0 ? f : 1.0));
}

/* ---- state access for checkpoints (optim_state.h) ------------------------------ */

static const char *const slot_names[][2] = {
    [AG_OPTIM_SGD] = {"momentum_buffer", NULL},
    [AG_OPTIM_RMSPROP] = {"square_avg", "momentum_buffer"},
    [AG_OPTIM_ADAM] = {"exp_avg", "exp_avg_sq"},
    [AG_OPTIM_ADAMW] = {"exp_avg", "exp_avg_sq"},
};

const char *ag__optim_kind_name(const ag_optim *opt) { return kind_names[opt->cfg.kind]; }
int ag__optim_num_params(const ag_optim *opt) { return opt->n; }
ag_tensor *ag__optim_param(const ag_optim *opt, int i) { return opt->params[i]; }

ag_tensor *ag__optim_state(const ag_optim *opt, int i, int slot, const char **name)
{
    ag_tensor *t = slot == 0 ? opt->s0[i] : opt->s1[i];
    if (name) *name = t ? slot_names[opt->cfg.kind][slot] : NULL;
    return t;
}

int64_t ag__optim_param_steps(const ag_optim *opt, int i) { return opt->pstep[i]; }

ag_status ag__optim_restore_steps(ag_optim *opt, int64_t steps, const int64_t *psteps)
{
    /* Bounded so that counting further steps can never overflow. */
    const int64_t max = AG_OPTIM_MAX_STEPS;
    if (steps < 0 || steps > max)
        return ag_set_error(AG_ERR_ARG, "optimizer state: step count %lld out of range",
                            (long long)steps);
    for (int i = 0; i < opt->n; i++)
        if (psteps[i] < 0 || psteps[i] > max)
            return ag_set_error(AG_ERR_ARG, "optimizer state: step count %lld of param %d out of range",
                                (long long)psteps[i], i);
    opt->steps = steps;
    for (int i = 0; i < opt->n; i++) opt->pstep[i] = psteps[i];
    return AG_OK;
}
