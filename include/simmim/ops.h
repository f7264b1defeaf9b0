/* simmim/ops.h - the differentiable ops of ViT, Swin and SimMIM.
 *
 * Every op: computes its result eagerly into a new arena tensor (contiguous unless it says
 * "view"); if gradients are enabled (sm_ctx_grad) and an input requires grad, records itself on
 * the tape, and its output requires grad. Backward passes ACCUMULATE into input gradients.
 * A NULL input, or a sticky error already in ctx, makes an op return NULL at once; a shape error
 * records "op: message (shapes ...)" as SM_ESHAPE and returns NULL.
 *
 * Inputs may be strided views unless an op says "contiguous". Tensors passed as constants
 * (masks, labels, targets) never receive gradients. Numerics follow the official PyTorch code;
 * the shape comment of each op gives PyTorch's equivalent.
 *
 * Semantics are defined by ../shared/spec/simmim.md; names below follow it.
 */
#ifndef SIMMIM_OPS_H
#define SIMMIM_OPS_H

#include "simmim/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- dense algebra --------------------------------------------------------------------- */

/* y = x·wᵀ + b.  x (..., in) [last dim contiguous], w (out, in), b (out) or NULL
 * -> (..., out).  torch.nn.functional.linear */
SM_API sm_tensor *sm_linear(sm_ctx *ctx, sm_tensor *x, sm_tensor *w, sm_tensor *b);

/* c = op(a)·op(b) on the last two dims; op = transpose if ta/tb.
 * a (..., m, k) [or (..., k, m) if ta], b (..., k, n) [or (..., n, k) if tb]; the leading dims
 * of a and b must be equal, or b may be 2-D (shared by every batch) -> (..., m, n). */
SM_API sm_tensor *sm_matmul(sm_ctx *ctx, sm_tensor *a, sm_tensor *b, bool ta, bool tb);

/* Elementwise with broadcasting of b onto a (numpy rules: b's dims align right, each 1 or
 * equal to a's; b may have fewer dims). Output has a's shape. */
SM_API sm_tensor *sm_add(sm_ctx *ctx, sm_tensor *a, sm_tensor *b);
SM_API sm_tensor *sm_mul(sm_ctx *ctx, sm_tensor *a, sm_tensor *b);
/* a·s */
SM_API sm_tensor *sm_scale(sm_ctx *ctx, sm_tensor *a, float s);

/* ---- normalisation and activations ----------------------------------------------------- */

/* LayerNorm over the last dim: x (..., C), w (C) or NULL, b (C) or NULL -> (..., C).
 * Biased variance, eps inside the sqrt. torch.nn.functional.layer_norm */
SM_API sm_tensor *sm_layernorm(sm_ctx *ctx, sm_tensor *x, sm_tensor *w, sm_tensor *b, float eps);
/* Exact GELU 0.5·x·(1 + erf(x/√2)). torch.nn.GELU() */
SM_API sm_tensor *sm_gelu(sm_ctx *ctx, sm_tensor *x);
/* Softmax over the last dim. */
SM_API sm_tensor *sm_softmax(sm_ctx *ctx, sm_tensor *x);

/* ---- attention ------------------------------------------------------------------------- */

/* Fused multi-head attention on a packed qkv projection.
 *   qkv  (B, N, 3·H·D): channels [q | k | v], each head-major (h·D + d)
 *        = PyTorch qkv.reshape(B, N, 3, H, D).permute(2, 0, 3, 1, 4)
 *   bias (H, N, N) or NULL: added to the logits of every batch item (relative position bias);
 *        may require grad
 *   mask (nW, N, N) or NULL: constant additive mask; item b uses mask[b % nW] (Swin's shifted
 *        windows: B = batch·nW, window-major within each image)
 *   logits = (q·scale)·kᵀ + bias + mask; P = softmax(logits); out = P·v
 * -> (B, N, H·D), head-major channels (PyTorch (attn @ v).transpose(1, 2).reshape(B, N, C)).
 * Saves only P for backward. */
SM_API sm_tensor *sm_attention(sm_ctx *ctx, sm_tensor *qkv, int heads, float scale,
                               sm_tensor *bias, const sm_tensor *mask);

/* Relative position bias gathered from a table: table (R, H), index: n·n int64 values in
 * [0, R) (borrowed; must stay valid until backward has run) -> (H, n, n) with
 * out[h][i][j] = table[index[i·n + j]][h]. Backward scatter-adds into the table. */
SM_API sm_tensor *sm_relpos_bias(sm_ctx *ctx, sm_tensor *table, const int64_t *index, int64_t n);

/* ---- Swin ------------------------------------------------------------------------------ */

