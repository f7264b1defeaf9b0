/* tests/check_tensor.c - tensor headers, views, the context (arena, sticky errors, tape,
 * backward plumbing) and the parameter store. */
#include "testutil.h"

#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <string.h>
#include <sys/resource.h>

START_TEST(test_tensor_basics)
{
    sm_tensor *t = sm_tensor_new(3, SM_SHAPE(2, 3, 4));
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(sm_tensor_numel(t), 24);
    ck_assert(sm_tensor_is_contiguous(t));
    ck_assert_int_eq(t->stride[0], 12);
    ck_assert_int_eq(t->stride[1], 4);
    ck_assert_int_eq(t->stride[2], 1);
    for (int i = 0; i < 24; i++) ck_assert_float_eq(t->data[i], 0.0f);
    ck_assert_uint_eq((uintptr_t)t->data % 64, 0);
    char buf[64];
    ck_assert_uint_eq(sm_tensor_shape_str(t, buf, sizeof buf), 9);
    ck_assert_str_eq(buf, "(2, 3, 4)");
    ck_assert_uint_eq(sm_tensor_shape_str(t, buf, 5), 9); /* truncated, snprintf semantics */
    ck_assert_str_eq(buf, "(2, ");
    sm_tensor *u = sm_tensor_new(0, NULL); /* scalar */
    ck_assert_int_eq(sm_tensor_numel(u), 1);
    ck_assert_str_eq((sm_tensor_shape_str(u, buf, sizeof buf), buf), "()");
    ck_assert(!sm_tensor_same_shape(t, u));
    sm_tensor_free(u);
    sm_tensor_free(t);
    sm_tensor_free(NULL);
    ck_assert_ptr_null(sm_tensor_new(7, SM_SHAPE(1, 1, 1, 1, 1, 1, 1)));
    ck_assert_ptr_null(sm_tensor_new(2, SM_SHAPE(3, -1)));
    ck_assert_ptr_null(sm_tensor_new(2, SM_SHAPE(INT64_C(1) << 40, INT64_C(1) << 40)));
}
END_TEST

START_TEST(test_views_share_data_and_grad)
{
    sm_ctx *ctx = sm_ctx_new(NULL);
    sm_tensor *x = sm_ctx_tensor(ctx, 2, SM_SHAPE(3, 4));
    for (int i = 0; i < 12; i++) x->data[i] = (float)i;
    x->flags |= SM_TENSOR_REQUIRES_GRAD;
    sm_tensor *v = sm_reshape(ctx, x, 3, SM_SHAPE(2, -1, 3));
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->shape[1], 2);
    ck_assert_ptr_eq(v->data, x->data); /* no copy */
    ck_assert_ptr_eq(v->base, x);
    ck_assert_uint_eq(sm_ctx_tape_size(ctx), 0); /* views need no tape entry */
    /* transposed view, then a copy: values permuted */
    sm_tensor *t = sm_view(ctx, x, 2, SM_SHAPE(4, 3), SM_SHAPE(1, 4), 0);
    ck_assert(!sm_tensor_is_contiguous(t));
    sm_tensor *c = sm_contiguous(ctx, t);
    ck_assert_float_eq(c->data[1], 4.0f); /* c[0][1] = x[1][0] */
    ck_assert_float_eq(c->data[3], 1.0f); /* c[1][0] = x[0][1] */
    ck_assert_uint_eq(sm_ctx_tape_size(ctx), 1);
    /* gradients through both views land in x's buffer, accumulated */
    sm_tensor *y = sm_scale(ctx, v, 2.0f);
    sm_tensor *z = sm_add(ctx, sm_reshape(ctx, y, 2, SM_SHAPE(4, 3)), c);
    float ones[12];
    for (int i = 0; i < 12; i++) ones[i] = 1.0f;
    ck_assert_int_eq(sm_backward_from(ctx, z, ones), 0);
    float *g = sm_tensor_grad(ctx, x);
    for (int i = 0; i < 12; i++) ck_assert_float_eq(g[i], 3.0f); /* 2 + 1 */
    ck_assert_ptr_eq(sm_tensor_grad(ctx, v), g);
    /* a view at an offset: its gradient is the base's at that offset */
    sm_tensor *row = sm_view(ctx, x, 1, SM_SHAPE(4), SM_SHAPE(1), 8);
    ck_assert_ptr_eq(row->data, x->data + 8);
    ck_assert_ptr_eq(sm_tensor_grad(ctx, row), g + 8);
    /* contiguous of a contiguous tensor is itself */
    ck_assert_ptr_eq(sm_contiguous(ctx, x), x);
    /* the tape is consumed */
    ck_assert_int_eq(sm_backward_from(ctx, z, ones), SM_EINVAL);
    ck_assert_msg(strstr(sm_ctx_error(ctx)->text, "already ran"), "%s", sm_ctx_error(ctx)->text);
    sm_ctx_free(ctx);
}
END_TEST

