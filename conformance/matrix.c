/* The conformance matrix runner (see matrix.h). */
#include "matrix.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "optable.h"

/* ---- seeds ----------------------------------------------------------------
 * Quick: one of each kind. Full: two of each. Edge seeds replace half the values
 * of the row's own-domain inputs with the row's edge values; they check the
 * forward pass only (finite differences at inf are meaningless). */
typedef enum seed_kind { SK_NORMAL, SK_WIDE, SK_EDGE } seed_kind;
static const seed_kind QUICK_SEEDS[] = {SK_NORMAL, SK_WIDE, SK_EDGE};
static const seed_kind FULL_SEEDS[] = {SK_NORMAL, SK_NORMAL, SK_WIDE, SK_WIDE, SK_EDGE, SK_EDGE};

static seed_kind kind_of(int seed, bool quick) { return quick ? QUICK_SEEDS[seed] : FULL_SEEDS[seed]; }

const char *mx_seed_name(int seed, bool quick)
{
    static const char *const q[] = {"normal", "wide", "edge"};
    static const char *const f[] = {"normal#1", "normal#2", "wide#1", "wide#2", "edge#1", "edge#2"};
    return quick ? q[seed] : f[seed];
}

/* Stable per case: adding a row does not change the others' inputs. */
static uint64_t case_seed(const char *row, int fam, int seed)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = row; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ull;
    return h ^ ((uint64_t)fam << 20) ^ ((uint64_t)seed << 40);
}

/* ---- one case on one target ------------------------------------------------ */

typedef struct case_out {
    rt fwd;              /* forward values (kept for the cross comparison) */
    rt grads[OT_MAX_IN];
} case_out;

typedef struct case_ctx {
    const ot_row *row;
    const ot_family *fam;
    seed_kind kind;
    uint64_t seed;
    bool backward;
    double fwd, bwd;
    h_tol tol;           /* the forward tolerance used (for the cross comparison) */
    h_report rep;
    case_out out;
    char msg[1024];
} case_ctx;

static void out_free(case_out *o)
{
    rt_free(&o->fwd);
    for (int i = 0; i < OT_MAX_IN; i++) rt_free(&o->grads[i]);
}

static void run_case(void *p)
{
    case_ctx *c = p;
    const ot_row *row = c->row;
    const ot_family *fam = c->fam;
    double pool[32];
    h_begin(c->seed);
    ag_manual_seed(c->seed);
    h_dist own = ot_dist_make(row->dist, c->kind == SK_WIDE);
    if (c->kind == SK_EDGE) {
        own.npool = ot_edge_values(row->edges, pool, 32);
        own.pool = pool, own.pool_p = 0.5;
    }
    h_in in[OT_MAX_IN];
    bool skip[OT_MAX_IN] = {false}, anydiff = false;
    ag_tensor *views[OT_MAX_IN];
    const rt *vals[OT_MAX_IN];
    for (int i = 0; i < fam->n; i++) {
        const ot_input *s = &fam->in[i];
        if (s->int_hi > 0)
            in[i] = h_input_randint(s->nd, s->shape, 0, s->int_hi);
        else
            in[i] = h_input(s->nd, s->shape, s->dist ? ot_dist_make((ot_dist)(s->dist - 1), false) : own,
                            s->layout);
        skip[i] = s->nodiff || !row->diff;
        anydiff |= !skip[i] && !in[i].is_int;
        views[i] = in[i].t;
        vals[i] = &in[i].val;
    }
    ot_ctx ctx = {row, fam};
    h_tol tol = h_tol_get(row->tol, fam->len);
    /* The accumulation classes' atol assumes O(1) terms: scale it by the RMS of
     * each input in the row's own domain (squared for var), never below 1. */
    if (!strcmp(row->tol, "sum") || !strcmp(row->tol, "mean")) {
        double k = 1.0;
        for (int i = 0; i < fam->n; i++) {
            if (in[i].is_int || fam->in[i].dist) continue;
            double ss = 0;
            int64_t cnt = 0;
            for (int64_t j = 0; j < rt_numel(&in[i].val); j++)
                if (isfinite(in[i].val.data[j])) ss += in[i].val.data[j] * in[i].val.data[j], cnt++;
            double rms = cnt ? sqrt(ss / (double)cnt) : 1.0;
            k *= row->kind == OT_VAR ? rms * rms : rms;
        }
        tol.atol *= fmax(k, 1.0);
    }
    c->tol = tol;

    ag_tensor *y = row->build(views, &ctx);
    if (!y) h_fail("%s: op returned NULL: %s (%s)", row->name, ag_last_error(), ag_status_name(ag_last_status()));
    c->out.fwd = h_read(y);
    if (row->check) {
        /* no reference: a property check, forward and backward together */
        double r = row->check(&ctx, in, c->backward, c->msg, sizeof c->msg);
        c->fwd = r;
        if (c->backward) c->bwd = r;
        h_end();
        return;
    }
    rt want = row->ref(vals, &ctx);
    c->fwd = h_measure(row->name, &c->out.fwd, &want, tol, c->msg, sizeof c->msg);
    rt_free(&want);
    if (c->fwd <= 1.0 && c->backward && anydiff) {
        c->rep.keep_grads = true;
        h_gradcheck(&(h_gc){.what = row->name, .n = fam->n, .in = in, .skip = skip, .op = row->build,
                            .ref = row->ref, .arg = &ctx, .tol = tol, .report = &c->rep});
        c->bwd = fmax(c->rep.dir, c->rep.elem);
        for (int i = 0; i < fam->n; i++) c->out.grads[i] = c->rep.grads[i], c->rep.grads[i] = rt_invalid();
    }
    h_end();
}

