/* Argument checks and launch plans that do not depend on the backend
 * (backends/common/plan_*.c). Errors read "<backend> <op>: ...", backend being the
 * name the caller passes ("opencl", "vulkan"; "cpu" for the checks the CPU
 * backend shares).
 *
 * A plan is plain data: the parameter blocks both GPU backends hand their
 * kernels (plain 4-byte members, so OpenCL kernel structs and Vulkan parameter
 * blocks match them member for member) and the sizes that pick a kernel. Each
 * backend launches a plan with its own API and adds only what depends on its
 * device. */
#ifndef AG_PLAN_H
#define AG_PLAN_H

#include "backend.h"

/* ---- gather and scatter_add (plan_index.c) --------------------------------- */

/* torch's rules for gather and scatter_add (views valid, int32 index, dtypes,
 * ranks and sizes); *ax receives the axis made non-negative. backend NULL: the
 * messages start with the op (the CPU's). */
ag_status ag_gather_check(const char *backend, int axis, const ag_view *y, const ag_view *x,
                          const ag_view *index, int *ax);
ag_status ag_scatter_add_check(const char *backend, int axis, const ag_view *y,
                               const ag_view *index, const ag_view *src, int *ax);

/* No two positions of v share an element (a sufficient test). */
bool ag_view_no_overlap(const ag_view *v);

/* Laid out as the gather kernel's parameters. */
typedef struct ag_gather_params {
    ag_shape32 sh;
    ag_strides32 ys, is, xs;
    int32_t size, xsa;
} ag_gather_params;

/* Checks (as ag_gather_check) and lays out a gather. */
ag_status ag_gather_plan(const char *backend, int axis, const ag_view *y, const ag_view *x,
                         const ag_view *index, ag_gather_params *p);

/* scatter_add's kernels; their parameters are laid out as these structs. */
typedef enum ag_scatter_path {
    AG_SCATTER_NONE,    /* nothing to add */
    AG_SCATTER_SERIAL,  /* y overlaps itself: one work-item adds everything */
    AG_SCATTER_SCAN,    /* each element of y reads its whole index line */
    AG_SCATTER_SORT,    /* keys, a bitonic sort of each line, then runs */
} ag_scatter_path;

typedef struct ag_scatter_serial_params {
    ag_shape32 sh;
    ag_strides32 is, ss, ys;
    int32_t size, ysa;
} ag_scatter_serial_params;
typedef struct ag_scatter_scan_params {
    ag_shape32 sh;
    ag_strides32 ys, is, ss, ks;
    int32_t L, isa, ssa;
} ag_scatter_scan_params;
typedef struct ag_scatter_keys_params {
    ag_shape32 qsh;
    ag_strides32 qs;
    int32_t L, log_lp, isa, size;
} ag_scatter_keys_params;
typedef struct ag_scatter_runs_params {
    ag_shape32 lsh;
    ag_strides32 ys, ss, qs;
    int32_t L, log_lp, size, ysa, ssa;
} ag_scatter_runs_params;

typedef struct ag_scatter_plan {
    ag_scatter_path path;
    union {
        ag_scatter_serial_params serial;
        ag_scatter_scan_params scan;
        struct {
            ag_scatter_keys_params keys;
            ag_scatter_runs_params runs;
            int64_t total;   /* keys: one per entry of each padded line */
            int64_t entries; /* index elements: scatter_runs' work-items */
        } sort;
    };
} ag_scatter_plan;

/* Checks (as ag_scatter_add_check) and picks the cheaper way by an operation
 * count; sorting needs total * 8 bytes of keys, at most max_key_bytes. */
ag_status ag_scatter_add_plan(const char *backend, int axis, const ag_view *y,
                              const ag_view *index, const ag_view *src, uint64_t max_key_bytes,
                              ag_scatter_plan *p);

/* ---- 2-D pooling (plan_pool.c) ---------------------------------------------- */

/* Laid out as the pooling kernels' dimensions. */
typedef struct ag_pool_dims {
    int32_t planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw;
} ag_pool_dims;

typedef struct ag_pool_plan {
    ag_pool_dims d;
    int32_t off[3];     /* element offsets of x (or dx), y (or dy), indices (0 when absent) */
    const ag_view *idx; /* the indices, for max pooling only */
    float inv;          /* 1 / (kh * kw) */
    int64_t n;          /* elements the op writes; 0: nothing to do */
} ag_pool_plan;

