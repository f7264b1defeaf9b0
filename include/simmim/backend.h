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
 */
#ifndef SIMMIM_BACKEND_H
#define SIMMIM_BACKEND_H

#include "simmim/common.h"
#include "simmim/config.h"
#include "simmim/registry.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sm_trans { SM_NO_TRANS = 0, SM_TRANS = 1 } sm_trans;

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
} sm_backend_vtbl;

/* An open backend: the vtable plus its instance. */
struct sm_backend {
    const sm_backend_vtbl *vt;
    void *self;
    int threads;
};
typedef struct sm_backend sm_backend;

/* The built-in reference backend's vtable ("ref"). */
SM_API const sm_backend_vtbl *sm_backend_ref_vtbl(void);

/* Opens backend `name` from reg (reg may be NULL: only "ref" is then available).
 * threads <= 0 means all cores. new; free with sm_backend_free. */
SM_API int sm_backend_new(const sm_registry *reg, const char *name, const sm_cfg *section,
                          int threads, sm_backend **out, sm_error *err);
SM_API void sm_backend_free(sm_backend *be);
SM_API const char *sm_backend_name(const sm_backend *be);
SM_API size_t sm_backend_describe(const sm_backend *be, char *buf, size_t n);

/* Dispatch helpers (argument checks are the caller's job). */
SM_API void sm_backend_sgemm(sm_backend *be, sm_trans ta, sm_trans tb, int64_t m, int64_t n,
                             int64_t k, float alpha, const float *a, int64_t rsa, int64_t csa,
                             const float *b, int64_t rsb, int64_t csb, float beta, float *c,
                             int64_t rsc, int64_t csc);
SM_API void sm_backend_sgemm_batched(sm_backend *be, sm_trans ta, sm_trans tb, int64_t m,
                                     int64_t n, int64_t k, float alpha, const float *a,
                                     int64_t rsa, int64_t csa, int64_t sa, const float *b,
                                     int64_t rsb, int64_t csb, int64_t sb, float beta, float *c,
                                     int64_t rsc, int64_t csc, int64_t sc, int64_t batch);

#ifdef __cplusplus
}
#endif
#endif /* SIMMIM_BACKEND_H */
