/* core/tensor/ops/small_gemm.c - a GEMM for the small matrices of window attention (Swin: 36×32 and
 * 36×36 per window and head, thousands of them per step).
 *
 * performance.md: BLIS 0.9 runs these at 15-60 GFLOP/s (per-call overhead, packing sized for
 * large matrices), an order of magnitude below the machine. This kernel reads B as rows of
 * vectors, straight from B when its rows are contiguous and a whole number of vectors long
 * (v, dO, k, q in attention: D = 32), else from a zero-padded row-major copy (kᵀ, vᵀ; 36
 * columns), and keeps a block of R rows × all column vectors of accumulators in registers, one
 * broadcast A element per row and step. The vector width follows the machine: 16 lanes where
 * AVX-512 gives 32 registers, 8 lanes (and fewer rows per block) where AVX2 gives 16, since
 * 16-lane blocks spill to the stack there (measured on Zen 3: 3 GFLOP/s, a tenth of BLIS):
 *   C[i][j] = alpha · Σ_p A[i][p]·B[p][j] + beta · C[i][j]
 * GCC vector extensions lower to AVX-512, AVX2 or SSE in the three clones. Sums run over p in
 * order, whatever the width: results do not depend on threads or on the machine's vectors. */
#include "tensor/tensor_internal.h"

/* The vectors passed by value go to always-inline helpers: no call, so no ABI to warn about
 * (clang warns for the baseline build, where 64-byte vectors have no register class). */
#pragma GCC diagnostic ignored "-Wpsabi"

typedef float v16 __attribute__((vector_size(64)));
typedef float v8 __attribute__((vector_size(32)));

/* Writes one row's vector of accumulators (L lanes) into C's row cp (columns j0.., at most n).
 * Takes the vector by value: an accumulator whose address escapes would live on the stack. */
#define SMALL_STORE(VT, L)                                                                     \
    static inline __attribute__((always_inline)) void store_##VT(                             \
        float *cp, int64_t cc, int64_t j0, int64_t n, VT v, float alpha, float beta)           \
    {                                                                                          \
        int64_t nj = n - j0 < (L) ? n - j0 : (L);                                              \
        cp += j0 * cc;                                                                         \
        v *= alpha;                                                                            \
        if (cc == 1 && nj == (L)) {                                                            \
            if (beta != 0.0f) {                                                                \
                VT old;                                                                        \
                memcpy(&old, cp, sizeof old);                                                  \
                v += beta * old;                                                               \
            }                                                                                  \
            memcpy(cp, &v, sizeof v);                                                          \
        } else {                                                                               \
            for (int64_t j = 0; j < nj; j++)                                                   \
                cp[j * cc] = beta != 0.0f ? v[j] + beta * cp[j * cc] : v[j];                   \
        }                                                                                      \
    }
SMALL_STORE(v16, 16)
SMALL_STORE(v8, 8)

/* One block of up to R rows of C against all NV column vectors of L lanes: R·NV accumulators
 * stay in registers (at most 16 of AVX-512's 32 with 16 lanes, 12 of AVX2's 16 with 8), one
 * broadcast A element per row and step. R and NV are constants per instance. */
#define SMALL_BLOCK(VT, L, R, NV)                                                              \
    static inline __attribute__((always_inline)) void block_##VT##_##R##_##NV(                \
        const float *a, int64_t ar, int64_t ac, int nr, const float *bp, int64_t ldb, int64_t k, \
        float *c, int64_t cr, int64_t cc, int64_t n, float alpha, float beta)                  \
    {                                                                                          \
        VT acc[NV][R] = {{{0}}};                                                               \
        const float *ap[R];                                                                    \
        _Pragma("GCC unroll 4") for (int r = 0; r < (R); r++) ap[r] = a + (r < nr ? r : 0) * ar; \
        for (int64_t p = 0; p < k; p++) {                                                      \
            float x[R];                                                                        \
            _Pragma("GCC unroll 4") for (int r = 0; r < (R); r++) x[r] = ap[r][p * ac];        \
            _Pragma("GCC unroll 8") for (int v = 0; v < (NV); v++)                             \
            {                                                                                  \
                VT b;                                                                          \
                memcpy(&b, bp + p * ldb + (L) * v, sizeof b);                                  \
                _Pragma("GCC unroll 4") for (int r = 0; r < (R); r++) acc[v][r] += x[r] * b;   \
            }                                                                                  \
        }                                                                                      \
        _Pragma("GCC unroll 8") for (int v = 0; v < (NV); v++)                                 \
            _Pragma("GCC unroll 4") for (int r = 0; r < (R); r++) if (r < nr)                  \
                store_##VT(c + r * cr, cc, (L) * v, n, acc[v][r], alpha, beta);                \
    }
