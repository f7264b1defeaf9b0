/* tests/check_memory.c - the memory plan of backward (gradients released when dead, in-place
 * elementwise backward), activations released in forward (sm_tensor_release) and recomputation
 * (sm_checkpoint): the same bits as keeping everything, what stays readable after backward,
 * errors. The full ViT and Swin are compared in
 * check_models (memory case). */
#include "testutil.h"

#include <math.h>
#include <string.h>

/* Fills t with values in [lo, hi) from a fixed stream. */
static void fill(sm_tensor *t, uint64_t key, double lo, double hi)
{
    sm_rng r;
    sm_rng_init(&r, key, 0, 0, 0);
    sm_init_uniform(t, lo, hi, &r);
}

/* A leaf that requires grad, filled like fill(): in ctx's arena, or on the heap when ctx is NULL
 * (a parameter; sm_tensor_free it). */
static sm_tensor *grad_leaf(sm_ctx *ctx, int ndim, const int64_t *shape, uint64_t key, double lo,
                            double hi)
{
    sm_tensor *t = ctx ? sm_ctx_tensor(ctx, ndim, shape) : sm_tensor_new(ndim, shape);
    fill(t, key, lo, hi);
    t->flags |= SM_TENSOR_REQUIRES_GRAD;
    return t;
}

/* loss = mean of the 3-D f, backward; x's and γ's (16) gradients into gx and gg, the arena
 * peak into *peak; returns the loss. */
static float mean_backward(sm_ctx *ctx, sm_tensor *f, const sm_tensor *x, const sm_tensor *gamma,
                           float *gx, float *gg, size_t *peak)
{
    sm_tensor *loss = sm_mean(ctx, sm_mean(ctx, sm_mean(ctx, f, 2), 1), 0);
    ck_assert_msg(loss != NULL, "%s", sm_ctx_error(ctx)->text);
    ck_assert_int_eq(sm_backward(ctx, loss), 0);
    memcpy(gx, x->grad, (size_t)sm_tensor_numel(x) * sizeof(float));
    memcpy(gg, gamma->grad, 16 * sizeof(float));
    *peak = sm_ctx_arena_peak(ctx);
    return loss->data[0];
}

/* Run b is bitwise run a (loss, x's n gradients, γ's 16), and not trivially: both inputs got
 * real gradients. */
static void assert_same_bits(float loss_a, const float *gx_a, const float *gg_a, float loss_b,
                             const float *gx_b, const float *gg_b, int n)
{
    ck_assert_mem_eq(&loss_b, &loss_a, sizeof(float));
    ck_assert_mem_eq(gx_b, gx_a, (size_t)n * sizeof(float));
    ck_assert_mem_eq(gg_b, gg_a, 16 * sizeof(float));
    double sx = 0, sg = 0;
    for (int i = 0; i < n; i++) sx += fabs(gx_a[i]);
    for (int i = 0; i < 16; i++) sg += fabs(gg_a[i]);
    ck_assert(sx > 0 && sg > 0);
}

/* Gradients of a graph where every in-place path is taken and meets a case it must refuse:
 *   h = 1.5·x ; a = gelu(h) ; b = h ⊙ γ ; c = drop_path(b) ; d = a + c ; e = d + d ; f = e ⊙ e
 * h feeds a and b: mul (later on the tape, so first in backward) writes h's gradient over b's
 * (after γ's gradient read b's), then gelu must accumulate into it; drop path and the first add
 * write in place too; e and f have both operands in one storage. x (an arena leaf) and γ (a
 * heap tensor) must come out bitwise the same with and without the plan. */
typedef struct plan_run {
    float gx[2 * 8 * 16], gg[16], loss;
    bool h_grad_after; /* h's gradient still there after backward */
    size_t peak;
} plan_run;

static plan_run plan_graph(bool keep)
{
    plan_run r;
    sm_ctx *ctx = sm_ctx_new(NULL);
    sm_ctx_set_keep_grads(ctx, keep);
    sm_ctx_set_train(ctx, true);
    sm_ctx_set_rng(ctx, 9, 4);
    sm_tensor *gamma = grad_leaf(NULL, 1, SM_SHAPE(16), 1, -1.5, 1.5);
    sm_tensor *x = grad_leaf(ctx, 3, SM_SHAPE(2, 8, 16), 2, -3.0, 3.0);
    sm_tensor *h = sm_scale(ctx, x, 1.5f);
    sm_tensor *a = sm_gelu(ctx, h);
    sm_tensor *b = sm_mul(ctx, h, gamma);
    sm_tensor *c = sm_drop_path(ctx, b, 0.5f, 7);
    sm_tensor *d = sm_add(ctx, a, c);
    sm_tensor *e = sm_add(ctx, d, d);
    sm_tensor *f = sm_mul(ctx, e, e);
    r.loss = mean_backward(ctx, f, x, gamma, r.gx, r.gg, &r.peak);
    r.h_grad_after = h->grad != NULL;
    sm_ctx_free(ctx);
    sm_tensor_free(gamma);
    return r;
}

