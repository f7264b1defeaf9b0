/* core/tensor/ops/window.c - Swin's cyclic shift + window partition, and its exact inverse.
 *   partition: x (B, H, W, C) -> roll(x, (-s, -s), (1, 2)) -> windows (B·nW, w·w, C)
 *   reverse:   windows (B·nW, w·w, C) -> (B, H, W, C) -> roll(+s, +s)
 * nW = (H/w)·(W/w), window index b·nW + row·(W/w) + col, tokens row-major inside a window.
 * Both are the same bijection between window rows and pixels: token t of window (b, r, c) is
 * pixel ((r·w + t/w + s) mod H, (c·w + t%w + s) mod W) of image b. Each direction's backward
 * is the other direction's forward (accumulating). */
#include "tensor/tensor_internal.h"

typedef struct win_geom {
    int64_t B, H, W, C, w, s;
} win_geom;

/* to_windows: win[row] (=/+=) x[pixel]; else x[pixel] (=/+=) win[row]. */
static void window_map(sm_ctx *ctx, const win_geom *g, float *win, float *x, bool to_windows,
                       bool acc)
{
    int64_t nWc = g->W / g->w, nW = (g->H / g->w) * nWc, ww = g->w * g->w, C = g->C;
    int64_t nwin = g->B * nW;
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, nwin * ww * C))
    for (int64_t bw = 0; bw < nwin; bw++) {
        int64_t b = bw / nW, r = (bw % nW) / nWc, c = bw % nWc;
        for (int64_t t = 0; t < ww; t++) {
            int64_t hi = (r * g->w + t / g->w + g->s) % g->H;
            int64_t wj = (c * g->w + t % g->w + g->s) % g->W;
            float *px = x + ((b * g->H + hi) * g->W + wj) * C, *pw = win + (bw * ww + t) * C;
            sm__move(px, pw, C, to_windows, acc);
        }
    }
}

static bool geom_ok(sm_ctx *ctx, const char *op, const sm_tensor *t, int64_t H, int64_t W,
                    int window, int shift)
{
    char msg[160];
    if (window <= 0 || shift < 0 || shift >= window || H <= 0 || W <= 0 || H % window ||
        W % window) {
        snprintf(msg, sizeof msg,
                 "H = %lld and W = %lld must be multiples of window = %d, 0 <= shift = %d < "
                 "window",
                 (long long)H, (long long)W, window, shift);
        sm__shape_error(ctx, op, msg, "x", t, NULL);
        return false;
    }
    return true;
}

typedef struct win_saved {
    win_geom g;
} win_saved;

sm_tensor *sm_window_partition(sm_ctx *ctx, sm_tensor *x, int window, int shift)
{
    if (!SM__OK(ctx, x)) return NULL;
    if (x->ndim != 4)
        return sm__shape_error(ctx, "window_partition", "x must be (B, H, W, C)", "x", x, NULL);
    if (!geom_ok(ctx, "window_partition", x, x->shape[1], x->shape[2], window, shift))
        return NULL;
    x = sm__contig(ctx, x);
    if (!x) return NULL;
    win_geom g = {x->shape[0], x->shape[1], x->shape[2], x->shape[3], window, shift};
    int64_t nW = (g.H / window) * (g.W / window);
    sm_tensor *out = sm__empty(ctx, 3, SM_SHAPE(g.B * nW, (int64_t)window * window, g.C));
    if (!out) return NULL;
    window_map(ctx, &g, out->data, x->data, true, false);
    win_saved sv = {g};
    return sm__track(ctx, SM__OP_WINDOW_PARTITION, out, 1, &x, &sv, sizeof sv);
}

void sm__window_partition_backward(sm_ctx *ctx, sm__node *node)
{
    bool fresh; /* a bijection: a fresh buffer is overwritten whole */
    float *gx = sm__grad_w(ctx, node->in[0], &fresh);
    if (gx) window_map(ctx, &((win_saved *)node->saved)->g, node->out->grad, gx, false, !fresh);
}

sm_tensor *sm_window_reverse(sm_ctx *ctx, sm_tensor *windows, int64_t H, int64_t W, int window,
                             int shift)
{
    if (!SM__OK(ctx, windows)) return NULL;
    if (!geom_ok(ctx, "window_reverse", windows, H, W, window, shift)) return NULL;
    int64_t nW = (H / window) * (W / window);
    if (windows->ndim != 3 || windows->shape[1] != (int64_t)window * window ||
        windows->shape[0] % nW != 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "windows must be (B·%lld, %d, C) for H = %lld, W = %lld",
                 (long long)nW, window * window, (long long)H, (long long)W);
        return sm__shape_error(ctx, "window_reverse", msg, "windows", windows, NULL);
    }
    windows = sm__contig(ctx, windows);
    if (!windows) return NULL;
    win_geom g = {windows->shape[0] / nW, H, W, windows->shape[2], window, shift};
    sm_tensor *out = sm__empty(ctx, 4, SM_SHAPE(g.B, H, W, g.C));
    if (!out) return NULL;
    window_map(ctx, &g, windows->data, out->data, false, false);
    win_saved sv = {g};
    return sm__track(ctx, SM__OP_WINDOW_REVERSE, out, 1, &windows, &sv, sizeof sv);
}

void sm__window_reverse_backward(sm_ctx *ctx, sm__node *node)
{
    bool fresh;
    float *gw = sm__grad_w(ctx, node->in[0], &fresh);
    if (gw) window_map(ctx, &((win_saved *)node->saved)->g, gw, node->out->grad, true, !fresh);
}
