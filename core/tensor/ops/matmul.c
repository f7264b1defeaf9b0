/* core/tensor/ops/matmul.c - batched matrix products with transposes (torch.matmul on the last two
 * dims). Operands are read through their strides (transposes and strided views cost nothing);
 * the batch dims must collapse to one batch stride, else the operand is made contiguous.
 *   a (..., m, k) [(..., k, m) if ta], b (..., k, n) [(..., n, k) if tb] or b 2-D -> (..., m, n)
 *   forward:  C = op(A)·op(B)
 *   backward: d op(A) += dC·op(B)ᵀ ; d op(B) += op(A)ᵀ·dC  (written through the transposed
 *             strides of A and B, so no transposes are materialised) */
#include "tensor/tensor_internal.h"

typedef struct mm_saved {
    bool ta, tb;
} mm_saved;

/* Logical geometry of one operand: element (i, p) of op(X) in batch t is
 * x[t·s + i·ri + p·rp]. */
typedef struct mm_geom {
    int64_t batch, s, ri, rp;
} mm_geom;

/* Batch stride of the leading dims (ndim - 2 of them), or -1 if they do not collapse. */
static int64_t batch_stride(const sm_tensor *t)
{
    int lead = t->ndim - 2;
    /* size-1 dims take no part (their strides are arbitrary); the others, outer to inner, must
     * each step by the next one's stride times its size */
    int64_t inner_stride = 0, inner_size = 0;
    bool have = false;
    for (int d = lead - 1; d >= 0; d--) {
        if (t->shape[d] == 1) continue;
        if (have && t->stride[d] != inner_stride * inner_size) return -1;
        inner_stride = have ? inner_stride : t->stride[d];
        inner_size = have ? inner_size * t->shape[d] : t->shape[d];
        have = true;
    }
    return have ? inner_stride : 0;
}

static mm_geom geom(const sm_tensor *t, bool trans)
{
    mm_geom g;
    int64_t rs = t->stride[t->ndim - 2], cs = t->stride[t->ndim - 1];
    g.batch = 1;
    for (int d = 0; d < t->ndim - 2; d++) g.batch *= t->shape[d];
    g.s = batch_stride(t);
    g.ri = trans ? cs : rs;
    g.rp = trans ? rs : cs;
    return g;
}

sm_tensor *sm_matmul(sm_ctx *ctx, sm_tensor *a, sm_tensor *b, bool ta, bool tb)
{
    if (!SM__OK(ctx, a, b)) return NULL;
    if (a->ndim < 2 || b->ndim < 2)
        return sm__shape_error(ctx, "matmul", "both operands need at least 2 dims", "a", a, "b",
                               b, NULL);
    int na = a->ndim, nb = b->ndim;
    int64_t m = ta ? a->shape[na - 1] : a->shape[na - 2];
    int64_t k = ta ? a->shape[na - 2] : a->shape[na - 1];
    int64_t kb = tb ? b->shape[nb - 1] : b->shape[nb - 2];
    int64_t n = tb ? b->shape[nb - 2] : b->shape[nb - 1];
    if (k != kb)
        return sm__shape_error(ctx, "matmul", "inner dimensions differ", "a", a, "b", b, NULL);
    if (nb != 2) {
        bool same = nb == na;
        for (int d = 0; same && d < na - 2; d++) same = a->shape[d] == b->shape[d];
        if (!same)
            return sm__shape_error(ctx, "matmul",
                                   "batch dims of b must equal those of a (or b is 2-D)", "a",
                                   a, "b", b, NULL);
    }
    if (batch_stride(a) < 0) a = sm__contig(ctx, a);
    if (batch_stride(b) < 0) b = sm__contig(ctx, b);
    if (ctx->err.code) return NULL;
    int64_t sh[SM_MAX_DIMS];
    memcpy(sh, a->shape, sizeof sh);
    sh[na - 2] = m;
    sh[na - 1] = n;
    sm_tensor *c = sm__empty(ctx, na, sh);
    if (!c) return NULL;
    mm_geom ga = geom(a, ta), gb = geom(b, tb);
    if (nb == 2 && ga.batch > 1 && ga.s == m * ga.ri) /* shared b: one tall GEMM */
        sm__gemm(ctx, ga.batch * m, n, k, 1.0f, a->data, ga.ri, ga.rp, b->data, gb.ri, gb.rp,
                 0.0f, c->data, n, 1);
    else
        sm__gemm_batched(ctx, m, n, k, 1.0f, a->data, ga.ri, ga.rp, ga.s, b->data, gb.ri, gb.rp,
                         nb == 2 ? 0 : gb.s, 0.0f, c->data, n, 1, m * n, ga.batch);
    sm_tensor *ins[2] = {a, b};
    mm_saved sv = {ta, tb};
    return sm__track(ctx, SM__OP_MATMUL, c, 2, ins, &sv, sizeof sv);
}

void sm__matmul_backward(sm_ctx *ctx, sm__node *node)
{
    const mm_saved *sv = node->saved;
    sm_tensor *a = node->in[0], *b = node->in[1];
    const float *dc = node->out->grad;
    int na = a->ndim, nb = b->ndim;
    int64_t m = node->out->shape[na - 2], n = node->out->shape[na - 1];
    int64_t k = sv->ta ? a->shape[na - 2] : a->shape[na - 1];
    mm_geom ga = geom(a, sv->ta), gb = geom(b, sv->tb);
    int64_t batch = ga.batch, sbv = nb == 2 ? 0 : gb.s;
    bool flat = nb == 2 && batch > 1 && ga.s == m * ga.ri; /* a's rows uniformly strided */
    float *gA = sm__grad(ctx, a), *gB = sm__grad(ctx, b);
    if (gA) { /* d op(A) (m×k) += dC (m×n) · op(B)ᵀ;  op(B)ᵀ(j, p) = b[p·ri + j·rp] */
        if (flat)
            sm__gemm(ctx, batch * m, k, n, 1.0f, dc, n, 1, b->data, gb.rp, gb.ri, 1.0f, gA,
                     ga.ri, ga.rp);
        else
            sm__gemm_batched(ctx, m, k, n, 1.0f, dc, n, 1, m * n, b->data, gb.rp, gb.ri, sbv,
                             1.0f, gA, ga.ri, ga.rp, ga.s, batch);
    }
    if (gB) { /* d op(B) (k×n) += op(A)ᵀ (k×m) · dC (m×n);  op(A)ᵀ(p, i) = a[i·ri + p·rp] */
        if (nb != 2) {
            sm__gemm_batched(ctx, k, n, m, 1.0f, a->data, ga.rp, ga.ri, ga.s, dc, n, 1, m * n,
                             1.0f, gB, gb.ri, gb.rp, gb.s, batch);
        } else if (flat || batch == 1) {
            sm__gemm(ctx, k, n, batch * m, 1.0f, a->data, ga.rp, ga.ri, dc, n, 1, 1.0f, gB,
                     gb.ri, gb.rp);
        } else { /* shared b, irregular a: batches in order (deterministic) */
            for (int64_t t = 0; t < batch; t++)
                sm__gemm(ctx, k, n, m, 1.0f, a->data + t * ga.s, ga.rp, ga.ri, dc + t * m * n,
                         n, 1, 1.0f, gB, gb.ri, gb.rp);
        }
    }
}
