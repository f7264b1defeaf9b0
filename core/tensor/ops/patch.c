/* core/tensor/ops/patch.c - image <-> token layout ops: Swin patch merging, patch embedding (conv with
 * kernel = stride = p as im2col + GEMM), 1x1 convolution, pixel shuffle. All index maps here
 * are bijections, so backward passes scatter in parallel without conflicts. */
#include "tensor/tensor_internal.h"

/* ---- patch merging ---------------------------------------------------------------------- */
/* x (B, H, W, C), H, W even -> (B, (H/2)·(W/2), 4C):
 * out[b][i·W/2 + j] = cat(x[2i][2j], x[2i+1][2j], x[2i][2j+1], x[2i+1][2j+1]) */

static void merge_map(sm_ctx *ctx, const sm_tensor *x, float *xd, float *od, bool to_out,
                      bool acc)
{
    int64_t B = x->shape[0], H = x->shape[1], W = x->shape[2], C = x->shape[3];
    int64_t H2 = H / 2, W2 = W / 2;
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, B * H * W * C))
    for (int64_t t = 0; t < B * H2 * W2; t++) {
        int64_t b = t / (H2 * W2), i = (t / W2) % H2, j = t % W2;
        for (int q = 0; q < 4; q++) {
            int64_t di = q & 1, dj = q >> 1;
            float *px = xd + ((b * H + 2 * i + di) * W + 2 * j + dj) * C, *po = od + (t * 4 + q) * C;
            sm__move(px, po, C, to_out, acc);
        }
    }
}

sm_tensor *sm_patch_merge(sm_ctx *ctx, sm_tensor *x)
{
    if (!SM__OK(ctx, x)) return NULL;
    if (x->ndim != 4 || x->shape[1] % 2 || x->shape[2] % 2)
        return sm__shape_error(ctx, "patch_merge", "x must be (B, H, W, C) with H, W even", "x",
                               x, NULL);
    x = sm__contig(ctx, x);
    if (!x) return NULL;
    int64_t B = x->shape[0], H = x->shape[1], W = x->shape[2], C = x->shape[3];
    sm_tensor *out = sm__empty(ctx, 3, SM_SHAPE(B, (H / 2) * (W / 2), 4 * C));
    if (!out) return NULL;
    merge_map(ctx, x, x->data, out->data, true, false);
    return sm__track(ctx, SM__OP_PATCH_MERGE, out, 1, &x, NULL, 0);
}

void sm__patch_merge_backward(sm_ctx *ctx, sm__node *n)
{
    bool fresh; /* a bijection: a fresh buffer is overwritten whole */
    float *gx = sm__grad_w(ctx, n->in[0], &fresh);
    if (gx) merge_map(ctx, n->in[0], gx, n->out->grad, false, !fresh);
}

/* ---- patch embedding ------------------------------------------------------------------ */
/* im2col: img (B, Cin, H, W) -> cols (B, L, Cin·p·p), L = (H/p)·(W/p) tokens row-major,
 * cols[b][hi·Wp + wj][c·p·p + ki·p + kj] = img[b][c][hi·p + ki][wj·p + kj]
 * (the column order of a conv weight (D, Cin, p, p) flattened to (D, Cin·p·p)). */

typedef struct im2col_saved {
    int p;
} im2col_saved;

static void im2col_map(sm_ctx *ctx, const sm_tensor *img, int64_t p, float *imgd, float *cols,
                       bool to_cols, bool acc)
{
    int64_t B = img->shape[0], Cin = img->shape[1], H = img->shape[2], W = img->shape[3];
    int64_t Hp = H / p, Wp = W / p, K = Cin * p * p;
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, B * Cin * H * W))
    for (int64_t t = 0; t < B * Hp * Wp; t++) {
        int64_t b = t / (Hp * Wp), hi = (t / Wp) % Hp, wj = t % Wp;
        for (int64_t c = 0; c < Cin; c++)
            for (int64_t ki = 0; ki < p; ki++) {
                float *pi = imgd + ((b * Cin + c) * H + hi * p + ki) * W + wj * p;
                float *pc = cols + t * K + (c * p + ki) * p;
                sm__move(pi, pc, p, to_cols, acc);
            }
    }
}

