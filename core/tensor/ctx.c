/* core/tensor/ctx.c - the per-step context: its arenas, sticky error, modes, and the helpers op
 * constructors share (input checks, shape errors, output allocation).
 *
 * Tensors, tape nodes and op data go to the activation arena (ctx->act), gradients of
 * non-parameter tensors to the gradient arena (ctx->grads); both are chunked bump allocators
 * (arena.c) that are flat from the second step on. */
#include "tensor/tensor_internal.h"

#include <omp.h>

sm_ctx *sm_ctx_new(sm_backend *backend)
{
    sm_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    ctx->threads = omp_get_max_threads();
    ctx->grad = true;
    if (!backend) {
        if (sm_backend_new(NULL, "ref", NULL, ctx->threads, &ctx->own_backend, NULL) != 0) {
            free(ctx);
            return NULL;
        }
        backend = ctx->own_backend;
    }
    ctx->backend = backend;
    return ctx;
}

void sm_ctx_free(sm_ctx *ctx)
{
    if (!ctx) return;
    sm_ctx_reset(ctx); /* detaches foreign gradients */
    sm__arena_release(&ctx->act);
    sm__arena_release(&ctx->grads);
    free(ctx->prof);
    sm_backend_free(ctx->own_backend);
    free(ctx);
}

void sm_ctx_reset(sm_ctx *ctx)
{
    for (sm__foreign *f = ctx->foreign; f; f = f->next) f->t->grad = NULL;
    ctx->foreign = NULL;
    ctx->tape = NULL;
    ctx->tape_size = 0;
    ctx->backward_done = false;
    ctx->watch.base = NULL;
    ctx->block_depth = 0;
    sm_error_clear(&ctx->err);
    sm__arena_reset(&ctx->act);
    sm__arena_reset(&ctx->grads);
    if (ctx->prof) sm__prof_restart(ctx);
}

int sm_ctx_status(const sm_ctx *ctx) { return ctx->err.code; }
const sm_error *sm_ctx_error(const sm_ctx *ctx) { return &ctx->err; }

int sm_ctx_fail(sm_ctx *ctx, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sm_error_setv(&ctx->err, code, NULL, 0, 0, NULL, fmt, ap);
    va_end(ap);
    return code;
}

void sm_ctx_set_grad(sm_ctx *ctx, bool enabled) { ctx->grad = enabled; }
bool sm_ctx_grad(const sm_ctx *ctx) { return ctx->grad; }
void sm_ctx_set_train(sm_ctx *ctx, bool training) { ctx->train = training; }
bool sm_ctx_train(const sm_ctx *ctx) { return ctx->train; }
void sm_ctx_set_rng(sm_ctx *ctx, uint64_t seed, uint64_t step)
{
    ctx->seed = seed;
    ctx->step = step;
    ctx->sample = 0;
}
void sm_ctx_set_rng_sample(sm_ctx *ctx, uint64_t first) { ctx->sample = first; }
void sm_ctx_set_backward_hook(sm_ctx *ctx, sm_backward_hook fn, void *user)
{
    ctx->hook = fn;
    ctx->hook_user = fn ? user : NULL;
}
void sm_ctx_set_threads(sm_ctx *ctx, int threads)
{
    ctx->threads = threads > 0 ? threads : omp_get_max_threads();
}
int sm_ctx_threads(const sm_ctx *ctx) { return ctx->threads; }
sm_backend *sm_ctx_backend(sm_ctx *ctx) { return ctx->backend; }

void sm_ctx_set_keep_grads(sm_ctx *ctx, bool keep) { ctx->keep_grads = keep; }
bool sm_ctx_keep_grads(const sm_ctx *ctx) { return ctx->keep_grads; }
void sm_ctx_set_recompute(sm_ctx *ctx, bool recompute) { ctx->recompute = recompute; }
bool sm_ctx_recompute(const sm_ctx *ctx) { return ctx->recompute; }

size_t sm_ctx_arena_used(const sm_ctx *ctx) { return ctx->act.used + ctx->grads.used; }
size_t sm_ctx_arena_peak(const sm_ctx *ctx) { return ctx->peak; }
size_t sm_ctx_arena_reserved(const sm_ctx *ctx)
{
    return ctx->act.reserved + ctx->grads.reserved;
}

void *sm_ctx_alloc(sm_ctx *ctx, size_t bytes)
{
    size_t need = (bytes + 63) & ~(size_t)63;
    if (need < bytes) {
        sm_ctx_fail(ctx, SM_ENOMEM, "arena: allocation of %zu bytes is too large", bytes);
        return NULL;
    }
    if (need == 0) need = 64;
    void *p = sm__arena_alloc(&ctx->act, need);
    if (!p) {
        sm_ctx_fail(ctx, SM_ENOMEM, "arena: out of memory (%zu bytes requested, %zu in use)",
                    bytes, sm_ctx_arena_used(ctx));
        return NULL;
    }
    sm__note_peak(ctx);
    return p;
}