/* ---- cross comparison -------------------------------------------------------- */

static double compare_outputs(const ot_family *fam, h_tol tol1, const case_out *a,
                              const case_out *b, char *msg, int size)
{
    /* each side is within tol of the reference, so within 2 tol of each other */
    h_tol tol = h_tol_scaled(tol1, 2.0);
    double worst = 0;
    msg[0] = '\0';
    if (rt_valid(&a->fwd) || rt_valid(&b->fwd)) worst = h_measure("forward vs first device", &b->fwd, &a->fwd, tol, msg, size);
    for (int i = 0; i < fam->n; i++) {
        if (!rt_valid(&a->grads[i]) && !rt_valid(&b->grads[i])) continue;
        double m = 0;
        for (int64_t j = 0; j < rt_numel(&a->grads[i]); j++)
            if (isfinite(a->grads[i].data[j])) m = fmax(m, fabs(a->grads[i].data[j]));
        h_tol g = {.rtol = tol.grad, .atol = tol.grad * m + 1e-30, .metric = H_METRIC_REL};
        char m2[512], what[64];
        snprintf(what, sizeof what, "gradient %d vs first device", i);
        double r = h_measure(what, &b->grads[i], &a->grads[i], g, m2, sizeof m2);
        if (r > 1 && r > worst) snprintf(msg, (size_t)size, "%s", m2);
        worst = fmax(worst, r);
    }
    return worst;
}

/* ---- bookkeeping --------------------------------------------------------------- */

mx_cell *mx_cell_at(const mx_results *res, int r, int t) { return &res->cells[r * res->ntargets + t]; }
mx_cell *mx_cross_at(const mx_results *res, int r, int t) { return &res->cross[r * res->ntargets + t]; }

static char *dupstr(const char *s) { return (s && *s) ? strcpy(malloc(strlen(s) + 1), s) : NULL; }

static mx_case *add_case(mx_results *res)
{
    if (res->ncases == res->capcases) {
        int cap = res->capcases ? 2 * res->capcases : 1024;
        mx_case *p = realloc(res->cases, sizeof(mx_case) * (size_t)cap);
        if (!p) return NULL;
        res->cases = p, res->capcases = cap;
    }
    mx_case *c = &res->cases[res->ncases++];
    memset(c, 0, sizeof *c);
    c->fwd = c->bwd = c->cross = -1;
    return c;
}

static void cell_add(mx_cell *cell, double fwd, double bwd, bool ok, const char *msg)
{
    cell->ncases++;
    if (!ok) {
        cell->nfail++;
        if (!cell->first_fail) cell->first_fail = msg;
    }
    cell->fwd = fmax(cell->fwd, fwd);
    cell->bwd = fmax(cell->bwd, bwd);
}

static void set_threads(const mx_target *t, const char *saved)
{
    if (t && t->threads[0]) setenv("AG_NUM_THREADS", t->threads, 1);
    else if (saved) setenv("AG_NUM_THREADS", saved, 1);
    else unsetenv("AG_NUM_THREADS");
}

