/* plugins/optim/optim.c - optimizers "adamw" and "sgd" (plugin sm_optim.so).
 *
 * adamw follows torch.optim.AdamW (decoupled weight decay, bias-corrected moments):
 *   p <- p - lr*wd*p;  m <- b1*m + (1-b1)*g;  v <- b2*v + (1-b2)*g^2
 *   p <- p - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * With bias_correction: false it is MindSpore's AdamWeightDecay, which RingMo-Framework used:
 *   p <- p - lr * (m / (sqrt(v) + eps) + wd*p).
 * sgd: torch.optim.SGD with momentum (dampening 0), optional Nesterov, and weight decay applied
 * decoupled like AdamW's (p <- p - lr*wd*p), so both optimizers read `weight_decay` the same way.
 * Elementwise and parallel: the result does not depend on the number of threads. */
#include <simmim/simmim.h>
#include <simmim/optim.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- adamw ------------------------------------------------------------------------------- */

typedef struct adamw {
    double beta1, beta2, eps;
    bool bias_correction;
    float *m, *v;
} adamw;

static const sm_key adamw_keys[] = {
    {"beta1", SM_KEY_FLOAT, "0.9", "[0,1)", 0, "first-moment decay"},
    {"beta2", SM_KEY_FLOAT, "0.999", "[0,1)", 0, "second-moment decay"},
    {"eps", SM_KEY_FLOAT, "1e-8", "(0,)", 0, "added to the denominator"},
    {"bias_correction", SM_KEY_BOOL, "true", NULL, 0,
     "PyTorch AdamW (true) or MindSpore AdamWeightDecay without bias correction (false)"},
    {NULL, SM_KEY_END, NULL, NULL, 0, NULL},
};

static int adamw_create(const sm_cfg *section, sm_params *params, void **self, sm_error *err)
{
    adamw *a = calloc(1, sizeof *a);
    if (!a) return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    a->beta1 = sm_cfg_float(section, "beta1");
    a->beta2 = sm_cfg_float(section, "beta2");
    a->eps = sm_cfg_float(section, "eps");
    a->bias_correction = sm_cfg_bool(section, "bias_correction");
    if (!(a->m = sm_params_state(params, 0, err)) || !(a->v = sm_params_state(params, 1, err))) {
        free(a);
        return SM_ENOMEM;
    }
    *self = a;
    return 0;
}

static void adamw_destroy(void *self) { free(self); }

/* The update loops are compiled for AVX2 and baseline x86-64 (picked at load time) and
 * vectorised: no contraction into FMAs (optim.mk: -ffp-contract=off) and no errno from sqrtf
 * (-fno-math-errno), so every lane does the scalar loop's IEEE operations in the same order and
 * the result is bitwise the same on every ISA and thread count. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define OPTIM_KERNEL __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define OPTIM_KERNEL
#endif

/* The moments of one element: m <- b1*m + (1-b1)*g, v <- b2*v + (1-b2)*g², returned too. */
static inline void moments(float *m, float *v, float g, float fb1, float fb2, float *mi, float *vi)
{
    *mi = fb1 * *m + (1.0f - fb1) * g;
    *vi = fb2 * *v + (1.0f - fb2) * g * g;
    *m = *mi;
    *v = *vi;
}

/* torch.optim.AdamW on n floats: p, g, m, v (n) of one parameter tensor or of a run of them. */
OPTIM_KERNEL static void adamw_torch(float *restrict p, const float *restrict g,
                                     float *restrict m, float *restrict v, int64_t n, float fb1,
                                     float fb2, float decay, float step_size, float inv_sqrt_bc2,
                                     float eps)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float mi, vi;
        moments(&m[i], &v[i], g[i], fb1, fb2, &mi, &vi);
        p[i] = p[i] * decay - step_size * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
    }
}

/* MindSpore's AdamWeightDecay (no bias correction) on n floats. */
OPTIM_KERNEL static void adamw_mindspore(float *restrict p, const float *restrict g,
                                         float *restrict m, float *restrict v, int64_t n,
                                         float fb1, float fb2, float lr, float wd, float eps)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float mi, vi;
        moments(&m[i], &v[i], g[i], fb1, fb2, &mi, &vi);
        p[i] = p[i] - lr * (mi / (sqrtf(vi) + eps) + wd * p[i]);
    }
}

/* Elements per chunk of the parallel loop (the kernels are serial and vectorised). */
#define OPTIM_CHUNK 16384

