/* core/tensor/ops/attention.c - fused multi-head attention on a packed qkv projection.
 *   qkv (B, N, 3·H·D) [batch and token strides honoured, channels contiguous]
 *   bias (H, N, N) or NULL (relative position bias, may require grad)
 *   mask (nW, N, N) or NULL (constant; item b uses mask[b % nW])
 *   -> out (B, N, H·D), head-major channels
 * For each (b, h), run as an OpenMP loop with single-threaded GEMMs (performance.md: small
 * GEMMs threaded inside are slower). Window sized heads (N, D <= 64: Swin) use the core's
 * small-matrix kernel, where BLIS 0.9 is slow, reading q, k, v straight from qkv through
 * strides. Longer sequences (ViT) go to the backend on per-thread contiguous copies of the
 * head's q, k, v (and dO in backward): BLIS runs 5-9 % faster on them, copy included, than on
 * rows 3·H·D apart (9 KiB for ViT-B).
 *   S = scale·q·kᵀ (N×N) ; P = softmax(S + bias[h] + mask[b % nW]) ; out[b, :, h] = P·v
 * In bf16 the large heads go to the backend as batched GEMMs instead, one per product and batch
 * item b over its H heads (strided views of qkv, P and out: no copies in the core): there the
 * backend multiplies at 3-5x its fp32 rate (AMX: ~900 GFLOP/s) and a call per (b, h) spent more
 * in operand conversion and set-up than in arithmetic (ViT-B bf16 step on AMX: attention and
 * its GEMMs 0.34 -> 0.18 s).
 * Only P is kept for backward (B·H·N·N floats); without gradients each thread reuses one N×N
 * scratch (batched: one H·N·N scratch). Backward, per (b, h):
 *   dv += Pᵀ·dO ; dP = dO·vᵀ ; dS = P ⊙ (dP - rowsum(dP ⊙ P))
 *   dq += scale·dS·k ; dk += scale·dSᵀ·q ; dbias[h] += Σ_b dS (summed in b order afterwards)
 * dS overwrites the saved P when the bias needs its gradient (backward runs once per tape). */
#include "tensor/tensor_internal.h"

#include <omp.h>

typedef struct att_saved {
    int heads;
    float scale;
    float *P;
} att_saved;

/* One attention GEMM (sm__gemm's convention): the small kernel when scratch is set. */
static void att_gemm(sm_ctx *ctx, float *scratch, int64_t m, int64_t n, int64_t k, float alpha,
                     const float *a, int64_t ar, int64_t ac, const float *b, int64_t br,
                     int64_t bc, float beta, float *c, int64_t cr, int64_t cc)
{
    if (scratch)
        sm__gemm_small(m, n, k, alpha, a, ar, ac, b, br, bc, beta, c, cr, cc, scratch);
    else
        sm__gemm(ctx, m, n, k, alpha, a, ar, ac, b, br, bc, beta, c, cr, cc);
}

/* Per-thread scratch for the small kernel (NULL when the heads are too large for it). */
static float *att_scratch(sm_ctx *ctx, int64_t N, int64_t D, int nt)
{
    if (N > SM__SMALL_N || D > SM__SMALL_N) return NULL;
    return sm_ctx_alloc(ctx, (size_t)(nt * SM__SMALL_N * SM__SMALL_N) * sizeof(float));
}

/* c[m] (N×D, contiguous) = rows of src + m·off (N×D, row stride ld), for m < count */
static void att_gather(float *c, const float *src, int64_t N, int64_t D, int64_t ld, int count,
                       int64_t off)
{
    for (int m = 0; m < count; m++)
        for (int64_t i = 0; i < N; i++)
            memcpy(c + (m * N + i) * D, src + m * off + i * ld, (size_t)D * sizeof(float));
}

typedef struct att_geom {
    int64_t B, N, H, D, sB, sN; /* qkv strides of batch and token */
    int64_t nW;
} att_geom;

/* Whether the heads go to the backend as batched GEMMs (see the top of this file). */
static bool att_batched(sm_ctx *ctx, const float *small)
{
    return !small && sm_backend_precision(ctx->backend) == SM_PRECISION_BF16;
}