static sm_tensor *im2col(sm_ctx *ctx, sm_tensor *img, int p)
{
    img = sm__contig(ctx, img);
    if (!img) return NULL;
    int64_t B = img->shape[0], Cin = img->shape[1], L = (img->shape[2] / p) * (img->shape[3] / p);
    sm_tensor *cols = sm__empty(ctx, 3, SM_SHAPE(B, L, Cin * p * p));
    if (!cols) return NULL;
    im2col_map(ctx, img, p, img->data, cols->data, true, false);
    im2col_saved sv = {p};
    return sm__track(ctx, SM__OP_IM2COL, cols, 1, &img, &sv, sizeof sv);
}

void sm__im2col_backward(sm_ctx *ctx, sm__node *n)
{
    float *gi = sm__grad(ctx, n->in[0]);
    int p = ((const im2col_saved *)n->saved)->p;
    if (gi) im2col_map(ctx, n->in[0], p, gi, n->out->grad, false, true);
}

/* img (B, Cin, H, W), w (D, Cin, p, p), b (D) or NULL -> (B, (H/p)·(W/p), D)
 * = linear(im2col(img), w viewed as (D, Cin·p·p), b) */
sm_tensor *sm_patch_embed(sm_ctx *ctx, sm_tensor *img, sm_tensor *w, sm_tensor *b, int p)
{
    if (!SM__OK(ctx, img, w)) return NULL;
    if (p <= 0 || img->ndim != 4 || img->shape[2] % p || img->shape[3] % p) {
        char msg[96];
        snprintf(msg, sizeof msg, "img must be (B, Cin, H, W) with H, W multiples of p = %d", p);
        return sm__shape_error(ctx, "patch_embed", msg, "img", img, NULL);
    }
    if (w->ndim != 4 || w->shape[1] != img->shape[1] || w->shape[2] != p || w->shape[3] != p)
        return sm__shape_error(ctx, "patch_embed", "w must be (D, Cin, p, p)", "img", img, "w",
                               w, NULL);
    sm_tensor *cols = im2col(ctx, img, p);
    sm_tensor *w2 = sm_reshape(ctx, w, 2, SM_SHAPE(w->shape[0], w->shape[1] * p * p));
    return sm_linear(ctx, cols, w2, b);
}

/* ---- 1x1 convolution ---------------------------------------------------------------------- */
/* x (B, Cin, H, W), w (Cout, Cin, 1, 1) or (Cout, Cin), b (Cout) or NULL -> (B, Cout, H, W)
 *   per image: Y_b (Cout × HW) = W (Cout × Cin) · X_b (Cin × HW) + b
 *   backward: dX_b += Wᵀ·dY_b ; dW += Σ_b dY_b·X_bᵀ (b in order) ; db += Σ_{b,hw} dY */

sm_tensor *sm_conv1x1(sm_ctx *ctx, sm_tensor *x, sm_tensor *w, sm_tensor *b)
{
    if (!SM__OK(ctx, x, w)) return NULL;
    bool w_ok = (w->ndim == 2 || (w->ndim == 4 && w->shape[2] == 1 && w->shape[3] == 1));
    if (x->ndim != 4 || !w_ok || w->shape[1] != x->shape[1])
        return sm__shape_error(ctx, "conv1x1", "x (B, Cin, H, W) needs w (Cout, Cin, 1, 1)", "x",
                               x, "w", w, NULL);
    int64_t B = x->shape[0], Cin = x->shape[1], HW = x->shape[2] * x->shape[3];
    int64_t Cout = w->shape[0];
    if (b && (b->ndim != 1 || b->shape[0] != Cout))
        return sm__shape_error(ctx, "conv1x1", "b must be (Cout)", "w", w, "b", b, NULL);
    x = sm__contig(ctx, x);
    if (b) b = sm__contig(ctx, b);
    if (ctx->err.code) return NULL;
    sm_tensor *y = sm__empty(ctx, 4, SM_SHAPE(B, Cout, x->shape[2], x->shape[3]));
    if (!y) return NULL;
    if (b) {
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, B * Cout * HW))
        for (int64_t r = 0; r < B * Cout; r++) {
            float v = b->data[r % Cout], *yr = y->data + r * HW;
            for (int64_t i = 0; i < HW; i++) yr[i] = v;
        }
    }
    sm__gemm_batched(ctx, Cout, HW, Cin, 1.0f, w->data, w->stride[0], w->stride[1], 0, x->data,
                     HW, 1, Cin * HW, b ? 1.0f : 0.0f, y->data, HW, 1, Cout * HW, B);
    sm_tensor *ins[3] = {x, w, b};
    return sm__track(ctx, SM__OP_CONV1X1, y, 3, ins, NULL, 0);
}

