/* core/tensor/ops/tokens.c - token-sequence ops: SimMIM mask-token blend, cls-token concat,
 * concatenation, slicing, mean pooling. */
#include "tensor/tensor_internal.h"

/* ---- mask-token blend ---------------------------------------------------------------------- */
/* x (B, L, C), token (1, 1, C), mask (B, L) [or (B, h, w), h·w = L] constant, 1 = masked
 *   out = x·(1 - m) + token·m
 *   backward: dx += dout·(1 - m) ; dtoken += Σ_{b,l} m·dout (fixed row blocks) */

typedef struct blend_saved {
    const float *mask;
} blend_saved;

sm_tensor *sm_mask_blend(sm_ctx *ctx, sm_tensor *x, sm_tensor *token, const sm_tensor *mask)
{
    if (!SM__OK(ctx, x, token, mask)) return NULL;
    if (x->ndim != 3 || sm_tensor_numel(token) != x->shape[2] || mask->ndim < 2 ||
        mask->shape[0] != x->shape[0] || sm_tensor_numel(mask) != x->shape[0] * x->shape[1])
        return sm__shape_error(ctx, "mask_blend",
                               "x (B, L, C) needs token (1, 1, C) and mask (B, L)", "x", x,
                               "token", token, "mask", mask, NULL);
    x = sm__contig(ctx, x);
    token = sm__contig(ctx, token);
    mask = sm__contig(ctx, (sm_tensor *)mask);
    if (ctx->err.code) return NULL;
    int64_t rows = x->shape[0] * x->shape[1], C = x->shape[2];
    sm_tensor *out = sm__empty(ctx, 3, x->shape);
    if (!out) return NULL;
    const float *m = mask->data, *tk = token->data;
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, rows * C))
    for (int64_t r = 0; r < rows; r++) {
        float mr = m[r], keep = 1.0f - mr;
        const float *xr = x->data + r * C;
        float *o = out->data + r * C;
        for (int64_t c = 0; c < C; c++) o[c] = xr[c] * keep + tk[c] * mr;
    }
    sm_tensor *ins[2] = {x, token};
    blend_saved sv = {m};
    return sm__track(ctx, SM__OP_MASK_BLEND, out, 2, ins, &sv, sizeof sv);
}

void sm__mask_blend_backward(sm_ctx *ctx, sm__node *n)
{
    sm_tensor *x = n->in[0], *token = n->in[1];
    const float *m = ((const blend_saved *)n->saved)->mask, *g = n->out->grad;
    int64_t rows = x->shape[0] * x->shape[1], C = x->shape[2];
    float *gx = sm__grad(ctx, x), *gt = sm__grad(ctx, token);
    if (gx) {
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, rows * C))
        for (int64_t r = 0; r < rows; r++) {
            float keep = 1.0f - m[r];
            for (int64_t c = 0; c < C; c++) gx[r * C + c] += g[r * C + c] * keep;
        }
    }
    if (gt) sm__colsum_acc(ctx, g, rows, C, C, m, gt);
}

/* ---- cls-token concat --------------------------------------------------------------------- */
/* cls (1, 1, C), x (B, L, C) -> (B, 1 + L, C) = cat(cls.expand(B, -1, -1), x, dim 1)
 *   backward: dcls += Σ_b dout[b, 0] ; dx += dout[:, 1:] */

sm_tensor *sm_cls_concat(sm_ctx *ctx, sm_tensor *cls, sm_tensor *x)
{
    if (!SM__OK(ctx, cls, x)) return NULL;
    if (x->ndim != 3 || sm_tensor_numel(cls) != x->shape[2])
        return sm__shape_error(ctx, "cls_concat", "x (B, L, C) needs cls (1, 1, C)", "cls", cls,
                               "x", x, NULL);
    x = sm__contig(ctx, x);
    cls = sm__contig(ctx, cls);
    if (ctx->err.code) return NULL;
    int64_t B = x->shape[0], L = x->shape[1], C = x->shape[2];
    sm_tensor *out = sm__empty(ctx, 3, SM_SHAPE(B, 1 + L, C));
    if (!out) return NULL;
    for (int64_t b = 0; b < B; b++) {
        memcpy(out->data + b * (1 + L) * C, cls->data, (size_t)C * sizeof(float));
        memcpy(out->data + (b * (1 + L) + 1) * C, x->data + b * L * C,
               (size_t)(L * C) * sizeof(float));
    }
    sm_tensor *ins[2] = {cls, x};
    return sm__track(ctx, SM__OP_CLS_CONCAT, out, 2, ins, NULL, 0);
}

