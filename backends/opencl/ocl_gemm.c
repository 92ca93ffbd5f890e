/* SGEMM on [B, M, K] x [B, K, N] views, two ways:
 * - CLBlast (loaded at run time, ocl_loader.c) on GPUs and other non-CPU
 *   devices for products of at least GEMM_CLBLAST_MIN multiply-adds;
 * - the kernels of kernels/gemm.cl otherwise, and for good on a device once
 *   CLBlast has returned an error there (other than out of memory, which is
 *   returned as AG_ERR_OOM): local-memory tiles on GPUs, a register-blocked
 *   kernel without local memory on CPU devices, one work-item per output for
 *   tiny products and views with no unit stride.
 *
 * On PoCL (2 cores of a Xeon with AVX-512, LLVM 15) the own CPU kernel was
 * 2.5-4x faster than CLBlast 1.5.3 at every size from 16^3 to 1024^3 (CLBlast
 * costs about 15 us a call more even at 16^3), so CPU devices use CLBlast only
 * when it is forced.
 *
 * AG_OPENCL_GEMM forces a path (read on every call, for tests):
 *   own            the own kernels, chosen as usual (CLBlast is not called);
 *   own:tiled      the local-memory kernels whatever the device; own:tiled128,
 *                  own:tiled64, own:tiled32, own:tiled16 one tile size;
 *   own:reg        the CPU kernel;  own:simple  one work-item per output;
 *   clblast        CLBlast for every product it can express, whatever its size
 *                  and device (layouts it cannot take, and its errors, still go
 *                  to the own kernels).
 * Unset or anything else: the automatic choice above. AG_OPENCL_CLBLAST=0
 * keeps CLBlast from being loaded at all (ocl_loader.c).
 *
 * CLBlast 1.5.3 notes:
 * - CLBlastSgemmStridedBatched ignores a batch stride that is not the packed
 *   matrix size (0 for a broadcast operand included) whenever its fast path
 *   needs no copy of that operand: on PoCL, [3, 1024, 1024] @ [1024, 1024]
 *   with B's batch stride 0 gave wrong results (no error). It only gets packed
 *   batches here; a broadcast B folds into one product when A and C stack
 *   (below), other broadcasts go to the own kernels.
 * - It compiles its kernels on first use: 13 s for the single GEMM and another
 *   23 s for the batched one on PoCL here; PoCL's kernel cache
 *   (~/.cache/pocl) brings later processes down to about 0.1 s.
 * - beta == 0 does not read C (checked with C full of NaN, both its direct
 *   and its indirect kernels). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ocl.h"
#include "plan.h"

/* The size from which CLBlast beats the own tiled kernel on GPUs. Not
 * measured (no GPU here): CLBlast's fixed cost of about 15 us a call (host
 * side, measured on PoCL) is as much as the own kernel needs for a 256^3
 * product at a few TFLOP/s. */
#define GEMM_CLBLAST_MIN ((int64_t)256 * 256 * 256)
/* On GPUs, below this many multiply-adds, or with fewer rows or columns than
 * GEMM_SIMPLE_DIM, one work-item per output instead of mostly empty tiles. */
#define GEMM_SIMPLE_MAX ((int64_t)32 * 32 * 32)
#define GEMM_SIMPLE_DIM 8
/* Grid dimensions 1 and 2 stay within what every driver takes (CUDA grids:
 * 65535 groups); larger products are split into several launches. */
#define GEMM_MAX_GROUPS 65535

/* CLBlast enums (clblast_c.h) */
#define CLB_ROW_MAJOR 101
#define CLB_NO_TRANS 111
#define CLB_TRANS 112
#define CLB_SUCCESS 0
#define CLB_TEMP_ALLOC_FAILURE (-4)
#define CLB_OUT_OF_RESOURCES (-5)
#define CLB_OUT_OF_HOST_MEMORY (-6)
#define CLB_INVALID_BUFFER_SIZE (-61)

