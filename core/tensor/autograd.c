/* core/tensor/autograd.c - the tape: recording op nodes, and backward (reverse walk, accumulating).
 *
 * Ops compute eagerly; when gradients are on and an input requires grad they append a node
 * {op, inputs, output, saved data} allocated in the arena. The tape is in creation order, which
 * is a topological order, so backward is a plain reverse walk with no sort (micrograd's
 * algorithm without closures). A node whose output received no gradient is skipped. Backward
 * consumes the tape (some ops reuse saved buffers), so it runs once per step.
 *
 * Memory plan: when the walk reaches the node that produced a tensor, every consumer of the
 * tensor (all later on the tape) has added its share, so the node's backward is the last reader
 * of the tensor's gradient; right after it the gradient goes back to the gradient arena's free
 * list, where the next gradient of the same size picks it up. Elementwise ops go further and
 * write their input's gradient over their output's (sm__grad_take). Scratch a backward
 * allocates in the activation arena is rewound when it returns. Only where results are stored
 * changes, never the arithmetic or its order, so gradients are bitwise those of keeping every
 * gradient (sm_ctx_set_keep_grads, the mode that disables the plan). */
#include "tensor/tensor_internal.h"

static const struct {
    const char *name;
    sm__backward_fn backward;
} op_table[SM__OP_COUNT] = {
    [SM__OP_LINEAR] = {"linear", sm__linear_backward},
    [SM__OP_MATMUL] = {"matmul", sm__matmul_backward},
    [SM__OP_ADD] = {"add", sm__add_backward},
    [SM__OP_MUL] = {"mul", sm__mul_backward},
    [SM__OP_SCALE] = {"scale", sm__scale_backward},
    [SM__OP_LAYERNORM] = {"layernorm", sm__layernorm_backward},
    [SM__OP_GELU] = {"gelu", sm__gelu_backward},
    [SM__OP_SOFTMAX] = {"softmax", sm__softmax_backward},
    [SM__OP_ATTENTION] = {"attention", sm__attention_backward},
    [SM__OP_RELPOS_BIAS] = {"relpos_bias", sm__relpos_bias_backward},
    [SM__OP_WINDOW_PARTITION] = {"window_partition", sm__window_partition_backward},
    [SM__OP_WINDOW_REVERSE] = {"window_reverse", sm__window_reverse_backward},
    [SM__OP_PATCH_MERGE] = {"patch_merge", sm__patch_merge_backward},
    [SM__OP_IM2COL] = {"im2col", sm__im2col_backward},
    [SM__OP_CONV1X1] = {"conv1x1", sm__conv1x1_backward},
    [SM__OP_PIXEL_SHUFFLE] = {"pixel_shuffle", sm__pixel_shuffle_backward},
    [SM__OP_MASK_BLEND] = {"mask_blend", sm__mask_blend_backward},
    [SM__OP_CLS_CONCAT] = {"cls_concat", sm__cls_concat_backward},
    [SM__OP_CONCAT] = {"concat", sm__concat_backward},
    [SM__OP_MEAN] = {"mean", sm__mean_backward},
    [SM__OP_COPY] = {"contiguous", sm__copy_backward},
    [SM__OP_DROP_PATH] = {"drop_path", sm__drop_path_backward},
    [SM__OP_MASKED_L1] = {"masked_l1", sm__masked_l1_backward},
    [SM__OP_CROSS_ENTROPY] = {"cross_entropy", sm__cross_entropy_backward},
    [SM__OP_SOFT_CROSS_ENTROPY] = {"soft_cross_entropy", sm__soft_cross_entropy_backward},
    [SM__OP_CHECKPOINT] = {"checkpoint", sm__checkpoint_backward},
};
_Static_assert(SM__OP_COUNT == 26, "op table out of date: add the new op's row");

const char *sm__op_name(sm__op op)
{
    return (unsigned)op < SM__OP_COUNT ? op_table[op].name : "?";
}