START_TEST(test_heap_tensor_grad_detached_on_reset)
{
    sm_ctx *ctx = sm_ctx_new(NULL);
    sm_tensor *x = sm_tensor_new(1, SM_SHAPE(5));
    x->flags |= SM_TENSOR_REQUIRES_GRAD;
    sm_tensor *y = sm_scale(ctx, x, 3.0f);
    float one[5] = {1, 1, 1, 1, 1};
    ck_assert_int_eq(sm_backward_from(ctx, y, one), 0);
    ck_assert_ptr_nonnull(x->grad);
    ck_assert_float_eq(x->grad[2], 3.0f);
    sm_ctx_reset(ctx); /* the arena gradient is gone: the pointer must not dangle */
    ck_assert_ptr_null(x->grad);
    /* dout NULL: the caller seeded out's gradient itself */
    y = sm_scale(ctx, x, -2.0f);
    float *gy = sm_tensor_grad(ctx, y);
    for (int i = 0; i < 5; i++) gy[i] = (float)i;
    ck_assert_int_eq(sm_backward_from(ctx, y, NULL), 0);
    ck_assert_float_eq(x->grad[0], 0.0f);
    ck_assert_float_eq(x->grad[4], -8.0f);
    sm_ctx_free(ctx);
    sm_tensor_free(x);
}
END_TEST

START_TEST(test_grad_mode_and_backward_errors)
{
    sm_ctx *ctx = sm_ctx_new(NULL);
    sm_tensor *x = sm_ctx_zeros(ctx, 1, SM_SHAPE(4));
    x->flags |= SM_TENSOR_REQUIRES_GRAD;
    sm_ctx_set_grad(ctx, false);
    ck_assert(!sm_ctx_grad(ctx));
    sm_tensor *y = sm_gelu(ctx, x);
    ck_assert_uint_eq(sm_ctx_tape_size(ctx), 0);
    ck_assert(!(y->flags & SM_TENSOR_REQUIRES_GRAD));
    ck_assert_int_eq(sm_backward(ctx, sm_mean(ctx, y, 0)), SM_EINVAL); /* nothing to do */
    ck_assert_msg(strstr(sm_ctx_error(ctx)->text, "does not require grad"), "%s",
                  sm_ctx_error(ctx)->text);
    sm_ctx_reset(ctx);
    sm_ctx_set_grad(ctx, true);
    x = sm_ctx_zeros(ctx, 1, SM_SHAPE(4));
    x->flags |= SM_TENSOR_REQUIRES_GRAD;
    y = sm_gelu(ctx, x);
    ck_assert_uint_eq(sm_ctx_tape_size(ctx), 1);
    ck_assert_int_eq(sm_backward(ctx, y), SM_ESHAPE); /* 4 elements, not a scalar */
    ck_assert_msg(strstr(sm_ctx_error(ctx)->text, "one element (got (4))"), "%s",
                  sm_ctx_error(ctx)->text);
    sm_ctx_reset(ctx);
    ck_assert_uint_eq(sm_ctx_tape_size(ctx), 0);
    /* sm_ctx_fail: first error wins */
    ck_assert_int_eq(sm_ctx_fail(ctx, SM_EINVAL, "first %d", 1), SM_EINVAL);
    sm_ctx_fail(ctx, SM_ESHAPE, "second");
    ck_assert_int_eq(sm_ctx_status(ctx), SM_EINVAL);
    ck_assert_str_eq(sm_ctx_error(ctx)->text, "first 1");
    ck_assert_ptr_null(sm_ctx_tensor(ctx, 1, SM_SHAPE(3))); /* sticky */
    sm_ctx_reset(ctx);
    ck_assert_ptr_null(sm_ctx_tensor(ctx, 2, SM_SHAPE(2, -3)));
    ck_assert_int_eq(sm_ctx_status(ctx), SM_ESHAPE);
    ck_assert_msg(strstr(sm_ctx_error(ctx)->text, "invalid shape (2, -3)"), "%s",
                  sm_ctx_error(ctx)->text);
    sm_ctx_free(ctx);
}
END_TEST