/* ---- the MLP ---------------------------------------------------------------------
 * 8 -> 32 (tanh) -> 4, batch 64, cross-entropy, Adam lr 1e-2, 50 steps. Weights and
 * data come from ag_manual_seed, so every backend starts from the same numbers. */

#define MLP_NW (32 * 8 + 32 + 4 * 32 + 4)

static bool train_mlp(float *losses, float *weights, char *msg, int size)
{
    bool ok = false;
    ag_scope_begin();
    ag_manual_seed(1234);
    ag_tensor *x = ag_randn(2, (int64_t[]){64, 8}, 0.0f, 1.0f);
    ag_tensor *w1 = ag_randn(2, (int64_t[]){32, 8}, 0.0f, 0.35f);
    ag_tensor *b1 = ag_zeros(1, (int64_t[]){32});
    ag_tensor *w2 = ag_randn(2, (int64_t[]){4, 32}, 0.0f, 0.18f);
    ag_tensor *b2 = ag_zeros(1, (int64_t[]){4});
    /* a learnable target: the largest of the first four features */
    ag_tensor *labels = ag_argmax(ag_slice(x, 1, 0, 4, 1), 1, false);
    ag_tensor *params[4] = {w1, b1, w2, b2};
    ag_optim *opt = NULL;
    for (int i = 0; i < 4; i++)
        if (!params[i] || ag_set_requires_grad(params[i], true) != AG_OK) goto out;
    if (!labels) goto out;
    ag_optim_config cfg = ag_optim_defaults(AG_OPTIM_ADAM, 1e-2f);
    opt = ag_optim_new(&cfg, 4, params);
    if (!opt) goto out;
    for (int s = 0; s < MX_MODEL_STEPS; s++) {
        ag_scope_begin();
        ag_tensor *h = ag_tanh(ag_linear(x, w1, b1));
        ag_tensor *loss = ag_cross_entropy(ag_linear(h, w2, b2), labels, AG_REDUCTION_MEAN, 0.0f);
        bool step_ok = loss && ag_item(loss, &losses[s]) == AG_OK && ag_optim_zero_grad(opt) == AG_OK &&
                       ag_backward(loss, NULL) == AG_OK && ag_optim_step(opt) == AG_OK;
        ag_scope_end();
        if (!step_ok) goto out;
    }
    size_t at = 0;
    for (int i = 0; i < 4; i++) {
        size_t n = (size_t)ag_numel(params[i]);
        if (ag_to_host(params[i], weights + at, n * sizeof(float)) != AG_OK) goto out;
        at += n;
    }
    ok = at == MLP_NW;
out:
    if (!ok) snprintf(msg, (size_t)size, "MLP training failed: %s", ag_last_error());
    ag_optim_free(opt);
    ag_scope_end();
    return ok;
}

