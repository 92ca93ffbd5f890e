/* 5 x 5 convolutions of stride 1 and "same" padding (the tutorial CNN's second
 * layer: forward, input and weight gradients) by Winograd's minimal filtering
 * F(2x2, 5x5): each 2 x 2 block of outputs comes from a 6 x 6 block of input
 * with 36 products a channel pair instead of 100, so the arithmetic of the
 * products shrinks 2.8x. The input tiles and the products are transformed on
 * channels-last copies, a vector of channels a position (wino_simd_body.h);
 * the 36 products are small GEMMs that stay in L2. Each image is done by one
 * thread in one fixed order, so no value depends on the thread count.
 *
 * Accuracy: the transforms scale by up to 5 (B) and 2 (A), so an output's
 * rounding error is a few times im2col's, still relative to the sum of
 * |terms|; nn:t_conv2d's 16- and 32-channel rows bound it against the fp64
 * reference. */
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "cpu_winograd.h"
#include "gemm_kernels.h"

typedef struct wino_kernels {
    cpu_wino_in_fn in;
    cpu_wino_out_fn out;
    cpu_wino_dout_fn dout;
} wino_kernels;

static wino_kernels wino_pick(void)
{
#if defined(__x86_64__)
    switch (cpu_isa()) {
    case CPU_ISA_AVX512:
        return (wino_kernels){cpu_wino_in_avx512, cpu_wino_out_avx512, cpu_wino_dout_avx512};
    case CPU_ISA_AVX2: return (wino_kernels){cpu_wino_in_avx2, cpu_wino_out_avx2, cpu_wino_dout_avx2};
    default: break;
    }
#endif
    return (wino_kernels){NULL, NULL, NULL};
}

/* 32 MiB of transformed tiles and products a thread */
#define WINO_MAX_FLOATS (8.0 * 1024 * 1024)

/* Channel counts are multiples of 16 on every ISA, so AVX2 and AVX-512 machines
 * take the same path for the same layer. AG_CPU_WINOGRAD=0 turns it off (read
 * each call: a convolution this large repays a getenv). */
bool cpu_wino_suits(const ag_conv2d_params *p, int64_t in_ch, int64_t out_ch, int64_t kh,
                    int64_t kw, int64_t h, int64_t w)
{
    const char *env = getenv("AG_CPU_WINOGRAD");
    if (env && strcmp(env, "0") == 0) return false;
    if (!(wino_pick().in && p->groups == 1 && kh == 5 && kw == 5 && p->stride[0] == 1 &&
          p->stride[1] == 1 && p->dilation[0] == 1 && p->dilation[1] == 1 &&
          p->padding[0] == 2 && p->padding[1] == 2 && in_ch % 16 == 0 && out_ch % 16 == 0 &&
          h >= 2 && w >= 2))
        return false;
    /* an image's transformed planes are scratch: past WINO_MAX_FLOATS a thread
     * (large images, wide layers) im2col's smaller scratch wins */
    const double tiles = (double)((h + 1) / 2) * (double)((w + 1) / 2);
    return 36.0 * tiles * (double)(in_ch + out_ch) <= WINO_MAX_FLOATS;
}

typedef struct wino_dims {
    int64_t n, ic, oc, h, w;
    int64_t th, tw, t; /* tiles down, across, in all */
    int64_t hp, wp;    /* the padded channels-last input: 2 th + 4 by 2 tw + 4 */
} wino_dims;

static wino_dims dims_of(int64_t n, int64_t ic, int64_t oc, int64_t h, int64_t w)
{
    wino_dims d = {.n = n, .ic = ic, .oc = oc, .h = h, .w = w};
    d.th = (h + 1) / 2;
    d.tw = (w + 1) / 2;
    d.t = d.th * d.tw;
    d.hp = 2 * d.th + 4;
    d.wp = 2 * d.tw + 4;
    return d;
}

/* Scratch of one thread: the padded input, its 36 transformed planes, the
 * 36 products and the channels-last output, each 16-float aligned. */
static int64_t up16(int64_t f) { return (f + 15) / 16 * 16; }
static int64_t per_thread(const wino_dims *d)
{
    return up16(d->hp * d->wp * d->ic) + up16(36 * d->t * d->ic) + up16(36 * d->t * d->oc) +
           up16(4 * d->t * d->oc);
}

int64_t cpu_wino_scratch_floats(int64_t n, int64_t in_ch, int64_t out_ch, int64_t h, int64_t w,
                                int threads)
{
    wino_dims d = dims_of(n, in_ch, out_ch, h, w);
    return up16(36 * in_ch * out_ch) + threads * per_thread(&d);
}

/* G, with the Lagrange denominators that keep B^T integral */
static const double wino_g[6][5] = {
    {1.0 / 4, 0, 0, 0, 0},
    {1.0 / 6, 1.0 / 6, 1.0 / 6, 1.0 / 6, 1.0 / 6},
    {1.0 / 6, -1.0 / 6, 1.0 / 6, -1.0 / 6, 1.0 / 6},
    {1.0 / 24, 1.0 / 12, 1.0 / 6, 1.0 / 3, 2.0 / 3},
    {1.0 / 24, -1.0 / 12, 1.0 / 6, -1.0 / 3, 2.0 / 3},
    {0, 0, 0, 0, 1},
};

