/* core/tensor/params.c - the named parameter store (llm.c style: values, gradients and each optimizer
 * state are one contiguous block each, laid out identically, parameters packed in declaration
 * order with no padding) and the initialisers. */
#include "tensor/tensor_internal.h"

typedef struct sm__param {
    sm_tensor t;
    char *name;
    int64_t offset; /* in elements, within each block */
} sm__param;

struct sm_params {
    sm__param **p; /* stable pointers: tensors handed out stay valid */
    size_t n, cap;
    int64_t numel;
    bool final;
    float *data, *grads;
    void *grads_raw; /* grads' allocation (grads is its first 64-byte boundary) */
    float **state;
    int n_state;
};

sm_params *sm_params_new(void) { return calloc(1, sizeof(sm_params)); }

void sm_params_free(sm_params *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n; i++) {
        free(p->p[i]->name);
        free(p->p[i]);
    }
    free(p->p);
    free(p->data);
    free(p->grads_raw);
    for (int i = 0; i < p->n_state; i++) free(p->state[i]);
    free(p->state);
    free(p);
}

sm_tensor *sm_params_add(sm_params *p, const char *name, int ndim, const int64_t *shape,
                         sm_error *err)
{
    if (p->final) {
        sm_error_set(err, SM_EINVAL, NULL, 0, 0, name,
                     "parameter '%s' declared after sm_params_finalize", name);
        return NULL;
    }
    if (!name || !*name) {
        sm_error_set(err, SM_EINVAL, NULL, 0, 0, NULL, "parameter with an empty name");
        return NULL;
    }
    if (sm_params_find(p, name)) {
        sm_error_set(err, SM_EEXIST, NULL, 0, 0, name, "parameter '%s' declared twice", name);
        return NULL;
    }
    sm__param *e = calloc(1, sizeof *e);
    if (!e || !sm__set_shape(&e->t, ndim, shape)) {
        free(e);
        if (!e) sm_error_set(err, SM_ENOMEM, NULL, 0, 0, name, "out of memory");
        else
            sm_error_set(err, SM_EINVAL, NULL, 0, 0, name,
                         "parameter '%s': invalid shape (%d dims)", name, ndim);
        return NULL;
    }
    int64_t numel = sm_tensor_numel(&e->t);
    if (numel > INT64_MAX / 4 - p->numel) {
        free(e);
        sm_error_set(err, SM_EINVAL, NULL, 0, 0, name, "parameter '%s' is too large", name);
        return NULL;
    }
    if (p->n == p->cap) {
        size_t nc = p->cap ? 2 * p->cap : 64;
        sm__param **np = realloc(p->p, nc * sizeof *np);
        if (!np) {
            free(e);
            sm_error_set(err, SM_ENOMEM, NULL, 0, 0, name, "out of memory");
            return NULL;
        }
        p->p = np;
        p->cap = nc;
    }
    if (!(e->name = sm__strdup(name))) {
        free(e);
        sm_error_set(err, SM_ENOMEM, NULL, 0, 0, name, "out of memory");
        return NULL;
    }
    e->t.name = e->name;
    e->t.flags = SM_TENSOR_PARAM | SM_TENSOR_REQUIRES_GRAD;
    e->offset = p->numel;
    p->numel += numel;
    p->p[p->n++] = e;
    return &e->t;
}

/* A zeroed 64-byte aligned block of n floats. */
static float *block_new(int64_t n)
{
    size_t bytes = ((size_t)(n > 0 ? n : 1) * sizeof(float) + 63) & ~(size_t)63;
    float *b = aligned_alloc(64, bytes);
    if (b) memset(b, 0, bytes);
    return b;
}

/* The gradients' zeroed block, from calloc: a large one comes straight from the kernel as zero
 * pages that take no memory until written, so a model that is only evaluated never pays for
 * its gradients (about a third of ViT-B's evaluation RSS). */
static float *grads_new(int64_t n, void **raw)
{
    size_t bytes = (size_t)(n > 0 ? n : 1) * sizeof(float) + 63;
    *raw = calloc(1, bytes);
    return *raw ? (float *)(((uintptr_t)*raw + 63) & ~(uintptr_t)63) : NULL;
}

int sm_params_finalize(sm_params *p, sm_error *err)
{
    if (p->final) return sm_error_set(err, SM_EINVAL, NULL, 0, 0, NULL, "finalized twice");
    p->data = block_new(p->numel);
    p->grads = grads_new(p->numel, &p->grads_raw);
    if (!p->data || !p->grads) {
        free(p->data);
        free(p->grads_raw);
        p->data = p->grads = p->grads_raw = NULL;
        return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL,
                            "out of memory for %lld parameters", (long long)p->numel);
    }
    for (size_t i = 0; i < p->n; i++) {
        p->p[i]->t.data = p->data + p->p[i]->offset;
        p->p[i]->t.grad = p->grads + p->p[i]->offset;
    }
    p->final = true;
    return 0;
}