void sm__conv1x1_backward(sm_ctx *ctx, sm__node *n)
{
    sm_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
    int64_t B = x->shape[0], Cin = x->shape[1], HW = x->shape[2] * x->shape[3];
    int64_t Cout = w->shape[0], ws0 = w->stride[0], ws1 = w->stride[1];
    const float *dy = n->out->grad;
    float *gx = sm__grad(ctx, x), *gw = sm__grad(ctx, w), *gb = sm__grad(ctx, b);
    if (gx) /* dX_b (Cin × HW) += Wᵀ (Cin × Cout) · dY_b (Cout × HW) */
        sm__gemm_batched(ctx, Cin, HW, Cout, 1.0f, w->data, ws1, ws0, 0, dy, HW, 1, Cout * HW,
                         1.0f, gx, HW, 1, Cin * HW, B);
    if (gw) /* dW (Cout × Cin) += dY_b (Cout × HW) · X_bᵀ (HW × Cin), images in order */
        for (int64_t i = 0; i < B; i++)
            sm__gemm(ctx, Cout, Cin, HW, 1.0f, dy + i * Cout * HW, HW, 1, x->data + i * Cin * HW,
                     1, HW, 1.0f, gw, ws0, ws1);
    if (gb) {
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, B * Cout * HW))
        for (int64_t co = 0; co < Cout; co++) {
            double acc = 0.0;
            for (int64_t i = 0; i < B; i++) {
                const float *r = dy + (i * Cout + co) * HW;
                for (int64_t k = 0; k < HW; k++) acc += r[k];
            }
            gb[co] += (float)acc;
        }
    }
}

/* ---- pixel shuffle ------------------------------------------------------------------------ */
/* PixelShuffle(r): x (B, C·r², H, W) -> (B, C, H·r, W·r),
 * out[b][c][h·r + i][w·r + j] = x[b][c·r² + i·r + j][h][w] */

typedef struct ps_saved {
    int r;
} ps_saved;

static void shuffle_map(sm_ctx *ctx, const sm_tensor *x, int64_t r, float *xd, float *od,
                        bool to_out, bool acc)
{
    int64_t B = x->shape[0], C = x->shape[1] / (r * r), H = x->shape[2], W = x->shape[3];
    int64_t OW = W * r, rows = B * C * H * r;
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, rows * OW))
    for (int64_t row = 0; row < rows; row++) { /* (b, c, oh) */
        int64_t oh = row % (H * r), bc = row / (H * r), h = oh / r, i = oh % r;
        float *po = od + row * OW;
        for (int64_t ow = 0; ow < OW; ow++) {
            int64_t w = ow / r, j = ow % r;
            float *px = xd + ((bc * r * r + i * r + j) * H + h) * W + w;
            if (to_out)
                po[ow] = acc ? po[ow] + *px : *px;
            else
                *px = acc ? *px + po[ow] : po[ow];
        }
    }
}

sm_tensor *sm_pixel_shuffle(sm_ctx *ctx, sm_tensor *x, int r)
{
    if (!SM__OK(ctx, x)) return NULL;
    if (r <= 0 || x->ndim != 4 || x->shape[1] % ((int64_t)r * r)) {
        char msg[96];
        snprintf(msg, sizeof msg, "x must be (B, C·r², H, W) with r = %d", r);
        return sm__shape_error(ctx, "pixel_shuffle", msg, "x", x, NULL);
    }
    x = sm__contig(ctx, x);
    if (!x) return NULL;
    int64_t rr = r;
    sm_tensor *out = sm__empty(
        ctx, 4, SM_SHAPE(x->shape[0], x->shape[1] / (rr * rr), x->shape[2] * rr, x->shape[3] * rr));
    if (!out) return NULL;
    shuffle_map(ctx, x, r, x->data, out->data, true, false);
    ps_saved sv = {r};
    return sm__track(ctx, SM__OP_PIXEL_SHUFFLE, out, 1, &x, &sv, sizeof sv);
}

void sm__pixel_shuffle_backward(sm_ctx *ctx, sm__node *n)
{
    float *gx = sm__grad(ctx, n->in[0]);
    int r = ((const ps_saved *)n->saved)->r;
    if (gx) shuffle_map(ctx, n->in[0], r, gx, n->out->grad, false, true);
}
