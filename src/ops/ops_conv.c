/* 2-D convolution and pooling (NCHW). The kernels need contiguous tensors; the
 * bias of a convolution is a broadcast add, so autograd gives its gradient. */
#include <stdio.h>

#include "core.h"

static void shape_str(const ag_tensor *t, char *buf, size_t size)
{
    ag__shape_fmt(t->ndim, t->shape, buf, size);
}

/* ---- conv2d ------------------------------------------------------------------- */

static void conv_params_store(ag_node *n, const ag_conv2d_params *p) { n->p.conv = *p; }

static ag_conv2d_params conv_params_load(const ag_node *n) { return n->p.conv; }

static ag_status conv2d_bwd(ag_node *n, ag_tensor *gy, ag_tensor **gx)
{
    ag_conv2d_params p = conv_params_load(n);
    ag_tensor *x = n->in[0], *w = n->in[1];
    ag_tensor *g = ag__contiguous(gy);
    if (!g) return ag_last_status();
    ag_device *dev = ag__dev(g);
    ag_view vg = ag__view(g);
    /* a saved operand is missing only if requires_grad changed after the forward */
    if (x->requires_grad && n->saved[1]) {
        ag_tensor *dx = ag__empty_like(x);
        if (!dx) return ag_last_status();
        ag_view vdx = ag__view(dx), vw = ag__view(n->saved[1]);
        ag_status s = AG_LAUNCH(dev, conv2d_backward_input, &p, &vdx, &vg, &vw);
        if (s) return s;
        gx[0] = dx;
    }
    if (w->requires_grad && n->saved[0]) {
        ag_tensor *dw = ag__empty_like(w);
        if (!dw) return ag_last_status();
        ag_view vdw = ag__view(dw), vx = ag__view(n->saved[0]);
        ag_status s = AG_LAUNCH(dev, conv2d_backward_weight, &p, &vdw, &vg, &vx);
        if (s) return s;
        gx[1] = dw;
    }
    return AG_OK;
}

static bool conv_error(const char *why, const ag_tensor *x, const ag_tensor *w)
{
    char sx[160], sw[160];
    shape_str(x, sx, sizeof sx);
    shape_str(w, sw, sizeof sw);
    ag_set_error(AG_ERR_SHAPE, "conv2d: %s (input %s, weight %s)", why, sx, sw);
    return false;
}

/* Validates everything and gives the output's spatial size. */
static bool conv_check(ag_tensor *x, ag_tensor *w, ag_tensor *b, const ag_conv2d_params *p,
                       int64_t *oh, int64_t *ow)
{
    if (!ag__check("conv2d", x, AG_F32) || !ag__check("conv2d", w, AG_F32)) return false;
    if (b && !ag__check("conv2d", b, AG_F32)) return false;
    if (!ag__same_device("conv2d", x, w) || (b && !ag__same_device("conv2d", x, b))) return false;
    if (p->stride[0] < 1 || p->stride[1] < 1 || p->padding[0] < 0 || p->padding[1] < 0 ||
        p->dilation[0] < 1 || p->dilation[1] < 1 || p->groups < 1) {
        ag_set_error(AG_ERR_ARG,
                     "conv2d: bad parameters stride (%d, %d), padding (%d, %d), dilation (%d, %d), "
                     "groups %d: strides, dilations and groups must be >= 1, padding >= 0",
                     p->stride[0], p->stride[1], p->padding[0], p->padding[1], p->dilation[0],
                     p->dilation[1], p->groups);
        return false;
    }
    if (x->ndim != 4 || w->ndim != 4)
        return conv_error("expected input [N, C, H, W] and weight [OC, C/groups, KH, KW]", x, w);
    int64_t c = x->shape[1], oc = w->shape[0], g = p->groups;
    if (c % g || oc % g) {
        char why[160];
        snprintf(why, sizeof why, "groups %d must divide the input channels %lld and the output "
                 "channels %lld", p->groups, (long long)c, (long long)oc);
        return conv_error(why, x, w);
    }
    if (w->shape[1] != c / g) {
        char why[160];
        snprintf(why, sizeof why, "weight axis 1 must be C/groups = %lld", (long long)(c / g));
        return conv_error(why, x, w);
    }
    if (w->shape[2] < 1 || w->shape[3] < 1) return conv_error("empty kernel", x, w);
    if (b && (b->ndim != 1 || b->shape[0] != oc)) {
        char sb[160], sw[160];
        shape_str(b, sb, sizeof sb);
        shape_str(w, sw, sizeof sw);
        ag_set_error(AG_ERR_SHAPE, "conv2d: bias %s must be [%lld] for weight %s", sb,
                     (long long)oc, sw);
        return false;
    }
    /* An expanded weight may have a kernel axis near AG_MAX_NUMEL: keep the
     * dilated extent from overflowing. */
    for (int k = 0; k < 2; k++)
        if (w->shape[2 + k] - 1 > AG_MAX_NUMEL / p->dilation[k])
            return conv_error("the dilated kernel is too large", x, w);
    int64_t eh = x->shape[2] + 2 * (int64_t)p->padding[0] - (int64_t)p->dilation[0] * (w->shape[2] - 1) - 1;
    int64_t ew = x->shape[3] + 2 * (int64_t)p->padding[1] - (int64_t)p->dilation[1] * (w->shape[3] - 1) - 1;
    if (eh < 0 || ew < 0)
        return conv_error("the dilated kernel is larger than the padded input", x, w);
    *oh = eh / p->stride[0] + 1;
    *ow = ew / p->stride[1] + 1;
    return true;
}

