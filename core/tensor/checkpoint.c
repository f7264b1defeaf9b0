/* core/tensor/checkpoint.c - activation recomputation (torch.utils.checkpoint): sm_checkpoint,
 * sm_checkpoint_keep.
 *
 *   forward (recompute on, gradients on): mark the activation arena; y = fn(in) as usual, its
 *     tape entries on a tape of their own, noting the tensors fn keeps (sm_checkpoint_keep) and
 *     the tape position of the op that made each; rewind the arena to the mark (every
 *     activation of the block is released), move the kept tensors' data and then y's down to
 *     the mark (memmove, in allocation order: each lands at or below where it was, and the old
 *     places are free memory now) and record one node {fn, arg, in} -> y with the forward's
 *     training mode, RNG keys and the kept data.
 *   backward: the walk has marked the activation arena; run fn(in) again the same way (the same
 *     ops on the same inputs give the same bits; drop path is keyed by (seed, step, key,
 *     sample), so it draws the same samples), where a linear at a kept tape position takes the kept data
 *     instead of computing it (sm__replayed); hand y's gradient to the recomputed output and
 *     walk the block's own tape, which writes into the gradients of in[] and of the parameters
 *     exactly as the un-checkpointed tape would (the same nodes in the same order). The walk
 *     then rewinds the recomputed activations.
 * So only the block's inputs, output and kept tensors stay in memory between forward and
 * backward. With gradients off (evaluation), every block's activations are released as soon as
 * it has run, whatever the recompute setting. */
#include "tensor/tensor_internal.h"

#define SM__KEEP_MAX 9 /* 8 kept tensors and the output */

/* Tensors a block keeps: tape position of the op that made each, and the tensor (forward) or
 * its moved data (in the checkpoint node). */
struct sm__keep {
    sm__mark mark; /* the block's start in the activation arena */
    int n;
    size_t index[SM__KEEP_MAX];
    sm_tensor *t[SM__KEEP_MAX];
    float *data[SM__KEEP_MAX];
    int64_t numel[SM__KEEP_MAX];
};

typedef struct ckpt_saved {
    sm_block_fn fn;
    void *arg;
    bool train;
    uint64_t seed, step, sample;
    sm__keep keep;
} ckpt_saved;

/* fn(in) with gradients on and its tape entries on a tape of their own (*sub: the newest, or
 * NULL), recording keeps into `keep` (or none) and replaying `replay` (or none); the main tape
 * and the context's block state are left as they were. Returns the output, or NULL. */
static sm_tensor *run_block(sm_ctx *ctx, sm_block_fn fn, void *arg, sm_tensor *const *in,
                            sm__keep *keep, const sm__keep *replay, sm__node **sub)
{
    sm__node *tape = ctx->tape;
    size_t size = ctx->tape_size;
    bool grad = ctx->grad;
    sm__keep *outer_keep = ctx->keep;
    const sm__keep *outer_replay = ctx->replay;
    ctx->tape = NULL;
    ctx->tape_size = 0;
    ctx->grad = true;
    ctx->keep = keep;
    ctx->replay = replay;
    if (!ctx->block_depth++) ctx->block_index = size; /* where the block's own entry goes */
    sm_tensor *y = fn(ctx, arg, in);
    ctx->block_depth--;
    *sub = ctx->tape;
    ctx->tape = tape;
    ctx->tape_size = size;
    ctx->grad = grad;
    ctx->keep = outer_keep;
    ctx->replay = outer_replay;
    if (!y && !ctx->err.code) sm_ctx_fail(ctx, SM_EINVAL, "checkpoint: the block returned NULL");
    return ctx->err.code ? NULL : y;
}

sm_tensor *sm_checkpoint_keep(sm_ctx *ctx, sm_tensor *t)
{
    /* a linear's output made inside this block (its tape position means nothing elsewhere) */
    if (!ctx || !t || !ctx->keep || t->base || !t->node || t->node->op != SM__OP_LINEAR ||
        !sm__arena_since(&ctx->act, ctx->keep->mark, t->data))
        return t;
    sm__keep *k = ctx->keep;
    for (int i = 0; i < k->n; i++)
        if (k->t[i] == t) return t;
    if (k->n == SM__KEEP_MAX - 1) {
        sm_ctx_fail(ctx, SM_EINVAL, "checkpoint: a block keeps at most %d tensors",
                    SM__KEEP_MAX - 1);
        return NULL;
    }
    k->index[k->n] = t->node->index;
    k->t[k->n++] = t;
    return t;
}

sm_tensor *sm__replayed(sm_ctx *ctx, int ndim, const int64_t *shape)
{
    const sm__keep *k = ctx->replay;
    for (int i = 0; k && i < k->n; i++) {
        if (k->index[i] != ctx->tape_size) continue;
        sm_tensor *t = sm_ctx_wrap(ctx, k->data[i], ndim, shape);
        if (t && sm_tensor_numel(t) != k->numel[i]) { /* the replay went another way */
            sm_ctx_fail(ctx, SM_EINVAL,
                        "checkpoint: the recomputed block differs from its forward (a kept "
                        "product has another shape)");
            return NULL;
        }
        return t;
    }
    return NULL;
}