static void run_model(const mx_config *cfg, mx_results *res, const char *saved_threads)
{
    static float loss[MX_MAX_TARGETS][MX_MODEL_STEPS], w[MX_MAX_TARGETS][MLP_NW];
    for (int t = 0; t < res->ntargets; t++) {
        mx_model *m = &res->model[t];
        memset(m, 0, sizeof *m);
        m->run = true;
        m->loss_ratio = m->weight_ratio = -1;
        set_threads(&res->targets[t], saved_threads);
        ag_set_default_device(res->targets[t].dev);
        m->ok = train_mlp(loss[t], w[t], m->msg, sizeof m->msg);
        if (m->ok) {
            m->loss0 = loss[t][0], m->loss_last = loss[t][MX_MODEL_STEPS - 1];
            if (!(m->loss_last < m->loss0)) {
                m->ok = false;
                snprintf(m->msg, sizeof m->msg, "loss did not decrease: %.6g -> %.6g", m->loss0, m->loss_last);
            }
        }
        if (m->ok && t == 0) { /* determinism: a second run gives the same bits */
            float l2[MX_MODEL_STEPS], w2[MLP_NW];
            m->ok = train_mlp(l2, w2, m->msg, sizeof m->msg);
            m->deterministic = m->ok && !memcmp(l2, loss[0], sizeof l2) && !memcmp(w2, w[0], sizeof w2);
            if (m->ok && !m->deterministic) {
                int s = 0;
                while (s < MX_MODEL_STEPS - 1 && l2[s] == loss[0][s]) s++;
                snprintf(m->msg, sizeof m->msg,
                         "not deterministic: two runs differ (first at step %d: %.9g vs %.9g, or in the weights)",
                         s, loss[0][s], l2[s]);
                m->ok = false;
            }
        }
        if (m->ok && t > 0 && res->model[0].ok) {
            double lr = 0, wr = 0;
            int ls = 0, wi = 0;
            for (int s = 0; s < MX_MODEL_STEPS; s++) {
                double r = fabs((double)loss[t][s] - loss[0][s]) / (MX_MODEL_LOSS_RTOL * fabs((double)loss[0][s]));
                if (!(r <= lr)) lr = r, ls = s;
            }
            for (int i = 0; i < MLP_NW; i++) {
                double r = fabs((double)w[t][i] - w[0][i]) / MX_MODEL_WEIGHT_ATOL;
                if (!(r <= wr)) wr = r, wi = i;
            }
            m->loss_ratio = lr, m->weight_ratio = wr;
            if (!(lr <= 1 && wr <= 1)) {
                m->ok = false;
                snprintf(m->msg, sizeof m->msg,
                         "disagrees with %s: worst loss at step %d %.9g vs %.9g, worst weight %d %.9g vs %.9g",
                         res->targets[0].label, ls, loss[t][ls], loss[0][ls], wi, w[t][wi], w[0][wi]);
            }
        }
        if (!m->ok) res->model_fail++;
        if (cfg->progress)
            fprintf(cfg->progress, "  model on %-20s %s %s\n", res->targets[t].label, m->ok ? "ok" : "FAIL", m->msg);
    }
}

/* ---- the run ----------------------------------------------------------------------- */

static bool row_selected(const ot_row *row, const char *op)
{
    if (!op) return true;
    size_t n = strlen(op);
    return !strcmp(row->name, op) || (!strncmp(row->name, op, n) && row->name[n] == '(');
}

