// Register-blocked tiled SGEMM, included by gemm_tiled.comp (GEMM_VEC4 0:
// scalar loads and stores, any sizes and strides with a unit stride in each
// operand) and gemm_tiled4.comp (GEMM_VEC4 1: 16-byte loads and stores; the
// host picks it when M, N, K, every offset, leading dimension and batch
// stride are multiples of 4, so a vec4 is either wholly inside or wholly
// outside each operand).
//
// A work group of NT = TX * TY invocations computes a BM x BN tile of C. Each
// invocation holds RM x RN blocks of 4 x 4 outputs in registers, at rows
// 4 (ty + i TY) .. + 3 and columns 4 (tx + j TX) .. + 3: one k step of a block
// is a vec4 of A's column times a vec4 of B's row read from shared memory
// (two 16-byte reads per 16 multiply-adds for 4 x 4 blocks, per 64 for the
// 8 x 8 of RM = RN = 2). Neighbouring invocations (tx) read neighbouring vec4s
// of B and write neighbouring columns of C; the A reads of a subgroup hit a
// few addresses (broadcasts).
//
// The operands go through shared memory in BK-deep slices, k-major (As[k][m],
// Bs[k][n]) with rows padded by one vec4: rows stay 16-byte aligned, and the
// transposing stores of an operand that is contiguous along k (row-major A,
// transposed B) spread over the banks (row stride BM + 4 is 4 banks apart).
// Two slices alternate (double buffering): the next slice is read from global
// memory into registers before the current one is multiplied and stored into
// the other buffer afterwards, so one barrier per slice suffices and the
// global latency hides behind the arithmetic.
//
// Specialization constants (set by the host from its tile table): 0 = NT,
// 1 = BM, 2 = BN, 3 = BK | TX << 8 | TA << 16 | TB << 17. TA: A's rows have
// unit stride (a transposed view), else its columns; TB: B's rows (along k)
// have unit stride, else its columns. The drivers fold them, so loops over
// RM, RN, BK and the loads unroll and the branches on TA / TB vanish.
// Edges: loads outside the operands read zeros, stores outside C are skipped.
// [[unroll]] (GL_EXT_control_flow_attributes, a front-end extension: plain
// SPIR-V loop control, no device feature) asks the driver to unroll the loops
// whose trip counts only specialization fixes; the accumulators must stay in
// registers, which needs constant indices.
#extension GL_EXT_control_flow_attributes : require
#include "gemm.glsl"

layout(constant_id = 1) const int BM = 128;
layout(constant_id = 2) const int BN = 128;
layout(constant_id = 3) const int CFG = 8 | (16 << 8);

const int BK = CFG & 255;
const int TX = (CFG >> 8) & 255;
const bool TA = (CFG & 65536) != 0;
const bool TB = (CFG & 131072) != 0;
const int NT = int(gl_WorkGroupSize.x);
const int TY = NT / TX;
const int RM = BM / (4 * TY);
const int RN = BN / (4 * TX);
const int LDA4 = BM / 4 + 1; // padded shared rows, in vec4s
const int LDB4 = BN / 4 + 1;

shared vec4 As[2 * BK * LDA4];
shared vec4 Bs[2 * BK * LDB4];

#if GEMM_VEC4
#define GEMM_T vec4
layout(std430, binding = 1) readonly buffer A { vec4 a[]; };
layout(std430, binding = 2) readonly buffer B { vec4 b[]; };
layout(std430, binding = 3) buffer C { vec4 c[]; };
const int CA = BK * BM / 4, CB = BK * BN / 4; // vec4s in a slice
#else
#define GEMM_T float
layout(std430, binding = 1) readonly buffer A { float a[]; };
layout(std430, binding = 2) readonly buffer B { float b[]; };
layout(std430, binding = 3) buffer C { float c[]; };
const int CA = BK * BM, CB = BK * BN;
#endif
const int NLA = (CA + NT - 1) / NT, NLB = (CB + NT - 1) / NT; // loads per invocation

GEMM_T ra[NLA], rb[NLB]; // the next slice, between its global read and its shared store
vec4 acc[RM * RN * 4];   // block (i, j), row r: acc[(i * RN + j) * 4 + r]
int tid, a_base, b_base, lda, ldb;

// Element e of a slice: consecutive e run along the operand's contiguous axis,
// so neighbouring invocations read neighbouring addresses.
void load_a(int row0, int k0)
{
    [[unroll]] for (int l = 0; l < NLA; l++) {
        int e = tid + l * NT;
        GEMM_T v = GEMM_T(0.0);
#if GEMM_VEC4
        int gm = TA ? row0 + 4 * (e % (BM / 4)) : row0 + e / (BK / 4);
        int gk = TA ? k0 + e / (BM / 4) : k0 + 4 * (e % (BK / 4));
        if (e < CA && gm < P.m && gk < P.k) v = a[(a_base + (TA ? gk * lda + gm : gm * lda + gk)) >> 2];
#else
        int gm = TA ? row0 + e % BM : row0 + e / BK;
        int gk = TA ? k0 + e / BM : k0 + e % BK;
        if (e < CA && gm < P.m && gk < P.k) v = a[a_base + (TA ? gk * lda + gm : gm * lda + gk)];
#endif
        ra[l] = v;
    }
}

