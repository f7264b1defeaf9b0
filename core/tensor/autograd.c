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

/* What an op's backward reads besides gradients and its saved data: the data of its inputs
 * (IN), of its output (OUT). A tensor whose readers are all 0 here is dead after the forward:
 * sm_tensor_release can hand its memory back. When unsure, IN | OUT. VIA_IN: the backward
 * reads its inputs' data only through node->in (never a pointer kept in its saved data), so an
 * input computed again in backward (remat, below) is seen. remat: the op can compute its output
 * again from its inputs (cheaply: an elementwise op whose backward keeps its input anyway), so
 * a released output is dropped at once and made again for its readers' backward. */
enum { IN = 1, OUT = 2, VIA_IN = 4 };
static const struct {
    const char *name;
    sm__backward_fn backward;
    unsigned reads;
    sm__remat_fn remat;
} op_table[SM__OP_COUNT] = {
    [SM__OP_LINEAR] = {"linear", sm__linear_backward, IN | VIA_IN, NULL},
    [SM__OP_MATMUL] = {"matmul", sm__matmul_backward, IN, NULL},
    [SM__OP_ADD] = {"add", sm__add_backward, 0, NULL},
    [SM__OP_MUL] = {"mul", sm__mul_backward, IN, NULL},
    [SM__OP_SCALE] = {"scale", sm__scale_backward, 0, NULL},
    [SM__OP_LAYERNORM] = {"layernorm", sm__layernorm_backward, IN, NULL},
    [SM__OP_GELU] = {"gelu", sm__gelu_backward, IN | VIA_IN, sm__gelu_remat},
    [SM__OP_SOFTMAX] = {"softmax", sm__softmax_backward, OUT, NULL},
    [SM__OP_ATTENTION] = {"attention", sm__attention_backward, IN, NULL},
    [SM__OP_RELPOS_BIAS] = {"relpos_bias", sm__relpos_bias_backward, IN | OUT, NULL},
    [SM__OP_WINDOW_PARTITION] = {"window_partition", sm__window_partition_backward, 0, NULL},
    [SM__OP_WINDOW_REVERSE] = {"window_reverse", sm__window_reverse_backward, 0, NULL},
    [SM__OP_PATCH_MERGE] = {"patch_merge", sm__patch_merge_backward, 0, NULL},
    [SM__OP_IM2COL] = {"im2col", sm__im2col_backward, IN | OUT, NULL},
    [SM__OP_CONV1X1] = {"conv1x1", sm__conv1x1_backward, IN, NULL},
    [SM__OP_PIXEL_SHUFFLE] = {"pixel_shuffle", sm__pixel_shuffle_backward, 0, NULL},
    [SM__OP_MASK_BLEND] = {"mask_blend", sm__mask_blend_backward, IN | OUT, NULL},
    [SM__OP_CLS_CONCAT] = {"cls_concat", sm__cls_concat_backward, 0, NULL},
    [SM__OP_CONCAT] = {"concat", sm__concat_backward, 0, NULL},
    [SM__OP_MEAN] = {"mean", sm__mean_backward, 0, NULL},
    [SM__OP_COPY] = {"contiguous", sm__copy_backward, 0, NULL},
    [SM__OP_DROP_PATH] = {"drop_path", sm__drop_path_backward, 0, NULL},
    [SM__OP_MASKED_L1] = {"masked_l1", sm__masked_l1_backward, IN | OUT, NULL},
    [SM__OP_CROSS_ENTROPY] = {"cross_entropy", sm__cross_entropy_backward, IN | OUT, NULL},
    [SM__OP_SOFT_CROSS_ENTROPY] = {"soft_cross_entropy", sm__soft_cross_entropy_backward,
                                   IN | OUT, NULL},
    [SM__OP_CHECKPOINT] = {"checkpoint", sm__checkpoint_backward, IN | OUT, NULL},
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

/* Notes which watched ranges the inputs of an entry at position pos read (see
 * sm_ctx_watch_reads): the lowest position is kept, the first reader in forward order. An input
 * reads range i when its data pointer lies in it: views of a parameter point into the
 * parameter, and their gradients land in its gradient. */
static void sm__watch_note(sm_ctx *ctx, size_t pos, int n_in, sm_tensor *const *in)
{
    const sm__watch *w = &ctx->watch;
    for (int k = 0; k < n_in; k++) {
        const sm_tensor *t = in[k];
        if (!t || t->data < w->base || t->data >= w->base + w->ends[w->n - 1]) continue;
        int64_t off = t->data - w->base;
        size_t lo = 0, hi = w->n - 1; /* the range holding off: first i with ends[i] > off */
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (w->ends[mid] > off) hi = mid;
            else lo = mid + 1;
        }
        if (pos < w->first[lo]) w->first[lo] = pos;
    }
}

static sm_tensor *record(sm_ctx *ctx, sm__op op, sm_tensor *out, int n_in, sm_tensor *const *in,
                         const void *saved_data, size_t saved_bytes);

