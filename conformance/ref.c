/* Double-precision reference ops (see ref.h). Plain loops over multi-indices:
 * clarity over speed, since the tests keep shapes small. */
#include "ref.h"
#include "ops/binary_table.h"
#include "ops/unary_table.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- storage ------------------------------------------------------------ */

static int64_t numel_of(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

rt rt_invalid(void)
{
    rt r;
    memset(&r, 0, sizeof r);
    r.ndim = -1;
    return r;
}

rt rt_new(int ndim, const int64_t *shape)
{
    if (ndim < 0 || ndim > AG_MAX_DIMS) return rt_invalid();
    rt r;
    memset(&r, 0, sizeof r);
    r.ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return rt_invalid();
        r.shape[i] = shape[i];
    }
    int64_t n = numel_of(ndim, shape);
    r.data = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    if (!r.data) return rt_invalid();
    return r;
}

rt rt_from(const double *values, int ndim, const int64_t *shape)
{
    rt r = rt_new(ndim, shape);
    if (r.data) memcpy(r.data, values, (size_t)rt_numel(&r) * sizeof(double));
    return r;
}

rt rt_scalar(double v) { return rt_from(&v, 0, NULL); }

rt rt_clone(const rt *a)
{
    if (!rt_valid(a)) return rt_invalid();
    return rt_from(a->data, a->ndim, a->shape);
}

void rt_free(rt *a)
{
    if (!a) return;
    free(a->data);
    *a = rt_invalid();
}

int64_t rt_numel(const rt *a) { return a->ndim < 0 ? 0 : numel_of(a->ndim, a->shape); }

bool rt_valid(const rt *a) { return a && a->ndim >= 0 && a->data; }

bool rt_same_shape(const rt *a, const rt *b)
{
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

double rt_dot(const rt *a, const rt *b)
{
    double s = 0;
    int64_t n = rt_numel(a);
    for (int64_t i = 0; i < n; i++) s += a->data[i] * b->data[i];
    return s;
}

const char *rt_shape_str(int ndim, const int64_t *shape, char *buf, int size)
{
    int k = snprintf(buf, (size_t)size, "[");
    for (int i = 0; i < ndim && k < size; i++)
        k += snprintf(buf + k, (size_t)(size - k), "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < size) snprintf(buf + k, (size_t)(size - k), "]");
    return buf;
}

/* ---- index helpers ------------------------------------------------------ */

static void unravel(int64_t flat, int ndim, const int64_t *shape, int64_t *idx)
{
    for (int i = ndim - 1; i >= 0; i--) {
        idx[i] = shape[i] ? flat % shape[i] : 0;
        flat = shape[i] ? flat / shape[i] : 0;
    }
}

static int64_t ravel(int ndim, const int64_t *shape, const int64_t *idx)
{
    int64_t off = 0;
    for (int i = 0; i < ndim; i++) off = off * shape[i] + idx[i];
    return off;
}

/* Offset in x of the output index oidx (ondim axes) under NumPy broadcasting. */
static int64_t boff(const rt *x, int ondim, const int64_t *oidx)
{
    int64_t off = 0;
    int lead = ondim - x->ndim;
    for (int i = 0; i < x->ndim; i++) {
        int64_t k = x->shape[i] == 1 ? 0 : oidx[lead + i];
        off = off * x->shape[i] + k;
    }
    return off;
}

static double bget(const rt *x, int ondim, const int64_t *oidx) { return x->data[boff(x, ondim, oidx)]; }

static int norm_axis(int axis, int ndim)
{
    if (axis < 0) axis += ndim;
    return (axis < 0 || axis >= ndim) ? -1 : axis;
}

/* outer * n * inner decomposition around one axis */
static void split_axis(const rt *x, int axis, int64_t *outer, int64_t *n, int64_t *inner)
{
    *outer = numel_of(axis, x->shape);
    *n = x->shape[axis];
    *inner = numel_of(x->ndim - axis - 1, x->shape + axis + 1);
}

static bool is_index(double v, int64_t size) { return v == floor(v) && v >= 0 && v < (double)size; }

/* ---- element-wise ------------------------------------------------------- */

static double ref_sigmoid(double x)
{
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);                     /* NaN lands here and stays NaN */
    return e / (1.0 + e);
}

/* The fp64 references of the op table's unary rows (its last column). */
#define REF_FN(E, name, np, pn, doc, mod, uy, on, wrap, tn, tp0, tp1, dist, edges, tol, ref) \
    static double u_##name(double x, double p0, double p1)                                  \
    {                                                                                       \
        (void)x, (void)p0, (void)p1;                                                        \
        return ref;                                                                         \
    }
AG_UNARY_TABLE(REF_FN)
#undef REF_FN
#define REF_ENTRY(E, name, ...) [AG_UNARY_##E] = u_##name,
static double (*const unary_fn[AG_UNARY_COUNT])(double, double, double) = {AG_UNARY_TABLE(REF_ENTRY)};
#undef REF_ENTRY

double ref_unary1(ag_unary_op op, double x, double p0, double p1)
{
    if ((int)op < 0 || op >= AG_UNARY_COUNT) return NAN;
    return unary_fn[op](x, p0, p1);
}