/* One small training-like step: the same allocations every time. */
static void small_step(sm_ctx *ctx, sm_params *p, int64_t extra)
{
    sm_ctx_reset(ctx);
    sm_tensor *x = sm_ctx_tensor(ctx, 3, SM_SHAPE(2, 64, 32));
    for (int64_t i = 0; i < 2 * 64 * 32; i++) x->data[i] = (float)((i % 17) - 8) / 8.0f;
    sm_tensor *h = sm_layernorm(ctx, x, NULL, NULL, 1e-6f);
    h = sm_gelu(ctx, sm_linear(ctx, h, sm_params_find(p, "w"), sm_params_find(p, "b")));
    if (extra) sm_ctx_zeros(ctx, 1, SM_SHAPE(extra));
    sm_tensor *loss = sm_mean(ctx, sm_mean(ctx, sm_mean(ctx, h, 2), 1), 0);
    ck_assert_int_eq(sm_backward(ctx, loss), 0);
}

/* Runs f with the address space limited (a finite but huge RLIMIT_AS, harmless under ASan):
 * the arenas then take their chunks from malloc instead of reserving an address range. */
static void with_as_limit(void (*f)(bool), bool limited)
{
    struct rlimit old;
    ck_assert_int_eq(getrlimit(RLIMIT_AS, &old), 0);
    if (limited) {
        struct rlimit lim = old;
        lim.rlim_cur = (rlim_t)1 << 60;
        if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < lim.rlim_cur)
            lim.rlim_cur = lim.rlim_max;
        ck_assert_int_eq(setrlimit(RLIMIT_AS, &lim), 0);
    }
    f(limited);
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &old), 0);
}

/* Whether the arenas can reserve an address range here (Linux without strict overcommit and
 * without an address-space limit). */
static bool can_reserve(void)
{
#ifdef __linux__
    struct rlimit as;
    if (getrlimit(RLIMIT_AS, &as) != 0 || as.rlim_cur != RLIM_INFINITY) return false;
    FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
    int mode = f ? fgetc(f) : '0';
    if (f) fclose(f);
    return mode != '2';
#else
    return false;
#endif
}

