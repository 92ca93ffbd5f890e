/* Data parallelism (ag_dist_*): what every transport shares. Gradients travel
 * as one flat host array of floats cut into buckets; each bucket is summed as
 * soon as it is packed (a few MB a call, not one call per tensor). The array is kept between steps (no allocation after
 * the first). AG_DIST_STATS=1 prints each rank's traffic at ag_dist_finalize. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core.h"
#include "optim_state.h"
#include "transport.h"

static float *host;                 /* the packed gradients, kept between calls */
static size_t host_cap;
static struct {
    long long calls, buckets;
    double bytes, seconds, sum_seconds;
} stats;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double env_number(const char *name, double fallback)
{
    const char *s = getenv(name);
    if (!s || !*s) return fallback;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    return errno == 0 && *end == '\0' && v > 0.0 && isfinite(v) ? v : fallback;
}

static double timeout_s(void) { return env_number("AG_DIST_TIMEOUT", 300.0); }

static size_t bucket_floats(void)
{
    double mb = env_number("AG_DIST_BUCKET_MB", 4.0);
    double n = mb * 1048576.0 / sizeof(float);
    return n < 1024.0 ? 1024 : n > 268435456.0 ? 268435456 : (size_t)n;
}

static ag_status grow(size_t n)
{
    if (n <= host_cap) return AG_OK;
    float *p = realloc(host, n * sizeof *p);
    if (!p) return ag_set_error(AG_ERR_OOM, "ag_dist: no host memory for %zu floats of gradients", n);
    host = p;
    host_cap = n;
    return AG_OK;
}

bool ag_dist_available(void) { return agd_available(); }
int ag_dist_rank(void) { return agd_rank(); }
int ag_dist_size(void) { return agd_size(); }
int ag_dist_local_rank(void) { return agd_local_rank(); }
int ag_dist_local_size(void) { return agd_local_size(); }

ag_status ag_dist_init(void) { return agd_init(); }

static ag_status check_params(const char *op, int n, ag_tensor *const *params)
{
    if (n < 0 || (n > 0 && !params))
        return ag_set_error(AG_ERR_ARG, "%s: bad parameter list (n %d%s)", op, n,
                            params ? "" : ", params NULL");
    for (int i = 0; i < n; i++) {
        if (!params[i]) return ag_set_error(AG_ERR_ARG, "%s: params[%d] is NULL", op, i);
        if (!ag__check(op, params[i], AG_F32)) return ag_last_status();
        const ag_tensor *g = params[i]->grad;
        if (g && (g->dtype != AG_F32 || !ag__same_shape(g, params[i])))
            return ag_set_error(AG_ERR_SHAPE, "%s: the gradient of params[%d] is not an f32 "
                                              "tensor of the parameter's shape", op, i);
    }
    return AG_OK;
}

/* Sums bucket after bucket as the packing passes their ends. */
static ag_status sum_ready(size_t packed, size_t *summed, size_t bucket, bool all)
{
    while (*summed < packed && (all || packed - *summed >= bucket)) {
        size_t n = packed - *summed < bucket ? packed - *summed : bucket;
        double t = now();
        ag_status s = agd_ready() ? agd_sum_f32(host + *summed, n, timeout_s()) : AG_OK; /* no job: one rank */
        stats.sum_seconds += now() - t;
        if (s != AG_OK) return s;
        *summed += n;
        stats.buckets++;
    }
    return AG_OK;
}