ag_tensor *ag_conv2d(ag_tensor *x, ag_tensor *weight, ag_tensor *bias, const ag_conv2d_params *p)
{
    static const ag_conv2d_params defaults = {{1, 1}, {0, 0}, {1, 1}, 1};
    if (!p) p = &defaults;
    int64_t oh = 0, ow = 0;
    if (!conv_check(x, weight, bias, p, &oh, &ow)) return NULL;
    ag_scope_begin();
    ag_tensor *xc = ag__contiguous(x), *wc = ag__contiguous(weight);
    int64_t shape[4] = {x->shape[0], weight->shape[0], oh, ow};
    ag_tensor *y = xc && wc ? ag__empty_on(ag__dev(x), AG_F32, 4, shape) : NULL;
    if (y) {
        ag_view vy = ag__view(y), vx = ag__view(xc), vw = ag__view(wc);
        ag_tensor *in[2] = {x, weight};
        ag_node *n = NULL;
        if (AG_LAUNCH(ag__dev(x), conv2d, p, &vy, &vx, &vw) != AG_OK ||
            ag__record(y, "conv2d", conv2d_bwd, 2, in, &n) != AG_OK)
            y = NULL;
        if (n) {
            conv_params_store(n, p);
            /* each gradient needs only the other operand */
            if ((weight->requires_grad && ag__save(n, 0, xc) != AG_OK) ||
                (x->requires_grad && ag__save(n, 1, wc) != AG_OK))
                y = NULL;
        }
    }
    if (y && bias) {
        int64_t bshape[4] = {1, weight->shape[0], 1, 1};
        y = ag_add(y, ag_reshape(bias, 4, bshape));
    }
    return ag__done(y);
}

/* ---- pooling --------------------------------------------------------------------- */

static ag_pool2d_params pool_params_load(const ag_node *n) { return n->p.pool.p; }

static ag_status pool2d_bwd(ag_node *n, ag_tensor *gy, ag_tensor **gx)
{
    ag_pool2d_params p = pool_params_load(n);
    ag_pool_op op = n->p.pool.op;
    ag_tensor *g = ag__contiguous(gy);
    ag_tensor *dx = g ? ag__empty_like(n->in[0]) : NULL;
    if (!dx) return ag_last_status();
    ag_view vdx = ag__view(dx), vg = ag__view(g), vi = {0};
    if (op == AG_POOL_MAX) vi = ag__view(n->saved[0]);
    gx[0] = dx;
    return AG_LAUNCH(ag__dev(dx), pool2d_backward, op, &p, &vdx, &vg, op == AG_POOL_MAX ? &vi : NULL);
}

static ag_tensor *pool2d(const char *name, ag_pool_op op, ag_tensor *x, const ag_pool2d_params *p)
{
    if (!ag__check(name, x, AG_F32)) return NULL;
    if (!p) return ag_set_error(AG_ERR_ARG, "%s: parameters are NULL", name), NULL;
    for (int k = 0; k < 2; k++)
        if (p->kernel[k] < 1 || p->stride[k] < 1 || p->padding[k] < 0 ||
            p->padding[k] > p->kernel[k] / 2)
            return ag_set_error(AG_ERR_ARG,
                                "%s: bad parameters kernel (%d, %d), stride (%d, %d), padding "
                                "(%d, %d): kernel and stride must be >= 1 and padding in "
                                "[0, kernel / 2]",
                                name, p->kernel[0], p->kernel[1], p->stride[0], p->stride[1],
                                p->padding[0], p->padding[1]), NULL;
    char sx[160];
    shape_str(x, sx, sizeof sx);
    if (x->ndim != 4)
        return ag_set_error(AG_ERR_SHAPE, "%s: expected input [N, C, H, W], got %s", name, sx),
               NULL;
    int64_t eh = x->shape[2] + 2 * (int64_t)p->padding[0] - p->kernel[0];
    int64_t ew = x->shape[3] + 2 * (int64_t)p->padding[1] - p->kernel[1];
    if (eh < 0 || ew < 0)
        return ag_set_error(AG_ERR_SHAPE, "%s: kernel (%d, %d) is larger than the padded input %s",
                            name, p->kernel[0], p->kernel[1], sx), NULL;
    int64_t shape[4] = {x->shape[0], x->shape[1], eh / p->stride[0] + 1, ew / p->stride[1] + 1};

    ag_scope_begin();
    ag_tensor *xc = ag__contiguous(x);
    ag_tensor *y = xc ? ag__empty_on(ag__dev(x), AG_F32, 4, shape) : NULL;
    ag_tensor *idx = y && op == AG_POOL_MAX ? ag__empty_on(ag__dev(x), AG_I32, 4, shape) : NULL;
    if (op == AG_POOL_MAX && !idx) y = NULL;
    if (y) {
        ag_view vy = ag__view(y), vx = ag__view(xc), vi = {0};
        if (idx) vi = ag__view(idx);
        ag_node *n = NULL;
        if (AG_LAUNCH(ag__dev(x), pool2d, op, p, &vy, idx ? &vi : NULL, &vx) != AG_OK ||
            ag__record(y, name, pool2d_bwd, 1, &x, &n) != AG_OK)
            y = NULL;
        if (n) {
            n->p.pool.op = op;
            n->p.pool.p = *p;
            if (idx && ag__save(n, 0, idx) != AG_OK) y = NULL;
        }
    }
    return ag__done(y);
}

ag_tensor *ag_max_pool2d(ag_tensor *x, const ag_pool2d_params *p)
{
    return pool2d("max_pool2d", AG_POOL_MAX, x, p);
}

ag_tensor *ag_avg_pool2d(ag_tensor *x, const ag_pool2d_params *p)
{
    return pool2d("avg_pool2d", AG_POOL_AVG, x, p);
}