/* Laid out exactly as ag_gemm in kernels/gemm.cl. */
typedef struct ocl_gemm_args {
    ag_gemm_dims32 s;
    cl_int row0, batch0;
    cl_float alpha, beta;
} ocl_gemm_args;

/* ---- the own kernels ---------------------------------------------------------- */

typedef struct tile_cfg {
    int t, w; /* tile t x t; work-items compute w x w blocks of 4 x 4: (t / 4w)^2 of them */
    const char *names[4]; /* nn, nt, tn, tt */
} tile_cfg;

static const tile_cfg TILES[] = {
    {128, 2, {"gemm_nn_128", "gemm_nt_128", "gemm_tn_128", "gemm_tt_128"}},
    {64, 1, {"gemm_nn_64", "gemm_nt_64", "gemm_tn_64", "gemm_tt_64"}},
    {32, 1, {"gemm_nn_32", "gemm_nt_32", "gemm_tn_32", "gemm_tt_32"}},
    {16, 1, {"gemm_nn_16", "gemm_nt_16", "gemm_tn_16", "gemm_tt_16"}},
};
static const char *const REG_NAMES[4] = {"gemm_reg_nn", "gemm_reg_nt", "gemm_reg_tn",
                                         "gemm_reg_tt"};
#define REG_ROWS 8  /* GEMM_REG_ROWS in gemm.cl */
#define REG_COLS 16

/* The largest work-group kernel `name` of program prog may run with on this
 * device (0 + error when it cannot be built). */
static size_t kernel_wg(ocl_ctx *c, const char *prog, const char *name)
{
    return ocl_kernel_wg(c, prog, name);
}

/* Launches over rows and batches in pieces of at most GEMM_MAX_GROUPS groups
 * along grid dimensions 1 and 2. */
static ag_status launch_split(ocl_ctx *c, const char *prog, const char *name, ocl_gemm_args g,
                              size_t gx, size_t lx, size_t ly, int64_t rows_per_group,
                              const ag_gemm_desc *d)
{
    const int64_t rows_step = (int64_t)GEMM_MAX_GROUPS * rows_per_group;
    for (int64_t b0 = 0; b0 < d->nb; b0 += GEMM_MAX_GROUPS) {
        const int64_t nbat = d->nb - b0 < GEMM_MAX_GROUPS ? d->nb - b0 : GEMM_MAX_GROUPS;
        for (int64_t r0 = 0; r0 < d->m; r0 += rows_step) {
            const int64_t rows = d->m - r0 < rows_step ? d->m - r0 : rows_step;
            const int64_t groups = (rows + rows_per_group - 1) / rows_per_group;
            g.row0 = (cl_int)r0;
            g.batch0 = (cl_int)b0;
            const size_t global[3] = {gx, (size_t)groups * ly, (size_t)nbat};
            const size_t local[3] = {lx, ly, 1};
            ag_status s = ocl_run(c, prog, name, 3, global, local,
                                  OCL_ARGS(OA(g), OA(d->a->mem), OA(d->b->mem), OA(d->c->mem)));
            if (s != AG_OK) return s;
        }
    }
    return AG_OK;
}

static ocl_gemm_args kernel_args(const ag_gemm_desc *d)
{
    return (ocl_gemm_args){.s = ag_gemm_dims32_of(d), .alpha = d->alpha, .beta = d->beta};
}

/* C = beta C: the whole result when there is nothing to multiply. */
static ag_status gemm_scale(ocl_ctx *c, const ag_gemm_desc *d)
{
    ocl_gemm_args g = kernel_args(d);
    cl_int total = (cl_int)(d->nb * d->m * d->n); /* the plan checked it fits */
    return ocl_run1(c, "gemm", "gemm_scale", (size_t)total,
                    OCL_ARGS(OA(g), OA(total), OA(d->c->mem)));
}

/* Which kernel: chosen by size and device, or forced for tests (AG_OPENCL_GEMM). */
typedef enum own_kind { OWN_AUTO, OWN_TILED, OWN_REG, OWN_SIMPLE } own_kind;