/* Every backend's rules (the CPU's too): valid parameters, x [N, C, H, W] and
 * y [N, C, OH, OW] f32 with OH, OW what the window gives, indices int32 of y's
 * shape when given, all contiguous; errors name x and y as the op does. */
ag_status ag_pool2d_check(const char *backend, const char *op, ag_pool_op kind,
                         const ag_pool2d_params *p, const ag_view *x, const char *xname,
                         const ag_view *y, const char *yname, const ag_view *idx);

/* Checks x [N, C, H, W], y [N, C, OH, OW] and indices (max pooling: int32, y's
 * shape, when given), all contiguous and int32-indexable. */
ag_status ag_pool2d_plan(const char *backend, ag_pool_op op, const ag_pool2d_params *p,
                         const ag_view *y, const ag_view *indices, const ag_view *x,
                         ag_pool_plan *pl);
/* The same for dx and dy; max pooling needs the indices. */
ag_status ag_pool2d_backward_plan(const char *backend, ag_pool_op op, const ag_pool2d_params *p,
                                  const ag_view *dx, const ag_view *dy, const ag_view *indices,
                                  ag_pool_plan *pl);

/* ---- 2-D convolution (plan_conv.c) ------------------------------------------ */

/* The kernels' geometry (kernels/conv.cl, backends/vulkan/shaders/conv.glsl): tiled
 * implicit-GEMM kernels with AG_CONV_TILE x AG_CONV_TILE output tiles,
 * AG_CONV_TILE_WG work-items a group and AG_CONV_TILE_K reduction steps a
 * slice; direct kernels with AG_CONV_CB channels a work-item. */
#define AG_CONV_TILE 64
#define AG_CONV_TILE_WG 256
#define AG_CONV_TILE_K 16
#define AG_CONV_CB 4

/* Laid out as the kernels' dimensions (conv_p, ConvDims). */
typedef struct ag_conv_dims {
    int32_t n, c, h, w, oc, kh, kw, oh, ow;
    int32_t sh, sw, ph, pw, dlh, dlw;
    int32_t g, cg, ocg;
} ag_conv_dims;

typedef struct ag_conv_plan {
    const char *op;
    ag_conv_dims d;
    /* element offsets of the output and the two inputs, in the order every
     * kernel takes them: forward y, x, w; backward input dx, dy, w; backward
     * weight dw, dy, x */
    int32_t out_off, a_off, b_off;
    int64_t numel;             /* elements the op writes; 0: nothing to do */
    int64_t m, n, k;           /* the op as a GEMM per group: m x n outputs, k deep */
    int64_t direct;            /* direct kernel: work-items (forward, backward input), or
                                * work groups, one per AG_CONV_CB output channels, input
                                * channel and tap (backward weight) */
    bool tiled;                /* the shape suits the tiled kernel (the device must too);
                                * the fields below are set only then */
    int32_t tiles_m, tiles_n;
    /* backward weight: the reduction split by shape alone, so that the result
     * does not depend on the device, into parts partial sums of chunk steps
     * (a multiple of AG_CONV_TILE_K); 1 part for the other ops */
    int64_t parts;
    int32_t chunk;
    int64_t groups;            /* parts * g * tiles_m * tiles_n work groups */
} ag_conv_plan;

/* Checks the views (4-D, f32, contiguous, int32-indexable) and parameters. */
ag_status ag_conv2d_plan(const char *backend, const ag_conv2d_params *p, const ag_view *y,
                         const ag_view *x, const ag_view *w, ag_conv_plan *pl);
ag_status ag_conv2d_backward_input_plan(const char *backend, const ag_conv2d_params *p,
                                        const ag_view *dx, const ag_view *dy, const ag_view *w,
                                        ag_conv_plan *pl);
ag_status ag_conv2d_backward_weight_plan(const char *backend, const ag_conv2d_params *p,
                                         const ag_view *dw, const ag_view *dy, const ag_view *x,
                                         ag_conv_plan *pl);