/* The fp64 references of the binary table's rows (its last column). */
#define REF_FN(E, name, doc, grad, on, dist, tol, ref) \
    static double b_##name(double a, double b) { return ref; }
AG_BINARY_TABLE(REF_FN)
#undef REF_FN
#define REF_ENTRY(E, name, ...) [AG_BINARY_##E] = b_##name,
static double (*const binary_fn[AG_BINARY_COUNT])(double, double) = {AG_BINARY_TABLE(REF_ENTRY)};
#undef REF_ENTRY

double ref_binary1(ag_binary_op op, double a, double b)
{
    if ((int)op < 0 || op >= AG_BINARY_COUNT) return NAN;
    return binary_fn[op](a, b);
}

rt ref_unary(ag_unary_op op, const rt *x, double p0, double p1)
{
    if (!rt_valid(x) || (int)op < 0 || op >= AG_UNARY_COUNT) return rt_invalid();
    rt y = rt_new(x->ndim, x->shape);
    int64_t n = rt_numel(x);
    for (int64_t i = 0; i < n && y.data; i++) y.data[i] = unary_fn[op](x->data[i], p0, p1);
    return y;
}

bool ref_broadcast_shape(int na, const int64_t *sa, int nb, const int64_t *sb, int *nout,
                         int64_t *out)
{
    int n = na > nb ? na : nb;
    for (int i = 0; i < n; i++) {
        int ia = i - (n - na), ib = i - (n - nb);
        int64_t da = ia >= 0 ? sa[ia] : 1, db = ib >= 0 ? sb[ib] : 1;
        if (da != db && da != 1 && db != 1) return false;
        out[i] = da == 1 ? db : da;
    }
    *nout = n;
    return true;
}

rt ref_binary(ag_binary_op op, const rt *a, const rt *b)
{
    if (!rt_valid(a) || !rt_valid(b) || (int)op < 0 || op >= AG_BINARY_COUNT) return rt_invalid();
    int n;
    int64_t shape[AG_MAX_DIMS], idx[AG_MAX_DIMS];
    if (!ref_broadcast_shape(a->ndim, a->shape, b->ndim, b->shape, &n, shape)) return rt_invalid();
    rt y = rt_new(n, shape);
    int64_t total = rt_numel(&y);
    for (int64_t i = 0; i < total && y.data; i++) {
        unravel(i, n, shape, idx);
        y.data[i] = binary_fn[op](bget(a, n, idx), bget(b, n, idx));
    }
    return y;
}

rt ref_where(const rt *cond, const rt *a, const rt *b)
{
    if (!rt_valid(cond) || !rt_valid(a) || !rt_valid(b)) return rt_invalid();
    int n1, n;
    int64_t s1[AG_MAX_DIMS], shape[AG_MAX_DIMS], idx[AG_MAX_DIMS];
    if (!ref_broadcast_shape(a->ndim, a->shape, b->ndim, b->shape, &n1, s1) ||
        !ref_broadcast_shape(cond->ndim, cond->shape, n1, s1, &n, shape))
        return rt_invalid();
    rt y = rt_new(n, shape);
    int64_t total = rt_numel(&y);
    for (int64_t i = 0; i < total && y.data; i++) {
        unravel(i, n, shape, idx);
        y.data[i] = bget(cond, n, idx) != 0 ? bget(a, n, idx) : bget(b, n, idx);
    }
    return y;
}

/* ---- reductions --------------------------------------------------------- */

/* Marks the reduced axes and builds the output shape; false on a bad axis. */
static bool reduce_plan(const rt *x, int naxes, const int *axes, bool keepdim, bool *red,
                        int *ondim, int64_t *oshape, int64_t *kshape)
{
    for (int i = 0; i < AG_MAX_DIMS; i++) red[i] = naxes == 0;
    for (int k = 0; k < naxes; k++) {
        int a = norm_axis(axes[k], x->ndim);
        if (a < 0 || red[a]) return false;
        red[a] = true;
    }
    int o = 0;
    for (int i = 0; i < x->ndim; i++) {
        kshape[i] = red[i] ? 1 : x->shape[i];
        if (!red[i] || keepdim) oshape[o++] = kshape[i];
    }
    *ondim = o;
    return true;
}

/* Output offset (in the keepdim shape) of input element flat. */
static int64_t reduce_target(const rt *x, const bool *red, const int64_t *kshape, int64_t flat)
{
    int64_t idx[AG_MAX_DIMS];
    unravel(flat, x->ndim, x->shape, idx);
    for (int i = 0; i < x->ndim; i++)
        if (red[i]) idx[i] = 0;
    return ravel(x->ndim, kshape, idx);
}

/* Position of flat along the single reduced axis. */
static int64_t reduce_pos(const rt *x, const bool *red, int64_t flat)
{
    int64_t idx[AG_MAX_DIMS];
    unravel(flat, x->ndim, x->shape, idx);
    for (int i = 0; i < x->ndim; i++)
        if (red[i]) return idx[i];
    return 0;
}