int mx_run(const mx_config *cfg, mx_results *res, char *err, int errsize)
{
    memset(res, 0, sizeof *res);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const char *env = getenv("AG_NUM_THREADS");
    char *saved_threads = env ? dupstr(env) : NULL;

    /* targets */
    if (cfg->device) {
        res->targets[res->ntargets++].dev = cfg->device;
    } else {
        int n = ag_device_count();
        for (int i = 0; i < n && res->ntargets < MX_MAX_TARGETS; i++) {
            ag_device *d = ag_device_get(i);
            if (d) res->targets[res->ntargets++].dev = d;
        }
    }
    if (res->ntargets == 0) {
        snprintf(err, (size_t)errsize, "no device available: %s", ag_last_error());
        free(saved_threads);
        return -1;
    }
    for (int t = 0; t < res->ntargets; t++) snprintf(res->targets[t].label, sizeof res->targets[t].label, "%s", ag_device_name(res->targets[t].dev));
    if (cfg->self_compare && res->ntargets == 1) {
        res->targets[1] = res->targets[0];
        snprintf(res->targets[1].label, sizeof res->targets[1].label, "%.36s/1-thread", res->targets[0].label);
        snprintf(res->targets[1].threads, sizeof res->targets[1].threads, "1");
        res->ntargets = 2;
    }

    /* rows */
    res->rows = malloc(sizeof(int) * (size_t)ot_row_count());
    for (int i = 0; i < ot_row_count(); i++)
        if (row_selected(ot_row_at(i), cfg->op)) res->rows[res->nrows++] = i;
    if (res->nrows == 0) {
        snprintf(err, (size_t)errsize, "no op named '%s' (anygrad check --list shows them)", cfg->op);
        free(saved_threads);
        mx_free(res);
        return -1;
    }
    size_t ncell = (size_t)res->nrows * (size_t)res->ntargets;
    res->cells = calloc(ncell, sizeof(mx_cell));
    res->cross = calloc(ncell, sizeof(mx_cell));
    for (size_t i = 0; i < ncell; i++) res->cells[i].fwd = res->cells[i].bwd = res->cross[i].fwd = res->cross[i].bwd = -1;
    res->nseeds = cfg->quick ? (int)(sizeof QUICK_SEEDS / sizeof QUICK_SEEDS[0]) : (int)(sizeof FULL_SEEDS / sizeof FULL_SEEDS[0]);

    ag_device *prev = ag_device_default();
    case_out *outs = calloc((size_t)res->ntargets, sizeof(case_out));
    for (int r = 0; r < res->nrows; r++) {
        const ot_row *row = ot_row_at(res->rows[r]);
        int rowfail = 0;
        for (int f = 0; f < row->nfam; f++)
            for (int s = 0; s < res->nseeds; s++) {
                seed_kind kind = kind_of(s, cfg->quick);
                if (kind == SK_EDGE && !row->edges) continue;
                for (int t = 0; t < res->ntargets; t++) {
                    case_ctx *c = calloc(1, sizeof *c);
                    c->row = row, c->fam = &row->fam[f], c->kind = kind;
                    c->seed = case_seed(row->name, f, s);
                    c->backward = kind != SK_EDGE && row->diff;
                    c->fwd = c->bwd = -1;
                    c->out.fwd = rt_invalid();
                    for (int i = 0; i < OT_MAX_IN; i++) c->out.grads[i] = c->rep.grads[i] = rt_invalid();
                    set_threads(&res->targets[t], saved_threads);
                    ag_set_default_device(res->targets[t].dev);
                    char trymsg[1024];
                    bool ran = h_try(run_case, c, trymsg, sizeof trymsg);
                    for (int i = 0; i < OT_MAX_IN; i++) rt_free(&c->rep.grads[i]);
                    if (!ran) {
                        /* a failed check stored its ratio before failing; anything
                         * else (an op returning NULL, a failed backward) is inf */
                        if (c->fwd < 0 || c->fwd <= 1) {
                            double b = fmax(c->rep.fwd, fmax(c->rep.dir, c->rep.elem));
                            if (c->fwd < 0) c->fwd = INFINITY;
                            else c->bwd = b > 1 ? b : INFINITY;
                        }
                        snprintf(c->msg, sizeof c->msg, "%s", trymsg);
                    }
                    mx_case *mc = add_case(res);
                    mc->row = res->rows[r], mc->fam = f, mc->seed = s, mc->target = t;
                    mc->fwd = c->fwd, mc->bwd = c->bwd;
                    mc->ok = ran && c->fwd <= 1 && c->bwd <= 1;
                    if (!mc->ok) {
                        char full[1200];
                        snprintf(full, sizeof full, "%s [%s, %s] on %s: %s", row->name, row->fam[f].name,
                                 mx_seed_name(s, cfg->quick), res->targets[t].label,
                                 c->msg[0] ? c->msg : "failed");
                        mc->msg = dupstr(full);
                    }
                    /* devices against the first one */
                    if (t == 0) {
                        out_free(&outs[0]);
                        outs[0] = c->out;
                    } else {
                        char m[1024];
                        double x = compare_outputs(&row->fam[f], c->tol.metric == H_METRIC_ULP || c->tol.rtol > 0 ? c->tol : h_tol_get(row->tol, row->fam[f].len),
                                                   &outs[0], &c->out, m, sizeof m);
                        mc->cross = x;
                        bool cok = x <= 1;
                        cell_add(mx_cross_at(res, r, t), x, -1, cok, NULL);
                        if (!cok) {
                            if (mc->ok) {
                                char full[1200];
                                snprintf(full, sizeof full, "%s [%s, %s] %s vs %s: %s", row->name, row->fam[f].name,
                                         mx_seed_name(s, cfg->quick), res->targets[t].label,
                                         res->targets[0].label, m);
                                mc->msg = dupstr(full);
                            }
                            mc->ok = false;
                        }
                        out_free(&c->out);
                    }
                    cell_add(mx_cell_at(res, r, t), mc->fwd, mc->bwd, mc->ok, mc->msg);
                    if (!mc->ok) res->nfail++, rowfail++;
                    free(c);
                }
            }
        out_free(&outs[0]);
        if (cfg->progress) fprintf(cfg->progress, "  %-22s %s\n", row->name, rowfail ? "FAIL" : "ok");
    }
    free(outs);
    /* the cells hold pointers into the case list, which no longer moves */
    for (size_t i = 0; i < ncell; i++) res->cells[i].first_fail = NULL, res->cross[i].first_fail = NULL;
    for (int i = 0; i < res->ncases; i++) {
        mx_case *c = &res->cases[i];
        if (c->ok) continue;
        int r = 0;
        while (res->rows[r] != c->row) r++;
        mx_cell *cell = mx_cell_at(res, r, c->target);
        if (!cell->first_fail) cell->first_fail = c->msg;
    }
    if (cfg->model) run_model(cfg, res, saved_threads);
    set_threads(NULL, saved_threads);
    ag_set_default_device(prev);
    free(saved_threads);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    res->seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    return res->nfail + res->model_fail;
}