bool sm__wants_grad(const sm_ctx *ctx, int n, sm_tensor *const *in)
{
    if (!ctx->grad) return false;
    for (int i = 0; i < n; i++)
        if (in[i] && (in[i]->flags & SM_TENSOR_REQUIRES_GRAD)) return true;
    return false;
}

sm_tensor *sm__track(sm_ctx *ctx, sm__op op, sm_tensor *out, int n_in, sm_tensor *const *in,
                     const void *saved_data, size_t saved_bytes)
{
    if (!out || !sm__wants_grad(ctx, n_in, in)) return out;
    return sm__record(ctx, op, out, n_in, in, saved_data, saved_bytes);
}

sm_tensor *sm__record(sm_ctx *ctx, sm__op op, sm_tensor *out, int n_in, sm_tensor *const *in,
                      const void *saved_data, size_t saved_bytes)
{
    sm__node *node = sm_ctx_alloc(ctx, sizeof *node);
    sm_tensor **ins = sm_ctx_alloc(ctx, (size_t)(n_in > 0 ? n_in : 1) * sizeof *ins);
    void *saved = saved_bytes ? sm_ctx_alloc(ctx, saved_bytes) : NULL;
    if (!node || !ins || (saved_bytes && !saved)) return NULL;
    if (saved) memcpy(saved, saved_data, saved_bytes);
    for (int i = 0; i < n_in; i++) ins[i] = in[i];
    node->op = op;
    node->index = ctx->tape_size;
    node->n_in = n_in;
    node->in = ins;
    node->out = out;
    node->saved = saved;
    node->prev = ctx->tape;
    ctx->tape = node;
    ctx->tape_size++;
    out->flags |= SM_TENSOR_REQUIRES_GRAD;
    out->node = node;
    return out;
}

size_t sm_ctx_tape_size(const sm_ctx *ctx) { return ctx->tape_size; }

void sm__backward_walk(sm_ctx *ctx, sm__node *newest)
{
    for (sm__node *n = newest; n && !ctx->err.code; n = n->prev) {
        if (!n->out->grad) continue;
        sm__mark scratch = sm__arena_mark(&ctx->act);
        op_table[n->op].backward(ctx, n);
        sm__arena_rewind(&ctx->act, scratch);
        if (!ctx->keep_grads) sm__grad_release(ctx, n->out);
    }
}

int sm_backward_from(sm_ctx *ctx, sm_tensor *out, const float *dout)
{
    if (!ctx) return SM_EINVAL;
    if (ctx->err.code) return ctx->err.code;
    if (!out) return sm_ctx_fail(ctx, SM_EINVAL, "backward: NULL output");
    if (!(out->flags & SM_TENSOR_REQUIRES_GRAD))
        return sm_ctx_fail(ctx, SM_EINVAL,
                           "backward: the output does not require grad (no input requires "
                           "grad, or gradients were disabled)");
    if (ctx->backward_done)
        return sm_ctx_fail(ctx, SM_EINVAL,
                           "backward: already ran for this step (the tape is consumed; "
                           "sm_ctx_reset starts the next step)");
    if (dout) {
        bool fresh; /* a fresh buffer belongs to a storage-owning, hence contiguous, tensor */
        float *g = sm__grad_w(ctx, out, &fresh);
        if (!g) return ctx->err.code;
        if (fresh)
            memcpy(g, dout, (size_t)sm_tensor_numel(out) * sizeof(float));
        else
            sm__strided_acc(ctx, out, g, dout);
    } else if (!sm_tensor_grad(ctx, out)) {
        return ctx->err.code;
    }
    sm__backward_walk(ctx, ctx->tape);
    ctx->backward_done = true;
    return ctx->err.code;
}

int sm_backward(sm_ctx *ctx, sm_tensor *loss)
{
    if (ctx && !ctx->err.code && loss && sm_tensor_numel(loss) != 1) {
        char shape[128];
        sm_tensor_shape_str(loss, shape, sizeof shape);
        return sm_ctx_fail(ctx, SM_ESHAPE, "backward: the loss must have one element (got %s)",
                           shape);
    }
    const float one = 1.0f;
    return sm_backward_from(ctx, loss, &one);
}