ag_status ag_dist_average_gradients(int n, ag_tensor *const *params, double weight)
{
    ag_status s = check_params("ag_dist_average_gradients", n, params);
    if (s != AG_OK) return s;
    if (!(weight >= 0.0) || !isfinite(weight))
        return ag_set_error(AG_ERR_ARG, "ag_dist_average_gradients: weight %g must be finite "
                                        "and >= 0", weight);
    if (agd_size() == 1 && weight == 1.0) return AG_OK; /* nothing would change */
    double t0 = now();
    /* after the gradients: one flag per parameter (this rank has a gradient)
     * and one for a failure here, so that every rank learns of it */
    size_t total = (size_t)n + 1;
    for (int i = 0; i < n; i++) total += (size_t)ag_numel(params[i]);
    if ((s = grow(total)) != AG_OK) return s; /* before any sum: the others time out */
    const size_t bucket = bucket_floats(), flags = total - (size_t)n - 1;
    const float w = (float)weight;
    size_t at = 0, summed = 0;
    /* A failed download must still join every sum: the other ranks wait on them. */
    for (int i = 0; i < n; i++) {
        const ag_tensor *g = params[i]->grad;
        size_t k = (size_t)ag_numel(params[i]);
        const float *src = g && s == AG_OK ? ag__host_bytes(g) : NULL; /* CPU: one pass */
        if (src)
            for (size_t j = 0; j < k; j++) host[at + j] = src[j] * w;
        else if (g && s == AG_OK && (s = ag_to_host(g, host + at, k * sizeof(float))) == AG_OK)
            for (size_t j = 0; w != 1.0f && j < k; j++) host[at + j] *= w;
        if (!g || s != AG_OK) memset(host + at, 0, k * sizeof(float));
        at += k;
        ag_status ss = sum_ready(at, &summed, bucket, false);
        if (ss != AG_OK) return ss; /* MPI itself failed: the job cannot go on */
    }
    for (int i = 0; i < n; i++) host[flags + (size_t)i] = params[i]->grad ? 1.0f : 0.0f;
    host[total - 1] = s != AG_OK ? 1.0f : 0.0f;
    char why[256] = "";
    if (s != AG_OK) snprintf(why, sizeof why, "%s", ag_last_error());
    ag_status sw = sum_ready(total, &summed, bucket, true);
    stats.calls++;
    stats.bytes += (double)total * sizeof(float);
    if (sw != AG_OK) return sw;
    if (s != AG_OK) return ag_set_error(s, "%s", why);
    if (host[total - 1] > 0.0f)
        return ag_set_error(AG_ERR_DEVICE, "ag_dist_average_gradients: %.0f other rank(s) could "
                                           "not read their gradients", (double)host[total - 1]);
    at = 0;
    for (int i = 0; i < n && s == AG_OK; i++) {
        ag_tensor *p = params[i];
        size_t k = (size_t)ag_numel(p);
        if (host[flags + (size_t)i] > 0.0f) {
            ag_tensor *g = ag__empty_like(p);
            s = g ? ag_from_host(g, host + at, k * sizeof(float)) : ag_last_status();
            if (s == AG_OK) {
                ag_release(p->grad);
                p->grad = g;
            } else {
                ag_release(g);
            }
        }
        at += k;
    }
    stats.seconds += now() - t0;
    return s;
}

/* The tensors broadcast or averaged: f32 ones only (batch norm's step counter
 * is int32 and the same on every rank). */
typedef struct tensor_list {
    ag_tensor **v;
    int n, cap;
} tensor_list;

static ag_status list_push(tensor_list *l, ag_tensor *t)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 32;
        ag_tensor **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return ag_set_error(AG_ERR_OOM, "ag_dist: out of host memory");
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = t;
    return AG_OK;
}

static size_t list_floats(const tensor_list *l)
{
    size_t total = 0;
    for (int i = 0; i < l->n; i++) total += (size_t)ag_numel(l->v[i]);
    return total;
}

/* Downloads (to_host) or uploads every tensor of the list through host. */
static ag_status move_all(const tensor_list *l, bool to_host)
{
    size_t at = 0;
    for (int i = 0; i < l->n; i++) {
        size_t k = (size_t)ag_numel(l->v[i]);
        ag_status s = to_host ? ag_to_host(l->v[i], host + at, k * sizeof(float))
                              : ag_from_host(l->v[i], host + at, k * sizeof(float));
        if (s != AG_OK) return s;
        at += k;
    }
    return AG_OK;
}

/* Every rank learns whether all succeeded and hold the same number of floats
 * (rank 0's count, compared exactly), so that no rank goes on into a
 * collective the others skip. */
static ag_status agree(const char *op, ag_status mine, size_t floats)
{
    char why[256];
    snprintf(why, sizeof why, "%s", mine != AG_OK ? ag_last_error() : "");
    int64_t root_count = (int64_t)floats;
    ag_status s = agd_broadcast(&root_count, sizeof root_count, 0, timeout_s());
    if (s != AG_OK) return s;
    double v[2] = {mine != AG_OK ? 1.0 : 0.0, root_count != (int64_t)floats ? 1.0 : 0.0};
    if ((s = agd_sum_f64(v, 2, timeout_s())) != AG_OK) return s;
    if (mine != AG_OK) return ag_set_error(mine, "%s", why);
    if (v[0] > 0.0) return ag_set_error(AG_ERR_STATE, "%s: failed on %.0f other rank(s)", op, v[0]);
    if (v[1] > 0.0)
        return ag_set_error(AG_ERR_SHAPE, "%s: the ranks' models differ (%zu floats here, %lld on "
                                          "rank 0; %.0f rank(s) differ)", op, floats,
                            (long long)root_count, v[1]);
    return AG_OK;
}

static ag_status collect_state(ag_module *m, ag_optim *opt, bool buffers_only, tensor_list *l)
{
    int n = 0, np = 0;
    ag_tensor *const *st = ag_module_state(m, &n);
    if (!st) return ag_last_status();
    ag_tensor *const *params = ag_module_parameters(m, &np);
    if (!params && np) return ag_last_status();
    ag_status s = AG_OK;
    for (int i = 0; i < n && s == AG_OK; i++) {
        bool is_param = false;
        for (int j = 0; j < np && !is_param; j++) is_param = params[j] == st[i];
        if (st[i]->dtype == AG_F32 && !(buffers_only && is_param)) s = list_push(l, st[i]);
    }
    int no = opt ? ag__optim_num_params(opt) : 0;
    for (int i = 0; i < no && s == AG_OK; i++)
        for (int slot = 0; slot < 2 && s == AG_OK; slot++) {
            const char *nm;
            ag_tensor *t = ag__optim_state(opt, i, slot, &nm);
            if (t) s = list_push(l, t);
        }
    return s;
}