static sm_tensor *tensor_header(sm_ctx *ctx, int ndim, const int64_t *shape)
{
    sm_tensor *t = sm_ctx_alloc(ctx, sizeof *t);
    if (!t) return NULL;
    memset(t, 0, sizeof *t);
    if (!sm__set_shape(t, ndim, shape)) {
        char buf[SM__SHAPE_STR_MAX] = "";
        size_t len = 0;
        for (int i = 0; i < ndim && i < SM_MAX_DIMS && len < sizeof buf; i++)
            len += (size_t)snprintf(buf + len, sizeof buf - len, i ? ", %lld" : "%lld",
                                    (long long)shape[i]);
        sm_ctx_fail(ctx, SM_ESHAPE, "tensor: invalid shape (%s) with %d dims", buf, ndim);
        return NULL;
    }
    t->flags = SM__TENSOR_ARENA;
    return t;
}

sm_tensor *sm_ctx_tensor(sm_ctx *ctx, int ndim, const int64_t *shape)
{
    if (ctx->err.code) return NULL;
    sm_tensor *t = tensor_header(ctx, ndim, shape);
    if (!t) return NULL;
    /* the block of a released tensor of the same size (sm_tensor_release), else a new one */
    size_t bytes = (size_t)sm_tensor_numel(t) * sizeof(float);
    t->data = ctx->act.free ? sm__arena_get(&ctx->act, sm__block_bytes(sm_tensor_numel(t))) : NULL;
    if (t->data)
        sm__note_peak(ctx);
    else
        t->data = sm_ctx_alloc(ctx, bytes);
    t->flags |= SM__TENSOR_OWN_BLOCK;
    return t->data ? t : NULL;
}

sm_tensor *sm_ctx_zeros(sm_ctx *ctx, int ndim, const int64_t *shape)
{
    sm_tensor *t = sm_ctx_tensor(ctx, ndim, shape);
    if (t) memset(t->data, 0, (size_t)sm_tensor_numel(t) * sizeof(float));
    return t;
}

sm_tensor *sm_ctx_wrap(sm_ctx *ctx, float *data, int ndim, const int64_t *shape)
{
    if (ctx->err.code) return NULL;
    sm_tensor *t = tensor_header(ctx, ndim, shape);
    if (t) t->data = data;
    return t;
}

/* ---- helpers for op constructors -------------------------------------------------------- */

bool sm__ok(sm_ctx *ctx, int n, const sm_tensor *const *in)
{
    if (!ctx || ctx->err.code) return false;
    for (int i = 0; i < n; i++) {
        if (!in[i]) return false;
        if ((in[i]->flags | (in[i]->base ? in[i]->base->flags : 0)) & SM__TENSOR_RELEASED) {
            sm_ctx_fail(ctx, SM_EINVAL,
                        "tensor used after sm_tensor_release (its memory may hold another "
                        "tensor now)");
            return false;
        }
    }
    return true;
}

void *sm__shape_error(sm_ctx *ctx, const char *op, const char *msg, ...)
{
    char text[sizeof ctx->err.text];
    size_t len = (size_t)snprintf(text, sizeof text, "%s: %s", op, msg);
    va_list ap;
    va_start(ap, msg);
    const char *sep = " (got ";
    const char *name;
    while ((name = va_arg(ap, const char *)) != NULL) {
        const sm_tensor *t = va_arg(ap, const sm_tensor *);
        char shape[SM__SHAPE_STR_MAX];
        sm_tensor_shape_str(t, shape, sizeof shape);
        if (len < sizeof text)
            len += (size_t)snprintf(text + len, sizeof text - len, "%s%s %s", sep, name, shape);
        sep = ", ";
    }
    va_end(ap);
    if (sep[0] == ',' && len < sizeof text) snprintf(text + len, sizeof text - len, ")");
    sm_ctx_fail(ctx, SM_ESHAPE, "%s", text);
    return NULL;
}

sm_tensor *sm__empty(sm_ctx *ctx, int ndim, const int64_t *shape)
{
    return sm_ctx_tensor(ctx, ndim, shape);
}

int sm__threads_for(const sm_ctx *ctx, int64_t work)
{
    if (work < 32768 || ctx->threads <= 1) return 1;
    int64_t t = work / 16384;
    return t < ctx->threads ? (int)t : ctx->threads;
}