/* The forward of batch item b, its H heads batched: S (H, N, N) into Pb, then out[b]. */
static void att_fwd_item(sm_ctx *ctx, const att_geom *g, const float *qkv, float scale,
                         const float *bd, const float *md, int64_t b, float *Pb, float *out,
                         int nt)
{
    int64_t N = g->N, H = g->H, D = g->D, HD = H * D, NN = N * N, sN = g->sN;
    const float *q = qkv + b * g->sB, *k = q + HD, *v = q + 2 * HD;
    /* S[h] (N×N) = scale · q[h] (N×D) · k[h]ᵀ (D×N); head h at column h·D of qkv's rows */
    sm__gemm_batched(ctx, N, N, D, scale, q, sN, 1, D, k, 1, sN, D, 0.0f, Pb, N, 1, NN, H);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t h = 0; h < H; h++)
        sm__softmax_rows(Pb + h * NN, N, N, bd ? bd + h * NN : NULL,
                         md ? md + (b % g->nW) * NN : NULL);
    /* out[b, :, h·D:(h+1)·D] (N×D, row stride HD) = P[h] (N×N) · v[h] (N×D) */
    sm__gemm_batched(ctx, N, D, N, 1.0f, Pb, N, 1, NN, v, sN, 1, D, 0.0f, out + b * N * HD, HD, 1,
                     D, H);
}

/* The backward of batch item b, its H heads batched (the per-(b, h) formulas at the top);
 * dP: H·N·N scratch. dS goes into Pb when gbias (its sum over b is made afterwards). */
static void att_bwd_item(sm_ctx *ctx, const att_geom *g, const float *qkv, float scale, float *Pb,
                         const float *dO, float *gq, float beta, bool gbias, int64_t b, float *dP,
                         int nt)
{
    int64_t N = g->N, H = g->H, D = g->D, HD = H * D, NN = N * N, sB = g->sB, sN = g->sN;
    const float *q = qkv + b * sB, *k = q + HD, *v = q + 2 * HD, *dOb = dO + b * N * HD;
    if (gq) /* dv[h] (N×D) += P[h]ᵀ (N×N) · dO[h] (N×D) */
        sm__gemm_batched(ctx, N, D, N, 1.0f, Pb, 1, N, NN, dOb, HD, 1, D, beta,
                         gq + b * sB + 2 * HD, sN, 1, D, H);
    /* dP[h] (N×N) = dO[h] (N×D) · v[h]ᵀ (D×N) */
    sm__gemm_batched(ctx, N, N, D, 1.0f, dOb, HD, 1, D, v, 1, sN, D, 0.0f, dP, N, 1, NN, H);
    float *dS = gbias ? Pb : dP;
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t h = 0; h < H; h++)
        sm__softmax_rows_bwd(Pb + h * NN, dP + h * NN, dS + h * NN, N, N, false);
    if (!gq) return;
    /* dq[h] (N×D) += scale · dS[h] (N×N) · k[h] (N×D) */
    sm__gemm_batched(ctx, N, D, N, scale, dS, N, 1, NN, k, sN, 1, D, beta, gq + b * sB, sN, 1, D,
                     H);
    /* dk[h] (N×D) += scale · dS[h]ᵀ (N×N) · q[h] (N×D) */
    sm__gemm_batched(ctx, N, D, N, scale, dS, 1, N, NN, q, sN, 1, D, beta, gq + b * sB + HD, sN,
                     1, D, H);
}