void mx_free(mx_results *res)
{
    for (int i = 0; i < res->ncases; i++) free(res->cases[i].msg);
    free(res->cases);
    free(res->cells);
    free(res->cross);
    free(res->rows);
    memset(res, 0, sizeof *res);
}

/* ---- reports -------------------------------------------------------------------------- */

static double cell_worst(const mx_cell *c) { return fmax(c->fwd, c->bwd); }

static void ratio_str(double r, char *buf, size_t size)
{
    if (r < 0) snprintf(buf, size, "-");
    else if (isinf(r)) snprintf(buf, size, "inf");
    else snprintf(buf, size, "%.2f", r);
}

void mx_print_summary(FILE *f, const mx_results *res)
{
    int nfam = 0;
    for (int r = 0; r < res->nrows; r++) nfam += ot_row_at(res->rows[r])->nfam;
    fprintf(f, "%d ops, %d shape families, %d seeds, %d device%s: %d cases, %d failed; model %s; %.1f s\n",
            res->nrows, nfam, res->nseeds, res->ntargets, res->ntargets == 1 ? "" : "s", res->ncases,
            res->nfail, !res->model[0].run ? "not run" : res->model_fail ? "FAILED" : "agrees",
            res->seconds);
}

void mx_print_table(FILE *f, const mx_results *res, int max_fail)
{
    char buf[32];
    fprintf(f, "%-22s", "op");
    for (int t = 0; t < res->ntargets; t++) fprintf(f, "  %-18.18s", res->targets[t].label);
    for (int t = 1; t < res->ntargets; t++) fprintf(f, "  %-14.14s", "vs first");
    fprintf(f, "\n");
    for (int r = 0; r < res->nrows; r++) {
        fprintf(f, "%-22s", ot_row_at(res->rows[r])->name);
        for (int t = 0; t < res->ntargets; t++) {
            const mx_cell *c = mx_cell_at(res, r, t);
            ratio_str(cell_worst(c), buf, sizeof buf);
            fprintf(f, "  %-4s %-13s", c->nfail ? "FAIL" : "PASS", buf);
        }
        for (int t = 1; t < res->ntargets; t++) {
            const mx_cell *c = mx_cross_at(res, r, t);
            ratio_str(c->fwd, buf, sizeof buf);
            fprintf(f, "  %-4s %-9s", c->nfail ? "FAIL" : "PASS", buf);
        }
        fprintf(f, "\n");
    }
    fprintf(f, "(worst error / tolerance over forward and backward; <= 1 passes)\n");
    if (res->model[0].run) {
        for (int t = 0; t < res->ntargets; t++) {
            const mx_model *m = &res->model[t];
            fprintf(f, "MLP 50 Adam steps on %-18s %s loss %.4f -> %.4f", res->targets[t].label,
                    m->ok ? "PASS" : "FAIL", m->loss0, m->loss_last);
            if (t == 0) fprintf(f, ", %s", m->deterministic ? "bit-identical on rerun" : "NOT deterministic");
            else fprintf(f, ", vs first: loss %.2f weights %.2f of tolerance", m->loss_ratio, m->weight_ratio);
            fprintf(f, "%s%s\n", m->msg[0] ? ": " : "", m->msg);
        }
    }
    int shown = 0;
    for (int i = 0; i < res->ncases && shown < max_fail; i++)
        if (!res->cases[i].ok) fprintf(f, "FAIL %s\n", res->cases[i].msg ? res->cases[i].msg : "?"), shown++;
    if (res->nfail > shown) fprintf(f, "... %d more failed cases (--json has them all)\n", res->nfail - shown);
    mx_print_summary(f, res);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, double v)
{
    if (v < 0) fprintf(f, "null");
    else if (!isfinite(v)) fprintf(f, "\"inf\"");
    else fprintf(f, "%.4g", v);
}