rt ref_reduce(ag_reduce_op op, const rt *x, int naxes, const int *axes, bool keepdim)
{
    if (!rt_valid(x) || (int)op < 0 || op >= AG_REDUCE_COUNT) return rt_invalid();
    bool arg = op == AG_REDUCE_ARGMAX || op == AG_REDUCE_ARGMIN;
    if (arg && (naxes != 1 || x->ndim == 0)) {
        /* argmax of a 0-dim tensor is 0, as in PyTorch */
        if (x->ndim == 0 && naxes <= 1) return rt_scalar(0);
        return rt_invalid();
    }
    bool red[AG_MAX_DIMS];
    int ondim;
    int64_t oshape[AG_MAX_DIMS], kshape[AG_MAX_DIMS];
    if (!reduce_plan(x, naxes, axes, keepdim, red, &ondim, oshape, kshape)) return rt_invalid();
    rt y = rt_new(ondim, oshape);
    int64_t m = rt_numel(&y), n = rt_numel(x), count = m ? n / m : 0;
    double *best = malloc((size_t)(m ? m : 1) * sizeof(double));
    bool *seen = calloc((size_t)(m ? m : 1), sizeof(bool));
    if (!y.data || !best || !seen) {
        free(best), free(seen), rt_free(&y);
        return rt_invalid();
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t t = reduce_target(x, red, kshape, i);
        double v = x->data[i];
        switch (op) {
        case AG_REDUCE_SUM:
        case AG_REDUCE_MEAN: y.data[t] += v; break;
        case AG_REDUCE_MAX:
        case AG_REDUCE_MIN:
            if (!seen[t] || isnan(v) || (!isnan(best[t]) && (op == AG_REDUCE_MAX ? v > best[t] : v < best[t])))
                best[t] = v;
            seen[t] = true;
            y.data[t] = best[t];
            break;
        default: /* arg: the first NaN wins, else the first strict extreme */
            if (!seen[t] || (isnan(v) && !isnan(best[t])) ||
                (!isnan(best[t]) && (op == AG_REDUCE_ARGMAX ? v > best[t] : v < best[t]))) {
                best[t] = v;
                y.data[t] = (double)reduce_pos(x, red, i);
            }
            seen[t] = true;
            break;
        }
    }
    if (op == AG_REDUCE_MEAN)
        for (int64_t t = 0; t < m; t++) y.data[t] /= (double)count;
    free(best);
    free(seen);
    return y;
}

rt ref_var(const rt *x, int naxes, const int *axes, int correction, bool keepdim)
{
    rt mean = ref_reduce(AG_REDUCE_MEAN, x, naxes, axes, true);
    if (!rt_valid(&mean)) return mean;
    bool red[AG_MAX_DIMS];
    int ondim;
    int64_t oshape[AG_MAX_DIMS], kshape[AG_MAX_DIMS];
    reduce_plan(x, naxes, axes, keepdim, red, &ondim, oshape, kshape);
    rt y = rt_new(ondim, oshape);
    int64_t n = rt_numel(x), m = rt_numel(&y), count = m ? n / m : 0;
    for (int64_t i = 0; i < n && y.data; i++) {
        int64_t t = reduce_target(x, red, kshape, i);
        double d = x->data[i] - mean.data[t];
        y.data[t] += d * d;
    }
    double denom = (double)(count - correction);
    for (int64_t t = 0; t < m && y.data; t++) y.data[t] /= denom > 0 ? denom : 0.0;
    rt_free(&mean);
    return y;
}

/* ---- linear algebra ----------------------------------------------------- */

rt ref_matmul(const rt *a, const rt *b)
{
    if (!rt_valid(a) || !rt_valid(b) || a->ndim == 0 || b->ndim == 0) return rt_invalid();
    /* promote 1-D operands the way torch.matmul does, then drop the added axes */
    int64_t as[AG_MAX_DIMS + 1], bs[AG_MAX_DIMS + 1];
    int an = a->ndim, bn = b->ndim;
    if (an == 1) { as[0] = 1; as[1] = a->shape[0]; an = 2; }
    else memcpy(as, a->shape, sizeof(int64_t) * (size_t)an);
    if (bn == 1) { bs[0] = b->shape[0]; bs[1] = 1; bn = 2; }
    else memcpy(bs, b->shape, sizeof(int64_t) * (size_t)bn);
    int64_t M = as[an - 2], K = as[an - 1], N = bs[bn - 1];
    if (bs[bn - 2] != K) return rt_invalid();
    int nb;
    int64_t batch[AG_MAX_DIMS];
    if (!ref_broadcast_shape(an - 2, as, bn - 2, bs, &nb, batch) || nb + 2 > AG_MAX_DIMS)
        return rt_invalid();
    rt a2 = *a, b2 = *b; /* same data, promoted shapes */
    a2.ndim = an, b2.ndim = bn;
    memcpy(a2.shape, as, sizeof(int64_t) * (size_t)an);
    memcpy(b2.shape, bs, sizeof(int64_t) * (size_t)bn);
    int64_t oshape[AG_MAX_DIMS];
    memcpy(oshape, batch, sizeof(int64_t) * (size_t)nb);
    oshape[nb] = M, oshape[nb + 1] = N;
    rt y = rt_new(nb + 2, oshape);
    int64_t nbatch = numel_of(nb, batch), idx[AG_MAX_DIMS];
    for (int64_t bi = 0; bi < nbatch && y.data; bi++) {
        /* element [batch..., 0, 0] of each operand under broadcasting */
        unravel(bi, nb, batch, idx);
        idx[nb] = idx[nb + 1] = 0;
        const double *ap = a2.data + boff(&a2, nb + 2, idx);
        const double *bp = b2.data + boff(&b2, nb + 2, idx);
        double *yp = y.data + bi * M * N;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double acc = 0;
                for (int64_t k = 0; k < K; k++) acc += ap[i * K + k] * bp[k * N + j];
                yp[i * N + j] = acc;
            }
    }
    /* drop promoted axes */
    int yn = nb + 2;
    if (b->ndim == 1) yn--;              /* the N = 1 axis is last */
    if (a->ndim == 1) {                   /* the M = 1 axis sits before it */
        y.shape[nb] = y.shape[nb + 1];
        yn--;
    }
    y.ndim = yn;
    return y;
}