void load_b(int col0, int k0)
{
    [[unroll]] for (int l = 0; l < NLB; l++) {
        int e = tid + l * NT;
        GEMM_T v = GEMM_T(0.0);
#if GEMM_VEC4
        int gn = TB ? col0 + e / (BK / 4) : col0 + 4 * (e % (BN / 4));
        int gk = TB ? k0 + 4 * (e % (BK / 4)) : k0 + e / (BN / 4);
        if (e < CB && gn < P.n && gk < P.k) v = b[(b_base + (TB ? gn * ldb + gk : gk * ldb + gn)) >> 2];
#else
        int gn = TB ? col0 + e / BK : col0 + e % BN;
        int gk = TB ? k0 + e % BK : k0 + e / BN;
        if (e < CB && gn < P.n && gk < P.k) v = b[b_base + (TB ? gn * ldb + gk : gk * ldb + gn)];
#endif
        rb[l] = v;
    }
}

// Shared stores: whole vec4s when the slice is contiguous along m (n), else
// one float per k (the transposing stores the padding spreads over banks).
void store_a(int buf)
{
    [[unroll]] for (int l = 0; l < NLA; l++) {
        int e = tid + l * NT;
        if (e >= CA) break;
#if GEMM_VEC4
        if (TA) {
            As[(buf * BK + e / (BM / 4)) * LDA4 + e % (BM / 4)] = ra[l];
        } else {
            int x = e / (BK / 4), k = 4 * (e % (BK / 4));
            [[unroll]] for (int q = 0; q < 4; q++) {
                int s = (buf * BK + k + q) * LDA4 * 4 + x;
                As[s >> 2][s & 3] = ra[l][q];
            }
        }
#else
        int x = TA ? e % BM : e / BK, k = TA ? e / BM : e % BK;
        int s = (buf * BK + k) * LDA4 * 4 + x;
        As[s >> 2][s & 3] = ra[l];
#endif
    }
}

void store_b(int buf)
{
    [[unroll]] for (int l = 0; l < NLB; l++) {
        int e = tid + l * NT;
        if (e >= CB) break;
#if GEMM_VEC4
        if (!TB) {
            Bs[(buf * BK + e / (BN / 4)) * LDB4 + e % (BN / 4)] = rb[l];
        } else {
            int x = e / (BK / 4), k = 4 * (e % (BK / 4));
            [[unroll]] for (int q = 0; q < 4; q++) {
                int s = (buf * BK + k + q) * LDB4 * 4 + x;
                Bs[s >> 2][s & 3] = rb[l][q];
            }
        }
#else
        int x = TB ? e / BK : e % BN, k = TB ? e % BK : e / BN;
        int s = (buf * BK + k) * LDB4 * 4 + x;
        Bs[s >> 2][s & 3] = rb[l];
#endif
    }
}

void multiply(int buf, int tx, int ty)
{
    [[unroll]] for (int kk = 0; kk < BK; kk++) {
        vec4 av[RM], bv[RN];
        [[unroll]] for (int i = 0; i < RM; i++) av[i] = As[(buf * BK + kk) * LDA4 + ty + i * TY];
        [[unroll]] for (int j = 0; j < RN; j++) bv[j] = Bs[(buf * BK + kk) * LDB4 + tx + j * TX];
        [[unroll]] for (int i = 0; i < RM; i++)
            [[unroll]] for (int j = 0; j < RN; j++) {
                acc[(i * RN + j) * 4 + 0] += av[i].x * bv[j];
                acc[(i * RN + j) * 4 + 1] += av[i].y * bv[j];
                acc[(i * RN + j) * 4 + 2] += av[i].z * bv[j];
                acc[(i * RN + j) * 4 + 3] += av[i].w * bv[j];
            }
    }
}

void main()
{
    tid = int(gl_LocalInvocationID.x);
    int tx = tid % TX, ty = tid / TX;
    int col0 = P.col0 + int(gl_WorkGroupID.x) * BN;
    int row0 = P.row0 + int(gl_WorkGroupID.y) * BM;
    int batch = P.batch0 + int(gl_WorkGroupID.z);
    a_base = P.a_off + batch * P.a_bs;
    b_base = P.b_off + batch * P.b_bs;
    lda = TA ? P.a_cs : P.a_rs;
    ldb = TB ? P.b_cs : P.b_rs;
    [[unroll]] for (int i = 0; i < RM * RN * 4; i++) acc[i] = vec4(0.0);

    int nk = (P.k + BK - 1) / BK;
    load_a(row0, 0);
    load_b(col0, 0);
    store_a(0);
    store_b(0);
    barrier();
    for (int t = 0; t < nk; t++) {
        int buf = t & 1;
        bool more = t + 1 < nk;
        if (more) {
            load_a(row0, (t + 1) * BK);
            load_b(col0, (t + 1) * BK);
        }
        multiply(buf, tx, ty);
        if (more) {
            store_a(buf ^ 1);
            store_b(buf ^ 1);
        }
        barrier();
    }

    int c_base = P.c_off + batch * P.c_bs;
    [[unroll]] for (int i = 0; i < RM; i++)
        [[unroll]] for (int r = 0; r < 4; r++) {
            int row = row0 + 4 * (ty + i * TY) + r;
            if (row >= P.m) continue;
            [[unroll]] for (int j = 0; j < RN; j++) {
                int col = col0 + 4 * (tx + j * TX);
                vec4 v = P.alpha * acc[(i * RN + j) * 4 + r];
                int idx = c_base + row * P.c_rs + col;
#if GEMM_VEC4
                if (col < P.n) c[idx >> 2] = P.beta == 0.0 ? v : v + P.beta * c[idx >> 2];
#else
                [[unroll]] for (int q = 0; q < 4; q++)
                    if (col + q < P.n) c[idx + q] = P.beta == 0.0 ? v[q] : v[q] + P.beta * c[idx + q];
#endif
            }
        }
}