START_TEST(test_plan_matches_keep)
{
    plan_run keep = plan_graph(true), plan = plan_graph(false);
    assert_same_bits(keep.loss, keep.gx, keep.gg, plan.loss, plan.gx, plan.gg, 2 * 8 * 16);
    /* the intermediate gradient is released with the plan, kept without */
    ck_assert(keep.h_grad_after);
    ck_assert(!plan.h_grad_after);
    ck_assert_uint_lt(plan.peak, keep.peak);
}
END_TEST

/* Gradients of a chain of n same-size ops reuse a few blocks: memory does not grow with n. */
static size_t chain_peak(int n)
{
    sm_ctx *ctx = sm_ctx_new(NULL);
    sm_tensor *x = grad_leaf(ctx, 2, SM_SHAPE(64, 256), 3, -1.0, 1.0);
    sm_tensor *y = x;
    for (int i = 0; i < n; i++) y = sm_scale(ctx, sm_gelu(ctx, y), 0.5f);
    sm_tensor *loss = sm_mean(ctx, sm_mean(ctx, y, 1), 0);
    size_t fwd = sm_ctx_arena_used(ctx);
    ck_assert_int_eq(sm_backward(ctx, loss), 0);
    size_t extra = sm_ctx_arena_peak(ctx) - fwd;
    sm_ctx_free(ctx);
    return extra;
}

START_TEST(test_gradient_memory_is_reused)
{
    size_t e4 = chain_peak(4), e32 = chain_peak(32);
    ck_assert_msg(e32 == e4, "backward needed %zu bytes over the forward for 32 links, %zu for 4",
                  e32, e4);
    ck_assert_uint_le(e4, 4 * 64 * 256 * sizeof(float)); /* a few gradients' worth */
}
END_TEST

/* ---- sm_tensor_release ------------------------------------------------------------------ */

/* A residual branch and an MLP-like tail, every intermediate released once no op is given it:
 *   a = 2·x ; b = drop_path(a) ; c = b + x ; d = gelu(c) ; e = d ⊙ γ ; loss = mean(e ⊙ e)
 * a and b are dead after the add (scale, drop path and add read no data in backward): their
 * blocks go to the next tensors of their size; c is read by gelu's backward and d by mul's, so
 * they stay until backward has run their readers. */
typedef struct rel_run {
    float gx[4 * 32 * 16], gg[16], loss;
    bool d_reuses_b, e_reuses_a, reused_c;
    size_t peak;
} rel_run;

static rel_run release_graph(bool release)
{
    rel_run r;
    sm_ctx *ctx = sm_ctx_new(NULL);
    sm_ctx_set_train(ctx, true);
    sm_ctx_set_rng(ctx, 5, 1);
    sm_tensor *gamma = grad_leaf(NULL, 1, SM_SHAPE(16), 4, -1.5, 1.5);
    sm_tensor *x = grad_leaf(ctx, 3, SM_SHAPE(4, 32, 16), 5, -2.0, 2.0);
    sm_tensor *a = sm_scale(ctx, x, 2.0f);
    sm_tensor *b = sm_drop_path(ctx, sm_reshape(ctx, a, 2, SM_SHAPE(4, 512)), 0.5f, 3);
    sm_tensor *c = sm_add(ctx, sm_reshape(ctx, b, 3, SM_SHAPE(4, 32, 16)), x);
    const float *a_data = a->data, *b_data = b->data, *c_data = c->data;
    if (release) {
        sm_tensor_release(ctx, a);
        sm_tensor_release(ctx, b);
        sm_tensor_release(ctx, b); /* twice: nothing more */
    }
    sm_tensor *d = sm_gelu(ctx, c);
    if (release) sm_tensor_release(ctx, c);
    sm_tensor *e = sm_mul(ctx, d, gamma);
    if (release) sm_tensor_release(ctx, d);
    r.d_reuses_b = d->data == b_data; /* the newest free block first */
    r.e_reuses_a = e->data == a_data;
    r.reused_c = d->data == c_data || e->data == c_data;
    r.loss = mean_backward(ctx, sm_mul(ctx, e, e), x, gamma, r.gx, r.gg, &r.peak);
    sm_ctx_free(ctx);
    sm_tensor_free(gamma);
    return r;
}

START_TEST(test_release_same_bits)
{
    rel_run keep = release_graph(false), rel = release_graph(true);
    assert_same_bits(keep.loss, keep.gx, keep.gg, rel.loss, rel.gx, rel.gg, 4 * 32 * 16);
    ck_assert(rel.d_reuses_b && rel.e_reuses_a); /* dead: the next tensors took their blocks */
    ck_assert(!rel.reused_c); /* c is read by gelu's backward: not reused in forward */
    ck_assert(!keep.d_reuses_b && !keep.e_reuses_a);
    /* two (4, 32, 16) blocks fewer in forward, and c's and d's serve gradients in backward */
    ck_assert_uint_le(rel.peak + 2 * 4 * 32 * 16 * sizeof(float), keep.peak);
}
END_TEST

