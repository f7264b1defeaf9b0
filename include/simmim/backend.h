/* simmim/backend.h - compute backends: who multiplies matrices.
 *
 * A backend does GEMM and nothing else; every other kernel (layernorm, softmax, attention glue,
 * window partition, losses, ...) lives in the core. `ref` is built into the core: a naive,
 * obviously-correct implementation kept as the oracle that tests compare against. `blis` is a
 * plugin (plugins/blis) and the default for real work.
 *
 * Matrix convention (BLIS's): every matrix is given by a pointer, a row stride and a column
 * stride in ELEMENTS, so element (i, j) of stored matrix X is X[i·rs + j·cs]. Transposed and
 * strided views (a head's slice of a packed qkv tensor) need no copies.
 *   C (m×n) := alpha · op(A) · op(B) + beta · C
 *   op(A) is m×k: A itself (stored m×k) or Aᵀ (A stored k×m), and likewise op(B) k×n.
 * With beta == 0, C is overwritten (NaN/Inf already in C are ignored).
 *
 * Precision (config `backend.precision`, docs/backends.md). fp32: every GEMM in float32. bf16:
 * both inputs of every GEMM are rounded to bfloat16 (round to nearest even) and the products
 * are accumulated and returned in float32, as torch.autocast('cpu', torch.bfloat16) does for
 * matmuls; nothing else changes (weights, optimizer state, layernorm, softmax, losses stay
 * float32). A backend that cannot run bf16 properly refuses it when it is opened.
 */
#ifndef SIMMIM_BACKEND_H
#define SIMMIM_BACKEND_H

#include "simmim/common.h"
#include "simmim/config.h"
#include "simmim/registry.h"

#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sm_trans { SM_NO_TRANS = 0, SM_TRANS = 1 } sm_trans;

/* Precision of the GEMM inputs (see above). */
typedef enum sm_precision { SM_PRECISION_FP32 = 0, SM_PRECISION_BF16 = 1 } sm_precision;

typedef struct sm_backend_vtbl {
    sm_component hdr; /* kind SM_KIND_BACKEND */
    /* Required. section: the validated `backend` config section (may be NULL: defaults);
     * threads: the thread count to use inside a GEMM (>= 1). */
    int (*create)(const sm_cfg *section, int threads, void **self, sm_error *err);
    /* Required. */
    void (*destroy)(void *self);
    /* Required. One GEMM, see the convention above. Must be callable from several threads at
     * once (from inside an OpenMP parallel region it must use one thread). */
    void (*sgemm)(void *self, sm_trans ta, sm_trans tb, int64_t m, int64_t n, int64_t k,
                  float alpha, const float *a, int64_t rsa, int64_t csa, const float *b,
                  int64_t rsb, int64_t csb, float beta, float *c, int64_t rsc, int64_t csc);
    /* Optional (NULL: the core runs sgemm in an OpenMP loop over the batch). `batch`
     * independent GEMMs; operand i starts at a + i·sa, b + i·sb, c + i·sc. */
    void (*sgemm_batched)(void *self, sm_trans ta, sm_trans tb, int64_t m, int64_t n, int64_t k,
                          float alpha, const float *a, int64_t rsa, int64_t csa, int64_t sa,
                          const float *b, int64_t rsb, int64_t csb, int64_t sb, float beta,
                          float *c, int64_t rsc, int64_t csc, int64_t sc, int64_t batch);
    /* Optional. One line for logs and `simmimctl plugins`, e.g.
     * "BLIS 0.9.0, kernels skx (selected), 2 threads". snprintf semantics. */
    size_t (*describe)(void *self, char *buf, size_t n);
    /* ---- ABI 1.1 (the registry checks hdr.struct_size before using these) ---- */
    /* Optional (absent or NULL: fp32 only). Called once, right after create and before any
     * GEMM, when the precision is not fp32. Returns 0, or refuses with SM_EUNSUPPORTED and a
     * message that names the backend, the key backend.precision and the reason. */
    int (*set_precision)(void *self, sm_precision p, sm_error *err);
    /* ---- ABI 1.2 ---- */
    /* Optional (absent or NULL: the core writes the bias into every row of C and runs sgemm
     * with beta 1). C (m×n, row-major: element (i, j) at c[i·rsc + j], rsc >= n) :=
     * op(A)·op(B) + bias, the n floats of bias added to every row, as the linear layer's
     * forward wants: a backend that can add it while writing C saves a pass over C. Never
     * called with m, n or k < 1. Same thread rules as sgemm. */
    void (*sgemm_bias)(void *self, sm_trans ta, sm_trans tb, int64_t m, int64_t n, int64_t k,
                       const float *a, int64_t rsa, int64_t csa, const float *b, int64_t rsb,
                       int64_t csb, const float *bias, float *c, int64_t rsc);
} sm_backend_vtbl;

