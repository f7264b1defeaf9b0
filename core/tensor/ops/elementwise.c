/* core/tensor/ops/elementwise.c - add, mul (b broadcast onto a, numpy rules) and scale.
 *   a (d0, ..., dn), b (e0, ..., em) with m <= n, each e aligned right equal to d or 1
 *   -> a's shape.  Backward: da += dout (·b); db += dout (·a) summed over broadcast dims
 *   (column sums in fixed blocks when b is a trailing block of a: bias, layer scale). */
#include "tensor/tensor_internal.h"

typedef struct bcast {
    int64_t bstride[SM_MAX_DIMS]; /* b's stride for each dim of a (0 = broadcast) */
    bool same;                    /* b has a's element count: plain elementwise */
    int64_t suffix;               /* > 0: b is a's trailing block of this many elements */
} bcast;

/* Fills bc for contiguous a and b; false if b does not broadcast onto a. */
static bool broadcast(const sm_tensor *a, const sm_tensor *b, bcast *bc)
{
    if (b->ndim > a->ndim) {
        for (int d = 0; d < b->ndim - a->ndim; d++)
            if (b->shape[d] != 1) return false;
    }
    int off = a->ndim - b->ndim;
    bool all_equal = true, suffix_ok = true;
    int first = a->ndim; /* first dim (from the left) where b matches a non-trivially */
    for (int d = 0; d < a->ndim; d++) {
        int bd = d - off;
        int64_t bs = bd >= 0 ? b->shape[bd] : 1;
        if (bs == a->shape[d]) {
            bc->bstride[d] = bd >= 0 ? b->stride[bd] : 0;
        } else if (bs == 1) {
            bc->bstride[d] = 0;
            all_equal = false;
        } else {
            return false;
        }
        if (bs != 1 && first == a->ndim) first = d;
    }
    /* b = a's trailing dims from `first` on, all equal, and broadcast above */
    for (int d = first; d < a->ndim; d++) {
        int bd = d - off;
        if (bd < 0 || b->shape[bd] != a->shape[d]) suffix_ok = false;
    }
    bc->same = all_equal && sm_tensor_numel(a) == sm_tensor_numel(b);
    bc->suffix = suffix_ok ? sm_tensor_numel(b) : 0;
    return true;
}

/* Offset in b of a's row r (all dims but the last). */
static int64_t brow(const sm_tensor *a, const bcast *bc, int64_t r)
{
    int64_t off = 0;
    for (int d = a->ndim - 2; d >= 0; d--) {
        off += (r % a->shape[d]) * bc->bstride[d];
        r /= a->shape[d];
    }
    return off;
}

SM__KERNEL static void row_op(float *out, const float *a, const float *b, int64_t n,
                              int64_t bs, bool mul)
{
    if (bs == 1) {
        if (mul)
            for (int64_t j = 0; j < n; j++) out[j] = a[j] * b[j];
        else
            for (int64_t j = 0; j < n; j++) out[j] = a[j] + b[j];
    } else {
        float v = b[0];
        if (mul)
            for (int64_t j = 0; j < n; j++) out[j] = a[j] * v;
        else
            for (int64_t j = 0; j < n; j++) out[j] = a[j] + v;
    }
}

static sm_tensor *binary(sm_ctx *ctx, sm__op op, sm_tensor *a, sm_tensor *b)
{
    const char *name = sm__op_name(op);
    if (!SM__OK(ctx, a, b)) return NULL;
    a = sm__contig(ctx, a);
    b = sm__contig(ctx, b);
    if (ctx->err.code) return NULL;
    bcast bc;
    if (!broadcast(a, b, &bc))
        return sm__shape_error(ctx, name, "b does not broadcast onto a", "a", a, "b", b, NULL);
    sm_tensor *out = sm__empty(ctx, a->ndim, a->shape);
    if (!out) return NULL;
    bool mul = op == SM__OP_MUL;
    int64_t n = a->ndim ? a->shape[a->ndim - 1] : 1, rows = n ? sm_tensor_numel(a) / n : 0;
    int64_t bs = a->ndim ? bc.bstride[a->ndim - 1] : 0;
    if (a->ndim == 0) bs = 1;
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, rows * n))
    for (int64_t r = 0; r < rows; r++)
        row_op(out->data + r * n, a->data + r * n, b->data + brow(a, &bc, r), n, bs, mul);
    sm_tensor *ins[2] = {a, b};
    return sm__track(ctx, op, out, 2, ins, NULL, 0);
}

sm_tensor *sm_add(sm_ctx *ctx, sm_tensor *a, sm_tensor *b) { return binary(ctx, SM__OP_ADD, a, b); }
sm_tensor *sm_mul(sm_ctx *ctx, sm_tensor *a, sm_tensor *b) { return binary(ctx, SM__OP_MUL, a, b); }

