/* core/tensor/ops/loss.c - losses (scalar outputs, shape ()): SimMIM's masked L1, cross-entropy with
 * hard labels and label smoothing, soft-target cross-entropy. Sums are accumulated in double,
 * per fixed block (image plane or sample), combined in order. */
#include "tensor/tensor_internal.h"

/* ---- SimMIM reconstruction loss (models/simmim.py) ----------------------------------------- */
/* x_rec (B, C, H, W), x (B, C, H, W) constant, mask (B, H/p, W/p) constant 0/1
 *   M = mask upsampled by p (B, 1, H, W); loss = Σ|x - x_rec|·M / (ΣM + 1e-5) / C
 *   backward: dx_rec += dL·sign(x_rec - x)·M / ((ΣM + 1e-5)·C)   (sign(0) = 0, as torch) */

typedef struct l1_saved {
    const float *x, *mask;
    int p;
    double denom; /* (ΣM + 1e-5)·C */
} l1_saved;

sm_tensor *sm_masked_l1(sm_ctx *ctx, sm_tensor *x_rec, const sm_tensor *x,
                        const sm_tensor *mask, int p)
{
    if (!SM__OK(ctx, x_rec, x, mask)) return NULL;
    if (x_rec->ndim != 4 || !sm_tensor_same_shape(x_rec, x) || p <= 0 ||
        x_rec->shape[2] % p || x_rec->shape[3] % p || mask->ndim != 3 ||
        mask->shape[0] != x_rec->shape[0] || mask->shape[1] != x_rec->shape[2] / p ||
        mask->shape[2] != x_rec->shape[3] / p) {
        char msg[128];
        snprintf(msg, sizeof msg, "x_rec and x (B, C, H, W) need mask (B, H/p, W/p), p = %d", p);
        return sm__shape_error(ctx, "masked_l1", msg, "x_rec", x_rec, "x", x, "mask", mask,
                               NULL);
    }
    x_rec = sm__contig(ctx, x_rec);
    x = sm__contig(ctx, (sm_tensor *)x);
    mask = sm__contig(ctx, (sm_tensor *)mask);
    if (ctx->err.code) return NULL;
    int64_t B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t Hp = H / p, Wp = W / p, planes = B * C;
    double *part = sm_ctx_alloc(ctx, (size_t)planes * sizeof(double));
    sm_tensor *out = sm__empty(ctx, 0, NULL);
    if (!part || !out) return NULL;
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, planes * H * W))
    for (int64_t pl = 0; pl < planes; pl++) {
        int64_t b = pl / C;
        const float *xr = x_rec->data + pl * H * W, *xx = x->data + pl * H * W;
        const float *m = mask->data + b * Hp * Wp;
        double acc = 0.0;
        for (int64_t h = 0; h < H; h++)
            for (int64_t w = 0; w < W; w++)
                if (m[(h / p) * Wp + w / p] != 0.0f)
                    acc += fabs((double)xx[h * W + w] - (double)xr[h * W + w]) *
                           (double)m[(h / p) * Wp + w / p];
        part[pl] = acc;
    }
    double num = 0.0, msum = 0.0;
    for (int64_t pl = 0; pl < planes; pl++) num += part[pl];
    for (int64_t i = 0; i < B * Hp * Wp; i++) msum += mask->data[i];
    double denom = (msum * (double)p * (double)p + 1e-5) * (double)C;
    out->data[0] = (float)(num / denom);
    l1_saved sv = {x->data, mask->data, p, denom};
    return sm__track(ctx, SM__OP_MASKED_L1, out, 1, &x_rec, &sv, sizeof sv);
}

void sm__masked_l1_backward(sm_ctx *ctx, sm__node *n)
{
    sm_tensor *x_rec = n->in[0];
    const l1_saved *sv = n->saved;
    float *g = sm__grad(ctx, x_rec);
    if (!g) return;
    int64_t B = x_rec->shape[0], C = x_rec->shape[1], H = x_rec->shape[2], W = x_rec->shape[3];
    int64_t p = sv->p, Wp = W / p, Hp = H / p;
    float scale = (float)((double)n->out->grad[0] / sv->denom);
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, B * C * H * W))
    for (int64_t pl = 0; pl < B * C; pl++) {
        int64_t b = pl / C;
        const float *xr = x_rec->data + pl * H * W, *xx = sv->x + pl * H * W;
        const float *m = sv->mask + b * Hp * Wp;
        float *gp = g + pl * H * W;
        for (int64_t h = 0; h < H; h++)
            for (int64_t w = 0; w < W; w++) {
                float d = xr[h * W + w] - xx[h * W + w];
                float s = d > 0.0f ? 1.0f : (d < 0.0f ? -1.0f : 0.0f);
                gp[h * W + w] += scale * s * m[(h / p) * Wp + w / p];
            }
    }
}