sm_tensor *sm__track(sm_ctx *ctx, sm__op op, sm_tensor *out, int n_in, sm_tensor *const *in,
                     const void *saved_data, size_t saved_bytes)
{
    if (ctx->prof) sm__prof_op(ctx, op);
    if (!out || !sm__wants_grad(ctx, n_in, in)) return out;
    return record(ctx, op, out, n_in, in, saved_data, saved_bytes);
}

sm_tensor *sm__record(sm_ctx *ctx, sm__op op, sm_tensor *out, int n_in, sm_tensor *const *in,
                      const void *saved_data, size_t saved_bytes)
{
    if (ctx->prof) sm__prof_op(ctx, op);
    return record(ctx, op, out, n_in, in, saved_data, saved_bytes);
}

static sm_tensor *record(sm_ctx *ctx, sm__op op, sm_tensor *out, int n_in, sm_tensor *const *in,
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
    if (ctx->watch.base) /* inside a checkpointed block: the block's own entry reads */
        sm__watch_note(ctx, ctx->block_depth ? ctx->block_index : node->index, n_in, in);
    ctx->tape = node;
    ctx->tape_size++;
    out->flags |= SM_TENSOR_REQUIRES_GRAD;
    out->node = node;
    return out;
}

size_t sm_ctx_tape_size(const sm_ctx *ctx) { return ctx->tape_size; }

/* True if a backward on the tape reads the data of storage st, made by the entry st->node: that
 * entry's (OUT), or an op given st or a view of it (IN); they all came after st->node. */
static bool tape_reads(const sm_ctx *ctx, const sm_tensor *st)
{
    for (const sm__node *n = ctx->tape; n; n = n->prev) {
        if (n == st->node) return (op_table[n->op].reads & OUT) != 0;
        if (!(op_table[n->op].reads & IN)) continue;
        for (int i = 0; i < n->n_in; i++)
            if (n->in[i] && (n->in[i] == st || n->in[i]->base == st)) return true;
    }
    return false;
}

/* True if st can be dropped although backwards read it: its maker can make it again (remat,
 * from inputs its own backward keeps), and every op on the tape given st or a view of it
 * reads it through its inputs, or not at all. */
static bool droppable(const sm_ctx *ctx, const sm_tensor *st)
{
    if (!op_table[st->node->op].remat || !(op_table[st->node->op].reads & IN)) return false;
    for (const sm__node *n = ctx->tape; n && n != st->node; n = n->prev) {
        unsigned r = op_table[n->op].reads;
        for (int i = 0; i < n->n_in; i++)
            if (n->in[i] && (n->in[i] == st || n->in[i]->base == st) && (r & IN) && !(r & VIA_IN))
                return false;
    }
    return true;
}

/* True if st's block can be reused now (dropped: marked so, to be made again in backward). */
static bool reusable_now(sm_ctx *ctx, sm_tensor *st)
{
    if (!(st->flags & SM__TENSOR_OWN_BLOCK) || ctx->err.code) return false;
    /* without gradients, inside a block run without them (evaluation) and with nothing on the
     * tape, no backward can read anything (the block's rewind drops the free blocks it
     * released) */
    if (!ctx->grad) return ctx->no_grad_depth && !ctx->tape;
    /* with them, only while a plain forward records (a checkpointed block rewinds its memory
     * itself, backward its scratch), only for a tensor an op on the tape made (ops may keep
     * pointers to other data, masks and targets, in their saved data), and only when nothing
     * reads it or its maker can make it again (dropped) */
    if (!st->node || ctx->recompute || ctx->replay || ctx->block_depth || ctx->backward_done)
        return false;
    if (!tape_reads(ctx, st)) return true;
    if (!droppable(ctx, st)) return false; /* backward hands it over after its last reader */
    st->flags |= SM__TENSOR_DROPPED;
    return true;
}

void sm_tensor_release(sm_ctx *ctx, sm_tensor *t)
{
    if (!ctx || !t) return;
    sm_tensor *st = t->base ? t->base : t;
    if (!(st->flags & SM__TENSOR_ARENA) || (st->flags & SM__TENSOR_RELEASED)) return;
    st->flags |= SM__TENSOR_RELEASED;
    if (!reusable_now(ctx, st)) return;
    st->flags |= SM__TENSOR_RECLAIMED;
    sm__arena_put(&ctx->act, st->data, sm__block_bytes(sm_tensor_numel(st)));
}

/* Before a backward reads t: a dropped t (or t's base) is made again by its maker, after the
 * maker's own inputs, into a gradient block that hand_over returns after the maker's backward
 * (the last that can read it); a view of a remade tensor is pointed into the new block. */