static void arena_flat(bool limited)
{
    sm_params *p = sm_params_new();
    sm_params_add(p, "w", 2, SM_SHAPE(48, 32), NULL);
    sm_params_add(p, "b", 1, SM_SHAPE(48), NULL);
    ck_assert_int_eq(sm_params_finalize(p, NULL), 0);
    sm_init_const(sm_params_find(p, "w"), 0.01f);
    sm_ctx *ctx = sm_ctx_new(NULL);
    /* step 1 needs 2.5 MiB more than the 1 MiB a first malloc chunk has: with malloc chunks
     * it spills over several */
    small_step(ctx, p, 640 * 1024);
    size_t peak1 = sm_ctx_arena_peak(ctx);
    ck_assert_uint_gt(peak1, 2u << 20);
    if (limited) /* chunks of 1, 1, 1 and 2.5 MiB at least */
        ck_assert_uint_gt(sm_ctx_arena_reserved(ctx), peak1 + (1u << 20));
    size_t reserved = 0, peak = 0, used = 0;
    for (int step = 2; step <= 101; step++) {
        small_step(ctx, p, 640 * 1024);
        if (step == 2) {
            reserved = sm_ctx_arena_reserved(ctx);
            peak = sm_ctx_arena_peak(ctx);
            used = sm_ctx_arena_used(ctx);
            ck_assert_uint_eq(peak, peak1);
            ck_assert_uint_ge(reserved, peak);
            /* the activation arena: one chunk of exactly its need (or the part of its range it
             * touched); the gradient arena: its first chunk (1 MiB) or what it touched */
            ck_assert_uint_le(reserved, peak1 + (1u << 20));
        }
        ck_assert_uint_eq(sm_ctx_arena_reserved(ctx), reserved);
        ck_assert_uint_eq(sm_ctx_arena_peak(ctx), peak);
        ck_assert_uint_eq(sm_ctx_arena_used(ctx), used);
    }
    /* a smaller step fits in the same memory */
    small_step(ctx, p, 0);
    ck_assert_uint_eq(sm_ctx_arena_reserved(ctx), reserved);
    ck_assert_uint_lt(sm_ctx_arena_used(ctx), used);
    sm_ctx_free(ctx);
    sm_params_free(p);
}

START_TEST(test_arena_flat) { with_as_limit(arena_flat, false); }
END_TEST

START_TEST(test_arena_flat_malloc_chunks) { with_as_limit(arena_flat, true); }
END_TEST

/* 900 KiB then 200 KiB: malloc chunks hold 2 MiB for the 1.1 MiB (the second request does not
 * fit the first 1 MiB chunk); a reserved range holds what was touched, 1.1 MiB, and stays
 * usable however large the step grows. */
static void arena_touched(bool limited)
{
    sm_ctx *ctx = sm_ctx_new(NULL);
    for (int step = 0; step < 2; step++) {
        sm_ctx_reset(ctx);
        float *a = sm_ctx_alloc(ctx, 900 << 10), *b = sm_ctx_alloc(ctx, 200 << 10);
        ck_assert(a && b);
        memset(a, 1, 900 << 10);
        memset(b, 2, 200 << 10);
        ck_assert_uint_eq(sm_ctx_arena_peak(ctx), 1100u << 10);
        if (limited)
            ck_assert_uint_eq(sm_ctx_arena_reserved(ctx), step == 0 ? 2u << 20 : 1100u << 10);
        else if (can_reserve())
            ck_assert_uint_eq(sm_ctx_arena_reserved(ctx), 1100u << 10);
    }
    /* 64 MiB more in one request: a new chunk, or the same range */
    ck_assert_ptr_nonnull(sm_ctx_alloc(ctx, 64u << 20));
    if (!limited && can_reserve())
        ck_assert_uint_eq(sm_ctx_arena_reserved(ctx), (1100u << 10) + (64u << 20));
    sm_ctx_free(ctx);
}

START_TEST(test_arena_reserved_is_touched)
{
    with_as_limit(arena_touched, false);
    with_as_limit(arena_touched, true);
}
END_TEST