/* AG_ERR_UNSUPPORTED when count work groups overflow the kernels' int group id. */
ag_status ag_conv_groups_check(const char *backend, const ag_conv_plan *pl, int64_t count);

/* ---- GEMM (plan_gemm.c) ----------------------------------------------------- */

/* A 2-D or 3-D view as batch, rows, columns and their strides (a batch of one
 * for 2-D). */
typedef struct ag_mat3 {
    int64_t nb, rows, cols, bs, rs, cs;
} ag_mat3;

/* gemm's rules on every backend (the CPU's too): f32 views, c [B, M, N] = a
 * [B, M, K] b [B, K, N], each 2-D or 3-D, a batch of one broadcasting (its bs
 * becomes 0), c's last axis contiguous. */
ag_status ag_gemm_check(const char *backend, const ag_view *c, const ag_view *a,
                        const ag_view *b, ag_mat3 *mc, ag_mat3 *ma, ag_mat3 *mb);

/* One product as element strides (C's column stride is 1) and its buffers. */
typedef struct ag_gemm_desc {
    int64_t nb, m, n, k;
    int64_t a_off, a_rs, a_cs, a_bs;
    int64_t b_off, b_rs, b_cs, b_bs;
    int64_t c_off, c_rs, c_bs;
    float alpha, beta;
    const ag_buffer *a, *b, *c;
} ag_gemm_desc;

/* Laid out as the head of the GEMM kernels' parameters (ag_gemm in
 * kernels/gemm.cl, Params in backends/vulkan/shaders/gemm.glsl). */
typedef struct ag_gemm_dims32 {
    int32_t m, n, k;
    int32_t a_off, a_rs, a_cs, a_bs;
    int32_t b_off, b_rs, b_cs, b_bs;
    int32_t c_off, c_rs, c_bs;
} ag_gemm_dims32;

typedef enum ag_gemm_path {
    AG_GEMM_NONE,    /* C is empty */
    AG_GEMM_SCALE,   /* K == 0 or alpha == 0: C = beta C, A and B unread (as in BLAS) */
    AG_GEMM_PRODUCT,
} ag_gemm_path;

/* Checks c = alpha a @ b + beta c on [B, M, K] x [B, K, N] -> [B, M, N] views
 * (2-D: one batch; a batch of one broadcasts) and describes it: size-1 axes
 * get unit strides, a B shared by the batch folds into one product of B * M
 * rows when A and C stack, and one batch has batch strides 0. Sizes are
 * int32-indexable with 256 to spare. */
ag_status ag_gemm_plan(const char *backend, float alpha, float beta, const ag_view *c,
                       const ag_view *a, const ag_view *b, ag_gemm_desc *d, ag_gemm_path *path);
ag_gemm_dims32 ag_gemm_dims32_of(const ag_gemm_desc *d);

/* ---- fused optimizer step (plan_optim.c) ------------------------------------ */

enum { AG_OPTIM_KERNEL_SGD, AG_OPTIM_KERNEL_RMSPROP, AG_OPTIM_KERNEL_ADAM };

/* Laid out as optim_hp in kernels/optim.cl. */
typedef struct ag_optim_hp {
    float lr, wd, mom, damp, alpha, eps, b1, b2;
    float step_size, bc2_sqrt, decay, l2; /* Adam's bias corrections, AdamW's decay */
    int32_t first, nesterov, has_s0, has_s1;
} ag_optim_hp;

/* Laid out as Params in backends/vulkan/shaders/optim_step.comp: the OpenCL kernel's
 * arguments in order. */
typedef struct ag_optim_plan {
    int32_t kind, n;          /* AG_OPTIM_KERNEL_*, elements */
    int32_t po, go, s0o, s1o; /* element offsets of param, grad, s0, s1 (0 when unused) */
    ag_optim_hp hp;
} ag_optim_plan;

/* Checks the step (1-based, known kind) and the views (f32, contiguous,
 * param's element count, the states the rule uses present) and computes the
 * hyperparameters as backends/cpu/cpu_optim.c does. hp.has_s0 and hp.has_s1
 * say whether s0 and s1 are used. */
ag_status ag_optim_step_plan(const char *backend, const ag_optim_args *o, const ag_view *param,
                             const ag_view *grad, const ag_view *s0, const ag_view *s1,
                             ag_optim_plan *pl);

