/* Winograd F(2x2, 5x5) convolutions (cpu_winograd.c), for cpu_conv.c. */
#ifndef AG_CPU_WINOGRAD_H
#define AG_CPU_WINOGRAD_H

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"

/* Whether a convolution of in_ch -> out_ch channels on h x w images with a
 * kh x kw kernel and parameters p takes the Winograd path (5 x 5, stride 1,
 * padding 2, no dilation or groups, channels multiples of 16, an image's
 * transforms within 32 MiB, AVX2 or AVX-512, AG_CPU_WINOGRAD not 0). Decided by
 * the shapes alone, never the threads. */
bool cpu_wino_suits(const ag_conv2d_params *p, int64_t in_ch, int64_t out_ch, int64_t kh,
                    int64_t kw, int64_t h, int64_t w);
/* Floats of scratch cpu_wino_conv5 needs with that many threads. */
int64_t cpu_wino_scratch_floats(int64_t n, int64_t in_ch, int64_t out_ch, int64_t h, int64_t w,
                                int threads);
/* out [n, out_ch, h, w] = the "same" 5 x 5 convolution of in [n, in_ch, h, w]
 * (contiguous) with w [out_ch, in_ch, 5, 5], or with flip (the input gradient)
 * with w [in_ch, out_ch, 5, 5] turned by 180 degrees. scratch: 16-float
 * aligned, cpu_wino_scratch_floats of it. */
void cpu_wino_conv5(const float *in, const float *w, float *out, int64_t n, int64_t in_ch,
                    int64_t out_ch, int64_t h, int64_t wd, bool flip, float *scratch, int threads);

/* dw [out_ch, in_ch, 5, 5] = the weight gradient of that convolution from
 * x [n, in_ch, h, w] and dy [n, out_ch, h, w]; cpu_wino_dw_scratch_floats of
 * scratch. The images are summed in chunks fixed by the shapes. */
int64_t cpu_wino_dw_scratch_floats(int64_t n, int64_t in_ch, int64_t out_ch, int64_t h,
                                   int64_t w, int threads);
void cpu_wino_conv5_dw(const float *x, const float *dy, float *dw, int64_t n, int64_t in_ch,
                       int64_t out_ch, int64_t h, int64_t wd, float *scratch, int threads);

#endif /* AG_CPU_WINOGRAD_H */