int mx_write_json(const char *path, const mx_results *res)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "{\n  \"version\": \"%s\",\n  \"seconds\": %.3f,\n  \"cases\": %d,\n  \"failed\": %d,\n",
            AG_VERSION, res->seconds, res->ncases, res->nfail);
    fprintf(f, "  \"devices\": [");
    for (int t = 0; t < res->ntargets; t++) {
        fprintf(f, "%s{\"label\": ", t ? ", " : "");
        json_str(f, res->targets[t].label);
        fprintf(f, ", \"backend\": ");
        json_str(f, ag_device_backend(res->targets[t].dev));
        fprintf(f, ", \"threads\": ");
        json_str(f, res->targets[t].threads);
        fprintf(f, "}");
    }
    fprintf(f, "],\n  \"model\": [");
    for (int t = 0; t < res->ntargets && res->model[0].run; t++) {
        const mx_model *m = &res->model[t];
        fprintf(f, "%s{\"ok\": %s, \"loss_first\": %.9g, \"loss_last\": %.9g, \"deterministic\": %s, \"loss_ratio\": ",
                t ? ", " : "", m->ok ? "true" : "false", m->loss0, m->loss_last, m->deterministic ? "true" : "false");
        json_num(f, m->loss_ratio);
        fprintf(f, ", \"weight_ratio\": ");
        json_num(f, m->weight_ratio);
        fprintf(f, ", \"message\": ");
        json_str(f, m->msg);
        fprintf(f, "}");
    }
    fprintf(f, "],\n  \"ops\": [\n");
    for (int r = 0; r < res->nrows; r++) {
        const ot_row *row = ot_row_at(res->rows[r]);
        fprintf(f, "    {\"op\": ");
        json_str(f, row->name);
        fprintf(f, ", \"tolerance\": ");
        json_str(f, row->tol);
        fprintf(f, ", \"devices\": [");
        for (int t = 0; t < res->ntargets; t++) {
            const mx_cell *c = mx_cell_at(res, r, t);
            fprintf(f, "%s{\"cases\": %d, \"failed\": %d, \"forward\": ", t ? ", " : "", c->ncases, c->nfail);
            json_num(f, c->fwd);
            fprintf(f, ", \"backward\": ");
            json_num(f, c->bwd);
            if (t > 0) {
                fprintf(f, ", \"vs_first\": ");
                json_num(f, mx_cross_at(res, r, t)->fwd);
            }
            fprintf(f, "}");
        }
        fprintf(f, "]}%s\n", r + 1 < res->nrows ? "," : "");
    }
    fprintf(f, "  ],\n  \"results\": [\n");
    for (int i = 0; i < res->ncases; i++) {
        const mx_case *c = &res->cases[i];
        const ot_row *row = ot_row_at(c->row);
        fprintf(f, "    {\"op\": ");
        json_str(f, row->name);
        fprintf(f, ", \"family\": ");
        json_str(f, row->fam[c->fam].name);
        fprintf(f, ", \"seed\": \"%s\", \"device\": ", mx_seed_name(c->seed, res->nseeds == 3));
        json_str(f, res->targets[c->target].label);
        fprintf(f, ", \"ok\": %s, \"forward\": ", c->ok ? "true" : "false");
        json_num(f, c->fwd);
        fprintf(f, ", \"backward\": ");
        json_num(f, c->bwd);
        fprintf(f, ", \"vs_first\": ");
        json_num(f, c->cross);
        if (c->msg) {
            fprintf(f, ", \"message\": ");
            json_str(f, c->msg);
        }
        fprintf(f, "}%s\n", i + 1 < res->ncases ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    return fclose(f) == 0 ? 0 : -1;
}

/* ---- docs/ops.md ------------------------------------------------------------------------- */

static void tol_str(const char *cls, char *buf, size_t size)
{
    for (int i = 0; h_tol_class_at(i); i++) {
        const h_tol_class *c = h_tol_class_at(i);
        if (strcmp(c->name, cls)) continue;
        const char *g = c->grows ? " x sqrt(n)" : "";
        if (c->metric == H_METRIC_ULP)
            snprintf(buf, size, "ulp <= %g", c->ulps);
        else
            snprintf(buf, size, "rel: rtol %g, atol %g%s%s", c->rtol, c->atol, c->per_n ? " / n" : "", g);
        return;
    }
    snprintf(buf, size, "?");
}

int mx_write_docs(FILE *f, const mx_results *res)
{
    static const char *const backends[] = {"cpu", "opencl", "vulkan"};
    enum { NB = 3 };
    int tb[NB];
    for (int b = 0; b < NB; b++) {
        tb[b] = -1;
        for (int t = 0; t < res->ntargets && tb[b] < 0; t++)
            if (!res->targets[t].threads[0] && !strcmp(ag_device_backend(res->targets[t].dev), backends[b])) tb[b] = t;
    }
    fprintf(f, "# Op coverage\n\n"
               "Generated by `anygrad check --docs docs/ops.md` (anygrad %s); do not edit by hand.\n"
               "The op table is conformance/optable.c (its unary rows come from src/ops/unary_table.h); docs/testing.md explains the metrics, the tolerances\n"
               "and what the matrix runs. Every row runs on every shape family listed, with %d seeds\n"
               "(normal, wide-range uniform and edge values%s); edge values check the forward pass only.\n\n",
            AG_VERSION, res->nseeds, res->nseeds == 3 ? ", `--quick`" : ", two of each");
    fprintf(f, "Forward / backward per backend: `pass`, `FAIL`, `-` (not differentiable), or\n"
               "`unavailable` (no such device on the machine that generated this page).\n\n");
    fprintf(f, "| op | kind | forward metric and tolerance | gradient tol | differentiated | domain | edge values | shape families |");
    for (int b = 0; b < NB; b++) fprintf(f, " %s |", backends[b]);
    fprintf(f, "\n|---|---|---|---|---|---|---|---|");
    for (int b = 0; b < NB; b++) fprintf(f, "---|");
    fprintf(f, "\n");
    for (int r = 0; r < res->nrows; r++) {
        const ot_row *row = ot_row_at(res->rows[r]);
        char tol[96], edges[96];
        tol_str(row->tol, tol, sizeof tol);
        const h_tol_class *cls = NULL;
        for (int i = 0; h_tol_class_at(i); i++)
            if (!strcmp(h_tol_class_at(i)->name, row->tol)) cls = h_tol_class_at(i);
        char gtol[48];
        if (row->check) snprintf(gtol, sizeof gtol, "property");
        else if (!row->diff || !cls) snprintf(gtol, sizeof gtol, "-");
        else snprintf(gtol, sizeof gtol, "%g%s", cls->grad, cls->grows ? " x sqrt(n)" : "");
        fprintf(f, "| `%s` | %s | %s: %s | %s | %s | %s | %s | ", row->name, ot_kind_name(row->kind),
                row->tol, tol, gtol,
                row->check ? "property" : row->diff ? "yes" : "no", ot_dist_name(row->dist),
                ot_edge_str(row->edges, edges, sizeof edges));
        for (int i = 0; i < row->nfam; i++) fprintf(f, "%s%s", i ? "; " : "", row->fam[i].name);
        fprintf(f, " |");
        for (int b = 0; b < NB; b++) {
            if (tb[b] < 0) {
                fprintf(f, " unavailable |");
                continue;
            }
            const mx_cell *c = mx_cell_at(res, r, tb[b]);
            fprintf(f, " %s / %s |", c->ncases > 0 && c->fwd <= 1 ? "pass" : "FAIL",
                    !row->diff ? "-" : c->bwd < 0 ? "not run" : c->bwd <= 1 ? "pass" : "FAIL");
        }
        fprintf(f, "\n");
    }
    fprintf(f, "\nTolerance classes (one table: conformance/harness.c):\n\n| class | metric | tolerance | gradients | why |\n|---|---|---|---|---|\n");
    for (int i = 0; h_tol_class_at(i); i++) {
        const h_tol_class *c = h_tol_class_at(i);
        char tol[96];
        tol_str(c->name, tol, sizeof tol);
        fprintf(f, "| %s | %s | %s | %g%s | %s |\n", c->name, c->metric == H_METRIC_ULP ? "ULP distance" : "relative with floor",
                tol, c->grad, c->grows ? " x sqrt(n)" : "", c->why);
    }
    fprintf(f, "\nPublic functions of anygrad.h that return tensors but have no row:\n\n");
    for (int i = 0; ot_not_ops[i]; i += 2) fprintf(f, "- `%s`: %s\n", ot_not_ops[i], ot_not_ops[i + 1]);
    return ferror(f) ? -1 : 0;
}
