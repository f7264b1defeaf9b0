/* core/tensor/tensor.c - tensor headers: element counts, layout queries, heap tensors, gradients. */
#include "tensor/tensor_internal.h"

int64_t sm_tensor_numel(const sm_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

bool sm_tensor_is_contiguous(const sm_tensor *t)
{
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s) return false;
        s *= t->shape[i];
    }
    return true;
}

bool sm_tensor_same_shape(const sm_tensor *a, const sm_tensor *b)
{
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

size_t sm_tensor_shape_str(const sm_tensor *t, char *buf, size_t n)
{
    size_t len = 0;
    char tmp[32];
#define SM__PUT(s)                                                                             \
    do {                                                                                       \
        size_t l_ = strlen(s);                                                                 \
        if (len < n) sm__strlcpy(buf + len, s, n - len);                                       \
        len += l_;                                                                             \
    } while (0)
    if (n) buf[0] = '\0';
    SM__PUT("(");
    for (int i = 0; t && i < t->ndim; i++) {
        snprintf(tmp, sizeof tmp, i ? ", %lld" : "%lld", (long long)t->shape[i]);
        SM__PUT(tmp);
    }
    SM__PUT(")");
#undef SM__PUT
    return len;
}

/* Fills shape and contiguous strides; false on a bad shape or element-count overflow. */
bool sm__set_shape(sm_tensor *t, int ndim, const int64_t *shape)
{
    if (ndim < 0 || ndim > SM_MAX_DIMS) return false;
    t->ndim = ndim;
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        if (shape[i] < 0) return false;
        if (shape[i] > 0 && s > INT64_MAX / 4 / shape[i]) return false;
        t->shape[i] = shape[i];
        t->stride[i] = s;
        s *= shape[i];
    }
    for (int i = ndim; i < SM_MAX_DIMS; i++) t->shape[i] = 1, t->stride[i] = 0;
    return true;
}

sm_tensor *sm_tensor_new(int ndim, const int64_t *shape)
{
    sm_tensor *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    if (!sm__set_shape(t, ndim, shape)) {
        free(t);
        return NULL;
    }
    size_t bytes = (size_t)sm_tensor_numel(t) * sizeof(float);
    bytes = (bytes + 63) & ~(size_t)63;
    t->data = aligned_alloc(64, bytes ? bytes : 64);
    if (!t->data) {
        free(t);
        return NULL;
    }
    memset(t->data, 0, bytes);
    return t;
}

void sm_tensor_free(sm_tensor *t)
{
    if (!t) return;
    free(t->data);
    free(t);
}

/* Allocates the gradient of a storage-owning tensor (zeroed or not). */
static float *grad_alloc(sm_ctx *ctx, sm_tensor *t, bool zero)
{
    /* a storage-owning tensor: its data are contiguous (params already have their block) */
    size_t n = (size_t)sm_tensor_numel(t);
    float *g = sm_ctx_alloc(ctx, n * sizeof(float));
    if (!g) return NULL;
    if (zero) memset(g, 0, n * sizeof(float));
    if (!(t->flags & SM__TENSOR_ARENA)) {
        /* a heap tensor: forget this arena gradient at the next reset */
        sm__foreign *fl = sm_ctx_alloc(ctx, sizeof *fl);
        if (!fl) return NULL;
        fl->t = t;
        fl->next = ctx->foreign;
        ctx->foreign = fl;
    }
    t->grad = g;
    return g;
}

float *sm_tensor_grad(sm_ctx *ctx, sm_tensor *t)
{
    if (!t || !(t->flags & SM_TENSOR_REQUIRES_GRAD)) return NULL;
    if (t->grad) return t->grad;
    if (t->base) {
        float *g = sm_tensor_grad(ctx, t->base);
        if (!g) return NULL;
        t->grad = g + t->offset;
        return t->grad;
    }
    return grad_alloc(ctx, t, true);
}

float *sm__grad_w(sm_ctx *ctx, sm_tensor *t, bool *fresh)
{
    *fresh = false;
    if (!t || !(t->flags & SM_TENSOR_REQUIRES_GRAD)) return NULL;
    if (t->grad || t->base) return sm_tensor_grad(ctx, t);
    *fresh = true;
    return grad_alloc(ctx, t, false);
}
