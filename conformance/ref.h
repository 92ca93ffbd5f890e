/* Independent double-precision reference for the forward pass of every anygrad op.
 *
 * Written from the mathematical definitions (PyTorch semantics where the header is
 * silent), never from library code, so the tests compare two independent
 * implementations. Tensors are dense row-major doubles; there are no views and no
 * autograd: view ops are index mappings that copy, and gradients are checked by
 * finite differences of these functions (harness.c).
 *
 * Every function returns a new rt the caller frees with rt_free(). Arguments the
 * reference cannot make sense of give an invalid rt (ndim == -1, data NULL); the
 * harness reports that as a test failure. Integer tensors (labels, indices) are
 * rt holding whole numbers.
 */
#ifndef AG_TEST_REF_H
#define AG_TEST_REF_H

#include <stdbool.h>
#include <stdint.h>

#include "anygrad.h"

typedef struct rt {
    int ndim;                    /* 0 = scalar, -1 = invalid */
    int64_t shape[AG_MAX_DIMS];
    double *data;
} rt;

/* ---- storage ------------------------------------------------------------ */

rt rt_new(int ndim, const int64_t *shape);            /* zero-filled */
rt rt_from(const double *values, int ndim, const int64_t *shape);
rt rt_scalar(double v);
rt rt_clone(const rt *a);
rt rt_invalid(void);
void rt_free(rt *a);                                  /* leaves an invalid rt */
int64_t rt_numel(const rt *a);
bool rt_valid(const rt *a);
bool rt_same_shape(const rt *a, const rt *b);
double rt_dot(const rt *a, const rt *b);              /* sum a*b, same numel */
/* "[2, 3]" into buf; returns buf. */
const char *rt_shape_str(int ndim, const int64_t *shape, char *buf, int size);

/* ---- element-wise ------------------------------------------------------- */

double ref_unary1(ag_unary_op op, double x, double p0, double p1);
double ref_binary1(ag_binary_op op, double a, double b);
rt ref_unary(ag_unary_op op, const rt *x, double p0, double p1);
bool ref_broadcast_shape(int na, const int64_t *sa, int nb, const int64_t *sb, int *nout,
                         int64_t *out);
rt ref_binary(ag_binary_op op, const rt *a, const rt *b);
rt ref_where(const rt *cond, const rt *a, const rt *b);

/* ---- reductions --------------------------------------------------------- */

/* SUM, MEAN, MAX, MIN over axes (naxes == 0: all); ARGMAX/ARGMIN need naxes == 1
 * and give the first extreme index (a NaN counts as the extreme, like PyTorch). */
rt ref_reduce(ag_reduce_op op, const rt *x, int naxes, const int *axes, bool keepdim);
rt ref_var(const rt *x, int naxes, const int *axes, int correction, bool keepdim);

/* ---- linear algebra ----------------------------------------------------- */

rt ref_matmul(const rt *a, const rt *b);              /* torch.matmul rules */
rt ref_linear(const rt *x, const rt *w, const rt *b); /* b may be NULL */

/* ---- softmax and losses ------------------------------------------------- */

rt ref_softmax(const rt *x, int axis, bool log);
rt ref_mse(const rt *pred, const rt *target, ag_reduction red);
rt ref_cross_entropy(const rt *logits, const rt *labels, ag_reduction red, double smoothing);
rt ref_nll(const rt *log_probs, const rt *labels, ag_reduction red);
rt ref_bce_with_logits(const rt *logits, const rt *targets, ag_reduction red);

/* ---- neural-network ops ------------------------------------------------- */

rt ref_conv2d(const rt *x, const rt *w, const rt *b, const ag_conv2d_params *p);
rt ref_pool2d(bool max, const rt *x, const ag_pool2d_params *p);
/* Training: batch statistics (biased variance) normalise; when running_mean /
 * running_var are given they move by momentum towards the batch mean and the
 * unbiased variance (updated in place). Eval: the running stats normalise. */
rt ref_batch_norm(const rt *x, rt *running_mean, rt *running_var, const rt *w, const rt *b,
                  bool training, double momentum, double eps);
rt ref_layer_norm(const rt *x, int normalized_ndim, const rt *w, const rt *b, double eps);
/* softmax(q k^T scale + mask) v; scale 0: 1 / sqrt(E); causal masks key j > query i */
rt ref_attention(const rt *q, const rt *k, const rt *v, const rt *mask, bool causal, double scale);
rt ref_embedding(const rt *indices, const rt *weight);
rt ref_concat(int n, const rt *const *ts, int axis);
rt ref_stack(int n, const rt *const *ts, int axis);
rt ref_gather(const rt *x, int axis, const rt *index);
rt ref_scatter_add(const rt *x, int axis, const rt *index, const rt *src);

/* ---- views as index mappings ------------------------------------------- */

rt ref_permute(const rt *x, const int *perm);
rt ref_transpose(const rt *x, int d0, int d1);
rt ref_slice(const rt *x, int axis, int64_t start, int64_t end, int64_t step);
rt ref_expand(const rt *x, int ndim, const int64_t *shape);   /* -1 keeps a size */
rt ref_reshape(const rt *x, int ndim, const int64_t *shape);  /* one -1 allowed */
rt ref_squeeze(const rt *x, int axis);
rt ref_unsqueeze(const rt *x, int axis);
rt ref_flatten(const rt *x, int start_axis, int end_axis);

#endif /* AG_TEST_REF_H */