/* Groups of lx x ly work-items, halved until the kernel allows them. */
static void fit_group(size_t kwg, size_t *lx, size_t *ly)
{
    while (*lx * *ly > kwg) {
        if (*ly > 1) *ly /= 2;
        else *lx /= 2;
    }
}

static ag_status run_reg(ocl_ctx *c, const ag_gemm_desc *d, int variant)
{
    const char *name = REG_NAMES[variant];
    const size_t kwg = kernel_wg(c, "gemm", name);
    if (kwg == 0) return ag_last_status() ? ag_last_status() : AG_ERR_DEVICE;
    size_t lx = 4, ly = 8; /* 64 x 64 outputs a group */
    fit_group(kwg, &lx, &ly);
    const int64_t cols = REG_COLS * (int64_t)lx;
    const size_t gx = (size_t)((d->n + cols - 1) / cols) * lx;
    return launch_split(c, "gemm", name, kernel_args(d), gx, lx, ly, REG_ROWS * (int64_t)ly, d);
}

/* *ran false: no tile configuration fits this device (the caller goes on). */
static ag_status run_tiled(ocl_ctx *c, const ag_gemm_desc *d, int variant, int force_t, bool *ran)
{
    *ran = false;
    const bool gpu = (c->type & CL_DEVICE_TYPE_GPU) != 0;
    for (size_t i = 0; i < sizeof TILES / sizeof TILES[0]; i++) {
        const tile_cfg *t = &TILES[i];
        if (force_t && t->t != force_t) continue;
        /* 128 x 128 tiles pay only on GPUs, and only with enough of them to fill it */
        if (!force_t && t->t == 128 && !(gpu && d->m >= 1024 && d->n >= 1024)) continue;
        const size_t side = (size_t)(t->t / (4 * t->w)), wg = side * side;
        if (wg > c->max_wg) continue;
        /* 0: gemm_tiled.cl does not build here, or this tile needs more local
         * memory than the device has; smaller tiles, else gemm_simple */
        const size_t kwg = ocl_kernel_wg_optional(c, "gemm_tiled", t->names[variant]);
        if (kwg < wg) continue; /* e.g. too many registers for a full group */
        const size_t gx = (size_t)((d->n + t->t - 1) / t->t) * side;
        *ran = true;
        return launch_split(c, "gemm_tiled", t->names[variant], kernel_args(d), gx, side, side, t->t, d);
    }
    return AG_OK;
}

static ag_status run_simple(ocl_ctx *c, const ag_gemm_desc *d)
{
    const size_t kwg = kernel_wg(c, "gemm", "gemm_simple");
    if (kwg == 0) return ag_last_status() ? ag_last_status() : AG_ERR_DEVICE;
    size_t lx = 16, ly = 16;
    if (d->n < 16 && d->m >= 16) lx = 4, ly = 64; /* narrow C: more rows a group */
    fit_group(kwg, &lx, &ly);
    const size_t gx = (size_t)((d->n + (int64_t)lx - 1) / (int64_t)lx) * lx;
    return launch_split(c, "gemm", "gemm_simple", kernel_args(d), gx, lx, ly, (int64_t)ly, d);
}

static ag_status gemm_own(ocl_ctx *c, const ag_gemm_desc *d, own_kind kind, int force_t)
{
    /* which axis of each operand has unit stride; -1: neither (only gemm_simple takes that) */
    const int ta = d->a_cs == 1 ? 0 : d->a_rs == 1 ? 1 : -1;
    const int tb = d->b_cs == 1 ? 0 : d->b_rs == 1 ? 1 : -1;
    if (ta < 0 || tb < 0) kind = OWN_SIMPLE;
    if (kind == OWN_AUTO) {
        const double work = (double)d->m * (double)d->n * (double)d->k;
        if (c->type & CL_DEVICE_TYPE_CPU)
            kind = OWN_REG; /* on PoCL at least as fast as gemm_simple from 8^3 and 1000 x 1 up */
        else if (work < (double)GEMM_SIMPLE_MAX || d->m < GEMM_SIMPLE_DIM || d->n < GEMM_SIMPLE_DIM)
            kind = OWN_SIMPLE;
        else
            kind = OWN_TILED;
    }
    if (kind == OWN_REG) return run_reg(c, d, ta * 2 + tb);
    if (kind == OWN_TILED) {
        bool ran;
        ag_status s = run_tiled(c, d, ta * 2 + tb, force_t, &ran);
        if (s != AG_OK || ran) return s;
    }
    return run_simple(c, d);
}