sm_tensor *sm_attention(sm_ctx *ctx, sm_tensor *qkv, int heads, float scale, sm_tensor *bias,
                        const sm_tensor *mask)
{
    if (!SM__OK(ctx, qkv)) return NULL;
    if (qkv->ndim != 3 || heads <= 0 || qkv->shape[2] % (3 * (int64_t)heads) != 0) {
        char msg[96];
        snprintf(msg, sizeof msg, "qkv must be (B, N, 3·heads·D) with heads = %d", heads);
        return sm__shape_error(ctx, "attention", msg, "qkv", qkv, NULL);
    }
    att_geom g = {.B = qkv->shape[0], .N = qkv->shape[1], .H = heads,
                  .D = qkv->shape[2] / (3 * (int64_t)heads), .nW = 1};
    int64_t N = g.N;
    if (bias && (bias->ndim != 3 || bias->shape[0] != heads || bias->shape[1] != N ||
                 bias->shape[2] != N))
        return sm__shape_error(ctx, "attention", "bias must be (heads, N, N)", "qkv", qkv,
                               "bias", bias, NULL);
    if (mask && (mask->ndim != 3 || mask->shape[1] != N || mask->shape[2] != N ||
                 mask->shape[0] <= 0 || g.B % mask->shape[0] != 0))
        return sm__shape_error(ctx, "attention", "mask must be (nW, N, N) with nW dividing B",
                               "qkv", qkv, "mask", mask, NULL);
    if (qkv->stride[2] != 1) qkv = sm__contig(ctx, qkv);
    if (bias) bias = sm__contig(ctx, bias);
    if (mask) mask = sm__contig(ctx, (sm_tensor *)mask);
    if (ctx->err.code) return NULL;
    g.sB = qkv->stride[0];
    g.sN = qkv->stride[1];
    if (mask) g.nW = mask->shape[0];
    int64_t H = g.H, D = g.D, HD = H * D, NN = N * N, BH = g.B * H;
    sm_tensor *out = sm__empty(ctx, 3, SM_SHAPE(g.B, N, HD));
    if (!out) return NULL;
    sm_tensor *ins[2] = {qkv, bias};
    bool grad = sm__wants_grad(ctx, 2, ins);
    int nt = sm__threads_for(ctx, BH * NN * D);
    if (nt > BH) nt = (int)(BH > 0 ? BH : 1);
    float *small = att_scratch(ctx, N, D, nt);
    bool batched = att_batched(ctx, small);
    float *P = sm_ctx_alloc(ctx, (size_t)((grad ? BH : batched ? H : nt) * NN) * sizeof(float));
    float *cp = small || batched ? NULL
                                 : sm_ctx_alloc(ctx, (size_t)(nt * 3 * N * D) * sizeof(float));
    if (!P || ctx->err.code) return NULL;
    const float *bd = bias ? bias->data : NULL, *md = mask ? mask->data : NULL;
    att_saved sv = {.heads = heads, .scale = scale, .P = P};
    if (batched) { /* the GEMMs count their FLOPs */
        for (int64_t b = 0; b < g.B; b++)
            att_fwd_item(ctx, &g, qkv->data, scale, bd, md, b, grad ? P + b * H * NN : P,
                         out->data, nt);
        return sm__track(ctx, SM__OP_ATTENTION, out, 2, ins, &sv, sizeof sv);
    }
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t bh = 0; bh < BH; bh++) {
        int64_t b = bh / H, h = bh % H, ld = g.sN;
        int tid = omp_get_thread_num();
        float *S = P + (grad ? bh : tid) * NN;
        float *sc = small ? small + tid * SM__SMALL_N * SM__SMALL_N : NULL;
        const float *q = qkv->data + b * g.sB + h * D, *k = q + HD, *v = q + 2 * HD;
        if (cp) {
            float *c = cp + tid * 3 * N * D;
            att_gather(c, q, N, D, ld, 3, HD);
            q = c, k = c + N * D, v = c + 2 * N * D, ld = D;
        }
        /* S (N×N) = scale · q (N×D) · kᵀ (D×N), kᵀ(p, j) = k[j·ld + p] */
        att_gemm(ctx, sc, N, N, D, scale, q, ld, 1, k, 1, ld, 0.0f, S, N, 1);
        sm__softmax_rows(S, N, N, bd ? bd + h * NN : NULL, md ? md + (b % g.nW) * NN : NULL);
        /* out[b, :, h·D:(h+1)·D] (N×D, row stride HD) = P (N×N) · v (N×D) */
        att_gemm(ctx, sc, N, D, N, 1.0f, S, N, 1, v, ld, 1, 0.0f,
                 out->data + b * N * HD + h * D, HD, 1);
    }
    sm__prof_flop(ctx, 4.0 * (double)BH * (double)NN * (double)D); /* q·kᵀ, P·v */
    return sm__track(ctx, SM__OP_ATTENTION, out, 2, ins, &sv, sizeof sv);
}