/* GELU's outputs are dropped when released, though a linear's backward reads them, and made
 * again in backward (autograd.c, remat):
 *   h = x·w1ᵀ + b ; g = gelu(h) ; y = view(g)·w2ᵀ ; k = gelu(y) ; k2 = gelu(k) ; z = k2·w2ᵀ
 * g is read through a view, k2 needs k made first (k is dropped too: gelu reads its input
 * through the node's inputs). Without the releases every tensor stays. */
typedef struct remat_run {
    float gx[4 * 32 * 16], gb[16], gw2[16 * 16], loss; /* w2's gradient reads g and k2 */
    bool k_reuses_g;
    size_t peak;
} remat_run;

static remat_run remat_graph(bool release)
{
    remat_run r;
    sm_ctx *ctx = sm_ctx_new(NULL);
    sm_tensor *w1 = grad_leaf(NULL, 2, SM_SHAPE(16, 16), 11, -0.8, 0.8);
    sm_tensor *w2 = grad_leaf(NULL, 2, SM_SHAPE(16, 16), 12, -0.8, 0.8);
    sm_tensor *b = grad_leaf(NULL, 1, SM_SHAPE(16), 13, -1.0, 1.0);
    sm_tensor *x = grad_leaf(ctx, 3, SM_SHAPE(4, 32, 16), 14, -2.0, 2.0);
    sm_tensor *h = sm_linear(ctx, x, w1, b);
    sm_tensor *g = sm_gelu(ctx, h);
    sm_tensor *y = sm_linear(ctx, sm_reshape(ctx, g, 2, SM_SHAPE(128, 16)), w2, NULL);
    const float *g_data = g->data;
    if (release) sm_tensor_release(ctx, g);
    sm_tensor *k = sm_gelu(ctx, y);
    r.k_reuses_g = k->data == g_data;
    sm_tensor *k2 = sm_gelu(ctx, k);
    if (release) sm_tensor_release(ctx, k);
    sm_tensor *z = sm_linear(ctx, k2, w2, NULL);
    if (release) sm_tensor_release(ctx, k2);
    sm_tensor *z3 = sm_reshape(ctx, z, 3, SM_SHAPE(4, 32, 16));
    r.loss = mean_backward(ctx, sm_mul(ctx, z3, z3), x, b, r.gx, r.gb, &r.peak);
    ck_assert_msg(w1->grad && w2->grad, "the weights got no gradient");
    memcpy(r.gw2, w2->grad, sizeof r.gw2);
    sm_ctx_free(ctx);
    sm_tensor_free(w1);
    sm_tensor_free(w2);
    sm_tensor_free(b);
    return r;
}

START_TEST(test_release_gelu_remade)
{
    remat_run keep = remat_graph(false), rel = remat_graph(true);
    assert_same_bits(keep.loss, keep.gx, keep.gb, rel.loss, rel.gx, rel.gb, 4 * 32 * 16);
    ck_assert_mem_eq(rel.gw2, keep.gw2, sizeof keep.gw2);
    ck_assert(rel.k_reuses_g);   /* g was dropped at its release: k took its block */
    ck_assert(!keep.k_reuses_g); /* without the release g stays */
    ck_assert_uint_lt(rel.peak, keep.peak);
}
END_TEST

/* A block released in forward that no later tensor took serves gradients in backward:
 * a = 2·x, dead after the mean (released), leaves a free (64, 256) block, which a's gradient
 * takes; only x's (a leaf's, kept after backward) is new. */
START_TEST(test_release_unused_block_serves_backward)
{
    sm_ctx *ctx = sm_ctx_new(NULL);
    sm_tensor *x = grad_leaf(ctx, 2, SM_SHAPE(64, 256), 15, -1.0, 1.0);
    sm_tensor *a = sm_scale(ctx, x, 2.0f);
    sm_tensor *m = sm_mean(ctx, a, 1);
    sm_tensor_release(ctx, a);
    sm_tensor *loss = sm_mean(ctx, m, 0);
    size_t fwd = sm_ctx_arena_used(ctx), block = 64 * 256 * sizeof(float);
    ck_assert_int_eq(sm_backward(ctx, loss), 0);
    ck_assert_msg(sm_ctx_arena_peak(ctx) - fwd < block + block / 2,
                  "backward needed %zu bytes over the forward's %zu (a (64, 256) block is %zu)",
                  sm_ctx_arena_peak(ctx) - fwd, fwd, block);
    ck_assert_float_eq(x->grad[0], 2.0f / (64 * 256));
    sm_ctx_free(ctx);
}
END_TEST