/* An open backend: the vtable plus its instance. */
struct sm_backend {
    const sm_backend_vtbl *vt;
    void *self;
    int threads;
    sm_precision precision;
};
typedef struct sm_backend sm_backend;

/* The built-in reference backend's vtable ("ref"). */
SM_API const sm_backend_vtbl *sm_backend_ref_vtbl(void);

/* Opens backend `name` from reg (reg may be NULL: only "ref" is then available).
 * threads <= 0 means all cores. The precision is the section's `precision` (fp32 when section
 * is NULL or lacks it); a backend that refuses it fails here (SM_EUNSUPPORTED).
 * new; free with sm_backend_free. */
SM_API int sm_backend_new(const sm_registry *reg, const char *name, const sm_cfg *section,
                          int threads, sm_backend **out, sm_error *err);
SM_API void sm_backend_free(sm_backend *be);
SM_API const char *sm_backend_name(const sm_backend *be);
SM_API size_t sm_backend_describe(const sm_backend *be, char *buf, size_t n);
/* Sets the precision of a backend that has not run a GEMM yet (sm_backend_new does this from
 * the config). fp32 always succeeds; otherwise 0, or SM_EUNSUPPORTED when the backend cannot
 * (its message names the backend and backend.precision). The precision stays unchanged on
 * failure. */
SM_API int sm_backend_set_precision(sm_backend *be, sm_precision p, sm_error *err);
SM_API sm_precision sm_backend_precision(const sm_backend *be);
/* "fp32", "bf16" / the precision named s (case-insensitive): 0, or SM_EINVAL. */
SM_API const char *sm_precision_name(sm_precision p);
SM_API int sm_precision_parse(const char *s, sm_precision *p);

/* float -> bfloat16 bits, rounding to nearest even (what torch's .to(torch.bfloat16) does);
 * NaN stays a quiet NaN of the same sign, and values beyond the largest bf16 become ±inf. */
static inline uint16_t sm_bf16_from_float(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16, quiet = (u >> 16) | 0x40u;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? quiet : rounded); /* a select: vectorises */
}
/* bfloat16 bits -> float (exact). */
static inline float sm_bf16_to_float(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}
/* x rounded to the nearest bfloat16, as a float. */
static inline float sm_bf16_round(float x) { return sm_bf16_to_float(sm_bf16_from_float(x)); }

/* Dispatch helpers (argument checks are the caller's job). */
SM_API void sm_backend_sgemm(sm_backend *be, sm_trans ta, sm_trans tb, int64_t m, int64_t n,
                             int64_t k, float alpha, const float *a, int64_t rsa, int64_t csa,
                             const float *b, int64_t rsb, int64_t csb, float beta, float *c,
                             int64_t rsc, int64_t csc);
/* C (m×n, row-major, row stride rsc) := op(A)·op(B) + bias (n floats, every row): through the
 * backend's sgemm_bias, or by filling C's rows with bias and running sgemm with beta 1. */
SM_API void sm_backend_sgemm_bias(sm_backend *be, sm_trans ta, sm_trans tb, int64_t m, int64_t n,
                                  int64_t k, const float *a, int64_t rsa, int64_t csa,
                                  const float *b, int64_t rsb, int64_t csb, const float *bias,
                                  float *c, int64_t rsc);
SM_API void sm_backend_sgemm_batched(sm_backend *be, sm_trans ta, sm_trans tb, int64_t m,
                                     int64_t n, int64_t k, float alpha, const float *a,
                                     int64_t rsa, int64_t csa, int64_t sa, const float *b,
                                     int64_t rsb, int64_t csb, int64_t sb, float beta, float *c,
                                     int64_t rsc, int64_t csc, int64_t sc, int64_t batch);

#ifdef __cplusplus
}
#endif
#endif /* SIMMIM_BACKEND_H */
