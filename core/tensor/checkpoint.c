/* core/tensor/checkpoint.c - activation recomputation (torch.utils.checkpoint), sm_checkpoint.
 *
 *   forward (recompute on, gradients on): mark the activation arena; y = fn(in) as usual, its
 *     tape entries on a tape of their own; rewind the arena to the mark (every activation of the
 *     block is released), move y's data down to the mark (memmove: the old place is free memory
 *     now) and record one node {fn, arg, in} -> y with the forward's training mode and RNG keys.
 *   backward: the walk has marked the activation arena; run fn(in) again the same way (the same
 *     ops on the same inputs give the same bits; drop path is keyed by (seed, step, key), so it
 *     draws the same samples), hand y's gradient to the recomputed output and walk the block's
 *     own tape, which writes into the gradients of in[] and of the parameters exactly as the
 *     un-checkpointed tape would (the same nodes in the same order); the walk then rewinds the
 *     recomputed activations.
 * So only the block inputs and outputs stay in memory between forward and backward. */
#include "tensor/tensor_internal.h"

typedef struct ckpt_saved {
    sm_block_fn fn;
    void *arg;
    bool train;
    uint64_t seed, step;
} ckpt_saved;

/* fn(in) with gradients on and its tape entries on a tape of their own (*sub: the newest, or
 * NULL); the main tape is left as it was. Returns the output, or NULL. */
static sm_tensor *run_block(sm_ctx *ctx, sm_block_fn fn, void *arg, sm_tensor *const *in,
                            sm__node **sub)
{
    sm__node *tape = ctx->tape;
    size_t size = ctx->tape_size;
    bool grad = ctx->grad;
    ctx->tape = NULL;
    ctx->grad = true;
    sm_tensor *y = fn(ctx, arg, in);
    *sub = ctx->tape;
    ctx->tape = tape;
    ctx->tape_size = size;
    ctx->grad = grad;
    if (!y && !ctx->err.code) sm_ctx_fail(ctx, SM_EINVAL, "checkpoint: the block returned NULL");
    return ctx->err.code ? NULL : y;
}

sm_tensor *sm_checkpoint(sm_ctx *ctx, sm_block_fn fn, void *arg, int n_in, sm_tensor *const *in)
{
    if (!ctx || ctx->err.code) return NULL;
    if (!fn || n_in < 0 || (n_in > 0 && !in)) {
        sm_ctx_fail(ctx, SM_EINVAL, "checkpoint: no block function, or a bad input list");
        return NULL;
    }
    if (!ctx->recompute || !ctx->grad) return fn(ctx, arg, in);
    sm__mark mark = sm__arena_mark(&ctx->act);
    sm__node *sub;
    sm_tensor *y = run_block(ctx, fn, arg, in, &sub);
    if (!y || !(y->flags & SM_TENSOR_REQUIRES_GRAD)) return y; /* nothing to recompute */
    const sm_tensor *st = y->base ? y->base : y;
    if (!sm__arena_since(&ctx->act, mark, st->data) ||
        (y->base && (y->offset != 0 || sm_tensor_numel(y) != sm_tensor_numel(y->base))) ||
        !sm_tensor_is_contiguous(y)) {
        sm_ctx_fail(ctx, SM_EINVAL,
                    "checkpoint: the block's output must be a whole tensor computed inside the "
                    "block (not an input, nor a part or strided view of a tensor)");
        return NULL;
    }
    int ndim = y->ndim;
    int64_t shape[SM_MAX_DIMS];
    memcpy(shape, y->shape, sizeof shape);
    const float *src = y->data;
    size_t bytes = (size_t)sm_tensor_numel(y) * sizeof(float);
    sm__arena_rewind(&ctx->act, mark);
    float *dst = sm_ctx_alloc(ctx, bytes); /* at the mark: src lies at or above it */
    if (!dst) return NULL;
    memmove(dst, src, bytes);
    sm_tensor *out = sm_ctx_wrap(ctx, dst, ndim, shape);
    ckpt_saved sv = {fn, arg, ctx->train, ctx->seed, ctx->step};
    return sm__record(ctx, SM__OP_CHECKPOINT, out, n_in, in, &sv, sizeof sv);
}

void sm__checkpoint_backward(sm_ctx *ctx, sm__node *node)
{
    const ckpt_saved *sv = node->saved;
    sm_tensor *y = node->out;
    bool train = ctx->train;
    uint64_t seed = ctx->seed, step = ctx->step;
    ctx->train = sv->train;
    ctx->seed = sv->seed;
    ctx->step = sv->step;
    sm__node *sub;
    sm_tensor *y2 = run_block(ctx, sv->fn, sv->arg, node->in, &sub);
    ctx->train = train;
    ctx->seed = seed;
    ctx->step = step;
    if (!y2) return;
    sm_tensor *st = y2->base ? y2->base : y2;
    if (!st->node || !sm_tensor_same_shape(y2, y) || sm_tensor_numel(st) != sm_tensor_numel(y)) {
        sm_ctx_fail(ctx, SM_EINVAL,
                    "checkpoint: the recomputed block differs from its forward (the block must "
                    "depend only on its inputs, parameters, constants and the context's modes)");
        return;
    }
    /* the recomputed output takes over y's gradient (the same layout: both are contiguous) */
    st->grad = y->grad;
    if (!ctx->keep_grads && (y->flags & SM__TENSOR_GRAD_OWNED)) {
        st->flags |= SM__TENSOR_GRAD_OWNED;
        y->flags &= ~SM__TENSOR_GRAD_OWNED;
        y->grad = NULL;
    }
    sm__backward_walk(ctx, sub);
}