START_TEST(test_release_errors_and_modes)
{
    sm_ctx *ctx = sm_ctx_new(NULL);
    sm_tensor *w = sm_tensor_new(2, SM_SHAPE(8, 8));
    fill(w, 6, -1.0, 1.0);
    w->flags |= SM_TENSOR_REQUIRES_GRAD;
    sm_tensor *x = sm_ctx_tensor(ctx, 2, SM_SHAPE(4, 8));
    fill(x, 7, -1.0, 1.0);
    /* heap tensors (parameters) are never released */
    sm_tensor_release(ctx, w);
    sm_tensor_release(ctx, NULL);
    sm_tensor *h = sm_linear(ctx, x, w, NULL);
    ck_assert_ptr_nonnull(h);
    /* nor reused: a tensor no op on the tape made (an op may keep a pointer to it, as the mask
     * blend does to its mask) */
    sm_tensor *m = sm_ctx_tensor(ctx, 2, SM_SHAPE(4, 8));
    sm_tensor_release(ctx, m);
    sm_tensor *m2 = sm_ctx_tensor(ctx, 2, SM_SHAPE(4, 8));
    ck_assert_ptr_ne(m2->data, m->data);
    /* a released tensor given to an op, directly or through a view: a clear error */
    sm_tensor *v = sm_reshape(ctx, h, 1, SM_SHAPE(32));
    sm_tensor_release(ctx, h);
    ck_assert_ptr_null(sm_gelu(ctx, v));
    ck_assert_int_eq(sm_ctx_status(ctx), SM_EINVAL);
    ck_assert_ptr_nonnull(strstr(sm_ctx_error(ctx)->text, "sm_tensor_release"));
    /* without gradients (and with recomputation) the memory is never reused, only marked */
    for (int mode = 0; mode < 2; mode++) {
        sm_ctx_reset(ctx);
        sm_ctx_set_grad(ctx, mode == 1);
        sm_ctx_set_recompute(ctx, mode == 1);
        x = sm_ctx_tensor(ctx, 2, SM_SHAPE(4, 8));
        fill(x, 7, -1.0, 1.0);
        h = sm_linear(ctx, x, w, NULL);
        sm_tensor *g = sm_gelu(ctx, h);
        sm_tensor_release(ctx, g);
        sm_tensor *k = sm_scale(ctx, h, 2.0f);
        ck_assert_ptr_nonnull(k);
        ck_assert_ptr_ne(k->data, g->data);
        ck_assert_ptr_null(sm_add(ctx, k, g));
        ck_assert_int_eq(sm_ctx_status(ctx), SM_EINVAL);
    }
    sm_tensor_free(w);
    sm_ctx_free(ctx);
}
END_TEST

/* ---- sm_checkpoint ---------------------------------------------------------------------- */

typedef struct block_arg {
    sm_tensor *w, *b; /* heap tensors requiring grad: the block's parameters */
    float rate;       /* drop path inside the block */
    int calls;        /* times the block ran */
} block_arg;

/* y = x + drop_path(gelu(x·wᵀ + b)), x (4, 6, 16), w (16, 16) */
static sm_tensor *block(sm_ctx *ctx, void *arg, sm_tensor *const *in)
{
    block_arg *a = arg;
    a->calls++;
    sm_tensor *h = sm_gelu(ctx, sm_linear(ctx, in[0], a->w, a->b));
    return sm_add(ctx, in[0], sm_drop_path(ctx, h, a->rate, 3));
}

/* Two chained blocks, the second nested inside another checkpoint. */
static sm_tensor *outer(sm_ctx *ctx, void *arg, sm_tensor *const *in)
{
    return sm_checkpoint(ctx, block, arg, 1, in);
}

/* The blocks' parameters (w, b filled; drop path 0.5), freed by block_arg_free. */
static block_arg block_arg_new(void)
{
    block_arg a = {sm_tensor_new(2, SM_SHAPE(16, 16)), sm_tensor_new(1, SM_SHAPE(16)), 0.5f, 0};
    fill(a.w, 4, -0.5, 0.5);
    fill(a.b, 5, -0.5, 0.5);
    return a;
}

static void block_arg_free(block_arg *a)
{
    sm_tensor_free(a->w);
    sm_tensor_free(a->b);
}

typedef struct ckpt_run {
    float y[4 * 6 * 16], gx[4 * 6 * 16], gw[16 * 16], gb[16];
    size_t tape, after_forward;
    int calls;
} ckpt_run;

static ckpt_run ckpt_graph(bool recompute, bool keep)
{
    ckpt_run r;
    block_arg a = block_arg_new();
    a.w->flags |= SM_TENSOR_REQUIRES_GRAD;
    a.b->flags |= SM_TENSOR_REQUIRES_GRAD;
    sm_ctx *ctx = sm_ctx_new(NULL);
    sm_ctx_set_recompute(ctx, recompute);
    sm_ctx_set_keep_grads(ctx, keep);
    sm_ctx_set_train(ctx, true);
    sm_ctx_set_rng(ctx, 1, 2);
    sm_tensor *x = sm_ctx_tensor(ctx, 3, SM_SHAPE(4, 6, 16));
    fill(x, 6, -2.0, 2.0);
    x->flags |= SM_TENSOR_REQUIRES_GRAD;
    sm_tensor *y = sm_checkpoint(ctx, block, &a, 1, &x);
    y = sm_checkpoint(ctx, outer, &a, 1, &y);
    ck_assert_msg(y != NULL, "%s", sm_ctx_error(ctx)->text);
    r.tape = sm_ctx_tape_size(ctx);
    r.after_forward = sm_ctx_arena_used(ctx);
    sm_tensor *loss = sm_mean(ctx, sm_mean(ctx, sm_mean(ctx, sm_mul(ctx, y, y), 2), 1), 0);
    /* the context's modes may change before backward: the recomputation uses the forward's */
    sm_ctx_set_train(ctx, false);
    sm_ctx_set_rng(ctx, 77, 78);
    ck_assert_int_eq(sm_backward(ctx, loss), 0);
    memcpy(r.y, y->data, sizeof r.y);
    memcpy(r.gx, x->grad, sizeof r.gx);
    memcpy(r.gw, a.w->grad, sizeof r.gw);
    memcpy(r.gb, a.b->grad, sizeof r.gb);
    r.calls = a.calls;
    sm_ctx_free(ctx);
    block_arg_free(&a);
    return r;
}