rt ref_linear(const rt *x, const rt *w, const rt *b)
{
    if (!rt_valid(x) || !rt_valid(w) || w->ndim != 2 || x->ndim < 1) return rt_invalid();
    int64_t in = w->shape[1], out = w->shape[0];
    if (x->shape[x->ndim - 1] != in) return rt_invalid();
    if (b && (!rt_valid(b) || b->ndim != 1 || b->shape[0] != out)) return rt_invalid();
    int64_t shape[AG_MAX_DIMS];
    memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    shape[x->ndim - 1] = out;
    rt y = rt_new(x->ndim, shape);
    int64_t rows = rt_numel(x) / (in ? in : 1);
    for (int64_t r = 0; r < rows && y.data; r++)
        for (int64_t o = 0; o < out; o++) {
            double s = b ? b->data[o] : 0.0;
            for (int64_t k = 0; k < in; k++) s += x->data[r * in + k] * w->data[o * in + k];
            y.data[r * out + o] = s;
        }
    return y;
}

/* ---- softmax and losses ------------------------------------------------- */

rt ref_softmax(const rt *x, int axis, bool log_form)
{
    if (!rt_valid(x)) return rt_invalid();
    if (x->ndim == 0) {
        if (axis != 0 && axis != -1) return rt_invalid();
        return rt_scalar(isnan(x->data[0]) ? NAN : (log_form ? 0.0 : 1.0));
    }
    int a = norm_axis(axis, x->ndim);
    if (a < 0) return rt_invalid();
    rt y = rt_new(x->ndim, x->shape);
    int64_t outer, n, inner;
    split_axis(x, a, &outer, &n, &inner);
    for (int64_t o = 0; o < outer && y.data; o++)
        for (int64_t in = 0; in < inner; in++) {
            const double *xs = x->data + o * n * inner + in;
            double *ys = y.data + o * n * inner + in;
            double m = -INFINITY;
            for (int64_t i = 0; i < n; i++) m = fmax(m, xs[i * inner]);
            double s = 0;
            for (int64_t i = 0; i < n; i++) s += exp(xs[i * inner] - m);
            for (int64_t i = 0; i < n; i++)
                ys[i * inner] = log_form ? xs[i * inner] - m - log(s) : exp(xs[i * inner] - m) / s;
        }
    return y;
}

/* Applies a reduction to per-element losses (consumes l). */
static rt reduce_loss(rt l, ag_reduction red)
{
    if (!rt_valid(&l) || red == AG_REDUCTION_NONE) return l;
    if (red != AG_REDUCTION_MEAN && red != AG_REDUCTION_SUM) {
        rt_free(&l);
        return rt_invalid();
    }
    rt y = ref_reduce(red == AG_REDUCTION_MEAN ? AG_REDUCE_MEAN : AG_REDUCE_SUM, &l, 0, NULL, false);
    rt_free(&l);
    return y;
}

rt ref_mse(const rt *pred, const rt *target, ag_reduction red)
{
    rt d = ref_binary(AG_BINARY_SUB, pred, target);
    for (int64_t i = 0; i < rt_numel(&d); i++) d.data[i] *= d.data[i];
    return reduce_loss(d, red);
}

rt ref_cross_entropy(const rt *logits, const rt *labels, ag_reduction red, double smoothing)
{
    if (!rt_valid(logits) || !rt_valid(labels) || logits->ndim != 2 || labels->ndim != 1 ||
        labels->shape[0] != logits->shape[0])
        return rt_invalid();
    int64_t N = logits->shape[0], C = logits->shape[1];
    rt lsm = ref_softmax(logits, 1, true);
    rt l = rt_new(1, &N);
    for (int64_t n = 0; n < N && l.data && lsm.data; n++) {
        if (!is_index(labels->data[n], C)) {
            l.data[n] = NAN;
            continue;
        }
        int64_t y = (int64_t)labels->data[n];
        double s = 0;
        for (int64_t c = 0; c < C; c++) {
            double q = (1.0 - smoothing) * (c == y) + smoothing / (double)C;
            s -= q * lsm.data[n * C + c];
        }
        l.data[n] = s;
    }
    rt_free(&lsm);
    return reduce_loss(l, red);
}

