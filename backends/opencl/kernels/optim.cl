/* Fused optimizer steps, mirroring backends/cpu/cpu_optim.c operation for
 * operation. Contraction into fused multiply-adds is off so that each update
 * rounds as the CPU's does. */
#pragma OPENCL FP_CONTRACT OFF

#define OPT_SGD 0
#define OPT_RMSPROP 1
#define OPT_ADAM 2

/* Laid out as ocl_optim_hp in ocl_optim.c. */
typedef struct {
    float lr, wd, mom, damp, alpha, eps, b1, b2;
    float step_size, bc2_sqrt, decay, l2;
    int first, nesterov, has_s0, has_s1;
} optim_hp;

kernel void optim_step(int kind, int n, int po, int go, int s0o, int s1o, optim_hp h_in,
                       global float *p, global const float *gr, global float *s0,
                       global float *s1)
{
    const optim_hp h = h_in; /* a private copy: see common.cl */
    AG_FOR(i, n) {
        float pi = p[po + i], g = gr[go + i];
        if (kind == OPT_SGD) {
            if (h.wd != 0.0f) g = g + h.wd * pi;
            if (h.has_s0) {
                float b = h.first ? g : h.mom * s0[s0o + i] + h.damp * g;
                s0[s0o + i] = b;
                g = h.nesterov ? g + h.mom * b : b;
            }
            p[po + i] = pi - h.lr * g;
        } else if (kind == OPT_RMSPROP) {
            if (h.wd != 0.0f) g = g + h.wd * pi;
            float s = h.alpha * s0[s0o + i] + (1.0f - h.alpha) * g * g;
            s0[s0o + i] = s;
            float avg = sqrt(s) + h.eps;
            if (h.has_s1) {
                float b = h.mom * s1[s1o + i] + g / avg;
                s1[s1o + i] = b;
                p[po + i] = pi - h.lr * b;
            } else {
                p[po + i] = pi - h.lr * g / avg;
            }
        } else {
            pi = pi * h.decay;
            if (h.l2 != 0.0f) g = g + h.l2 * pi;
            float m = s0[s0o + i], v = s1[s1o + i];
            /* lerp(m, g, 1 - b1), as PyTorch */
            m = m + (1.0f - h.b1) * (g - m);
            v = h.b2 * v + (1.0f - h.b2) * g * g;
            s0[s0o + i] = m;
            s1[s1o + i] = v;
            float denom = sqrt(v) / h.bc2_sqrt + h.eps;
            p[po + i] = pi - h.step_size * (m / denom);
        }
    }
}