/* ---- reductions (plan_reduce.c) --------------------------------------------- */

static inline bool ag_reduce_is_arg(ag_reduce_op op)
{
    return op == AG_REDUCE_ARGMAX || op == AG_REDUCE_ARGMIN;
}

/* y = reduce(x) on every backend (the CPU's too): x's axes split into kept
 * axes (the output index space: shape kshape, strides kxs in x and kys in y)
 * and reduced axes (shape rshape, strides rxs in x), each set ordered by
 * decreasing |x stride| (stable) and merged where the layout allows; at least
 * one reduced axis (of size 1 when nothing is reduced). vertical: a kept axis
 * is denser in x than the reduced ones. */
typedef struct ag_reduce_axes {
    int nk, nr;
    int64_t kshape[AG_MAX_DIMS], kxs[AG_MAX_DIMS], kys[AG_MAX_DIMS];
    int64_t rshape[AG_MAX_DIMS], rxs[AG_MAX_DIMS];
    int64_t nout, nred; /* outputs, elements reduced into each */
    bool vertical;
} ag_reduce_axes;

/* The op's name ("sum", ..., "argmin"); NULL for an unknown op. */
const char *ag_reduce_name(ag_reduce_op op);

/* The rules of every backend's reduce: a known op, valid views, x f32 and y
 * f32 (int32 for an arg reduction), y with x's axes each x's or 1, an arg
 * reduction over one axis, max/min/arg never over an empty axis (unless y is
 * empty); then the split. */
ag_status ag_reduce_check(const char *backend, ag_reduce_op op, const ag_view *y,
                          const ag_view *x, ag_reduce_axes *ax);

/* One pass of a reduction: the kept axes (the output index space: shape ks,
 * strides kx in x and ky in y) and the reduced axes (shape rs, strides rx in
 * x), laid out as the reduce kernels take them. */
typedef struct ag_reduce_pass {
    ag_shape32 ks, rs;
    ag_strides32 kx, ky, rx;
    int64_t nout, nred; /* outputs, elements reduced into each */
    float count;        /* elements reduced in all: what a mean divides by */
    bool has_idx;       /* x comes with int32 indices (an arg reduction's partials) */
    bool vertical;      /* a kept axis is denser in x than the reduced ones */
} ag_reduce_pass;

/* How a pass runs: groups of local = tx * ty items, tx outputs a group and ty
 * items an output, the reduction cut into nch chunks of chunk elements. */
typedef struct ag_reduce_launch {
    int64_t tx, ty, chunk, nch, local, groups;
} ag_reduce_launch;

/* What a backend lends ag_reduce_run. */
typedef struct ag_reduce_device {
    void *ctx;
    int64_t wg;            /* the most items a group (a power of two) */
    int64_t target_groups; /* groups that keep the device busy */
    ag_buffer *(*alloc)(void *ctx, size_t bytes); /* NULL + error on failure */
    void (*release)(void *ctx, ag_buffer *buf);   /* may run before launched passes finish */
    /* Launches pass p as l sizes it: reads x (and xi, its indices, when
     * p->has_idx) and writes values to yv, or indices to yi for an arg
     * reduction (an unused buffer is NULL). final: the last pass, which writes
     * y (a mean divides there) rather than l.nch partial results an output. */
    ag_status (*launch)(void *ctx, ag_reduce_op op, const ag_reduce_pass *p,
                        const ag_reduce_launch *l, bool final, const ag_buffer *x,
                        const ag_buffer *xi, const ag_buffer *yv, const ag_buffer *yi);
} ag_reduce_device;

/* y = reduce(x) with the CPU's rules (y has x's axes, each x's or 1; arg
 * reductions write int32 over one axis), in as many passes as the plan needs:
 * a pass that splits the reduction into chunks writes partial results to
 * temporary buffers, reduced by the next. */
ag_status ag_reduce_run(const char *backend, const ag_reduce_device *dev, ag_reduce_op op,
                        const ag_view *y, const ag_view *x);

/* ---- layer and batch norm (plan_norm.c) ------------------------------------- */

/* The optional views a norm kernel uses: bits of its parameters' has member
 * (kernels/norm.cl and backends/vulkan/shaders/norm.glsl define the same). */