rt ref_nll(const rt *log_probs, const rt *labels, ag_reduction red)
{
    if (!rt_valid(log_probs) || !rt_valid(labels) || log_probs->ndim != 2 || labels->ndim != 1 ||
        labels->shape[0] != log_probs->shape[0])
        return rt_invalid();
    int64_t N = log_probs->shape[0], C = log_probs->shape[1];
    rt l = rt_new(1, &N);
    for (int64_t n = 0; n < N && l.data; n++)
        l.data[n] = is_index(labels->data[n], C) ? -log_probs->data[n * C + (int64_t)labels->data[n]] : NAN;
    return reduce_loss(l, red);
}

rt ref_bce_with_logits(const rt *logits, const rt *targets, ag_reduction red)
{
    if (!rt_valid(logits) || !rt_valid(targets)) return rt_invalid();
    int n;
    int64_t shape[AG_MAX_DIMS], idx[AG_MAX_DIMS];
    if (!ref_broadcast_shape(logits->ndim, logits->shape, targets->ndim, targets->shape, &n, shape))
        return rt_invalid();
    rt l = rt_new(n, shape);
    for (int64_t i = 0; i < rt_numel(&l) && l.data; i++) {
        unravel(i, n, shape, idx);
        double x = bget(logits, n, idx), t = bget(targets, n, idx);
        /* -[t log s(x) + (1-t) log(1-s(x))] written without overflow */
        l.data[i] = fmax(x, 0.0) - x * t + log1p(exp(-fabs(x)));
    }
    return reduce_loss(l, red);
}

/* ---- neural-network ops ------------------------------------------------- */

rt ref_conv2d(const rt *x, const rt *w, const rt *b, const ag_conv2d_params *p)
{
    ag_conv2d_params d = {{1, 1}, {0, 0}, {1, 1}, 1};
    if (p) d = *p;
    if (!rt_valid(x) || !rt_valid(w) || x->ndim != 4 || w->ndim != 4 || d.groups < 1)
        return rt_invalid();
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t OC = w->shape[0], CG = w->shape[1], KH = w->shape[2], KW = w->shape[3];
    int64_t G = d.groups;
    if (C % G || OC % G || CG != C / G) return rt_invalid();
    if (b && (!rt_valid(b) || b->ndim != 1 || b->shape[0] != OC)) return rt_invalid();
    for (int i = 0; i < 2; i++)
        if (d.stride[i] < 1 || d.dilation[i] < 1 || d.padding[i] < 0) return rt_invalid();
    int64_t nh = H + 2 * d.padding[0] - (int64_t)d.dilation[0] * (KH - 1) - 1;
    int64_t nw = W + 2 * d.padding[1] - (int64_t)d.dilation[1] * (KW - 1) - 1;
    if (nh < 0 || nw < 0) return rt_invalid();
    int64_t OH = nh / d.stride[0] + 1, OW = nw / d.stride[1] + 1;
    int64_t shape[4] = {N, OC, OH, OW};
    rt y = rt_new(4, shape);
    int64_t OCG = OC / G;
    for (int64_t n = 0; n < N && y.data; n++)
        for (int64_t oc = 0; oc < OC; oc++) {
            int64_t g = oc / OCG;
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    double s = b ? b->data[oc] : 0.0;
                    for (int64_t ic = 0; ic < CG; ic++)
                        for (int64_t kh = 0; kh < KH; kh++)
                            for (int64_t kw = 0; kw < KW; kw++) {
                                int64_t ih = oh * d.stride[0] - d.padding[0] + kh * d.dilation[0];
                                int64_t iw = ow * d.stride[1] - d.padding[1] + kw * d.dilation[1];
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                s += x->data[((n * C + g * CG + ic) * H + ih) * W + iw] *
                                     w->data[((oc * CG + ic) * KH + kh) * KW + kw];
                            }
                    y.data[((n * OC + oc) * OH + oh) * OW + ow] = s;
                }
        }
    return y;
}

rt ref_pool2d(bool max, const rt *x, const ag_pool2d_params *p)
{
    if (!rt_valid(x) || !p || x->ndim != 4) return rt_invalid();
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t KH = p->kernel[0], KW = p->kernel[1];
    int64_t SH = p->stride[0], SW = p->stride[1], PH = p->padding[0], PW = p->padding[1];
    if (KH < 1 || KW < 1 || SH < 1 || SW < 1 || PH < 0 || PW < 0) return rt_invalid();
    int64_t nh = H + 2 * PH - KH, nw = W + 2 * PW - KW;
    if (nh < 0 || nw < 0) return rt_invalid();
    int64_t OH = nh / SH + 1, OW = nw / SW + 1;
    int64_t shape[4] = {N, C, OH, OW};
    rt y = rt_new(4, shape);
    for (int64_t nc = 0; nc < N * C && y.data; nc++)
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                double acc = max ? -INFINITY : 0.0;
                for (int64_t kh = 0; kh < KH; kh++)
                    for (int64_t kw = 0; kw < KW; kw++) {
                        int64_t ih = oh * SH - PH + kh, iw = ow * SW - PW + kw;
                        if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue; /* padding */
                        double v = x->data[(nc * H + ih) * W + iw];
                        /* once acc is NaN, "v > acc" stays false: NaN propagates */
                        if (max) acc = (isnan(v) || v > acc) ? v : acc;
                        else acc += v;
                    }
                y.data[(nc * OH + oh) * OW + ow] = max ? acc : acc / (double)(KH * KW);
            }
    return y;
}