size_t sm_params_count(const sm_params *p) { return p->n; }
sm_tensor *sm_params_at(const sm_params *p, size_t i) { return i < p->n ? &p->p[i]->t : NULL; }

sm_tensor *sm_params_find(const sm_params *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->p[i]->name, name) == 0) return &p->p[i]->t;
    return NULL;
}

int64_t sm_params_numel(const sm_params *p) { return p->numel; }
float *sm_params_data(const sm_params *p) { return p->data; }
float *sm_params_grads(const sm_params *p) { return p->grads; }

void sm_params_zero_grad(sm_params *p)
{
    if (p->grads) memset(p->grads, 0, (size_t)p->numel * sizeof(float));
}

float *sm_params_state(sm_params *p, int slot, sm_error *err)
{
    if (!p->final || slot < 0) {
        sm_error_set(err, SM_EINVAL, NULL, 0, 0, NULL,
                     "optimizer state %d requested before finalize or with a negative slot",
                     slot);
        return NULL;
    }
    if (slot >= p->n_state) {
        float **ns = realloc(p->state, (size_t)(slot + 1) * sizeof *ns);
        if (!ns) {
            sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
            return NULL;
        }
        for (int i = p->n_state; i <= slot; i++) ns[i] = NULL;
        p->state = ns;
        p->n_state = slot + 1;
    }
    if (!p->state[slot] && !(p->state[slot] = block_new(p->numel)))
        sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL,
                     "out of memory for optimizer state (%lld floats)", (long long)p->numel);
    return p->state[slot];
}

/* ---- initialisers ------------------------------------------------------------------------- */

/* Inverse of the standard normal CDF (Acklam's rational approximation: relative error below
 * 1.2e-9, far below float32's 6e-8, so no refinement step). u in (0, 1). */
static double norm_ppf(double u)
{
    static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                               -2.759285104469687e+02, 1.383577518672690e+02,
                               -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                               -1.556989798598866e+02, 6.680131188771972e+01,
                               -1.328068155288572e+01};
    static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                               -2.400758277161838e+00, -2.549732539343734e+00,
                               4.374664141464968e+00,  2.938163982698783e+00};
    static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                               2.445134137142996e+00, 3.754408661907416e+00};
    double x, q, r;
    if (u < 0.02425) {
        q = sqrt(-2 * log(u));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    } else if (u > 1 - 0.02425) {
        q = sqrt(-2 * log(1 - u));
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    } else {
        q = u - 0.5;
        r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
    }
    return x;
}

/* Elements are drawn in chunks of this many, chunk c from the stream keyed (k, c) where k is
 * one draw from the caller's rng: chunks run in parallel and the values do not depend on the
 * number of threads. */
#define SM__INIT_CHUNK 16384

void sm_init_trunc_normal(sm_tensor *t, double mean, double std, double a, double b,
                          sm_rng *rng)
{
    /* as timm: u uniform in [Φ(α), Φ(β)], x = mean + std·Φ⁻¹(u), clamped to [a, b] */
    double lo = 0.5 * erfc(-((a - mean) / std) / M_SQRT2);
    double hi = 0.5 * erfc(-((b - mean) / std) / M_SQRT2);
    int64_t n = sm_tensor_numel(t), chunks = (n + SM__INIT_CHUNK - 1) / SM__INIT_CHUNK;
    uint64_t key = sm_rng_u64(rng);
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (int64_t c = 0; c < chunks; c++) {
        sm_rng r;
        sm_rng_init(&r, key, (uint64_t)c, 0, 0);
        int64_t end = (c + 1) * SM__INIT_CHUNK < n ? (c + 1) * SM__INIT_CHUNK : n;
        for (int64_t i = c * SM__INIT_CHUNK; i < end; i++) {
            double u;
            do u = lo + (hi - lo) * sm_rng_uniform(&r);
            while (u <= 0.0 || u >= 1.0);
            double x = mean + std * norm_ppf(u);
            t->data[i] = (float)(x < a ? a : (x > b ? b : x));
        }
    }
}

void sm_init_uniform(sm_tensor *t, double lo, double hi, sm_rng *rng)
{
    int64_t n = sm_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) t->data[i] = (float)(lo + (hi - lo) * sm_rng_uniform(rng));
}

void sm_init_const(sm_tensor *t, float v)
{
    int64_t n = sm_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) t->data[i] = v;
}