ag_status ag_dist_broadcast_module(ag_module *m, ag_optim *opt, int root)
{
    if (!m) return ag_set_error(AG_ERR_ARG, "ag_dist_broadcast_module: module is NULL");
    if (root < 0 || root >= agd_size())
        return ag_set_error(AG_ERR_ARG, "ag_dist_broadcast_module: root %d of %d ranks", root,
                            agd_size());
    tensor_list l = {0};
    ag_status s = collect_state(m, opt, false, &l);
    const int np = opt ? ag__optim_num_params(opt) : 0;
    int64_t *steps = calloc((size_t)np + 1, sizeof *steps);
    if (s == AG_OK && !steps) s = ag_set_error(AG_ERR_OOM, "ag_dist: out of host memory");
    const size_t total = list_floats(&l);
    if (s == AG_OK) s = grow(total ? total : 1);
    const bool me = agd_rank() == root;
    if (s == AG_OK && me) s = move_all(&l, true);
    if (s == AG_OK && opt) {
        steps[0] = ag_optim_steps(opt);
        for (int i = 0; i < np; i++) steps[i + 1] = ag__optim_param_steps(opt, i);
    }
    if (agd_size() > 1) {
        s = agree("ag_dist_broadcast_module", s, total + (size_t)np);
        if (s == AG_OK) s = agd_broadcast(host, total * sizeof(float), root, timeout_s());
        if (s == AG_OK && opt)
            s = agd_broadcast(steps, ((size_t)np + 1) * sizeof *steps, root, timeout_s());
        if (s == AG_OK && !me) s = move_all(&l, false);
        if (s == AG_OK && !me && opt) s = ag__optim_restore_steps(opt, steps[0], steps + 1);
    }
    free(steps);
    free(l.v);
    return s;
}

ag_status ag_dist_average_buffers(ag_module *m)
{
    if (!m) return ag_set_error(AG_ERR_ARG, "ag_dist_average_buffers: module is NULL");
    tensor_list l = {0};
    ag_status s = collect_state(m, NULL, true, &l);
    const size_t total = list_floats(&l);
    if (s == AG_OK) s = grow(total ? total : 1);
    if (s == AG_OK && agd_size() > 1) s = move_all(&l, true);
    if (agd_size() > 1) {
        s = agree("ag_dist_average_buffers", s, total);
        for (size_t at = 0, b = bucket_floats(); s == AG_OK && at < total; at += b)
            s = agd_sum_f32(host + at, total - at < b ? total - at : b, timeout_s());
        const float inv = 1.0f / (float)agd_size();
        for (size_t i = 0; s == AG_OK && i < total; i++) host[i] *= inv;
        if (s == AG_OK) s = move_all(&l, false);
    }
    free(l.v);
    return s;
}

ag_status ag_dist_sum(double *v, int n)
{
    if (n < 0 || (n > 0 && !v))
        return ag_set_error(AG_ERR_ARG, "ag_dist_sum: bad arguments (n %d%s)", n, v ? "" : ", v NULL");
    return n && agd_size() > 1 ? agd_sum_f64(v, n, timeout_s()) : AG_OK;
}

ag_status ag_dist_barrier(void) { return agd_size() > 1 ? agd_barrier(timeout_s()) : AG_OK; }

void ag_dist_abort(int code, const char *why)
{
    fprintf(stderr, "anygrad: rank %d: %s\n", agd_rank(), why ? why : "aborting the job");
    fflush(stderr);
    if (agd_ready()) agd_abort(code);
}

ag_status ag_dist_finalize(void)
{
    if (agd_ready() && getenv("AG_DIST_STATS") && !strcmp(getenv("AG_DIST_STATS"), "1") &&
        stats.calls > 0)
        fprintf(stderr, "ag_dist stats: rank %d of %d: %lld gradient averages, %lld buckets, "
                        "%.0f bytes each (%.3f MB in all), %.3f ms each (%.3f ms in allreduce calls)\n",
                agd_rank(), agd_size(), stats.calls, stats.buckets, stats.bytes / (double)stats.calls,
                stats.bytes / 1e6, 1e3 * stats.seconds / (double)stats.calls,
                1e3 * stats.sum_seconds / (double)stats.calls);
    memset(&stats, 0, sizeof stats);
    free(host);
    host = NULL;
    host_cap = 0;
    return agd_finalize();
}