rt ref_batch_norm(const rt *x, rt *running_mean, rt *running_var, const rt *w, const rt *b,
                  bool training, double momentum, double eps)
{
    if (!rt_valid(x) || x->ndim < 2) return rt_invalid();
    int64_t N = x->shape[0], C = x->shape[1];
    int64_t S = numel_of(x->ndim - 2, x->shape + 2), cnt = N * S;
    const rt *chk[4] = {running_mean, running_var, w, b};
    for (int i = 0; i < 4; i++)
        if (chk[i] && (!rt_valid(chk[i]) || rt_numel(chk[i]) != C)) return rt_invalid();
    if (!training && (!running_mean || !running_var)) return rt_invalid();
    rt y = rt_new(x->ndim, x->shape);
    for (int64_t c = 0; c < C && y.data; c++) {
        double mean, var;
        if (training) {
            double s = 0, q = 0;
            for (int64_t n = 0; n < N; n++)
                for (int64_t k = 0; k < S; k++) s += x->data[(n * C + c) * S + k];
            mean = s / (double)cnt;
            for (int64_t n = 0; n < N; n++)
                for (int64_t k = 0; k < S; k++) {
                    double dv = x->data[(n * C + c) * S + k] - mean;
                    q += dv * dv;
                }
            var = q / (double)cnt;
            if (running_mean)
                running_mean->data[c] = (1 - momentum) * running_mean->data[c] + momentum * mean;
            if (running_var)
                running_var->data[c] = (1 - momentum) * running_var->data[c] +
                                       momentum * (cnt > 1 ? q / (double)(cnt - 1) : NAN);
        } else {
            mean = running_mean->data[c];
            var = running_var->data[c];
        }
        double rstd = 1.0 / sqrt(var + eps);
        double g = w ? w->data[c] : 1.0, h = b ? b->data[c] : 0.0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t k = 0; k < S; k++) {
                int64_t i = (n * C + c) * S + k;
                y.data[i] = (x->data[i] - mean) * rstd * g + h;
            }
    }
    return y;
}

rt ref_attention(const rt *q, const rt *k, const rt *v, const rt *mask, bool causal, double scale)
{
    if (!rt_valid(q) || !rt_valid(k) || !rt_valid(v) || (mask && !rt_valid(mask)) || q->ndim < 2 ||
        k->ndim < 2 || v->ndim < 2)
        return rt_invalid();
    rt kt = ref_transpose(k, k->ndim - 2, k->ndim - 1);
    rt s = ref_matmul(q, &kt);
    rt_free(&kt);
    if (!rt_valid(&s)) return s;
    double sc = scale != 0.0 ? scale : 1.0 / sqrt((double)q->shape[q->ndim - 1]);
    int64_t n = rt_numel(&s), L = s.shape[s.ndim - 2], S = s.shape[s.ndim - 1];
    for (int64_t i = 0; i < n; i++) {
        s.data[i] *= sc;
        if (causal && i % S > (i / S) % L) s.data[i] = -INFINITY;
    }
    if (mask) {
        rt t = ref_binary(AG_BINARY_ADD, &s, mask);
        rt_free(&s);
        s = t;
    }
    rt w = ref_softmax(&s, s.ndim - 1, false);
    rt_free(&s);
    rt y = ref_matmul(&w, v);
    rt_free(&w);
    return y;
}

rt ref_layer_norm(const rt *x, int normalized_ndim, const rt *w, const rt *b, double eps)
{
    if (!rt_valid(x) || normalized_ndim < 1 || normalized_ndim > x->ndim) return rt_invalid();
    int64_t D = numel_of(normalized_ndim, x->shape + x->ndim - normalized_ndim);
    if ((w && (!rt_valid(w) || rt_numel(w) != D)) || (b && (!rt_valid(b) || rt_numel(b) != D)))
        return rt_invalid();
    rt y = rt_new(x->ndim, x->shape);
    int64_t rows = D ? rt_numel(x) / D : 0;
    for (int64_t r = 0; r < rows && y.data; r++) {
        const double *xs = x->data + r * D;
        double s = 0, q = 0;
        for (int64_t i = 0; i < D; i++) s += xs[i];
        double mean = s / (double)D;
        for (int64_t i = 0; i < D; i++) q += (xs[i] - mean) * (xs[i] - mean);
        double rstd = 1.0 / sqrt(q / (double)D + eps);
        for (int64_t i = 0; i < D; i++)
            y.data[r * D + i] = (xs[i] - mean) * rstd * (w ? w->data[i] : 1.0) + (b ? b->data[i] : 0.0);
    }
    return y;
}

rt ref_embedding(const rt *indices, const rt *weight)
{
    if (!rt_valid(indices) || !rt_valid(weight) || weight->ndim != 2 || indices->ndim >= AG_MAX_DIMS)
        return rt_invalid();
    int64_t V = weight->shape[0], D = weight->shape[1], shape[AG_MAX_DIMS];
    memcpy(shape, indices->shape, sizeof(int64_t) * (size_t)indices->ndim);
    shape[indices->ndim] = D;
    rt y = rt_new(indices->ndim + 1, shape);
    int64_t n = rt_numel(indices);
    for (int64_t i = 0; i < n && y.data; i++) {
        bool ok = is_index(indices->data[i], V);
        for (int64_t d = 0; d < D; d++)
            y.data[i * D + d] = ok ? weight->data[(int64_t)indices->data[i] * D + d] : NAN;
    }
    return y;
}