/* ---- CLBlast ------------------------------------------------------------------ */

/* An operand [rows, cols] (strides rs, cs) as CLBlast's row-major (transpose,
 * leading dimension); false when it has no unit stride or overlapping rows. */
static bool clb_operand(int64_t rows, int64_t cols, int64_t rs, int64_t cs, int *trans, size_t *ld)
{
    if (cs == 1 && (rows == 1 || rs >= cols)) {
        *trans = CLB_NO_TRANS;
        *ld = (size_t)(rows == 1 ? cols : rs);
        return true;
    }
    if (rs == 1 && (cols == 1 || cs >= rows)) {
        *trans = CLB_TRANS;
        *ld = (size_t)(cols == 1 ? rows : cs);
        return true;
    }
    return false;
}

static bool oom_status(int st)
{
    return st == CLB_TEMP_ALLOC_FAILURE || st == CLB_OUT_OF_RESOURCES ||
           st == CLB_OUT_OF_HOST_MEMORY || st == CLB_INVALID_BUFFER_SIZE;
}

/* Runs the product through CLBlast. *done false: CLBlast did not take it (it
 * cannot express the layout, or it failed and is now off for this device) and
 * the own kernels must. Called with c->lock held: CLBlast enqueues on our
 * queue and sets kernel arguments of its own. */
