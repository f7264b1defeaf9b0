/* core/tensor/backend.c - opening backends by name, setting their precision, dispatching GEMMs
 * to them. */
#include "tensor/tensor_internal.h"

#include <omp.h>
#include <stddef.h>

const char *sm_precision_name(sm_precision p) { return p == SM_PRECISION_BF16 ? "bf16" : "fp32"; }

int sm_precision_parse(const char *s, sm_precision *p)
{
    if (s && sm__strcasecmp(s, "fp32") == 0) {
        *p = SM_PRECISION_FP32;
        return 0;
    }
    if (s && sm__strcasecmp(s, "bf16") == 0) {
        *p = SM_PRECISION_BF16;
        return 0;
    }
    return SM_EINVAL;
}

/* The vtable's set_precision, or NULL when it is absent (a vtable of ABI 1.0) or empty. */
static int (*set_precision_slot(const sm_backend_vtbl *vt))(void *, sm_precision, sm_error *)
{
    if (vt->hdr.struct_size < offsetof(sm_backend_vtbl, set_precision) + sizeof vt->set_precision)
        return NULL;
    return vt->set_precision;
}

int sm_backend_set_precision(sm_backend *be, sm_precision p, sm_error *err)
{
    if (p == be->precision) return 0;
    /* be->precision changes only through the slot, so without it p is not fp32 here */
    int (*set)(void *, sm_precision, sm_error *) = set_precision_slot(be->vt);
    if (!set)
        return sm_error_set(err, SM_EUNSUPPORTED, NULL, 0, 0, "backend.precision",
                            "backend '%s' does not support precision %s: it computes in fp32 "
                            "only",
                            sm_backend_name(be), sm_precision_name(p));
    int rc = set(be->self, p, err);
    if (rc) return rc;
    be->precision = p;
    return 0;
}

sm_precision sm_backend_precision(const sm_backend *be)
{
    return be ? be->precision : SM_PRECISION_FP32;
}

int sm_backend_new(const sm_registry *reg, const char *name, const sm_cfg *section, int threads,
                   sm_backend **out, sm_error *err)
{
    *out = NULL;
    const sm_backend_vtbl *vt = NULL;
    if (!name || !*name) name = "ref";
    if (reg) {
        const sm_component *c = sm_registry_lookup(reg, SM_KIND_BACKEND, name, err);
        if (!c) return SM_ENOTFOUND;
        vt = (const sm_backend_vtbl *)c;
    } else if (sm__strcasecmp(name, "ref") == 0) {
        vt = sm_backend_ref_vtbl();
    } else {
        return sm_error_set(err, SM_ENOTFOUND, NULL, 0, 0, NULL,
                            "unknown backend '%s' (available: ref)", name);
    }
    if (threads <= 0) threads = omp_get_num_procs();
    sm_backend *be = calloc(1, sizeof *be);
    if (!be) return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    be->vt = vt;
    be->threads = threads;
    be->precision = SM_PRECISION_FP32;
    int rc = vt->create(section, threads, &be->self, err);
    if (rc) {
        free(be);
        return rc;
    }
    const char *prec = section ? sm_cfg_str(section, "precision") : NULL;
    sm_precision p = SM_PRECISION_FP32;
    if (prec && sm_precision_parse(prec, &p) != 0)
        rc = sm_error_set(err, SM_ECONFIG, NULL, 0, 0, "backend.precision",
                          "unknown precision '%s' (fp32 or bf16)", prec);
    if (!rc) rc = sm_backend_set_precision(be, p, err);
    if (rc) {
        sm_backend_free(be);
        return rc;
    }
    *out = be;
    return 0;
}

void sm_backend_free(sm_backend *be)
{
    if (!be) return;
    be->vt->destroy(be->self);
    free(be);
}

const char *sm_backend_name(const sm_backend *be) { return be ? be->vt->hdr.name : ""; }

size_t sm_backend_describe(const sm_backend *be, char *buf, size_t n)
{
    if (be && be->vt->describe) return be->vt->describe(be->self, buf, n);
    int r = snprintf(buf, n, "%s, %d threads", sm_backend_name(be), be ? be->threads : 0);
    return r < 0 ? 0 : (size_t)r;
}

/* C := beta·C, for the k == 0 case (backends never see empty products). */
static void scale_c(int64_t m, int64_t n, float beta, float *c, int64_t rsc, int64_t csc)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            float *p = &c[i * rsc + j * csc];
            *p = beta == 0.0f ? 0.0f : beta * *p;
        }
}

void sm_backend_sgemm(sm_backend *be, sm_trans ta, sm_trans tb, int64_t m, int64_t n, int64_t k,
                      float alpha, const float *a, int64_t rsa, int64_t csa, const float *b,
                      int64_t rsb, int64_t csb, float beta, float *c, int64_t rsc, int64_t csc)
{
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        scale_c(m, n, beta, c, rsc, csc);
        return;
    }
    be->vt->sgemm(be->self, ta, tb, m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc);
}

void sm_backend_sgemm_bias(sm_backend *be, sm_trans ta, sm_trans tb, int64_t m, int64_t n,
                           int64_t k, const float *a, int64_t rsa, int64_t csa, const float *b,
                           int64_t rsb, int64_t csb, const float *bias, float *c, int64_t rsc)
{
    if (m <= 0 || n <= 0) return;
    if (k > 0 && SM_HAS_SLOT(be->vt, sm_backend_vtbl, sgemm_bias) && be->vt->sgemm_bias) {
        be->vt->sgemm_bias(be->self, ta, tb, m, n, k, a, rsa, csa, b, rsb, csb, bias, c, rsc);
        return;
    }
#pragma omp parallel for schedule(static) num_threads(be->threads) if (m * n >= (1 << 15))
    for (int64_t i = 0; i < m; i++) memcpy(c + i * rsc, bias, (size_t)n * sizeof(float));
    sm_backend_sgemm(be, ta, tb, m, n, k, 1.0f, a, rsa, csa, b, rsb, csb, 1.0f, c, rsc, 1);
}

void sm_backend_sgemm_batched(sm_backend *be, sm_trans ta, sm_trans tb, int64_t m, int64_t n,
                              int64_t k, float alpha, const float *a, int64_t rsa, int64_t csa,
                              int64_t sa, const float *b, int64_t rsb, int64_t csb, int64_t sb,
                              float beta, float *c, int64_t rsc, int64_t csc, int64_t sc,
                              int64_t batch)
{
    if (m <= 0 || n <= 0 || batch <= 0) return;
    if (k <= 0) {
        for (int64_t i = 0; i < batch; i++) scale_c(m, n, beta, c + i * sc, rsc, csc);
        return;
    }
    if (be->vt->sgemm_batched) {
        be->vt->sgemm_batched(be->self, ta, tb, m, n, k, alpha, a, rsa, csa, sa, b, rsb, csb, sb,
                              beta, c, rsc, csc, sc, batch);
        return;
    }
#pragma omp parallel for schedule(static) num_threads(be->threads) if (batch > 1)
    for (int64_t i = 0; i < batch; i++)
        be->vt->sgemm(be->self, ta, tb, m, n, k, alpha, a + i * sa, rsa, csa, b + i * sb, rsb, csb,
                      beta, c + i * sc, rsc, csc);
}