START_TEST(test_checkpoint_same_bits)
{
    ckpt_run ref = ckpt_graph(false, true);
    ck_assert_int_eq(ref.calls, 2); /* off: the block runs once per call */
    for (int mode = 0; mode < 3; mode++) {
        bool recompute = mode > 0, keep = mode == 2;
        ckpt_run r = ckpt_graph(recompute, keep);
        ck_assert_mem_eq(r.y, ref.y, sizeof ref.y);
        ck_assert_mem_eq(r.gx, ref.gx, sizeof ref.gx);
        ck_assert_mem_eq(r.gw, ref.gw, sizeof ref.gw);
        ck_assert_mem_eq(r.gb, ref.gb, sizeof ref.gb);
        if (recompute) {
            /* forward once per block, and once more per block in backward (the nested one:
             * once more for the outer recompute, whose inner checkpoint recomputes again) */
            ck_assert_int_eq(r.calls, 5);
            ck_assert_uint_eq(r.tape, 2); /* one entry per checkpoint */
            ck_assert_uint_lt(r.after_forward, ref.after_forward);
        } else {
            ck_assert_int_eq(r.calls, 2);
            ck_assert_uint_eq(r.tape, ref.tape);
        }
    }
    /* drop path (seed 1, step 2, key 3) drops some samples and keeps others, so a replay with
     * other keys or without training mode would have given other gradients */
    sm_ctx *ctx = sm_ctx_new(NULL);
    sm_ctx_set_train(ctx, true);
    sm_ctx_set_rng(ctx, 1, 2);
    sm_tensor *ones = sm_ctx_tensor(ctx, 2, SM_SHAPE(4, 1));
    for (int i = 0; i < 4; i++) ones->data[i] = 1.0f;
    sm_tensor *kept = sm_drop_path(ctx, ones, 0.5f, 3);
    int dropped = 0;
    for (int i = 0; i < 4; i++) dropped += kept->data[i] == 0.0f;
    ck_assert_msg(dropped > 0 && dropped < 4, "%d of 4 samples dropped", dropped);
    sm_ctx_free(ctx);
}
END_TEST

/* Gradients off (evaluation): a checkpointed block leaves only its output in the arena, with
 * the same bits as the block run plainly; with checkpoint calls replaced by plain calls the
 * block's activations stay. */
static size_t no_grad_forward(bool checkpointed, float *y_out)
{
    block_arg a = block_arg_new();
    sm_ctx *ctx = sm_ctx_new(NULL);
    sm_ctx_set_grad(ctx, false);
    sm_ctx_set_train(ctx, true);
    sm_ctx_set_rng(ctx, 1, 2);
    sm_tensor *x = sm_ctx_tensor(ctx, 3, SM_SHAPE(4, 6, 16));
    fill(x, 6, -2.0, 2.0);
    size_t before = sm_ctx_arena_used(ctx);
    sm_tensor *y = checkpointed ? sm_checkpoint(ctx, block, &a, 1, &x) : block(ctx, &a, &x);
    y = checkpointed ? sm_checkpoint(ctx, outer, &a, 1, &y) : block(ctx, &a, &y);
    ck_assert_msg(y != NULL, "%s", sm_ctx_error(ctx)->text);
    memcpy(y_out, y->data, 4 * 6 * 16 * sizeof(float));
    size_t used = sm_ctx_arena_used(ctx) - before;
    sm_ctx_free(ctx);
    block_arg_free(&a);
    return used;
}

START_TEST(test_checkpoint_no_grad)
{
    ckpt_run ref = ckpt_graph(false, true);
    float y_ck[4 * 6 * 16], y_plain[4 * 6 * 16];
    size_t ck = no_grad_forward(true, y_ck), plain = no_grad_forward(false, y_plain);
    ck_assert_mem_eq(y_ck, ref.y, sizeof ref.y);
    ck_assert_mem_eq(y_plain, ref.y, sizeof ref.y);
    /* two block outputs (the first is the second's input) and their headers, no more */
    ck_assert_uint_le(ck, 2 * (sizeof y_ck + 1024));
    ck_assert_uint_gt(plain, ck + 2 * sizeof y_ck); /* the products and GELUs of both blocks */
}
END_TEST