START_TEST(test_arena_alignment)
{
    sm_ctx *ctx = sm_ctx_new(NULL);
    for (int i = 1; i < 50; i++) {
        void *m = sm_ctx_alloc(ctx, (size_t)i * 3);
        ck_assert_uint_eq((uintptr_t)m % 64, 0);
    }
    ck_assert_uint_eq(sm_ctx_arena_used(ctx) % 64, 0);
    float data[6] = {1, 2, 3, 4, 5, 6};
    sm_tensor *w = sm_ctx_wrap(ctx, data, 2, SM_SHAPE(2, 3));
    ck_assert_ptr_eq(w->data, data);
    ck_assert(!(w->flags & SM_TENSOR_REQUIRES_GRAD));
    ck_assert(sm_ctx_threads(ctx) >= 1);
    sm_ctx_set_threads(ctx, 3);
    ck_assert_int_eq(sm_ctx_threads(ctx), 3);
    ck_assert_str_eq(sm_backend_name(sm_ctx_backend(ctx)), "ref");
    sm_ctx_free(ctx);
}
END_TEST

START_TEST(test_params)
{
    sm_error err = {0};
    sm_params *p = sm_params_new();
    sm_tensor *w = sm_params_add(p, "encoder.blocks.0.attn.qkv.weight", 2, SM_SHAPE(6, 4), &err);
    sm_tensor *b = sm_params_add(p, "encoder.blocks.0.attn.qkv.bias", 1, SM_SHAPE(6), &err);
    sm_tensor *s = sm_params_add(p, "encoder.mask_token", 3, SM_SHAPE(1, 1, 4), &err);
    ck_assert(w && b && s);
    ck_assert_ptr_null(w->data);
    ck_assert_ptr_null(sm_params_add(p, "encoder.mask_token", 1, SM_SHAPE(2), &err));
    ck_assert_int_eq(err.code, SM_EEXIST);
    ck_assert_msg(strstr(err.text, "'encoder.mask_token' declared twice"), "%s", err.text);
    sm_error_clear(&err);
    ck_assert_ptr_null(sm_params_add(p, "bad", 2, SM_SHAPE(2, -2), &err));
    ck_assert_int_eq(err.code, SM_EINVAL);
    sm_error_clear(&err);
    ck_assert_ptr_null(sm_params_state(p, 0, &err)); /* before finalize */
    ck_assert_int_eq(err.code, SM_EINVAL);
    sm_error_clear(&err);
    ck_assert_int_eq(sm_params_finalize(p, &err), 0);
    ck_assert_ptr_null(sm_params_add(p, "late", 1, SM_SHAPE(2), &err));
    ck_assert_int_eq(err.code, SM_EINVAL);
    ck_assert_uint_eq(sm_params_count(p), 3);
    ck_assert_int_eq(sm_params_numel(p), 24 + 6 + 4);
    /* one block each, packed in declaration order */
    ck_assert_ptr_eq(w->data, sm_params_data(p));
    ck_assert_ptr_eq(b->data, sm_params_data(p) + 24);
    ck_assert_ptr_eq(s->data, sm_params_data(p) + 30);
    ck_assert_ptr_eq(s->grad, sm_params_grads(p) + 30);
    ck_assert_ptr_eq(sm_params_at(p, 1), b);
    ck_assert_ptr_eq(sm_params_find(p, "encoder.blocks.0.attn.qkv.bias"), b);
    ck_assert_ptr_null(sm_params_find(p, "nope"));
    ck_assert_str_eq(b->name, "encoder.blocks.0.attn.qkv.bias");
    ck_assert(b->flags & SM_TENSOR_PARAM && b->flags & SM_TENSOR_REQUIRES_GRAD);
    for (int i = 0; i < 34; i++) ck_assert_float_eq(sm_params_grads(p)[i], 0.0f);
    float *m = sm_params_state(p, 0, &err), *v = sm_params_state(p, 1, &err);
    ck_assert(m && v && m != v);
    ck_assert_ptr_eq(sm_params_state(p, 0, &err), m); /* stable */
    for (int i = 0; i < 34; i++) ck_assert_float_eq(v[i], 0.0f);
    /* gradients of ops accumulate into the grad block, zero_grad clears it */
    sm_ctx *ctx = sm_ctx_new(NULL);
    sm_init_const(w, 1.0f);
    sm_tensor *x = sm_ctx_tensor(ctx, 2, SM_SHAPE(1, 4));
    for (int i = 0; i < 4; i++) x->data[i] = (float)i;
    sm_tensor *y = sm_linear(ctx, x, w, b);
    float ones[6] = {1, 1, 1, 1, 1, 1};
    ck_assert_int_eq(sm_backward_from(ctx, y, ones), 0);
    ck_assert_float_eq(w->grad[4 + 3], 3.0f); /* dW[1][3] = x[3] */
    ck_assert_float_eq(b->grad[5], 1.0f);
    ck_assert_ptr_eq(w->grad, sm_params_grads(p)); /* never reallocated */
    sm_params_zero_grad(p);
    ck_assert_float_eq(w->grad[7], 0.0f);
    sm_ctx_free(ctx);
    sm_params_free(p);
    sm_params_free(NULL);
}
END_TEST

