/* core/tensor/ops/small_gemm.c - a GEMM for the small matrices of window attention (Swin: 36×32 and
 * 36×36 per window and head, thousands of them per step).
 *
 * performance.md: BLIS 0.9 runs these at 15-60 GFLOP/s (per-call overhead, packing sized for
 * large matrices), an order of magnitude below the machine. This kernel reads B as rows of
 * 16-float vectors, straight from B when its rows are contiguous and a whole number of vectors
 * long (v, dO, k, q in attention: D = 32), else from a zero-padded row-major k × 16·nv copy
 * (kᵀ, vᵀ; 36 columns), and keeps a 4 × nv block of 16-float accumulators in registers
 * (nv = columns/16, at most 4), one broadcast A element per row and step:
 *   C[i][j] = alpha · Σ_p A[i][p]·B[p][j] + beta · C[i][j]
 * GCC vector extensions lower to AVX-512, AVX2 or SSE in the three clones. Sums run over p in
 * order: results do not depend on threads. */
#include "tensor/tensor_internal.h"

typedef float v16 __attribute__((vector_size(64)));

/* Writes rows r < nr of a block of accumulators into C (columns j0.., at most n). */
static inline __attribute__((always_inline)) void store_block(float *c, int64_t cr, int64_t cc, int64_t j0, int64_t n,
                               const v16 *acc, int nr, float alpha, float beta)
{
    int64_t nj = n - j0 < 16 ? n - j0 : 16;
    for (int r = 0; r < nr; r++) {
        float *cp = c + r * cr + j0 * cc;
        v16 v = alpha * acc[r];
        if (cc == 1 && nj == 16) {
            if (beta != 0.0f) {
                v16 old;
                memcpy(&old, cp, sizeof old);
                v += beta * old;
            }
            memcpy(cp, &v, sizeof v);
        } else {
            for (int64_t j = 0; j < nj; j++)
                cp[j * cc] = beta != 0.0f ? v[j] + beta * cp[j * cc] : v[j];
        }
    }
}

/* One block of up to 4 rows of C against all nv column vectors (NV a constant per caller).
 * Always inlined, so that each ISA clone of sm__gemm_small compiles it for its own ISA. */
#define SMALL_BLOCK(NV)                                                                        \
    static inline __attribute__((always_inline)) void block_##NV(                             \
        const float *a, int64_t ar, int64_t ac, int nr, const float *bp, int64_t ldb, int64_t k, \
        float *c, int64_t cr, int64_t cc, int64_t n, float alpha, float beta)                  \
    {                                                                                          \
        v16 acc[NV][4] = {{{0}}};                                                              \
        const float *a0 = a, *a1 = a + (nr > 1) * ar, *a2 = a + (nr > 2) * 2 * ar,             \
                    *a3 = a + (nr > 3) * 3 * ar;                                               \
        for (int64_t p = 0; p < k; p++) {                                                      \
            float x0 = a0[p * ac], x1 = a1[p * ac], x2 = a2[p * ac], x3 = a3[p * ac];          \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++)                               \
            {                                                                                  \
                v16 b;                                                                         \
                memcpy(&b, bp + p * ldb + 16 * v, sizeof b);                                   \
                acc[v][0] += x0 * b;                                                           \
                acc[v][1] += x1 * b;                                                           \
                acc[v][2] += x2 * b;                                                           \
                acc[v][3] += x3 * b;                                                           \
            }                                                                                  \
        }                                                                                      \
        for (int v = 0; v < NV; v++)                                                           \
            store_block(c, cr, cc, 16 * v, n, acc[v], nr, alpha, beta);                        \
    }
SMALL_BLOCK(1)
SMALL_BLOCK(2)
SMALL_BLOCK(3)
SMALL_BLOCK(4)

SM__KERNEL void sm__gemm_small(int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                               int64_t ar, int64_t ac, const float *b, int64_t br, int64_t bc,
                               float beta, float *c, int64_t cr, int64_t cc, float *scratch)
{
    if (m <= 0 || n <= 0) return; /* nothing to write */
    int nv = (int)((n + 15) / 16);
    SM__ASSERT(nv >= 1 && nv <= SM__SMALL_N / 16);
    int64_t np = 16 * (int64_t)nv;
    const float *bp = b;
    int64_t ldb = br;
    if (bc != 1 || n != np) {
        /* pack B row-major, zero-padded to np columns; a transposed B (column stride > row
         * stride, e.g. kᵀ read from the rows of k) is read along its contiguous direction */
        for (int64_t p = 0; p < k; p++)
            for (int64_t j = n; j < np; j++) scratch[p * np + j] = 0.0f;
        if (br < bc) {
            for (int64_t j = 0; j < n; j++)
                for (int64_t p = 0; p < k; p++) scratch[p * np + j] = b[p * br + j * bc];
        } else {
            for (int64_t p = 0; p < k; p++)
                for (int64_t j = 0; j < n; j++) scratch[p * np + j] = b[p * br + j * bc];
        }
        bp = scratch;
        ldb = np;
    }
    for (int64_t i = 0; i < m; i += 4) {
        int nr = m - i < 4 ? (int)(m - i) : 4;
        const float *ai = a + i * ar;
        float *ci = c + i * cr;
        switch (nv) {
        case 1: block_1(ai, ar, ac, nr, bp, ldb, k, ci, cr, cc, n, alpha, beta); break;
        case 2: block_2(ai, ar, ac, nr, bp, ldb, k, ci, cr, cc, n, alpha, beta); break;
        case 3: block_3(ai, ar, ac, nr, bp, ldb, k, ci, cr, cc, n, alpha, beta); break;
        default: block_4(ai, ar, ac, nr, bp, ldb, k, ci, cr, cc, n, alpha, beta); break;
        }
    }
}