typedef struct rel_arg {
    block_arg p;  /* the parameters */
    bool release; /* release every intermediate after use */
} rel_arg;

/* x + gelu(0.5·gelu(x·wᵀ + b)) */
static sm_tensor *releasing_block(sm_ctx *ctx, void *arg, sm_tensor *const *in)
{
    rel_arg *a = arg;
    bool rel = a->release;
    sm_tensor *h = sm_linear(ctx, in[0], a->p.w, a->p.b);
    sm_tensor *g = sm_gelu(ctx, h);
    if (rel) sm_tensor_release(ctx, h);
    sm_tensor *k = sm_scale(ctx, g, 0.5f);
    if (rel) sm_tensor_release(ctx, g);
    sm_tensor *m = sm_gelu(ctx, k);
    if (rel) sm_tensor_release(ctx, k);
    sm_tensor *y = sm_add(ctx, in[0], m);
    if (rel) sm_tensor_release(ctx, m);
    return y;
}

/* Three such blocks without gradients; the output into y_out, the arena peak returned. */
static size_t no_grad_release_forward(bool release, float *y_out)
{
    rel_arg a = {block_arg_new(), release};
    sm_ctx *ctx = sm_ctx_new(NULL);
    sm_ctx_set_grad(ctx, false);
    sm_tensor *x = sm_ctx_tensor(ctx, 3, SM_SHAPE(4, 6, 16));
    fill(x, 8, -2.0, 2.0);
    for (int i = 0; i < 3; i++) x = sm_checkpoint(ctx, releasing_block, &a, 1, &x);
    ck_assert_msg(x != NULL, "%s", sm_ctx_error(ctx)->text);
    memcpy(y_out, x->data, 4 * 6 * 16 * sizeof(float));
    size_t peak = sm_ctx_arena_peak(ctx);
    sm_ctx_free(ctx);
    block_arg_free(&a.p);
    return peak;
}

/* Without gradients, tensors released inside a checkpointed block are reused at once, and the
 * block's rewind forgets the free blocks it released (else the next block would be handed a
 * block over the output just moved down). */
START_TEST(test_checkpoint_no_grad_release)
{
    float y_rel[4 * 6 * 16], y_keep[4 * 6 * 16];
    size_t rel = no_grad_release_forward(true, y_rel);
    size_t keep = no_grad_release_forward(false, y_keep);
    ck_assert_mem_eq(y_rel, y_keep, sizeof y_keep);
    double s = 0;
    for (int i = 0; i < 4 * 6 * 16; i++) s += fabs(y_keep[i]);
    ck_assert(s > 0 && isfinite(s));
    /* the block holds two (4, 6, 16) tensors at a time, not five */
    ck_assert_msg(rel + 2 * sizeof y_rel <= keep, "arena peak %zu with releases, %zu without", rel,
                  keep);
}
END_TEST

/* y = gelu(keep(x·w1ᵀ))·w2ᵀ (keep optional): a kept product and a block ending in a linear. */
typedef struct mlp_arg {
    sm_tensor *w1, *w2;
    bool keep;
} mlp_arg;

static sm_tensor *mlp(sm_ctx *ctx, void *arg, sm_tensor *const *in)
{
    mlp_arg *a = arg;
    sm_tensor *h = sm_linear(ctx, in[0], a->w1, NULL);
    if (a->keep) h = sm_checkpoint_keep(ctx, h);
    return sm_linear(ctx, sm_gelu(ctx, h), a->w2, NULL);
}

/* x's gradient when w1 and w2 change between forward and backward (never done in training; it
 * shows which products the recomputation takes from memory: GELU's backward reads its input,
 * which is the forward's if kept and the new product if recomputed). */
static void mlp_grad(bool recompute, bool keep, float *gx, size_t *kept_bytes)
{
    mlp_arg a = {sm_tensor_new(2, SM_SHAPE(32, 16)), sm_tensor_new(2, SM_SHAPE(16, 32)), keep};
    fill(a.w1, 7, -0.5, 0.5);
    fill(a.w2, 8, -0.5, 0.5);
    a.w1->flags |= SM_TENSOR_REQUIRES_GRAD;
    sm_ctx *ctx = sm_ctx_new(NULL);
    sm_ctx_set_recompute(ctx, recompute);
    sm_tensor *x = sm_ctx_tensor(ctx, 2, SM_SHAPE(8, 16));
    fill(x, 9, -2.0, 2.0);
    x->flags |= SM_TENSOR_REQUIRES_GRAD;
    size_t before = sm_ctx_arena_used(ctx);
    sm_tensor *y = sm_checkpoint(ctx, mlp, &a, 1, &x);
    *kept_bytes = sm_ctx_arena_used(ctx) - before;
    sm_tensor *loss = sm_mean(ctx, sm_mean(ctx, sm_mul(ctx, y, y), 1), 0);
    for (int i = 0; i < 32 * 16; i++) a.w1->data[i] *= -1.0f;
    for (int i = 0; i < 16 * 32; i++) a.w2->data[i] *= 0.5f;
    ck_assert_int_eq(sm_backward(ctx, loss), 0);
    memcpy(gx, x->grad, 8 * 16 * sizeof(float));
    sm_ctx_free(ctx);
    sm_tensor_free(a.w1);
    sm_tensor_free(a.w2);
}