/* Cyclic shift then window partition: x (B, H, W, C) -> roll(x, (-shift, -shift), (1, 2)) ->
 * (B·nW, w·w, C), nW = (H/w)·(W/w), window index b·nW + row·(W/w) + col, row-major inside.
 * H and W must be multiples of w; 0 <= shift < w. */
SM_API sm_tensor *sm_window_partition(sm_ctx *ctx, sm_tensor *x, int window, int shift);
/* Exact inverse: windows (B·nW, w·w, C) -> (B, H, W, C) then roll(+shift, +shift). */
SM_API sm_tensor *sm_window_reverse(sm_ctx *ctx, sm_tensor *windows, int64_t H, int64_t W,
                                    int window, int shift);
/* Swin patch merging gather: x (B, H, W, C), H and W even ->
 * cat([x[:,0::2,0::2], x[:,1::2,0::2], x[:,0::2,1::2], x[:,1::2,1::2]], -1)
 * -> (B, (H/2)·(W/2), 4C). (The LayerNorm and reduction Linear follow as separate ops.) */
SM_API sm_tensor *sm_patch_merge(sm_ctx *ctx, sm_tensor *x);

/* ---- embeddings, tokens ---------------------------------------------------------------- */

/* Conv2d with kernel = stride = p as im2col + GEMM: img (B, Cin, H, W) [constant or not],
 * w (D, Cin, p, p), b (D) or NULL -> (B, (H/p)·(W/p), D), tokens row-major (h outer).
 * = conv(img).flatten(2).transpose(1, 2). H, W multiples of p. */
SM_API sm_tensor *sm_patch_embed(sm_ctx *ctx, sm_tensor *img, sm_tensor *w, sm_tensor *b, int p);
/* 1x1 convolution: x (B, Cin, H, W), w (Cout, Cin, 1, 1) [or (Cout, Cin)], b (Cout) or NULL
 * -> (B, Cout, H, W). */
SM_API sm_tensor *sm_conv1x1(sm_ctx *ctx, sm_tensor *x, sm_tensor *w, sm_tensor *b);
/* PixelShuffle(r): (B, C·r², H, W) -> (B, C, H·r, W·r),
 * out[b][c][h·r+i][w·r+j] = in[b][c·r² + i·r + j][h][w]. */
SM_API sm_tensor *sm_pixel_shuffle(sm_ctx *ctx, sm_tensor *x, int r);
/* SimMIM mask-token replacement: x (B, L, C), token (1, 1, C), mask (B, L) constant floats
 * (1 = masked) -> x·(1 - m) + token·m. */
SM_API sm_tensor *sm_mask_blend(sm_ctx *ctx, sm_tensor *x, sm_tensor *token,
                                const sm_tensor *mask);
/* Prepends a token to every sequence: cls (1, 1, C), x (B, L, C) -> (B, 1 + L, C)
 * (= torch.cat((cls.expand(B, -1, -1), x), dim=1)). */
SM_API sm_tensor *sm_cls_concat(sm_ctx *ctx, sm_tensor *cls, sm_tensor *x);
/* Concatenation along `dim` of n tensors whose other dims agree. */
SM_API sm_tensor *sm_concat(sm_ctx *ctx, sm_tensor *const *xs, int n, int dim);
/* Slice x[..., start:start+len, ...] along dim (negative dim counts from the end). The result
 * is contiguous: a copy, or a view when the slice is contiguous already. */
SM_API sm_tensor *sm_slice(sm_ctx *ctx, sm_tensor *x, int dim, int64_t start, int64_t len);
/* Mean over one dim (the dim is removed): (B, L, C), dim 1 -> (B, C). */
SM_API sm_tensor *sm_mean(sm_ctx *ctx, sm_tensor *x, int dim);

/* ---- shape ----------------------------------------------------------------------------- */

/* New shape with the same element count: a view sharing data and gradient if x is
 * contiguous, else a contiguous copy. One dim may be -1 (inferred). */
SM_API sm_tensor *sm_reshape(sm_ctx *ctx, sm_tensor *x, int ndim, const int64_t *shape);
/* Contiguous copy with permuted dims: out.shape[i] = x.shape[perm[i]] (torch.permute). */
SM_API sm_tensor *sm_permute(sm_ctx *ctx, sm_tensor *x, const int *perm);
/* x itself if contiguous, else a contiguous copy. */
SM_API sm_tensor *sm_contiguous(sm_ctx *ctx, sm_tensor *x);
/* A strided view of x's storage, no copy: element (i0, i1, ...) of the view is
 * x->data[offset + Σ i_d·stride[d]] (x's own strides are ignored; strides >= 0, in elements).
 * It shares data AND gradient with x's storage, so it needs no tape entry. Refused (ESHAPE) if
 * it reaches outside the storage or addresses an element twice. E.g. a transpose of a
 * contiguous (M, N) tensor: sm_view(ctx, x, 2, SM_SHAPE(N, M), SM_SHAPE(1, N), 0). */