START_TEST(test_initialisers)
{
    sm_tensor *t = sm_tensor_new(1, SM_SHAPE(20000));
    sm_rng r;
    sm_rng_init(&r, 3, 0, 0, 0);
    sm_init_trunc_normal(t, 0.0, 0.02, -2.0, 2.0, &r); /* timm's default bounds */
    double m = 0, v = 0;
    for (int i = 0; i < 20000; i++) m += t->data[i];
    m /= 20000;
    for (int i = 0; i < 20000; i++) v += (t->data[i] - m) * (t->data[i] - m);
    v /= 20000;
    ck_assert_msg(fabs(m) < 0.001, "mean %g", m);
    ck_assert_msg(fabs(sqrt(v) - 0.02) < 0.001, "std %g", sqrt(v));
    /* tight bounds: everything inside, and the truncated distribution's std (for [-1σ, 1σ]
     * it is 0.5383·σ) */
    sm_rng_init(&r, 3, 0, 0, 0);
    sm_init_trunc_normal(t, 1.0, 2.0, -1.0, 3.0, &r);
    double lo = 1e9, hi = -1e9;
    m = v = 0;
    for (int i = 0; i < 20000; i++) {
        lo = fmin(lo, t->data[i]);
        hi = fmax(hi, t->data[i]);
        m += t->data[i];
    }
    m /= 20000;
    for (int i = 0; i < 20000; i++) v += (t->data[i] - m) * (t->data[i] - m);
    v /= 20000;
    ck_assert(lo >= -1.0 && hi <= 3.0);
    ck_assert_msg(fabs(m - 1.0) < 0.03, "mean %g", m);
    ck_assert_msg(fabs(sqrt(v) - 0.5383 * 2.0) < 0.03, "std %g", sqrt(v));
    /* deterministic given the rng key */
    sm_tensor *u = sm_tensor_new(1, SM_SHAPE(20000));
    sm_rng_init(&r, 3, 0, 0, 0);
    sm_init_trunc_normal(u, 1.0, 2.0, -1.0, 3.0, &r);
    ck_assert_mem_eq(t->data, u->data, 20000 * sizeof(float));
    /* and of the number of threads (the chunks have their own streams) */
    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    sm_rng_init(&r, 3, 0, 0, 0);
    sm_init_trunc_normal(u, 1.0, 2.0, -1.0, 3.0, &r);
    omp_set_num_threads(3);
    ck_assert_mem_eq(t->data, u->data, 20000 * sizeof(float));
    omp_set_num_threads(nt);
    sm_init_uniform(u, -0.5, 0.25, &r);
    for (int i = 0; i < 20000; i++) ck_assert(u->data[i] >= -0.5f && u->data[i] < 0.25f);
    sm_init_const(u, 7.0f);
    ck_assert_float_eq(u->data[19999], 7.0f);
    sm_tensor_free(t);
    sm_tensor_free(u);
}
END_TEST

