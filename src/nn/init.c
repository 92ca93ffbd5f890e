/* Parameter initialisation in place (torch.nn.init), drawing from the global
 * Philox generator on the tensor's own device. */
#include <math.h>

#include "core.h"

static bool check_f32(const char *op, const ag_tensor *t)
{
    if (!t) return ag_set_error(AG_ERR_ARG, "%s: tensor is NULL", op), false;
    return ag__check(op, t, AG_F32);
}

/* Draws into a fresh contiguous tensor on t's device, then copies into t, so
 * views and parameters alike are filled without autograd. */
static ag_status fill_random(const char *op, ag_tensor *t, ag_rand_dist dist, float a, float b)
{
    if (!check_f32(op, t)) return ag_last_status();
    if (!(a == a) || !(b == b) || (dist == AG_RAND_UNIFORM && !(a <= b)) ||
        (dist == AG_RAND_NORMAL && !(b >= 0.0f)))
        return ag_set_error(AG_ERR_ARG, "%s: bad distribution parameters (%g, %g)", op, a, b);
    ag_device *dev = ag__dev(t);
    ag_status s = AG_OK;
    ag_scope_begin();
    ag_tensor *tmp = ag__empty_on(dev, AG_F32, t->ndim, t->shape);
    if (!tmp) {
        s = ag_last_status();
    } else {
        ag_rand_args r = {.dist = dist, .a = a, .b = b};
        ag__rng_next(&r.seed, &r.stream);
        ag_view vt = ag__view(tmp), vd = ag__view(t);
        s = AG_LAUNCH(dev, rand, &r, &vt);
        if (s == AG_OK) {
            ag__bump_version(t);
            s = AG_LAUNCH(dev, copy, &vd, &vt);
        }
    }
    ag_scope_end();
    return s;
}

ag_status ag_init_uniform(ag_tensor *t, float lo, float hi)
{
    return fill_random("ag_init_uniform", t, AG_RAND_UNIFORM, lo, hi);
}

ag_status ag_init_normal(ag_tensor *t, float mean, float std)
{
    return fill_random("ag_init_normal", t, AG_RAND_NORMAL, mean, std);
}

ag_status ag_init_constant(ag_tensor *t, float value)
{
    if (!check_f32("ag_init_constant", t)) return ag_last_status();
    ag_view v = ag__view(t);
    ag__bump_version(t);
    return AG_LAUNCH(ag__dev(t), fill, &v, (double)value);
}

/* torch.nn.init._calculate_fan_in_and_fan_out */
static bool fans(const char *op, const ag_tensor *t, double *fan_in, double *fan_out)
{
    if (!check_f32(op, t)) return false;
    if (t->ndim < 2) {
        char s[64];
        ag__shape_fmt(t->ndim, t->shape, s, sizeof s);
        ag_set_error(AG_ERR_SHAPE, "%s: fans need a tensor of 2 or more dimensions, got %s", op,
                     s);
        return false;
    }
    double rf = 1.0;
    for (int d = 2; d < t->ndim; d++) rf *= (double)t->shape[d];
    *fan_in = (double)t->shape[1] * rf;
    *fan_out = (double)t->shape[0] * rf;
    if (*fan_in == 0.0 || *fan_out == 0.0) {
        ag_set_error(AG_ERR_SHAPE, "%s: a tensor with no elements has no fan", op);
        return false;
    }
    return true;
}

static ag_status kaiming(const char *op, ag_tensor *t, float a, ag_fan_mode mode, bool uniform)
{
    double fi, fo;
    if (!fans(op, t, &fi, &fo)) return ag_last_status();
    if (mode != AG_FAN_IN && mode != AG_FAN_OUT)
        return ag_set_error(AG_ERR_ARG, "%s: unknown fan mode %d", op, (int)mode);
    double gain = sqrt(2.0 / (1.0 + (double)a * a));
    double std = gain / sqrt(mode == AG_FAN_IN ? fi : fo);
    if (!uniform) return fill_random(op, t, AG_RAND_NORMAL, 0.0f, (float)std);
    float bound = (float)(sqrt(3.0) * std);
    return fill_random(op, t, AG_RAND_UNIFORM, -bound, bound);
}

ag_status ag_init_kaiming_uniform(ag_tensor *t, float a, ag_fan_mode mode)
{
    return kaiming("ag_init_kaiming_uniform", t, a, mode, true);
}

ag_status ag_init_kaiming_normal(ag_tensor *t, float a, ag_fan_mode mode)
{
    return kaiming("ag_init_kaiming_normal", t, a, mode, false);
}

static ag_status xavier(const char *op, ag_tensor *t, float gain, bool uniform)
{
    double fi, fo;
    if (!fans(op, t, &fi, &fo)) return ag_last_status();
    double std = (double)gain * sqrt(2.0 / (fi + fo));
    if (!uniform) return fill_random(op, t, AG_RAND_NORMAL, 0.0f, (float)std);
    float bound = (float)(sqrt(3.0) * std);
    return fill_random(op, t, AG_RAND_UNIFORM, -bound, bound);
}

ag_status ag_init_xavier_uniform(ag_tensor *t, float gain)
{
    return xavier("ag_init_xavier_uniform", t, gain, true);
}

ag_status ag_init_xavier_normal(ag_tensor *t, float gain)
{
    return xavier("ag_init_xavier_normal", t, gain, false);
}