/* u[v][i][o] = (G g G^T)(v) for input channel i, output channel o, in double:
 * g(r, s) = w[o][i][r][s], or with flip w[i][o][4 - r][4 - s] (the input
 * gradient's kernel, w being [out_ch of the forward = in_ch here, ...]). */
static void weights_one(const float *w, float *u, const wino_dims *d, int64_t o, bool flip)
{
    for (int64_t i = 0; i < d->ic; i++) {
        double g[5][5], t[6][5];
        for (int r = 0; r < 5; r++)
            for (int s = 0; s < 5; s++)
                g[r][s] = flip ? w[((i * d->oc + o) * 5 + (4 - r)) * 5 + (4 - s)]
                               : w[((o * d->ic + i) * 5 + r) * 5 + s];
        for (int a = 0; a < 6; a++)
            for (int s = 0; s < 5; s++) {
                double acc = 0;
                for (int r = 0; r < 5; r++) acc += wino_g[a][r] * g[r][s];
                t[a][s] = acc;
            }
        for (int a = 0; a < 6; a++)
            for (int b = 0; b < 6; b++) {
                double acc = 0;
                for (int s = 0; s < 5; s++) acc += t[a][s] * wino_g[b][s];
                u[((a * 6 + b) * d->ic + i) * d->oc + o] = (float)acc;
            }
    }
}

/* dst [dh, dw, ch] = src [ch, h, w] moved down and right by pad, zero around */
static void channels_last(const float *src, int64_t ch, int64_t h, int64_t w, float *dst,
                          int64_t dh, int64_t dw, int64_t pad)
{
    memset(dst, 0, sizeof(float) * (size_t)(dh * dw * ch));
    for (int64_t c = 0; c < ch; c++)
        for (int64_t r = 0; r < h; r++) {
            const float *s = src + (c * h + r) * w;
            float *o = dst + ((r + pad) * dw + pad) * ch + c;
            for (int64_t j = 0; j < w; j++) o[j * ch] = s[j];
        }
}

/* Every input tile of a padded channels-last image transformed: tile t's value
 * v at dst[v * ds + t * ic]. */
static void input_tiles(const wino_kernels *k, const wino_dims *d, const float *xt, float *dst,
                        int64_t ds)
{
    for (int64_t ti = 0; ti < d->th; ti++)
        for (int64_t tj = 0; tj < d->tw; tj++)
            k->in(xt + (2 * ti * d->wp + 2 * tj) * d->ic, d->wp * d->ic, d->ic, d->ic,
                  dst + (ti * d->tw + tj) * d->ic, ds);
}

static void image_one(const wino_kernels *k, const wino_dims *d, const float *in, const float *u,
                      float *out, float *own)
{
    const int64_t ic = d->ic, oc = d->oc, t = d->t;
    float *xt = own, *v = xt + up16(d->hp * d->wp * ic), *m = v + up16(36 * t * ic),
          *yt = m + up16(36 * t * oc);
    channels_last(in, ic, d->h, d->w, xt, d->hp, d->wp, 2);
    input_tiles(k, d, xt, v, t * ic);
    /* products: m(v)[tile][o] = sum_i v(v)[tile][i] u(v)[i][o] */
    for (int64_t p = 0; p < 36; p++)
        cpu_sgemm(t, oc, ic, 1.0f, v + p * t * ic, ic, 1, u + p * ic * oc, oc, 1, 0.0f,
                  m + p * t * oc, oc);
    const int64_t ow = 2 * d->tw;
    for (int64_t ti = 0; ti < d->th; ti++)
        for (int64_t tj = 0; tj < d->tw; tj++)
            k->out(m + (ti * d->tw + tj) * oc, t * oc, oc, yt + (2 * ti * ow + 2 * tj) * oc,
                   ow * oc, oc);
    for (int64_t o = 0; o < oc; o++)
        for (int64_t r = 0; r < d->h; r++) {
            const float *src = yt + r * ow * oc + o;
            float *dst = out + (o * d->h + r) * d->w;
            for (int64_t s = 0; s < d->w; s++) dst[s] = src[s * oc];
        }
}

void cpu_wino_conv5(const float *in, const float *w, float *out, int64_t n, int64_t in_ch,
                    int64_t out_ch, int64_t h, int64_t wd, bool flip, float *scratch, int threads)
{
    const wino_kernels k = wino_pick();
    const wino_dims d = dims_of(n, in_ch, out_ch, h, wd);
    float *u = scratch, *per = scratch + up16(36 * in_ch * out_ch);
    const int64_t each = per_thread(&d);
    (void)threads; /* without OpenMP */
    OMP(omp parallel num_threads(threads) if(threads > 1))
    {
        OMP(omp for schedule(static))
        for (int64_t o = 0; o < out_ch; o++) weights_one(w, u, &d, o, flip);
        float *own = per + cpu_team_rank() * each;
        /* images taken as threads come free; each one's values are the same
         * whichever thread takes it */
        OMP(omp for schedule(dynamic, 1))
        for (int64_t i = 0; i < n; i++)
            image_one(&k, &d, in + i * in_ch * h * wd, u, out + i * out_ch * h * wd, own);
    }
}