void sm__attention_backward(sm_ctx *ctx, sm__node *node)
{
    const att_saved *sv = node->saved;
    sm_tensor *qkv = node->in[0], *bias = node->in[1];
    int64_t B = qkv->shape[0], N = qkv->shape[1], H = sv->heads, D = qkv->shape[2] / (3 * H);
    int64_t HD = H * D, NN = N * N, BH = B * H, sB = qkv->stride[0], sN = qkv->stride[1];
    float scale = sv->scale, *P = sv->P;
    const float *dO = node->out->grad;
    bool fresh; /* a new dqkv buffer: dv, dq, dk each write their part once, with beta 0 */
    float *gq = sm__grad_w(ctx, qkv, &fresh), *gbias = sm__grad(ctx, bias);
    float beta = fresh ? 0.0f : 1.0f;
    int nt = sm__threads_for(ctx, BH * NN * D);
    if (nt > BH) nt = (int)(BH > 0 ? BH : 1);
    float *small = att_scratch(ctx, N, D, nt);
    bool batched = att_batched(ctx, small);
    float *dP = sm_ctx_alloc(ctx, (size_t)((batched ? H : nt) * NN) * sizeof(float));
    float *cp = small || batched ? NULL
                                 : sm_ctx_alloc(ctx, (size_t)(nt * 4 * N * D) * sizeof(float));
    if (!dP || ctx->err.code) return;
    if (batched) { /* the GEMMs count their FLOPs */
        att_geom g = {.B = B, .N = N, .H = H, .D = D, .sB = sB, .sN = sN, .nW = 1};
        for (int64_t b = 0; b < B; b++)
            att_bwd_item(ctx, &g, qkv->data, scale, P + b * H * NN, dO, gq, beta, gbias != NULL,
                         b, dP, nt);
    } else {
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int64_t bh = 0; bh < BH; bh++) {
            int64_t b = bh / H, h = bh % H, ld = sN, ldo = HD;
            int tid = omp_get_thread_num();
            float *Pb = P + bh * NN, *dPb = dP + tid * NN;
            float *sc = small ? small + tid * SM__SMALL_N * SM__SMALL_N : NULL;
            const float *q = qkv->data + b * sB + h * D, *k = q + HD, *v = q + 2 * HD;
            const float *dOb = dO + b * N * HD + h * D;
            if (cp) {
                float *c = cp + tid * 4 * N * D;
                att_gather(c, q, N, D, ld, 3, HD);
                att_gather(c + 3 * N * D, dOb, N, D, HD, 1, 0);
                q = c, k = c + N * D, v = c + 2 * N * D, dOb = c + 3 * N * D, ld = D, ldo = D;
            }
            if (gq) /* dv (N×D) += Pᵀ (N×N) · dO (N×D) */
                att_gemm(ctx, sc, N, D, N, 1.0f, Pb, 1, N, dOb, ldo, 1, beta,
                         gq + b * sB + 2 * HD + h * D, sN, 1);
            /* dP (N×N) = dO (N×D) · vᵀ (D×N) */
            att_gemm(ctx, sc, N, N, D, 1.0f, dOb, ldo, 1, v, 1, ld, 0.0f, dPb, N, 1);
            /* dS = P ⊙ (dP - rowsum(dP ⊙ P)), into P's buffer if the bias needs it */
            float *dS = gbias ? Pb : dPb;
            sm__softmax_rows_bwd(Pb, dPb, dS, N, N, false);
            if (gq) {
                /* dq (N×D) += scale · dS (N×N) · k (N×D) */
                att_gemm(ctx, sc, N, D, N, scale, dS, N, 1, k, ld, 1, beta, gq + b * sB + h * D, sN,
                         1);
                /* dk (N×D) += scale · dSᵀ (N×N) · q (N×D) */
                att_gemm(ctx, sc, N, D, N, scale, dS, 1, N, q, ld, 1, beta,
                         gq + b * sB + HD + h * D, sN, 1);
            }
        }
        sm__prof_flop(ctx, (gq ? 8.0 : 2.0) * (double)BH * (double)NN * (double)D);
    }
    if (gbias) { /* dbias[h] += Σ_b dS[b, h], b in order */
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, BH * NN))
        for (int64_t e = 0; e < H * NN; e++) {
            int64_t h = e / NN, ij = e % NN;
            double acc = 0.0;
            for (int64_t b = 0; b < B; b++) acc += P[(b * H + h) * NN + ij];
            gbias[e] += (float)acc;
        }
    }
}