START_TEST(test_checkpoint_keep)
{
    float ref[8 * 16], kept[8 * 16], full[8 * 16];
    size_t b_ref, b_kept, b_full;
    mlp_grad(false, true, ref, &b_ref);
    mlp_grad(true, true, kept, &b_kept);
    mlp_grad(true, false, full, &b_full);
    /* the kept product is the forward's: as without recomputation */
    ck_assert_mem_eq(kept, ref, sizeof ref);
    /* not kept: recomputed with the new w1, another gradient */
    ck_assert(memcmp(full, ref, sizeof ref) != 0);
    /* memory after the forward: all activations; the kept product and the output; the output */
    ck_assert_uint_lt(b_kept, b_ref);
    ck_assert_uint_lt(b_full, b_kept);
    ck_assert_uint_ge(b_kept - b_full, 8 * 32 * sizeof(float));
}
END_TEST

/* Keeps a linear output made outside the block (arg): it must be ignored. The block's own first
 * op is a linear of the same shape, first on the block's tape as the outside one is on the main
 * tape. */
static sm_tensor *keeps_outside(sm_ctx *ctx, void *arg, sm_tensor *const *in)
{
    sm_tensor **outside = arg; /* {the outside output, w} */
    sm_checkpoint_keep(ctx, outside[0]);
    return sm_gelu(ctx, sm_linear(ctx, in[0], outside[1], NULL));
}

START_TEST(test_checkpoint_keep_outside)
{
    float g[2][4 * 8];
    for (int recompute = 0; recompute < 2; recompute++) {
        sm_ctx *ctx = sm_ctx_new(NULL);
        sm_ctx_set_recompute(ctx, recompute);
        sm_tensor *w = sm_tensor_new(2, SM_SHAPE(8, 8));
        fill(w, 10, -1.0, 1.0);
        w->flags |= SM_TENSOR_REQUIRES_GRAD;
        sm_tensor *x = sm_ctx_tensor(ctx, 2, SM_SHAPE(4, 8));
        fill(x, 11, -1.0, 1.0);
        x->flags |= SM_TENSOR_REQUIRES_GRAD;
        sm_tensor *outside[2] = {sm_linear(ctx, x, w, NULL), w};
        sm_tensor *in = sm_scale(ctx, x, 2.0f);
        sm_tensor *y = sm_checkpoint(ctx, keeps_outside, outside, 1, &in);
        sm_tensor *loss = sm_mean(ctx, sm_mean(ctx, sm_add(ctx, y, outside[0]), 1), 0);
        ck_assert_int_eq(sm_backward(ctx, loss), 0);
        memcpy(g[recompute], x->grad, sizeof g[0]);
        sm_ctx_free(ctx);
        sm_tensor_free(w);
    }
    ck_assert_mem_eq(g[1], g[0], sizeof g[0]);
}
END_TEST

static sm_tensor *keeps_too_many(sm_ctx *ctx, void *arg, sm_tensor *const *in)
{
    sm_tensor *w = arg, *h = in[0];
    for (int i = 0; i < 9; i++) h = sm_checkpoint_keep(ctx, sm_linear(ctx, h, w, NULL));
    return h;
}

/* A block that is not deterministic: its kept product has another width the second time. */
static sm_tensor *changes(sm_ctx *ctx, void *arg, sm_tensor *const *in)
{
    block_arg *a = arg;
    sm_tensor *w = a->calls++ ? a->b : a->w;
    return sm_gelu(ctx, sm_checkpoint_keep(ctx, sm_linear(ctx, in[0], w, NULL)));
}

static sm_tensor *identity(sm_ctx *ctx, void *arg, sm_tensor *const *in)
{
    (void)ctx;
    (void)arg;
    return in[0];
}

static sm_tensor *fails(sm_ctx *ctx, void *arg, sm_tensor *const *in)
{
    (void)arg;
    (void)in;
    sm_ctx_fail(ctx, SM_ESHAPE, "block: bad shape");
    return NULL;
}