/* ---- weight gradient ------------------------------------------------------------- */

/* With U = G g G^T and y = A^T (U . V) A a tile, dL/dU = (A dy A^T) . V summed
 * over tiles, and dL/dg = G^T (dL/dU) G. The sum over tiles is 36 products
 * dU(v) [oc, ic] += Z(v)^T V(v) over chunks of images, chunks sized by the
 * shapes (about 256 tiles) and added in order; each product is one thread's. */
static int64_t chunk_images(const wino_dims *d)
{
    int64_t nb = 256 / d->t;
    if (nb < 1) nb = 1;
    return nb < d->n ? nb : d->n;
}

static int64_t dw_per_thread(const wino_dims *d)
{
    return up16(d->hp * d->wp * d->ic) + up16(4 * d->t * d->oc);
}

int64_t cpu_wino_dw_scratch_floats(int64_t n, int64_t in_ch, int64_t out_ch, int64_t h,
                                   int64_t w, int threads)
{
    wino_dims d = dims_of(n, in_ch, out_ch, h, w);
    const int64_t tc = chunk_images(&d) * d.t;
    return up16(36 * in_ch * out_ch) + up16(36 * tc * in_ch) + up16(36 * tc * out_ch) +
           threads * dw_per_thread(&d);
}

/* dw[o][i] = G^T du(., o, i) G, in double */
static void dw_one(const float *du, float *dw, const wino_dims *d, int64_t o)
{
    for (int64_t i = 0; i < d->ic; i++) {
        double t[6][5];
        for (int a = 0; a < 6; a++)
            for (int s = 0; s < 5; s++) {
                double acc = 0;
                for (int b = 0; b < 6; b++)
                    acc += (double)du[((a * 6 + b) * d->oc + o) * d->ic + i] * wino_g[b][s];
                t[a][s] = acc;
            }
        for (int r = 0; r < 5; r++)
            for (int s = 0; s < 5; s++) {
                double acc = 0;
                for (int a = 0; a < 6; a++) acc += wino_g[a][r] * t[a][s];
                dw[((o * d->ic + i) * 5 + r) * 5 + s] = (float)acc;
            }
    }
}

void cpu_wino_conv5_dw(const float *x, const float *dy, float *dw, int64_t n, int64_t in_ch,
                       int64_t out_ch, int64_t h, int64_t wd, float *scratch, int threads)
{
    const wino_kernels k = wino_pick();
    const wino_dims d = dims_of(n, in_ch, out_ch, h, wd);
    const int64_t nb = chunk_images(&d), tc = nb * d.t, ic = in_ch, oc = out_ch;
    float *du = scratch, *v = du + up16(36 * ic * oc), *z = v + up16(36 * tc * ic),
          *per = z + up16(36 * tc * oc);
    const int64_t each = dw_per_thread(&d), yw = 2 * d.tw;
    (void)threads; /* without OpenMP */
    OMP(omp parallel num_threads(threads) if(threads > 1))
    {
        float *xt = per + cpu_team_rank() * each, *dyt = xt + up16(d.hp * d.wp * ic);
        for (int64_t n0 = 0; n0 < n; n0 += nb) {
            const int64_t cnt = n - n0 < nb ? n - n0 : nb;
            OMP(omp for schedule(dynamic, 1))
            for (int64_t j = 0; j < cnt; j++) {
                const int64_t img = n0 + j;
                channels_last(x + img * ic * h * wd, ic, h, wd, xt, d.hp, d.wp, 2);
                input_tiles(&k, &d, xt, v + j * d.t * ic, tc * ic);
                channels_last(dy + img * oc * h * wd, oc, h, wd, dyt, 2 * d.th, yw, 0);
                for (int64_t ti = 0; ti < d.th; ti++)
                    for (int64_t tj = 0; tj < d.tw; tj++)
                        k.dout(dyt + (2 * ti * yw + 2 * tj) * oc, yw * oc, oc, oc,
                               z + (j * d.t + ti * d.tw + tj) * oc, tc * oc);
            }
            /* du(v)[o][i] (+)= sum over the chunk's tiles of z(v)[t][o] v(v)[t][i] */
            OMP(omp for schedule(dynamic, 1))
            for (int64_t p = 0; p < 36; p++)
                cpu_sgemm(oc, ic, cnt * d.t, 1.0f, z + p * tc * oc, 1, oc, v + p * tc * ic, ic, 1,
                          n0 ? 1.0f : 0.0f, du + p * oc * ic, ic);
        }
        OMP(omp for schedule(static))
        for (int64_t o = 0; o < oc; o++) dw_one(du, dw, &d, o);
    }
}