static ag_status gemm_clblast_locked(ocl_ctx *c, const ocl_clblast_api *cb, const ag_gemm_desc *d,
                                     bool *done)
{
    *done = false;
    int ta, tb;
    size_t lda, ldb;
    if (!clb_operand(d->m, d->k, d->a_rs, d->a_cs, &ta, &lda) ||
        !clb_operand(d->k, d->n, d->b_rs, d->b_cs, &tb, &ldb) || (d->m > 1 && d->c_rs < d->n))
        return AG_OK;
    const size_t m = (size_t)d->m, n = (size_t)d->n, k = (size_t)d->k;
    const size_t ldc = (size_t)(d->m > 1 ? d->c_rs : d->n);
    cl_command_queue q = c->queue;
    int st;
    if (d->nb == 1) {
        size_t bytes = 0;
        st = cb->sgemm_temp_size(CLB_ROW_MAJOR, ta, tb, m, n, k, (size_t)d->a_off, lda,
                                 (size_t)d->b_off, ldb, (size_t)d->c_off, ldc, &q, &bytes);
        if (st == CLB_SUCCESS && bytes > c->gemm_temp_bytes) {
            if (c->gemm_temp) ocl.clReleaseMemObject(c->gemm_temp);
            c->gemm_temp = NULL;
            c->gemm_temp_bytes = 0;
            cl_int err;
            cl_mem t = ocl.clCreateBuffer(c->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
            if (err != CL_SUCCESS) {
                *done = true;
                return ocl_check(err, "gemm: CLBlast's temporary buffer");
            }
            c->gemm_temp = t;
            c->gemm_temp_bytes = bytes;
        }
        if (st == CLB_SUCCESS)
            st = cb->sgemm_with_temp(CLB_ROW_MAJOR, ta, tb, m, n, k, d->alpha, d->a->mem,
                                     (size_t)d->a_off, lda, d->b->mem, (size_t)d->b_off, ldb,
                                     d->beta, d->c->mem, (size_t)d->c_off, ldc, &q, NULL,
                                     c->gemm_temp);
    } else {
        /* only packed batches: see the notes at the top */
        const bool packed = (int64_t)lda * (ta == CLB_NO_TRANS ? d->m : d->k) == d->a_bs &&
                            (int64_t)ldb * (tb == CLB_NO_TRANS ? d->k : d->n) == d->b_bs &&
                            (int64_t)ldc * d->m == d->c_bs &&
                            lda == (size_t)(ta == CLB_NO_TRANS ? d->k : d->m) &&
                            ldb == (size_t)(tb == CLB_NO_TRANS ? d->n : d->k) && ldc == n;
        if (!packed) return AG_OK;
        st = cb->sgemm_strided_batched(CLB_ROW_MAJOR, ta, tb, m, n, k, d->alpha, d->a->mem,
                                       (size_t)d->a_off, lda, (size_t)d->a_bs, d->b->mem,
                                       (size_t)d->b_off, ldb, (size_t)d->b_bs, d->beta, d->c->mem,
                                       (size_t)d->c_off, ldc, (size_t)d->c_bs, (size_t)d->nb, &q,
                                       NULL);
    }
    if (st == CLB_SUCCESS) {
        *done = true;
        ocl_count(OCL_STAT_LIBRARY);
        return AG_OK;
    }
    if (oom_status(st)) {
        *done = true;
        return ag_set_error(AG_ERR_OOM, "opencl gemm: CLBlast is out of memory (status %d)", st);
    }
    /* any other failure: the own kernels from now on */
    c->clblast_failed = true;
    return AG_OK;
}

/* ---- entry point ------------------------------------------------------------ */

/* AG_OPENCL_GEMM, read on every call so that tests can switch paths. */
typedef struct gemm_choice {
    enum { PATH_AUTO, PATH_OWN, PATH_CLBLAST } path;
    own_kind kind;
    int tile; /* forced tile size, 0: by shape */
} gemm_choice;

static gemm_choice forced_choice(void)
{
    gemm_choice ch = {PATH_AUTO, OWN_AUTO, 0};
    const char *e = getenv("AG_OPENCL_GEMM");
    if (!e) return ch;
    if (strcmp(e, "clblast") == 0) {
        ch.path = PATH_CLBLAST;
    } else if (strncmp(e, "own", 3) == 0) {
        ch.path = PATH_OWN;
        if (strcmp(e, "own:reg") == 0) ch.kind = OWN_REG;
        else if (strcmp(e, "own:simple") == 0) ch.kind = OWN_SIMPLE;
        else if (strncmp(e, "own:tiled", 9) == 0) {
            ch.kind = OWN_TILED;
            ch.tile = atoi(e + 9);
        }
    }
    return ch;
}

ag_status ocl_gemm(void *ctx, float alpha, float beta, const ag_view *c, const ag_view *a,
                   const ag_view *b)
{
    ocl_ctx *cx = ctx;
    ag_gemm_desc d;
    ag_gemm_path path;
    ag_status s = ag_gemm_plan("opencl", alpha, beta, c, a, b, &d, &path);
    if (s != AG_OK || path == AG_GEMM_NONE) return s;
    if (path == AG_GEMM_SCALE) return gemm_scale(cx, &d);

    const gemm_choice ch = forced_choice();
    const double work = (double)d.nb * (double)d.m * (double)d.n * (double)d.k;
    bool clblast = ch.path == PATH_CLBLAST;
    if (ch.path == PATH_AUTO)
        clblast = !(cx->type & CL_DEVICE_TYPE_CPU) && work >= (double)GEMM_CLBLAST_MIN;
    if (clblast) {
        const ocl_clblast_api *cb = ocl_clblast(NULL);
        if (cb) {
            bool done = false;
            pthread_mutex_lock(&cx->lock);
            if (!cx->clblast_failed) s = gemm_clblast_locked(cx, cb, &d, &done);
            pthread_mutex_unlock(&cx->lock);
            if (done) return s;
        }
    }
    return gemm_own(cx, &d, ch.kind, ch.tile);
}