void sm__cls_concat_backward(sm_ctx *ctx, sm__node *n)
{
    sm_tensor *cls = n->in[0], *x = n->in[1];
    int64_t B = x->shape[0], L = x->shape[1], C = x->shape[2];
    const float *g = n->out->grad;
    float *gc = sm__grad(ctx, cls), *gx = sm__grad(ctx, x);
    if (gc) sm__colsum_acc(ctx, g, B, C, (1 + L) * C, NULL, gc);
    if (gx) {
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, B * L * C))
        for (int64_t b = 0; b < B; b++) {
            const float *src = g + (b * (1 + L) + 1) * C;
            float *dst = gx + b * L * C;
            for (int64_t i = 0; i < L * C; i++) dst[i] += src[i];
        }
    }
}

/* ---- concat ------------------------------------------------------------------------------- */
/* xs[i] (..., n_i, ...) along dim, other dims equal -> (..., Σ n_i, ...)
 * Viewed as (outer, n_i·inner) blocks placed side by side in each outer row. */

typedef struct concat_saved {
    int dim;
} concat_saved;

static void concat_geom(const sm_tensor *t, int dim, int64_t *outer, int64_t *inner)
{
    *outer = *inner = 1;
    for (int d = 0; d < dim; d++) *outer *= t->shape[d];
    for (int d = dim + 1; d < t->ndim; d++) *inner *= t->shape[d];
}