/* The overlap hook of data parallelism: the first tape entry reading each parameter (views
 * included), and a hook after every entry's backward, newest first, at which a parameter's
 * gradient is final once its first reader has run. */
typedef struct hook_log {
    size_t calls, positions[8];
    float w1_grad_at_1[4];
    sm_tensor *w1;
} hook_log;

static void record_hook(void *user, size_t position)
{
    hook_log *h = user;
    if (h->calls < 8) h->positions[h->calls] = position;
    h->calls++;
    if (position == 1) memcpy(h->w1_grad_at_1, h->w1->grad, sizeof h->w1_grad_at_1);
}

/* A block for the recomputation case: y = x * w (w: the parameter in the argument). */
static sm_tensor *mul_block(sm_ctx *ctx, void *arg, sm_tensor *const *in)
{
    return sm_mul(ctx, in[0], arg);
}

START_TEST(test_backward_hook_and_first_reads)
{
    sm_params *p = sm_params_new();
    sm_tensor *w0 = sm_params_add(p, "w0", 1, SM_SHAPE(4), NULL);
    sm_tensor *w1 = sm_params_add(p, "w1", 1, SM_SHAPE(4), NULL);
    sm_tensor *w2 = sm_params_add(p, "w2", 1, SM_SHAPE(4), NULL); /* unused */
    ck_assert_int_eq(sm_params_finalize(p, NULL), 0);
    for (int i = 0; i < 4; i++) w0->data[i] = 1.0f + (float)i, w1->data[i] = 0.5f;
    const float *base = sm_params_data(p);
    int64_t ends[3];
    for (int i = 0; i < 3; i++) {
        sm_tensor *w = sm_params_at(p, (size_t)i);
        ends[i] = (w->data - base) + sm_tensor_numel(w);
    }
    for (int recompute = 0; recompute < 2; recompute++) {
        sm_params_zero_grad(p);
        sm_ctx *ctx = sm_ctx_new(NULL);
        sm_ctx_set_recompute(ctx, recompute);
        size_t first[3];
        sm_ctx_watch_reads(ctx, base, 3, ends, first);
        sm_tensor *t0 = sm_scale(ctx, w0, 2.0f); /* entry 0 reads w0 */
        sm_tensor *t1 = sm_add(ctx, t0, w1);     /* entry 1 reads w1 */
        sm_tensor *v0 = sm_view(ctx, w0, 1, SM_SHAPE(4), SM_SHAPE(1), 0);
        ck_assert_ptr_eq(v0->base, w0);
        /* entry 2 reads w0 through a view; with recomputation it is the block's entry that
         * reads w1 inside (the block's own tape is not the context's) */
        sm_tensor *t2 = sm_mul(ctx, t1, v0);
        sm_tensor *t3 = sm_checkpoint(ctx, mul_block, w1, 1, &t2); /* entry 3 */
        ck_assert_uint_eq(sm_ctx_tape_size(ctx), 4);
        ck_assert_uint_eq(first[0], 0);
        ck_assert_uint_eq(first[1], 1);
        ck_assert_uint_eq(first[2], SIZE_MAX);
        /* the last reader of w1 is entry 3: a read from the block is noted at the block */
        size_t late[3];
        sm_ctx_watch_reads(ctx, base, 3, ends, late);
        sm_tensor *t4 = sm_checkpoint(ctx, mul_block, w1, 1, &t3); /* entry 4 */
        ck_assert_uint_eq(late[1], 4);
        ck_assert_uint_eq(late[0], SIZE_MAX);
        hook_log h = {.w1 = w1};
        sm_ctx_set_backward_hook(ctx, record_hook, &h);
        float ones[4] = {1, 1, 1, 1};
        ck_assert_int_eq(sm_backward_from(ctx, t4, ones), 0);
        ck_assert_uint_eq(h.calls, 5);
        for (size_t k = 0; k < 5; k++) ck_assert_uint_eq(h.positions[k], 4 - k);
        /* y = s w0 w1^2 with s = 2 w0 + w1; w1's gradient was complete when backward passed
         * its first reader: dy/dw1 = w0 w1^2 + 2 s w0 w1, dy/dw0 = 2 w0 w1^2 + s w1^2 */
        for (int i = 0; i < 4; i++) {
            float a = w0->data[i], b = w1->data[i], s = 2 * a + b;
            ck_assert_float_eq(h.w1_grad_at_1[i], w1->grad[i]);
            ck_assert_float_eq_tol(w1->grad[i], a * b * b + 2 * s * a * b, 1e-5f);
            ck_assert_float_eq_tol(w0->grad[i], 2 * a * b * b + s * b * b, 1e-5f);
            ck_assert_float_eq(w2->grad[i], 0.0f);
        }
        sm_ctx_free(ctx);
    }
    sm_params_free(p);
}
END_TEST