static void materialize(sm_ctx *ctx, sm_tensor *t, int *remade_op)
{
    sm_tensor *st = t->base ? t->base : t;
    if (st->flags & SM__TENSOR_DROPPED) {
        const sm__node *m = st->node;
        for (int i = 0; i < m->n_in; i++)
            if (m->in[i]) materialize(ctx, m->in[i], remade_op);
        int64_t n = sm_tensor_numel(st);
        float *d = sm__arena_get(&ctx->grads, sm__block_bytes(n));
        if (!d) {
            sm_ctx_fail(ctx, SM_ENOMEM, "arena: out of memory remaking a %s output of %lld floats",
                        op_table[m->op].name, (long long)n);
            return;
        }
        sm__note_peak(ctx);
        op_table[m->op].remat(ctx, m, d);
        *remade_op = (int)m->op;
        st->data = d;
        st->flags = (st->flags & ~(SM__TENSOR_DROPPED | SM__TENSOR_RECLAIMED)) | SM__TENSOR_REMADE;
    }
    if (t != st && (st->flags & SM__TENSOR_REMADE)) t->data = st->data + t->offset;
}

/* Makes again what n's backward reads and was dropped; the op that remade it, else -1. */
static int materialize_reads(sm_ctx *ctx, sm__node *n)
{
    int remade_op = -1;
    unsigned r = op_table[n->op].reads;
    if (r & IN)
        for (int i = 0; i < n->n_in; i++)
            if (n->in[i]) materialize(ctx, n->in[i], &remade_op);
    if (r & OUT) materialize(ctx, n->out, &remade_op);
    return remade_op;
}

/* After the backward of the op that made t (the last that can read t: its readers came later
 * on the tape): a released tensor's block becomes a gradient block, for the next gradient of
 * its size. Main tape only (a recomputed block's memory is rewound by its checkpoint). */
static void hand_over(sm_ctx *ctx, sm_tensor *t)
{
    const uint32_t need = SM__TENSOR_OWN_BLOCK | SM__TENSOR_RELEASED;
    if (ctx->keep_grads || t->base || (t->flags & (need | SM__TENSOR_RECLAIMED)) != need)
        return;
    t->flags |= SM__TENSOR_RECLAIMED;
    sm__arena_put(&ctx->grads, t->data, sm__block_bytes(sm_tensor_numel(t)));
}

void sm_ctx_watch_reads(sm_ctx *ctx, const float *base, size_t n, const int64_t *ends,
                        size_t *first)
{
    for (size_t i = 0; i < n; i++) first[i] = SIZE_MAX;
    ctx->watch = (sm__watch){n ? base : NULL, n, ends, first};
}

/* The backward of one entry, then its output's gradient goes back to the free list. */
static void sm__backward_node(sm_ctx *ctx, sm__node *n)
{
    if (!n->out->grad) return;
    double t0 = 0.0;
    if (ctx->prof) {
        sm__prof_restart(ctx); /* a recomputation's first op is timed from here */
        t0 = ctx->prof->last;
    }
    int remade = materialize_reads(ctx, n);
    if (ctx->err.code) return;
    if (ctx->prof && remade >= 0) { /* timed as the maker's backward */
        sm__prof_backward(ctx, (sm__op)remade, t0);
        t0 = sm_profile_now();
    }
    sm__mark scratch = sm__arena_mark(&ctx->act);
    op_table[n->op].backward(ctx, n);
    sm__arena_rewind(&ctx->act, scratch);
    if (!ctx->keep_grads) sm__grad_release(ctx, n->out);
    if (ctx->prof) sm__prof_backward(ctx, n->op, t0);
}

void sm__backward_walk(sm_ctx *ctx, sm__node *newest)
{
    for (sm__node *n = newest; n && !ctx->err.code; n = n->prev) sm__backward_node(ctx, n);
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
    ctx->watch.base = NULL; /* the forward is over */
    /* backward's scratch in the activation arena is a stack; blocks released in forward and
     * not reused (the last of their size) serve gradients (main tape only: keep_grads keeps) */
    if (ctx->keep_grads) ctx->act.free = NULL;
    else sm__arena_pass_free(&ctx->act, &ctx->grads);
    double t0 = 0.0;
    if (ctx->prof) {
        ctx->prof->backward = true;
        t0 = sm_profile_now();
    }
    for (sm__node *n = ctx->tape; n && !ctx->err.code; n = n->prev) {
        sm__backward_node(ctx, n);
        hand_over(ctx, n->out);
        if (ctx->hook) ctx->hook(ctx->hook_user, n->index);
    }
    if (ctx->prof) {
        ctx->prof->backward = false;
        ctx->prof->acc.backward_s += sm_profile_now() - t0;
    }
    ctx->backward_done = true;
    return ctx->err.code;
}

int sm_backward(sm_ctx *ctx, sm_tensor *loss)
{
    if (ctx && !ctx->err.code && loss && sm_tensor_numel(loss) != 1) {
        char shape[SM__SHAPE_STR_MAX];
        sm_tensor_shape_str(loss, shape, sizeof shape);
        return sm_ctx_fail(ctx, SM_ESHAPE, "backward: the loss must have one element (got %s)",
                           shape);
    }
    const float one = 1.0f;
    return sm_backward_from(ctx, loss, &one);
}