/* Orders the kept tensors by tape position, which is their allocation order. */
static void keep_sort(sm__keep *k)
{
    for (int i = 1; i < k->n; i++)
        for (int j = i; j > 0 && k->index[j] < k->index[j - 1]; j--) {
            size_t ix = k->index[j];
            sm_tensor *t = k->t[j];
            k->index[j] = k->index[j - 1];
            k->t[j] = k->t[j - 1];
            k->index[j - 1] = ix;
            k->t[j - 1] = t;
        }
}

/* Without gradients nothing is needed later but the block's output: release every activation
 * of the block and move the output down to where the block started (evaluation and feature
 * extraction then hold one block's activations at a time, as PyTorch under no_grad). An
 * output that is not a whole contiguous tensor made inside the block is returned as it is. */
static sm_tensor *run_no_grad(sm_ctx *ctx, sm_block_fn fn, void *arg, sm_tensor *const *in)
{
    sm__mark mark = sm__arena_mark(&ctx->act);
    ctx->no_grad_depth++; /* tensors released inside are reused at once (sm_tensor_release) */
    sm_tensor *y = fn(ctx, arg, in);
    ctx->no_grad_depth--;
    if (!y || y->base || !sm_tensor_is_contiguous(y) || !sm__arena_since(&ctx->act, mark, y->data))
        return y;
    int ndim = y->ndim;
    int64_t shape[SM_MAX_DIMS];
    memcpy(shape, y->shape, sizeof shape);
    const float *src = y->data; /* y's header lies in the memory about to be reused */
    size_t bytes = (size_t)sm_tensor_numel(y) * sizeof(float);
    sm__arena_rewind(&ctx->act, mark);
    float *data = sm_ctx_alloc(ctx, bytes);
    if (!data) return NULL;
    memmove(data, src, bytes);
    return sm_ctx_wrap(ctx, data, ndim, shape);
}

sm_tensor *sm_checkpoint(sm_ctx *ctx, sm_block_fn fn, void *arg, int n_in, sm_tensor *const *in)
{
    if (!ctx || ctx->err.code) return NULL;
    if (!fn || n_in < 0 || (n_in > 0 && !in)) {
        sm_ctx_fail(ctx, SM_EINVAL, "checkpoint: no block function, or a bad input list");
        return NULL;
    }
    if (!ctx->grad) return run_no_grad(ctx, fn, arg, in);
    if (!ctx->recompute) return fn(ctx, arg, in);
    sm__mark mark = sm__arena_mark(&ctx->act);
    sm__node *sub;
    ckpt_saved sv = {fn, arg, ctx->train, ctx->seed, ctx->step, ctx->sample, {.mark = mark}};
    sm_tensor *y = run_block(ctx, fn, arg, in, &sv.keep, NULL, &sub);
    if (!y || !(y->flags & SM_TENSOR_REQUIRES_GRAD)) return y; /* nothing to recompute */
    sm_tensor *st = y->base ? y->base : y;
    if (!st->node || !sm__arena_since(&ctx->act, mark, st->data) ||
        (y->base && (y->offset != 0 || sm_tensor_numel(y) != sm_tensor_numel(st))) ||
        !sm_tensor_is_contiguous(y)) {
        sm_ctx_fail(ctx, SM_EINVAL,
                    "checkpoint: the block's output must be a whole tensor computed inside the "
                    "block (not an input, nor a part or strided view of a tensor)");
        return NULL;
    }
    /* the output joins the kept tensors (a block ending in a linear skips it when replayed) */
    sm__keep *k = &sv.keep;
    int i = 0;
    while (i < k->n && k->t[i] != st) i++;
    if (i == k->n) {
        k->index[k->n] = st->node->index;
        k->t[k->n++] = st;
    }
    keep_sort(k);
    int ndim = y->ndim;
    int64_t shape[SM_MAX_DIMS];
    memcpy(shape, y->shape, sizeof shape);
    /* the headers lie in the memory about to be reused: read them all first */
    size_t bytes[SM__KEEP_MAX];
    const float *src[SM__KEEP_MAX];
    int out_at = 0;
    for (i = 0; i < k->n; i++) {
        k->numel[i] = sm_tensor_numel(k->t[i]);
        bytes[i] = (size_t)k->numel[i] * sizeof(float);
        src[i] = k->t[i]->data;
        if (k->t[i] == st) out_at = i;
        k->t[i] = NULL; /* released: only the data is kept */
    }
    sm__arena_rewind(&ctx->act, mark);
    for (i = 0; i < k->n; i++) {
        k->data[i] = sm_ctx_alloc(ctx, bytes[i]);
        if (!k->data[i]) return NULL;
        memmove(k->data[i], src[i], bytes[i]);
    }
    sm_tensor *out = sm_ctx_wrap(ctx, k->data[out_at], ndim, shape);
    return sm__record(ctx, SM__OP_CHECKPOINT, out, n_in, in, &sv, sizeof sv);
}

void sm__checkpoint_backward(sm_ctx *ctx, sm__node *node)
{
    const ckpt_saved *sv = node->saved;
    sm_tensor *y = node->out;
    bool train = ctx->train;
    uint64_t seed = ctx->seed, step = ctx->step, sample = ctx->sample;
    ctx->train = sv->train;
    ctx->seed = sv->seed;
    ctx->step = sv->step;
    ctx->sample = sv->sample;
    sm__node *sub;
    sm_tensor *y2 = run_block(ctx, sv->fn, sv->arg, node->in, NULL, &sv->keep, &sub);
    ctx->train = train;
    ctx->seed = seed;
    ctx->step = step;
    ctx->sample = sample;
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