SMALL_BLOCK(v16, 16, 4, 1)
SMALL_BLOCK(v16, 16, 4, 2)
SMALL_BLOCK(v16, 16, 4, 3)
SMALL_BLOCK(v16, 16, 4, 4)
SMALL_BLOCK(v8, 8, 4, 1)
SMALL_BLOCK(v8, 8, 4, 2)
SMALL_BLOCK(v8, 8, 4, 3)
SMALL_BLOCK(v8, 8, 3, 4)
SMALL_BLOCK(v8, 8, 2, 5)
SMALL_BLOCK(v8, 8, 2, 6)
SMALL_BLOCK(v8, 8, 1, 7)
SMALL_BLOCK(v8, 8, 1, 8)

/* All rows of C, R at a time, with the block of R rows and NV vectors. */
#define SMALL_ROWS(VT, R, NV)                                                                  \
    for (int64_t i = 0; i < m; i += (R))                                                       \
        block_##VT##_##R##_##NV(a + i * ar, ar, ac, m - i < (R) ? (int)(m - i) : (R), bp, ldb, \
                                k, c + i * cr, cr, cc, n, alpha, beta);                        \
    break

/* B as rows of nv vectors of `lanes` floats: straight from b when its rows are contiguous and
 * a whole number of vectors long, else packed row-major into scratch, zero-padded to nv·lanes
 * columns (a transposed B, column stride > row stride, is read along its contiguous direction).
 * Returns the row stride of the result; *bp points at it. */
static int64_t small_pack_b(int64_t n, int64_t k, int64_t np, const float *b, int64_t br,
                            int64_t bc, float *scratch, const float **bp)
{
    *bp = b;
    if (bc == 1 && n == np) return br;
    for (int64_t p = 0; p < k; p++)
        for (int64_t j = n; j < np; j++) scratch[p * np + j] = 0.0f;
    if (br < bc) {
        for (int64_t j = 0; j < n; j++)
            for (int64_t p = 0; p < k; p++) scratch[p * np + j] = b[p * br + j * bc];
    } else {
        for (int64_t p = 0; p < k; p++)
            for (int64_t j = 0; j < n; j++) scratch[p * np + j] = b[p * br + j * bc];
    }
    *bp = scratch;
    return np;
}

/* 16 lanes where the CPU has AVX-512, else 8; SIMMIM_SMALL_GEMM_LANES=8 or 16 overrides it, so
 * that the tests run both layouts on any machine (results are equal; only speed differs). */
static bool small_wide(void)
{
    static int wide = -1; /* -1: not decided yet; racing threads decide the same */
    int w = __atomic_load_n(&wide, __ATOMIC_RELAXED);
    if (w < 0) {
        const char *env = getenv("SIMMIM_SMALL_GEMM_LANES");
        __builtin_cpu_init();
        w = env && (!strcmp(env, "8") || !strcmp(env, "16")) ? !strcmp(env, "16")
                                                             : __builtin_cpu_supports("avx512f") != 0;
        __atomic_store_n(&wide, w, __ATOMIC_RELAXED);
    }
    return w != 0;
}

SM__KERNEL void sm__gemm_small(int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                               int64_t ar, int64_t ac, const float *b, int64_t br, int64_t bc,
                               float beta, float *c, int64_t cr, int64_t cc, float *scratch)
{
    if (m <= 0 || n <= 0) return; /* nothing to write */
    SM__ASSERT(n <= SM__SMALL_N);
    const float *bp;
    if (small_wide()) { /* 32 vector registers of 16 lanes */
        int nv = (int)((n + 15) / 16);
        int64_t ldb = small_pack_b(n, k, 16 * (int64_t)nv, b, br, bc, scratch, &bp);
        switch (nv) {
        case 1: SMALL_ROWS(v16, 4, 1);
        case 2: SMALL_ROWS(v16, 4, 2);
        case 3: SMALL_ROWS(v16, 4, 3);
        default: SMALL_ROWS(v16, 4, 4);
        }
        return;
    }
    /* AVX2 and below: 16 registers, 8 lanes */
    int nv = (int)((n + 7) / 8);
    int64_t ldb = small_pack_b(n, k, 8 * (int64_t)nv, b, br, bc, scratch, &bp);
    switch (nv) {
    case 1: SMALL_ROWS(v8, 4, 1);
    case 2: SMALL_ROWS(v8, 4, 2);
    case 3: SMALL_ROWS(v8, 4, 3);
    case 4: SMALL_ROWS(v8, 3, 4);
    case 5: SMALL_ROWS(v8, 2, 5);
    case 6: SMALL_ROWS(v8, 2, 6);
    case 7: SMALL_ROWS(v8, 1, 7);
    default: SMALL_ROWS(v8, 1, 8);
    }
}
