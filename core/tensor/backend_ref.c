/* core/tensor/backend_ref.c - the built-in "ref" backend: a naive GEMM, the oracle of the tests.
 * Accumulates each dot product in double, so it is also a little more accurate than float32
 * GEMMs. Parallel over rows of C (each element is computed by one thread: deterministic).
 * In bf16 precision each element of A and B is rounded to bfloat16 as it is read (the products
 * of two bf16 values are exact in double): the oracle of the bf16 backends. */
#include "tensor/tensor_internal.h"

typedef struct ref_be {
    int threads;
    sm_precision precision;
} ref_be;

static int sm__ref_create(const sm_cfg *section, int threads, void **self, sm_error *err)
{
    (void)section;
    ref_be *be = malloc(sizeof *be);
    if (!be) return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    be->threads = threads > 0 ? threads : 1;
    be->precision = SM_PRECISION_FP32;
    *self = be;
    return 0;
}

static void sm__ref_destroy(void *self) { free(self); }

static int sm__ref_set_precision(void *self, sm_precision p, sm_error *err)
{
    (void)err;
    ((ref_be *)self)->precision = p;
    return 0;
}

/* C (m×n) = alpha·op(A)·op(B) + beta·C, BLIS-style strides; op(A), op(B) rounded to bf16 first
 * when bf16. */
static void sm__ref_sgemm(void *self, sm_trans ta, sm_trans tb, int64_t m, int64_t n, int64_t k,
                          float alpha, const float *a, int64_t rsa, int64_t csa, const float *b,
                          int64_t rsb, int64_t csb, float beta, float *c, int64_t rsc,
                          int64_t csc)
{
    const ref_be *be = self;
    bool bf16 = be->precision == SM_PRECISION_BF16;
    /* element (i, p) of op(A) and (p, j) of op(B) */
    int64_t ai = ta ? csa : rsa, ap = ta ? rsa : csa;
    int64_t bp = tb ? csb : rsb, bj = tb ? rsb : csb;
#pragma omp parallel for schedule(static) num_threads(be->threads) if (m * n * k > 32768)
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            double acc = 0.0;
            if (bf16)
                for (int64_t p = 0; p < k; p++)
                    acc += (double)sm_bf16_round(a[i * ai + p * ap]) *
                           (double)sm_bf16_round(b[p * bp + j * bj]);
            else
                for (int64_t p = 0; p < k; p++)
                    acc += (double)a[i * ai + p * ap] * (double)b[p * bp + j * bj];
            float *cij = &c[i * rsc + j * csc];
            float v = alpha * (float)acc;
            *cij = beta == 0.0f ? v : v + beta * *cij;
        }
    }
}

static size_t sm__ref_describe(void *self, char *buf, size_t n)
{
    const ref_be *be = self;
    int r = snprintf(buf, n, "reference GEMM (naive, double accumulation%s), %d threads",
                     be->precision == SM_PRECISION_BF16 ? ", inputs rounded to bf16" : "",
                     be->threads);
    return r < 0 ? 0 : (size_t)r;
}

static const sm_backend_vtbl sm__ref_vtbl = {
    .hdr = SM_COMPONENT_INIT(sm_backend_vtbl, SM_KIND_BACKEND, "ref",
                             "built-in reference backend (naive GEMM; the test oracle; fp32 "
                             "and bf16)",
                             NULL, NULL),
    .create = sm__ref_create,
    .destroy = sm__ref_destroy,
    .sgemm = sm__ref_sgemm,
    .describe = sm__ref_describe,
    .set_precision = sm__ref_set_precision,
};

const sm_backend_vtbl *sm_backend_ref_vtbl(void) { return &sm__ref_vtbl; }