rt ref_concat(int n, const rt *const *ts, int axis)
{
    if (n < 1 || !rt_valid(ts[0]) || ts[0]->ndim == 0) return rt_invalid();
    int nd = ts[0]->ndim, a = norm_axis(axis, nd);
    if (a < 0) return rt_invalid();
    int64_t shape[AG_MAX_DIMS];
    memcpy(shape, ts[0]->shape, sizeof shape);
    shape[a] = 0;
    for (int k = 0; k < n; k++) {
        if (!rt_valid(ts[k]) || ts[k]->ndim != nd) return rt_invalid();
        for (int i = 0; i < nd; i++)
            if (i != a && ts[k]->shape[i] != ts[0]->shape[i]) return rt_invalid();
        shape[a] += ts[k]->shape[a];
    }
    rt y = rt_new(nd, shape);
    int64_t outer, total, inner, at = 0;
    split_axis(&y, a, &outer, &total, &inner);
    for (int k = 0; k < n && y.data; k++) {
        int64_t len = ts[k]->shape[a];
        for (int64_t o = 0; o < outer; o++)
            memcpy(y.data + (o * total + at) * inner, ts[k]->data + o * len * inner,
                   sizeof(double) * (size_t)(len * inner));
        at += len;
    }
    return y;
}

rt ref_stack(int n, const rt *const *ts, int axis)
{
    if (n < 1 || n > 64 || !rt_valid(ts[0])) return rt_invalid();
    int nd = ts[0]->ndim + 1, a = norm_axis(axis, nd);
    if (a < 0 || nd > AG_MAX_DIMS) return rt_invalid();
    rt parts[64];
    const rt *ptrs[64];
    for (int k = 0; k < n; k++) {
        if (!rt_valid(ts[k]) || !rt_same_shape(ts[k], ts[0])) {
            for (int j = 0; j < k; j++) rt_free(&parts[j]);
            return rt_invalid();
        }
        parts[k] = ref_unsqueeze(ts[k], a);
        ptrs[k] = &parts[k];
    }
    rt y = ref_concat(n, ptrs, a);
    for (int k = 0; k < n; k++) rt_free(&parts[k]);
    return y;
}

rt ref_gather(const rt *x, int axis, const rt *index)
{
    if (!rt_valid(x) || !rt_valid(index) || index->ndim != x->ndim) return rt_invalid();
    int a = x->ndim ? norm_axis(axis, x->ndim) : 0;
    if (a < 0) return rt_invalid();
    rt y = rt_new(index->ndim, index->shape);
    int64_t idx[AG_MAX_DIMS];
    for (int64_t i = 0; i < rt_numel(index) && y.data; i++) {
        unravel(i, index->ndim, index->shape, idx);
        double k = index->data[i];
        bool ok = x->ndim == 0 ? k == 0 : is_index(k, x->shape[a]);
        for (int d = 0; d < x->ndim; d++)
            if (d != a && idx[d] >= x->shape[d]) ok = false;
        if (x->ndim) idx[a] = (int64_t)k;
        y.data[i] = ok ? x->data[ravel(x->ndim, x->shape, idx)] : NAN;
    }
    return y;
}

rt ref_scatter_add(const rt *x, int axis, const rt *index, const rt *src)
{
    if (!rt_valid(x) || !rt_valid(index) || !rt_valid(src) || index->ndim != x->ndim ||
        src->ndim != x->ndim)
        return rt_invalid();
    int a = x->ndim ? norm_axis(axis, x->ndim) : 0;
    if (a < 0) return rt_invalid();
    for (int d = 0; d < x->ndim; d++)
        if (index->shape[d] > src->shape[d] || (d != a && index->shape[d] > x->shape[d]))
            return rt_invalid();
    rt y = rt_clone(x);
    int64_t idx[AG_MAX_DIMS];
    for (int64_t i = 0; i < rt_numel(index) && y.data; i++) {
        unravel(i, index->ndim, index->shape, idx);
        double s = src->data[ravel(src->ndim, src->shape, idx)], k = index->data[i];
        if (x->ndim == 0) {
            if (k == 0) y.data[0] += s;
            continue;
        }
        if (!is_index(k, x->shape[a])) continue; /* skipped, as the backend contract says */
        idx[a] = (int64_t)k;
        y.data[ravel(x->ndim, x->shape, idx)] += s;
    }
    return y;
}

/* ---- views -------------------------------------------------------------- */

rt ref_permute(const rt *x, const int *perm)
{
    if (!rt_valid(x)) return rt_invalid();
    int nd = x->ndim, p[AG_MAX_DIMS];
    bool used[AG_MAX_DIMS] = {false};
    int64_t shape[AG_MAX_DIMS], oidx[AG_MAX_DIMS], iidx[AG_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        p[i] = norm_axis(perm[i], nd);
        if (p[i] < 0 || used[p[i]]) return rt_invalid();
        used[p[i]] = true;
        shape[i] = x->shape[p[i]];
    }
    rt y = rt_new(nd, shape);
    for (int64_t o = 0; o < rt_numel(&y) && y.data; o++) {
        unravel(o, nd, shape, oidx);
        for (int i = 0; i < nd; i++) iidx[p[i]] = oidx[i];
        y.data[o] = x->data[ravel(nd, x->shape, iidx)];
    }
    return y;
}