enum {
    AG_NORM_HAS_GAMMA = 1, AG_NORM_HAS_BETA = 2, AG_NORM_HAS_MEAN = 4, AG_NORM_HAS_RSTD = 8,
    AG_NORM_HAS_RMEAN = 16, AG_NORM_HAS_RVAR = 32, AG_NORM_HAS_DX = 64,
    AG_NORM_HAS_DGAMMA = 128, AG_NORM_HAS_DBETA = 256
};

/* The views' element offsets (0 for an absent one), laid out as norm_offs in
 * kernels/norm.cl and the tail of Params in backends/vulkan/shaders/norm.glsl. */
typedef struct ag_norm_offs {
    int32_t x, y, dy, dx, mean, rstd, gamma, beta, rmean, rvar, dgamma, dbeta;
} ag_norm_offs;

typedef struct ag_norm_plan {
    int32_t n, c, s;   /* x as [N, C, S]; layer norm: [1, rows, D] */
    ag_norm_offs off;
    /* the per-row (layer norm) or per-channel (batch norm) kernels: the views
     * they use, cpg channels a group, groups groups of wg items; groups 0:
     * they do not run */
    int32_t has, cpg;
    int64_t wg, groups;
    /* layer norm backward's dgamma / dbeta: sums over chunks of chunk_rows
     * rows (nchunk partials, added in order when more than one) by blocks of
     * param_cpg columns, groups of param_wg items; blocks 0: not needed */
    int32_t param_has, param_cpg, chunk_rows, nchunk;
    int64_t param_wg, blocks;
} ag_norm_plan;

/* Checks the views as backends/cpu/cpu_norm.c does (the row length of layer
 * norm comes from mean, else gamma, else x's last axis) and lays out the work
 * for a device whose reductions take wg items a group (a power of two). */
ag_status ag_layer_norm_plan(const char *backend, const ag_norm_args *a, bool backward,
                             int64_t wg, ag_norm_plan *p);
ag_status ag_batch_norm_plan(const char *backend, const ag_norm_args *a, bool backward,
                             int64_t wg, ag_norm_plan *p);

/* ---- softmax, log-softmax and cross entropy (plan_softmax.c) ---------------- */

typedef struct ag_rows_plan {
    int64_t rows, cols; /* the op runs along rows of cols elements */
    bool empty;         /* nothing to compute */
    /* element offsets: softmax x, y; its backward dx, dy, y; cross entropy
     * logits, labels, the per-row view (loss or dloss), dlogits */
    int32_t off[4];
    int32_t ls, ps;     /* cross entropy: the strides of labels and the per-row view */
} ag_rows_plan;

/* Rows over work groups: tpr items a row (a power of two), local items a
 * group, groups groups. */
typedef struct ag_rows_launch {
    int64_t tpr, local, groups;
} ag_rows_launch;

/* Checks contiguous f32 views as backends/cpu/cpu_softmax.c does: y (dy, dx)
 * with x's (y's) element count and last axis. */
ag_status ag_softmax_plan(const char *backend, bool log, const ag_view *y, const ag_view *x,
                          ag_rows_plan *p);
ag_status ag_softmax_backward_plan(const char *backend, bool log, const ag_view *dx,
                                   const ag_view *dy, const ag_view *y, ag_rows_plan *p);
/* logits (and dlogits) [N, C] contiguous f32, labels int32 [N], loss (dloss)
 * f32 [N]; the [N] views may be strided. */
ag_status ag_cross_entropy_plan(const char *backend, const ag_view *loss, const ag_view *logits,
                                const ag_view *labels, ag_rows_plan *p);
ag_status ag_cross_entropy_backward_plan(const char *backend, const ag_view *dlogits,
                                         const ag_view *dloss, const ag_view *logits,
                                         const ag_view *labels, ag_rows_plan *p);
/* About four columns an item, more items while the device (busy with
 * target_groups groups of wg items, wg a power of two) would idle, one group
 * a row once rows are wide, narrow rows packed several to a group;
 * pow2_rows: rows a group rounded up to a power of two. */
ag_rows_launch ag_rows_launch_plan(const ag_rows_plan *p, int64_t wg, int64_t target_groups,
                                   bool pow2_rows);

#endif /* AG_PLAN_H */