/* gb (b's layout, contiguous) += Σ over broadcast positions of src (a's layout). */
static void reduce_to_b(sm_ctx *ctx, const sm_tensor *a, const sm_tensor *b, const bcast *bc,
                        const float *src, float *gb)
{
    int64_t total = sm_tensor_numel(a);
    if (bc->same) {
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, total))
        for (int64_t i = 0; i < total; i++) gb[i] += src[i];
    } else if (bc->suffix > 0) {
        sm__colsum_acc(ctx, src, total / bc->suffix, bc->suffix, bc->suffix, NULL, gb);
    } else { /* general pattern: one pass in order (rare, small) */
        int64_t n = a->ndim ? a->shape[a->ndim - 1] : 1, rows = n ? total / n : 0;
        int64_t bs = bc->bstride[a->ndim - 1];
        for (int64_t r = 0; r < rows; r++) {
            float *g = gb + brow(a, bc, r);
            for (int64_t j = 0; j < n; j++) g[j * bs] += src[r * n + j];
        }
    }
    (void)b;
}

/* gb += reduce(dout (·a for mul)) */
static void b_backward(sm_ctx *ctx, sm_tensor *a, sm_tensor *b, const bcast *bc, const float *g,
                       bool mul, float *gb)
{
    int64_t total = sm_tensor_numel(a);
    const float *src = g;
    if (mul) { /* dout·a, then reduce */
        float *p = sm_ctx_alloc(ctx, (size_t)total * sizeof(float));
        if (!p) return;
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, total))
        for (int64_t i = 0; i < total; i++) p[i] = g[i] * a->data[i];
        src = p;
    }
    reduce_to_b(ctx, a, b, bc, src, gb);
}

static void binary_backward(sm_ctx *ctx, sm__node *node, bool mul)
{
    sm_tensor *a = node->in[0], *b = node->in[1];
    float *g = node->out->grad;
    bcast bc;
    broadcast(a, b, &bc);
    int64_t total = sm_tensor_numel(a), n = a->ndim ? a->shape[a->ndim - 1] : 1;
    int64_t rows = n ? total / n : 0, bs = a->ndim ? bc.bstride[a->ndim - 1] : 1;
    /* a may write its gradient over dout (add: takes it as it is; mul: 0 + dout·b, the value
     * a zeroed buffer gets), so b's gradient, which reads dout, comes first; unless a and b
     * share storage, where the order stays a then b (the sums depend on it) */
    bool shared = (a->base ? a->base : a) == (b->base ? b->base : b);
    float *ga = shared ? NULL : sm__grad_take(ctx, a, node->out);
    if (ga) {
        float *gb = sm__grad(ctx, b);
        if (gb) b_backward(ctx, a, b, &bc, g, mul, gb);
        if (mul) {
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, total))
            for (int64_t r = 0; r < rows; r++) {
                const float *bv = b->data + brow(a, &bc, r);
                float *gr = ga + r * n;
                for (int64_t j = 0; j < n; j++) gr[j] = 0.0f + gr[j] * bv[j * bs];
            }
        }
        return;
    }
    bool fresh;
    ga = sm__grad_w(ctx, a, &fresh);
    if (ga && fresh && !mul) {
        memcpy(ga, g, (size_t)total * sizeof(float));
    } else if (ga) {
        if (fresh) memset(ga, 0, (size_t)total * sizeof(float));
        if (!mul) {
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, total))
            for (int64_t i = 0; i < total; i++) ga[i] += g[i];
        } else {
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, total))
            for (int64_t r = 0; r < rows; r++) {
                const float *bv = b->data + brow(a, &bc, r);
                for (int64_t j = 0; j < n; j++) ga[r * n + j] += g[r * n + j] * bv[j * bs];
            }
        }
    }
    float *gb = sm__grad(ctx, b);
    if (gb) b_backward(ctx, a, b, &bc, g, mul, gb);
}

void sm__add_backward(sm_ctx *ctx, sm__node *n) { binary_backward(ctx, n, false); }
void sm__mul_backward(sm_ctx *ctx, sm__node *n) { binary_backward(ctx, n, true); }

sm_tensor *sm_scale(sm_ctx *ctx, sm_tensor *a, float s)
{
    if (!SM__OK(ctx, a)) return NULL;
    a = sm__contig(ctx, a);
    if (!a) return NULL;
    sm_tensor *out = sm__empty(ctx, a->ndim, a->shape);
    if (!out) return NULL;
    int64_t total = sm_tensor_numel(a);
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, total))
    for (int64_t i = 0; i < total; i++) out->data[i] = a->data[i] * s;
    return sm__track(ctx, SM__OP_SCALE, out, 1, &a, &s, sizeof s);
}

void sm__scale_backward(sm_ctx *ctx, sm__node *n)
{
    float s = *(const float *)n->saved, *ga = sm__grad(ctx, n->in[0]);
    const float *g = n->out->grad;
    int64_t total = sm_tensor_numel(n->in[0]);
    if (!ga) return;
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, total))
    for (int64_t i = 0; i < total; i++) ga[i] += g[i] * s;
}