SM_API sm_tensor *sm_view(sm_ctx *ctx, sm_tensor *x, int ndim, const int64_t *shape,
                          const int64_t *stride, int64_t offset);

/* ---- regularisation -------------------------------------------------------------------- */

/* Stochastic depth per sample: x (B, ...). In training mode with rate > 0, sample b is kept
 * with probability 1 - rate and scaled by 1/(1 - rate), else zeroed; the keep decision is a
 * counter-based function of (ctx seed, ctx step, key, b). Otherwise returns x itself. */
SM_API sm_tensor *sm_drop_path(sm_ctx *ctx, sm_tensor *x, float rate, uint64_t key);

/* ---- recomputation ----------------------------------------------------------------------- */

/* A block of ops for sm_checkpoint: computes its output from in[0..n_in) (entries may be NULL),
 * parameters and constants, through the ops of this header. */
typedef sm_tensor *(*sm_block_fn)(sm_ctx *ctx, void *arg, sm_tensor *const *in);

/* fn(ctx, arg, in), as a unit that can trade compute for memory (torch.utils.checkpoint).
 * With recomputation off (sm_ctx_set_recompute, the default) or gradients off, it is exactly the
 * call fn(ctx, arg, in). With it on, the block runs as usual, then everything it allocated is
 * released except its output and the tensors it marked with sm_checkpoint_keep (moved to new
 * arena memory), and one tape entry stands for the block; backward runs fn again with the same
 * inputs (and the training mode and RNG keys of the forward, so drop path draws the same
 * samples), reusing the kept tensors instead of recomputing them, then backpropagates through
 * that copy. Every number is the same as without recomputation; the cost is one more forward
 * of the block minus the kept products.
 * Requirements: fn is deterministic and depends only on in, parameters, constants and the ctx
 * modes; arg and the tensors fn reads stay valid until backward; the output is computed by ops
 * inside fn (not an input returned as is, nor a part of a larger tensor). Any other arena
 * memory fn allocates is valid only until sm_checkpoint returns. */
SM_API sm_tensor *sm_checkpoint(sm_ctx *ctx, sm_block_fn fn, void *arg, int n_in,
                                sm_tensor *const *in);
/* Inside a checkpointed block being recorded for recomputation: keeps t, the output of an
 * sm_linear of the block, so that the recomputation takes it from memory instead of redoing the
 * product (worth it when t is small for its cost: a projection back to the embedding width).
 * Anywhere else (recomputation off, outside a block, another op's output) it does nothing.
 * Returns t. At most 8 tensors per block. */
SM_API sm_tensor *sm_checkpoint_keep(sm_ctx *ctx, sm_tensor *t);

/* ---- losses (scalar outputs, shape ()) -------------------------------------------------- */

/* SimMIM reconstruction loss (models/simmim.py):
 *   M = mask.repeat_interleave(p, 1).repeat_interleave(p, 2)[:, None]      (B, 1, H, W)
 *   loss = Σ(|x - x_rec|·M) / (ΣM + 1e-5) / C
 * x_rec (B, C, H, W), x (B, C, H, W) constant, mask (B, H/p, W/p) constant floats 0/1.
 * Sums are accumulated in double. */
SM_API sm_tensor *sm_masked_l1(sm_ctx *ctx, sm_tensor *x_rec, const sm_tensor *x,
                               const sm_tensor *mask, int p);
/* Cross-entropy with hard labels, mean over the batch: logits (B, K), labels[B] in [0, K)
 * (borrowed until backward), label smoothing eps in [0, 1): target = (1-eps)·onehot + eps/K
 * (= torch.nn.CrossEntropyLoss(label_smoothing=eps)). */
SM_API sm_tensor *sm_cross_entropy(sm_ctx *ctx, sm_tensor *logits, const int64_t *labels,
                                   float smoothing);
/* Soft-target cross-entropy, mean over the batch of Σ_k -t[k]·log_softmax(logits)[k]:
 * logits (B, K), targets (B, K) constant (timm SoftTargetCrossEntropy). */
SM_API sm_tensor *sm_soft_cross_entropy(sm_ctx *ctx, sm_tensor *logits,
                                        const sm_tensor *targets);

#ifdef __cplusplus
}
#endif
#endif /* SIMMIM_OPS_H */