START_TEST(test_checkpoint_errors)
{
    sm_ctx *ctx = sm_ctx_new(NULL);
    sm_ctx_set_recompute(ctx, true);
    sm_tensor *x = sm_ctx_zeros(ctx, 1, SM_SHAPE(8));
    x->flags |= SM_TENSOR_REQUIRES_GRAD;
    /* an input returned as it is cannot be recomputed */
    ck_assert_ptr_null(sm_checkpoint(ctx, identity, NULL, 1, &x));
    ck_assert_int_eq(sm_ctx_status(ctx), SM_EINVAL);
    ck_assert_msg(strstr(sm_ctx_error(ctx)->text, "computed inside the block"), "%s",
                  sm_ctx_error(ctx)->text);
    /* the block's own error is kept */
    sm_ctx_reset(ctx);
    x = sm_ctx_zeros(ctx, 1, SM_SHAPE(8));
    x->flags |= SM_TENSOR_REQUIRES_GRAD;
    ck_assert_ptr_null(sm_checkpoint(ctx, fails, NULL, 1, &x));
    ck_assert_str_eq(sm_ctx_error(ctx)->text, "block: bad shape");
    /* sm_checkpoint_keep: at most 8 per block; outside a recorded block it does nothing */
    sm_ctx_reset(ctx);
    sm_tensor *w8 = sm_tensor_new(2, SM_SHAPE(8, 8));
    w8->flags |= SM_TENSOR_REQUIRES_GRAD;
    x = sm_ctx_zeros(ctx, 1, SM_SHAPE(8));
    ck_assert_ptr_null(sm_checkpoint(ctx, keeps_too_many, w8, 1, &x));
    ck_assert_msg(strstr(sm_ctx_error(ctx)->text, "at most 8"), "%s", sm_ctx_error(ctx)->text);
    sm_ctx_reset(ctx);
    x = sm_ctx_zeros(ctx, 1, SM_SHAPE(8));
    sm_ctx_set_recompute(ctx, false);
    ck_assert_ptr_nonnull(sm_checkpoint(ctx, keeps_too_many, w8, 1, &x));
    sm_ctx_set_recompute(ctx, true);
    sm_tensor_free(w8);
    /* a block that recomputes differently is refused in backward */
    sm_ctx_reset(ctx);
    block_arg c = {sm_tensor_new(2, SM_SHAPE(8, 8)), sm_tensor_new(2, SM_SHAPE(4, 8)), 0.0f, 0};
    c.w->flags |= SM_TENSOR_REQUIRES_GRAD;
    c.b->flags |= SM_TENSOR_REQUIRES_GRAD;
    x = sm_ctx_zeros(ctx, 2, SM_SHAPE(2, 8));
    sm_tensor *z = sm_checkpoint(ctx, changes, &c, 1, &x);
    ck_assert_ptr_nonnull(z);
    ck_assert_int_eq(sm_backward(ctx, sm_mean(ctx, sm_mean(ctx, z, 1), 0)), SM_EINVAL);
    ck_assert_msg(strstr(sm_ctx_error(ctx)->text, "differs from its forward"), "%s",
                  sm_ctx_error(ctx)->text);
    sm_tensor_free(c.w);
    sm_tensor_free(c.b);
    /* bad arguments */
    sm_ctx_reset(ctx);
    ck_assert_ptr_null(sm_checkpoint(ctx, NULL, NULL, 0, NULL));
    ck_assert_int_eq(sm_ctx_status(ctx), SM_EINVAL);
    /* recompute off or gradients off: the call itself, whatever it returns */
    sm_ctx_reset(ctx);
    x = sm_ctx_zeros(ctx, 1, SM_SHAPE(8));
    sm_ctx_set_grad(ctx, false);
    ck_assert_ptr_eq(sm_checkpoint(ctx, identity, NULL, 1, &x), x);
    sm_ctx_set_grad(ctx, true);
    sm_ctx_set_recompute(ctx, false);
    ck_assert_ptr_eq(sm_checkpoint(ctx, identity, NULL, 1, &x), x);
    /* nothing in the block requires grad: its output is returned, no tape entry */
    sm_ctx_set_recompute(ctx, true);
    block_arg a = {sm_tensor_new(2, SM_SHAPE(8, 8)), NULL, 0.0f, 0};
    sm_tensor *y = sm_checkpoint(ctx, block, &a, 1, &x);
    ck_assert_ptr_nonnull(y);
    ck_assert_uint_eq(sm_ctx_tape_size(ctx), 0);
    ck_assert(!(y->flags & SM_TENSOR_REQUIRES_GRAD));
    sm_tensor_free(a.w);
    sm_ctx_free(ctx);
}
END_TEST

static Suite *memory_suite(void)
{
    Suite *s = suite_create("memory");
    TCase *tc = tcase_create("plan");
    tcase_add_test(tc, test_plan_matches_keep);
    tcase_add_test(tc, test_gradient_memory_is_reused);
    tcase_add_test(tc, test_release_same_bits);
    tcase_add_test(tc, test_release_errors_and_modes);
    tcase_add_test(tc, test_release_gelu_remade);
    tcase_add_test(tc, test_release_unused_block_serves_backward);
    suite_add_tcase(s, tc);
    tc = tcase_create("checkpoint");
    tcase_add_test(tc, test_checkpoint_same_bits);
    tcase_add_test(tc, test_checkpoint_no_grad);
    tcase_add_test(tc, test_checkpoint_no_grad_release);
    tcase_add_test(tc, test_checkpoint_keep);
    tcase_add_test(tc, test_checkpoint_keep_outside);
    tcase_add_test(tc, test_checkpoint_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sm_test_run(memory_suite()); }