/* p, g, m, v: n floats of one parameter tensor, in chunks split across the threads. */
static void adamw_update(const adamw *a, float *p, const float *g, float *m, float *v, int64_t n,
                         double lr, double wd, int64_t step)
{
    double b1 = a->beta1, b2 = a->beta2;
    float fb1 = (float)b1, fb2 = (float)b2, eps = (float)a->eps;
    bool torch = a->bias_correction;
    double bc1 = torch ? 1.0 - pow(b1, (double)step) : 1.0;
    double bc2 = torch ? 1.0 - pow(b2, (double)step) : 1.0;
    float decay = (float)(1.0 - lr * wd), step_size = (float)(lr / bc1);
    float inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
    int64_t chunks = (n + OPTIM_CHUNK - 1) / OPTIM_CHUNK;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t i = c * OPTIM_CHUNK, k = n - i < OPTIM_CHUNK ? n - i : OPTIM_CHUNK;
        if (torch)
            adamw_torch(p + i, g + i, m + i, v + i, k, fb1, fb2, decay, step_size, inv_sqrt_bc2,
                        eps);
        else
            adamw_mindspore(p + i, g + i, m + i, v + i, k, fb1, fb2, (float)lr, (float)wd, eps);
    }
}

static void adamw_step(void *self, sm_params *params, const float *lr, const float *wd,
                       int64_t step)
{
    adamw *a = self;
    float *base = sm_params_data(params);
    for (size_t i = 0; i < sm_params_count(params); i++) {
        sm_tensor *t = sm_params_at(params, i);
        int64_t off = t->data - base;
        adamw_update(a, t->data, t->grad, a->m + off, a->v + off, sm_tensor_numel(t), lr[i], wd[i],
                     step);
    }
}

static int adamw_state_count(const void *self)
{
    (void)self;
    return 2;
}
static const char *adamw_state_name(const void *self, int slot)
{
    (void)self;
    return slot == 0 ? "exp_avg" : slot == 1 ? "exp_avg_sq" : NULL;
}

static const sm_optimizer_vtbl adamw_vtbl = {
    .hdr = SM_COMPONENT_INIT(sm_optimizer_vtbl, SM_KIND_OPTIMIZER, "adamw",
                             "AdamW with decoupled weight decay (torch.optim.AdamW)", adamw_keys,
                             NULL),
    .create = adamw_create,
    .destroy = adamw_destroy,
    .step = adamw_step,
    .state_count = adamw_state_count,
    .state_name = adamw_state_name,
};

/* ---- sgd --------------------------------------------------------------------------------- */

typedef struct sgd {
    double momentum;
    bool nesterov;
    float *buf;
} sgd;

static const sm_key sgd_keys[] = {
    {"momentum", SM_KEY_FLOAT, "0.9", "[0,1)", 0, "momentum factor (0 = plain SGD)"},
    {"nesterov", SM_KEY_BOOL, "false", NULL, 0, "Nesterov momentum"},
    {NULL, SM_KEY_END, NULL, NULL, 0, NULL},
};

static int sgd_create(const sm_cfg *section, sm_params *params, void **self, sm_error *err)
{
    sgd *s = calloc(1, sizeof *s);
    if (!s) return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    s->momentum = sm_cfg_float(section, "momentum");
    s->nesterov = sm_cfg_bool(section, "nesterov");
    if (!(s->buf = sm_params_state(params, 0, err))) {
        free(s);
        return SM_ENOMEM;
    }
    *self = s;
    return 0;
}

static void sgd_destroy(void *self) { free(self); }

static void sgd_step(void *self, sm_params *params, const float *lr, const float *wd, int64_t step)
{
    sgd *s = self;
    float *base = sm_params_data(params);
    float mu = (float)s->momentum;
    for (size_t i = 0; i < sm_params_count(params); i++) {
        sm_tensor *t = sm_params_at(params, i);
        int64_t n = sm_tensor_numel(t);
        float *p = t->data, *b = s->buf + (t->data - base);
        const float *g = t->grad;
        float l = lr[i], decay = 1.0f - lr[i] * wd[i];
        bool first = step <= 1, nest = s->nesterov;
#pragma omp parallel for schedule(static) if (n > 65536)
        for (int64_t k = 0; k < n; k++) {
            float d = g[k];
            if (mu != 0.0f) {
                float bk = first ? d : mu * b[k] + d;
                b[k] = bk;
                d = nest ? d + mu * bk : bk;
            }
            p[k] = p[k] * decay - l * d;
        }
    }
}

static int sgd_state_count(const void *self)
{
    (void)self;
    return 1;
}
static const char *sgd_state_name(const void *self, int slot)
{
    (void)self;
    return slot == 0 ? "momentum_buffer" : NULL;
}

static const sm_optimizer_vtbl sgd_vtbl = {
    .hdr = SM_COMPONENT_INIT(sm_optimizer_vtbl, SM_KIND_OPTIMIZER, "sgd",
                             "SGD with momentum (torch.optim.SGD), decoupled weight decay",
                             sgd_keys, NULL),
    .create = sgd_create,
    .destroy = sgd_destroy,
    .step = sgd_step,
    .state_count = sgd_state_count,
    .state_name = sgd_state_name,
};

static int optim_register(sm_registry *reg, sm_error *err)
{
    int rc = sm_registry_add(reg, &adamw_vtbl.hdr, err);
    return rc ? rc : sm_registry_add(reg, &sgd_vtbl.hdr, err);
}

SM_PLUGIN_DEFINE(optim, "0.1.0", "Optimizers: adamw, sgd", "MIT", optim_register)