sm_tensor *sm_concat(sm_ctx *ctx, sm_tensor *const *xs, int n, int dim)
{
    if (!ctx || ctx->err.code) return NULL;
    if (n <= 0 || !xs) {
        sm_ctx_fail(ctx, SM_EINVAL, "concat: no input tensors");
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (!xs[i]) return NULL;
    int nd = xs[0]->ndim;
    if (dim < 0) dim += nd;
    if (dim < 0 || dim >= nd)
        return sm__shape_error(ctx, "concat", "dim out of range", "x0", xs[0], NULL);
    sm_tensor **in = sm_ctx_alloc(ctx, (size_t)n * sizeof *in);
    if (!in) return NULL;
    int64_t sh[SM_MAX_DIMS];
    memcpy(sh, xs[0]->shape, sizeof sh);
    sh[dim] = 0;
    for (int i = 0; i < n; i++) {
        bool ok = xs[i]->ndim == nd;
        for (int d = 0; ok && d < nd; d++) ok = d == dim || xs[i]->shape[d] == xs[0]->shape[d];
        if (!ok)
            return sm__shape_error(ctx, "concat", "inputs differ outside the concat dim", "x0",
                                   xs[0], "xi", xs[i], NULL);
        in[i] = sm__contig(ctx, xs[i]);
        if (!in[i]) return NULL;
        sh[dim] += xs[i]->shape[dim];
    }
    sm_tensor *out = sm__empty(ctx, nd, sh);
    if (!out) return NULL;
    int64_t outer, inner;
    concat_geom(out, dim, &outer, &inner);
    int64_t row = sh[dim] * inner, off = 0;
    for (int i = 0; i < n; i++) {
        int64_t blk = in[i]->shape[dim] * inner;
        for (int64_t o = 0; o < outer; o++)
            memcpy(out->data + o * row + off, in[i]->data + o * blk, (size_t)blk * sizeof(float));
        off += blk;
    }
    concat_saved sv = {dim};
    return sm__track(ctx, SM__OP_CONCAT, out, n, in, &sv, sizeof sv);
}

void sm__concat_backward(sm_ctx *ctx, sm__node *n)
{
    int dim = ((const concat_saved *)n->saved)->dim;
    int64_t outer, inner;
    concat_geom(n->out, dim, &outer, &inner);
    int64_t row = n->out->shape[dim] * inner, off = 0;
    for (int i = 0; i < n->n_in; i++) {
        int64_t blk = n->in[i]->shape[dim] * inner;
        float *gi = sm__grad(ctx, n->in[i]);
        for (int64_t o = 0; gi && o < outer; o++)
            for (int64_t e = 0; e < blk; e++) gi[o * blk + e] += n->out->grad[o * row + off + e];
        off += blk;
    }
}

/* ---- slice -------------------------------------------------------------------------------- */
/* x[..., start:start+len, ...] along dim: a strided view made contiguous (a copy unless the
 * slice is already contiguous, then the view itself). */
sm_tensor *sm_slice(sm_ctx *ctx, sm_tensor *x, int dim, int64_t start, int64_t len)
{
    if (!SM__OK(ctx, x)) return NULL;
    if (dim < 0) dim += x->ndim;
    if (dim < 0 || dim >= x->ndim || start < 0 || len < 0 || start + len > x->shape[dim]) {
        char msg[128];
        snprintf(msg, sizeof msg, "range [%lld, %lld) of dim %d is out of bounds",
                 (long long)start, (long long)(start + len), dim);
        return sm__shape_error(ctx, "slice", msg, "x", x, NULL);
    }
    int64_t sh[SM_MAX_DIMS];
    memcpy(sh, x->shape, sizeof sh);
    sh[dim] = len;
    sm_tensor *v = sm_view(ctx, x, x->ndim, sh, x->stride, start * x->stride[dim]);
    return v ? sm_contiguous(ctx, v) : NULL;
}

/* ---- mean --------------------------------------------------------------------------------- */
/* mean over one dim, removed: (outer, n, inner) -> (outer, inner); sums in double, in order.
 *   backward: dx[o][k][i] += dout[o][i] / n */

typedef struct mean_saved {
    int dim;
} mean_saved;

sm_tensor *sm_mean(sm_ctx *ctx, sm_tensor *x, int dim)
{
    if (!SM__OK(ctx, x)) return NULL;
    if (dim < 0) dim += x->ndim;
    if (dim < 0 || dim >= x->ndim || x->shape[dim] == 0)
        return sm__shape_error(ctx, "mean", "dim out of range or empty", "x", x, NULL);
    x = sm__contig(ctx, x);
    if (!x) return NULL;
    int64_t sh[SM_MAX_DIMS], outer, inner, n = x->shape[dim];
    int nd = 0;
    for (int d = 0; d < x->ndim; d++)
        if (d != dim) sh[nd++] = x->shape[d];
    concat_geom(x, dim, &outer, &inner);
    sm_tensor *out = sm__empty(ctx, nd, sh);
    double *acc = sm_ctx_alloc(ctx, (size_t)(outer * inner) * sizeof(double));
    if (!out || !acc) return NULL;
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, outer * n * inner))
    for (int64_t o = 0; o < outer; o++) {
        double *a = acc + o * inner;
        for (int64_t i = 0; i < inner; i++) a[i] = 0.0;
        for (int64_t k = 0; k < n; k++) {
            const float *src = x->data + (o * n + k) * inner;
            for (int64_t i = 0; i < inner; i++) a[i] += src[i];
        }
        for (int64_t i = 0; i < inner; i++) out->data[o * inner + i] = (float)(a[i] / (double)n);
    }
    mean_saved sv = {dim};
    return sm__track(ctx, SM__OP_MEAN, out, 1, &x, &sv, sizeof sv);
}

void sm__mean_backward(sm_ctx *ctx, sm__node *node)
{
    sm_tensor *x = node->in[0];
    int dim = ((const mean_saved *)node->saved)->dim;
    float *gx = sm__grad(ctx, x);
    if (!gx) return;
    int64_t outer, inner, n = x->shape[dim];
    concat_geom(x, dim, &outer, &inner);
    float inv = 1.0f / (float)n;
    const float *g = node->out->grad;
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, outer * n * inner))
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < n; k++)
            for (int64_t i = 0; i < inner; i++)
                gx[(o * n + k) * inner + i] += g[o * inner + i] * inv;
}