/* sm_fpenv_flush_subnormals: subnormal results written as 0 (FTZ), subnormal inputs read as 0
 * (DAZ), in the calling thread and in a thread it creates afterwards; off restores IEEE. */
static volatile float fp_tiny = 1e-30f, fp_small = 1e-10f; /* product 1e-40: subnormal */

static float fp_subnormal(void)
{
    uint32_t bits = 1; /* the smallest positive subnormal */
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static void *fp_thread(void *out)
{
    float *r = out;
    r[0] = fp_tiny * fp_small;
    r[1] = sm_fpenv_flushing() ? 1.0f : 0.0f;
    return NULL;
}

START_TEST(test_fpenv_flush_subnormals)
{
    ck_assert_int_eq(sm_fpenv_flush_subnormals(false), 0);
    ck_assert(!sm_fpenv_flushing());
    volatile float sub = fp_subnormal();
    ck_assert_float_ne(fp_tiny * fp_small, 0.0f);
    ck_assert_float_ne(sub * 2.0f, 0.0f);
    int rc = sm_fpenv_flush_subnormals(true);
#if defined(__x86_64__) || defined(__aarch64__)
    ck_assert_int_eq(rc, 0);
#endif
    if (rc == 0) {
        ck_assert(sm_fpenv_flushing());
        ck_assert_float_eq(fp_tiny * fp_small, 0.0f);
#if defined(__x86_64__)
        ck_assert_float_eq(sub * 2.0f, 0.0f); /* DAZ (AArch64's FZ also reads them as 0) */
#endif
        float r[2] = {-1.0f, -1.0f};
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, fp_thread, r), 0);
        ck_assert_int_eq(pthread_join(th, NULL), 0);
        ck_assert_float_eq(r[0], 0.0f);
        ck_assert_float_eq(r[1], 1.0f);
        ck_assert_float_eq_tol(fp_tiny * 1e10f, 1e-20f, 1e-26f); /* normal numbers as before */
    }
    ck_assert_int_eq(sm_fpenv_flush_subnormals(false), 0);
    ck_assert(!sm_fpenv_flushing());
    ck_assert_float_ne(fp_tiny * fp_small, 0.0f);
}
END_TEST

static Suite *tensor_suite(void)
{
    Suite *s = suite_create("tensor");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_tensor_basics);
    tcase_add_test(tc, test_views_share_data_and_grad);
    tcase_add_test(tc, test_backward_hook_and_first_reads);
    tcase_add_test(tc, test_heap_tensor_grad_detached_on_reset);
    tcase_add_test(tc, test_params);
    tcase_add_test(tc, test_initialisers);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_test(tc, test_grad_mode_and_backward_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("limits");
    tcase_add_test(tc, test_arena_flat);
    tcase_add_test(tc, test_arena_flat_malloc_chunks);
    tcase_add_test(tc, test_arena_reserved_is_touched);
    tcase_add_test(tc, test_arena_alignment);
    tcase_add_test(tc, test_fpenv_flush_subnormals);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sm_test_run(tensor_suite()); }