rt ref_transpose(const rt *x, int d0, int d1)
{
    if (!rt_valid(x)) return rt_invalid();
    int a = norm_axis(d0, x->ndim), b = norm_axis(d1, x->ndim), perm[AG_MAX_DIMS];
    if (a < 0 || b < 0) return rt_invalid();
    for (int i = 0; i < x->ndim; i++) perm[i] = i;
    perm[a] = b, perm[b] = a;
    return ref_permute(x, perm);
}

rt ref_slice(const rt *x, int axis, int64_t start, int64_t end, int64_t step)
{
    if (!rt_valid(x) || step < 1) return rt_invalid();
    int a = norm_axis(axis, x->ndim);
    if (a < 0) return rt_invalid();
    int64_t size = x->shape[a];
    /* Python slice rules: negative bounds count from the end, then clamp */
    if (start < 0) start += size;
    if (end < 0) end += size;
    start = start < 0 ? 0 : (start > size ? size : start);
    end = end < 0 ? 0 : (end > size ? size : end);
    int64_t count = end > start ? (end - start + step - 1) / step : 0;
    int64_t shape[AG_MAX_DIMS], idx[AG_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[a] = count;
    rt y = rt_new(x->ndim, shape);
    for (int64_t o = 0; o < rt_numel(&y) && y.data; o++) {
        unravel(o, x->ndim, shape, idx);
        idx[a] = start + idx[a] * step;
        y.data[o] = x->data[ravel(x->ndim, x->shape, idx)];
    }
    return y;
}

rt ref_expand(const rt *x, int ndim, const int64_t *shape)
{
    if (!rt_valid(x) || ndim < x->ndim || ndim > AG_MAX_DIMS) return rt_invalid();
    int64_t s[AG_MAX_DIMS], idx[AG_MAX_DIMS];
    int lead = ndim - x->ndim;
    for (int i = 0; i < ndim; i++) {
        int64_t have = i >= lead ? x->shape[i - lead] : 1;
        s[i] = shape[i] == -1 ? have : shape[i];
        if (s[i] < 0 || (i < lead && shape[i] == -1) || (have != 1 && have != s[i]))
            return rt_invalid();
    }
    rt y = rt_new(ndim, s);
    for (int64_t o = 0; o < rt_numel(&y) && y.data; o++) {
        unravel(o, ndim, s, idx);
        y.data[o] = bget(x, ndim, idx);
    }
    return y;
}

rt ref_reshape(const rt *x, int ndim, const int64_t *shape)
{
    if (!rt_valid(x) || ndim < 0 || ndim > AG_MAX_DIMS) return rt_invalid();
    int64_t s[AG_MAX_DIMS], known = 1;
    int infer = -1;
    for (int i = 0; i < ndim; i++) {
        s[i] = shape[i];
        if (s[i] == -1) {
            if (infer >= 0) return rt_invalid();
            infer = i;
        } else if (s[i] < 0) {
            return rt_invalid();
        } else {
            known *= s[i];
        }
    }
    int64_t n = rt_numel(x);
    if (infer >= 0) {
        if (known == 0 || n % known) return rt_invalid();
        s[infer] = n / known;
    }
    if (numel_of(ndim, s) != n) return rt_invalid();
    return rt_from(x->data, ndim, s);
}

rt ref_squeeze(const rt *x, int axis)
{
    if (!rt_valid(x)) return rt_invalid();
    int a = norm_axis(axis, x->ndim);
    if (a < 0) return rt_invalid();
    if (x->shape[a] != 1) return rt_clone(x); /* PyTorch: squeezing a non-1 axis is a no-op */
    int64_t s[AG_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < x->ndim; i++)
        if (i != a) s[k++] = x->shape[i];
    return rt_from(x->data, k, s);
}

rt ref_unsqueeze(const rt *x, int axis)
{
    if (!rt_valid(x) || x->ndim >= AG_MAX_DIMS) return rt_invalid();
    int a = norm_axis(axis, x->ndim + 1);
    if (a < 0) return rt_invalid();
    int64_t s[AG_MAX_DIMS];
    for (int i = 0, k = 0; i <= x->ndim; i++) s[i] = i == a ? 1 : x->shape[k++];
    return rt_from(x->data, x->ndim + 1, s);
}

rt ref_flatten(const rt *x, int start_axis, int end_axis)
{
    if (!rt_valid(x)) return rt_invalid();
    if (x->ndim == 0) return rt_from(x->data, 1, (int64_t[]){1});
    int a = norm_axis(start_axis, x->ndim), b = norm_axis(end_axis, x->ndim);
    if (a < 0 || b < 0 || a > b) return rt_invalid();
    int64_t s[AG_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < a; i++) s[k++] = x->shape[i];
    s[k++] = numel_of(b - a + 1, x->shape + a);
    for (int i = b + 1; i < x->ndim; i++) s[k++] = x->shape[i];
    return rt_from(x->data, k, s);
}