/* ---- cross-entropy ---------------------------------------------------------------------- */
/* logits (B, K); hard labels with smoothing eps: target t = (1 - eps)·onehot + eps/K
 * (torch.nn.CrossEntropyLoss(label_smoothing=eps)); or soft targets (B, K) constant (timm
 * SoftTargetCrossEntropy).  loss = mean_b Σ_k -t_k·log_softmax(z)_k
 *   backward: dz_b += dL/B · (softmax(z_b)·Σ_k t_k - t_b) */

typedef struct ce_saved {
    const int64_t *labels;
    const float *targets;
    float smoothing;
} ce_saved;

/* Target of class k for row b. */
static inline double ce_target(const ce_saved *sv, int64_t b, int64_t k, int64_t K)
{
    if (sv->targets) return sv->targets[b * K + k];
    double t = (double)sv->smoothing / (double)K;
    return k == sv->labels[b] ? t + 1.0 - (double)sv->smoothing : t;
}

/* log Σ exp(z) of one row, in double. */
static double row_lse(const float *z, int64_t K)
{
    double mx = -INFINITY, s = 0.0;
    for (int64_t k = 0; k < K; k++) mx = z[k] > mx ? z[k] : mx;
    for (int64_t k = 0; k < K; k++) s += exp((double)z[k] - mx);
    return mx + log(s);
}

static sm_tensor *ce_forward(sm_ctx *ctx, sm__op op, sm_tensor *logits, const ce_saved *cfg)
{
    int64_t B = logits->shape[0], K = logits->shape[1];
    logits = sm__contig(ctx, logits);
    sm_tensor *out = sm__empty(ctx, 0, NULL);
    if (!logits || !out) return NULL;
    double total = 0.0;
    for (int64_t b = 0; b < B; b++) {
        const float *z = logits->data + b * K;
        double lse = row_lse(z, K), l = 0.0;
        for (int64_t k = 0; k < K; k++) l -= ce_target(cfg, b, k, K) * ((double)z[k] - lse);
        total += l;
    }
    out->data[0] = (float)(total / (double)B);
    return sm__track(ctx, op, out, 1, &logits, cfg, sizeof *cfg);
}

static void ce_backward(sm_ctx *ctx, sm__node *n)
{
    sm_tensor *logits = n->in[0];
    const ce_saved *sv = n->saved;
    float *g = sm__grad(ctx, logits);
    if (!g) return;
    int64_t B = logits->shape[0], K = logits->shape[1];
    double scale = (double)n->out->grad[0] / (double)B;
    for (int64_t b = 0; b < B; b++) {
        const float *z = logits->data + b * K;
        double lse = row_lse(z, K), tsum = 0.0;
        for (int64_t k = 0; k < K; k++) tsum += ce_target(sv, b, k, K);
        for (int64_t k = 0; k < K; k++)
            g[b * K + k] +=
                (float)(scale * (exp((double)z[k] - lse) * tsum - ce_target(sv, b, k, K)));
    }
}

sm_tensor *sm_cross_entropy(sm_ctx *ctx, sm_tensor *logits, const int64_t *labels,
                            float smoothing)
{
    if (!SM__OK(ctx, logits)) return NULL;
    if (logits->ndim != 2 || logits->shape[0] <= 0 || logits->shape[1] <= 0 || !labels)
        return sm__shape_error(ctx, "cross_entropy", "logits must be (B, K) with labels[B]",
                               "logits", logits, NULL);
    if (!(smoothing >= 0.0f && smoothing < 1.0f)) {
        sm_ctx_fail(ctx, SM_EINVAL, "cross_entropy: label smoothing %g is outside [0, 1)",
                    (double)smoothing);
        return NULL;
    }
    int64_t B = logits->shape[0], K = logits->shape[1];
    for (int64_t b = 0; b < B; b++)
        if (labels[b] < 0 || labels[b] >= K) {
            sm_ctx_fail(ctx, SM_EINVAL, "cross_entropy: label %lld of sample %lld is outside "
                        "[0, %lld)", (long long)labels[b], (long long)b, (long long)K);
            return NULL;
        }
    ce_saved cfg = {.labels = labels, .smoothing = smoothing};
    return ce_forward(ctx, SM__OP_CROSS_ENTROPY, logits, &cfg);
}

void sm__cross_entropy_backward(sm_ctx *ctx, sm__node *n) { ce_backward(ctx, n); }

sm_tensor *sm_soft_cross_entropy(sm_ctx *ctx, sm_tensor *logits, const sm_tensor *targets)
{
    if (!SM__OK(ctx, logits, targets)) return NULL;
    if (logits->ndim != 2 || logits->shape[0] <= 0 || logits->shape[1] <= 0 ||
        !sm_tensor_same_shape(logits, targets))
        return sm__shape_error(ctx, "soft_cross_entropy",
                               "logits and targets must both be (B, K)", "logits", logits,
                               "targets", targets, NULL);
    targets = sm__contig(ctx, (sm_tensor *)targets);
    if (!targets) return NULL;
    ce_saved cfg = {.targets = targets->data};
    return ce_forward(ctx, SM__OP_SOFT_CROSS_ENTROPY, logits, &cfg);
}

void sm__soft_cross_entropy_backward(sm_ctx *ctx, sm__node *n) { ce_backward(ctx, n); }
