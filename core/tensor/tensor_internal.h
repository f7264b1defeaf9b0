/* core/tensor/tensor_internal.h - what the op files share: the context internals, the tape node, the op
 * table, GEMM and error helpers, and small vectorisable math (exp, erf). Private to libsimmim. */
#ifndef SIMMIM_OPS_INTERNAL_H
#define SIMMIM_OPS_INTERNAL_H

#include "base/internal.h"
#include "simmim/backend.h"
#include "simmim/ops.h"
#include "simmim/params.h"
#include "simmim/tensor.h"

#include <math.h>

/* ---- kernels: ISA clones and threading ------------------------------------------------- */

/* SM__KERNEL (ISA clones of hot loops): base/internal.h */

/* Rows per block for reductions over rows (column sums): the partition never depends on the
 * thread count, and block partials are combined in block order, so sums are bitwise
 * reproducible whatever the number of threads. */
#define SM__ROW_BLOCK 64

/* Internal flags: the tensor header lives in the arena (its gradient needs no clean-up); its
 * gradient is a block of the gradient arena that the tensor owns (released when it dies). */
#define SM__TENSOR_ARENA 0x100u
#define SM__TENSOR_GRAD_OWNED 0x200u
/* The data is a whole activation-arena block of its own (sm_ctx_tensor): sm_tensor_release may
 * hand it back; released: sm_tensor_release was called, an op given it fails; reclaimed: the
 * block went back to a free list (at the release, or in backward after its last reader). */
#define SM__TENSOR_OWN_BLOCK 0x400u
#define SM__TENSOR_RELEASED 0x800u
#define SM__TENSOR_RECLAIMED 0x1000u
/* Dropped: released although a backward reads it, because its maker can compute it again from
 * inputs that stay (op table's remat); remade: computed again in backward, into a gradient
 * block (views of it are re-pointed). */
#define SM__TENSOR_DROPPED 0x2000u
#define SM__TENSOR_REMADE 0x4000u

/* ---- arenas (arena.c) ---------------------------------------------------------------- */

typedef struct sm__chunk {
    struct sm__chunk *next;
    size_t size, used;
    size_t high;         /* high-water mark of used (the pages touched of a mapped chunk) */
    bool mapped;         /* a reserved address range (pages come when touched), else malloc */
    unsigned char *data; /* 64-byte aligned */
} sm__chunk;

typedef struct sm__free sm__free;

/* A chunked bump allocator with mark/rewind and a free list of exact-size blocks. Requests are
 * sizes already rounded to 64 bytes. */
typedef struct sm__arena {
    sm__chunk *chunks, *cur;
    size_t used;      /* bytes bumped (released free-list blocks included) */
    size_t step_peak; /* high-water mark of used since the last reset */
    size_t reserved;  /* bytes of the malloc chunks, and what the mapped one has touched */
    sm__free *free;   /* released blocks (sm__arena_put), newest first */
} sm__arena;

/* A position in an arena (sm__arena_mark). */
typedef struct sm__mark {
    sm__chunk *chunk;
    size_t chunk_used, used;
} sm__mark;

/* Bump allocation of `need` bytes (a multiple of 64); NULL on ENOMEM. */
void *sm__arena_alloc(sm__arena *a, size_t need);
sm__mark sm__arena_mark(const sm__arena *a);
/* Releases everything allocated after the mark, free-list blocks among it included. */
void sm__arena_rewind(sm__arena *a, sm__mark m);
/* True if p lies in memory allocated after the mark (and not rewound since). */
bool sm__arena_since(const sm__arena *a, sm__mark m, const void *p);
/* A block of `need` bytes from the free list (same size, latest released first), else bumped;
 * sm__arena_put releases it for reuse. NULL on ENOMEM. */
void *sm__arena_get(sm__arena *a, size_t need);
void sm__arena_put(sm__arena *a, void *p, size_t need);
/* Moves from's free blocks onto to's free list (blocks are memory: the activation arena's
 * unused free blocks serve gradients in backward); from's list is left empty. */
void sm__arena_pass_free(sm__arena *from, sm__arena *to);
/* Start of a step: everything released; one chunk of the last step's high-water mark if that
 * step spilled over its first chunk. */
void sm__arena_reset(sm__arena *a);
/* Frees all chunks. */
void sm__arena_release(sm__arena *a);

/* ---- the context --------------------------------------------------------------------- */

typedef struct sm__foreign {
    struct sm__foreign *next;
    sm_tensor *t;
} sm__foreign;

typedef struct sm__node sm__node;
typedef struct sm__keep sm__keep;

/* Two arenas: `act` holds tensors, tape nodes and op data, used as a stack (a node's backward
 * scratch and a recomputed block are rewound when done); `grads` holds the gradients of
 * non-parameter tensors, each put back on the free list as soon as it is dead (unless
 * keep_grads). */
/* sm_ctx_watch_reads: the ranges watched during a forward, and where their first readers go. */
typedef struct sm__watch {
    const float *base;
    size_t n;
    const int64_t *ends;
    size_t *first;
} sm__watch;

struct sm_ctx {
    sm_backend *backend;
    sm_backend *own_backend; /* created by sm_ctx_new(NULL) */
    sm__arena act, grads;
    size_t peak;    /* high-water mark of act.used + grads.used since creation */
    sm__node *tape; /* newest entry */
    size_t tape_size;
    bool backward_done;   /* the tape was consumed by a backward pass */
    sm__foreign *foreign; /* non-arena tensors whose gradient is in the arena */
    sm_error err;
    bool grad, train;
    bool keep_grads;        /* keep every gradient until reset: no liveness plan, no in-place */
    bool recompute;         /* sm_checkpoint keeps only its block's inputs and output */
    sm__keep *keep;         /* a checkpointed block's forward: the tensors it keeps */
    const sm__keep *replay; /* its recomputation: the kept tensors' data, by tape position */
    uint64_t seed, step, sample; /* RNG keys; sample: the first row's sample key */
    int threads;
    sm_backward_hook hook; /* sm_ctx_set_backward_hook                                       */
    void *hook_user;
    sm__watch watch;    /* sm_ctx_watch_reads (base NULL: off)                                 */
    int block_depth;    /* checkpointed blocks being recorded, nested                          */
    int no_grad_depth;  /* checkpointed blocks run without gradients (rewound whole), nested     */
    size_t block_index; /* the outermost one's position on the tape                            */
    struct sm__prof *prof; /* profiling (sm_ctx_set_profile), NULL when off */
};

/* Bytes of a block of n floats (rounded up to 64, at least 64). */
static inline size_t sm__block_bytes(int64_t n)
{
    size_t b = ((size_t)n * sizeof(float) + 63) & ~(size_t)63;
    return b ? b : 64;
}

/* Records the arenas' combined high-water mark. */
static inline void sm__note_peak(sm_ctx *ctx)
{
    size_t u = ctx->act.used + ctx->grads.used;
    if (u > ctx->peak) ctx->peak = u;
}

/* ---- the tape ------------------------------------------------------------------------ */

typedef enum sm__op {
    SM__OP_LINEAR,
    SM__OP_MATMUL,
    SM__OP_ADD,
    SM__OP_MUL,
    SM__OP_SCALE,
    SM__OP_LAYERNORM,
    SM__OP_GELU,
    SM__OP_SOFTMAX,
    SM__OP_ATTENTION,
    SM__OP_RELPOS_BIAS,
    SM__OP_WINDOW_PARTITION,
    SM__OP_WINDOW_REVERSE,
    SM__OP_PATCH_MERGE,
    SM__OP_IM2COL,
    SM__OP_CONV1X1,
    SM__OP_PIXEL_SHUFFLE,
    SM__OP_MASK_BLEND,
    SM__OP_CLS_CONCAT,
    SM__OP_CONCAT,
    SM__OP_MEAN,
    SM__OP_COPY,
    SM__OP_DROP_PATH,
    SM__OP_MASKED_L1,
    SM__OP_CROSS_ENTROPY,
    SM__OP_SOFT_CROSS_ENTROPY,
    SM__OP_CHECKPOINT,
    SM__OP_COUNT
} sm__op;

struct sm__node {
    sm__node *prev;
    sm__op op;
    size_t index; /* position on its tape (0 = first; a checkpointed block has its own tape) */
    int n_in;
    sm_tensor **in; /* inputs (any may be NULL or not require grad) */
    sm_tensor *out;
    void *saved; /* op-specific, in the arena */
};

typedef void (*sm__backward_fn)(sm_ctx *ctx, sm__node *node);
/* Computes node's output again, into out (contiguous), exactly as its forward did. */
typedef void (*sm__remat_fn)(sm_ctx *ctx, const sm__node *node, float *out);

/* Name of an op ("linear"). */
const char *sm__op_name(sm__op op);

/* True if gradients are on and any of the n inputs requires grad. */
bool sm__wants_grad(const sm_ctx *ctx, int n, sm_tensor *const *in);
/* The end of every op: if gradients are on and an input requires grad, appends a node for
 * `out` (which then requires grad) with a copy of the inputs and of `saved_bytes` bytes of op
 * data (node->saved; saved may be NULL when saved_bytes is 0). Returns out, or NULL (sticky
 * ENOMEM) on failure. */
sm_tensor *sm__track(sm_ctx *ctx, sm__op op, sm_tensor *out, int n_in, sm_tensor *const *in,
                     const void *saved, size_t saved_bytes);
/* sm__track without the test: always appends the node (sm_checkpoint: the block's parameters,
 * not its inputs, may be what requires grad). */
sm_tensor *sm__record(sm_ctx *ctx, sm__op op, sm_tensor *out, int n_in, sm_tensor *const *in,
                      const void *saved, size_t saved_bytes);

/* Backward functions, one per op (in the op's file). */
void sm__linear_backward(sm_ctx *ctx, sm__node *n);
void sm__matmul_backward(sm_ctx *ctx, sm__node *n);
void sm__add_backward(sm_ctx *ctx, sm__node *n);
void sm__mul_backward(sm_ctx *ctx, sm__node *n);
void sm__scale_backward(sm_ctx *ctx, sm__node *n);
void sm__layernorm_backward(sm_ctx *ctx, sm__node *n);
void sm__gelu_backward(sm_ctx *ctx, sm__node *n);
void sm__gelu_remat(sm_ctx *ctx, const sm__node *n, float *out);
void sm__softmax_backward(sm_ctx *ctx, sm__node *n);
void sm__attention_backward(sm_ctx *ctx, sm__node *n);
void sm__relpos_bias_backward(sm_ctx *ctx, sm__node *n);
void sm__window_partition_backward(sm_ctx *ctx, sm__node *n);
void sm__window_reverse_backward(sm_ctx *ctx, sm__node *n);
void sm__patch_merge_backward(sm_ctx *ctx, sm__node *n);
void sm__im2col_backward(sm_ctx *ctx, sm__node *n);
void sm__conv1x1_backward(sm_ctx *ctx, sm__node *n);
void sm__pixel_shuffle_backward(sm_ctx *ctx, sm__node *n);
void sm__mask_blend_backward(sm_ctx *ctx, sm__node *n);
void sm__cls_concat_backward(sm_ctx *ctx, sm__node *n);
void sm__concat_backward(sm_ctx *ctx, sm__node *n);
void sm__mean_backward(sm_ctx *ctx, sm__node *n);
void sm__copy_backward(sm_ctx *ctx, sm__node *n);
void sm__drop_path_backward(sm_ctx *ctx, sm__node *n);
void sm__masked_l1_backward(sm_ctx *ctx, sm__node *n);
void sm__cross_entropy_backward(sm_ctx *ctx, sm__node *n);
void sm__soft_cross_entropy_backward(sm_ctx *ctx, sm__node *n);
void sm__checkpoint_backward(sm_ctx *ctx, sm__node *n);

/* Inside the recomputation of a checkpointed block: a tensor over the data the block kept from
 * its forward (sm_checkpoint_keep, and its output) when the op about to be recorded (the next
 * tape position) made it there, else NULL. An op whose backward does not need its inputs'
 * gradients to pass through anything it computes now (sm_linear) then skips its work. */
sm_tensor *sm__replayed(sm_ctx *ctx, int ndim, const int64_t *shape);

/* Backward over the tape from `newest` back to its first entry (reverse creation order):
 * each node whose output received a gradient runs its backward, then its scratch in the
 * activation arena is rewound and (unless keep_grads) its output's gradient is released: every
 * consumer of the output came later on the tape and has been processed already. */
void sm__backward_walk(sm_ctx *ctx, sm__node *newest);

/* ---- profiling (profile.c) ----------------------------------------------------------- */

typedef struct sm__prof {
    sm_profile acc;
    double last;   /* end of the previous forward op (or the restart) */
    double gemm;   /* backend GEMM seconds of the op in progress (main thread only) */
    bool backward; /* inside sm_backward_from */
} sm__prof;

/* The phase GEMM FLOPs and forward ops count to now. */
static inline sm_profile_phase sm__prof_phase(const sm_ctx *ctx)
{
    return ctx->replay ? SM_PROFILE_RECOMPUTE
                       : ctx->prof->backward ? SM_PROFILE_BACKWARD : SM_PROFILE_FORWARD;
}
/* A forward op of kind `op` ends now (sm__track, sm__record). */
void sm__prof_op(sm_ctx *ctx, sm__op op);
/* The next forward op is timed from now (reset, start of a backward entry). */
void sm__prof_restart(sm_ctx *ctx);
/* A backward entry of kind `op` that started at t0 ends now. */
void sm__prof_backward(sm_ctx *ctx, sm__op op, double t0);
/* GEMM FLOPs of the current phase (outside parallel regions only: one thread counts). */
static inline void sm__prof_flop(sm_ctx *ctx, double flop)
{
    if (ctx->prof) ctx->prof->acc.flop[sm__prof_phase(ctx)] += flop;
}

/* ---- helpers for op constructors -------------------------------------------------------- */

/* Sets shape and contiguous strides; false on a bad shape (ndim outside 0..6, a negative
 * dimension, or more than INT64_MAX/4 elements). */
bool sm__set_shape(sm_tensor *t, int ndim, const int64_t *shape);

/* False (and the op must return NULL) if the context has an error or an input is NULL. */
bool sm__ok(sm_ctx *ctx, int n, const sm_tensor *const *in);
#define SM__OK(ctx, ...)                                                                       \
    sm__ok((ctx), (int)(sizeof((const sm_tensor *[]){__VA_ARGS__}) / sizeof(sm_tensor *)),   \
           (const sm_tensor *[]){__VA_ARGS__})

/* Records SM_ESHAPE "op: msg (got name1 (shape), name2 (shape))" and returns NULL. msg is
 * plain text (format numbers into it beforehand); the variadic tail is pairs
 * (const char *name, const sm_tensor *t) ended by NULL. */
void *sm__shape_error(sm_ctx *ctx, const char *op, const char *msg, ...);

/* A new contiguous arena tensor (uninitialised) / zero-filled; NULL + sticky error. */
sm_tensor *sm__empty(sm_ctx *ctx, int ndim, const int64_t *shape);

/* x if contiguous, else a contiguous copy recorded on the tape (sm_contiguous). */
sm_tensor *sm__contig(sm_ctx *ctx, sm_tensor *x);

/* Gradient buffer of t if it requires grad, else NULL (allocates lazily, zeroed). */
static inline float *sm__grad(sm_ctx *ctx, sm_tensor *t)
{
    return (t && (t->flags & SM_TENSOR_REQUIRES_GRAD)) ? sm_tensor_grad(ctx, t) : NULL;
}

/* Gradient buffer of t for a backward that writes ALL of it: when *fresh comes back true the
 * buffer was just allocated and is uninitialised, so the caller must overwrite it (GEMM beta 0,
 * "=" instead of "+="), saving a zeroing pass and a read; otherwise it already holds gradient
 * and the caller accumulates. NULL if t does not require grad. */
float *sm__grad_w(sm_ctx *ctx, sm_tensor *t, bool *fresh);

/* In-place backward of an elementwise op out = f(x): when gradients are planned (not
 * keep_grads), x is an arena tensor owning its storage with no gradient yet, x has out's
 * element count and out owns its gradient, x takes over out's gradient buffer (out's gradient
 * is dead once its op's backward ran) and the buffer is returned: the caller overwrites it with
 * dx, element i from dout's element i only. Otherwise NULL (use sm__grad_w / sm__grad). */
float *sm__grad_take(sm_ctx *ctx, sm_tensor *x, sm_tensor *out);

/* Puts t's gradient back on the gradient arena's free list if t owns it; t->grad = NULL. */
void sm__grad_release(sm_ctx *ctx, sm_tensor *t);

/* Rows × last dim of a contiguous tensor. */
static inline int64_t sm__rows(const sm_tensor *t)
{
    int64_t rows = 1; /* the product of the leading dims (also when the last one is 0) */
    for (int d = 0; d + 1 < t->ndim; d++) rows *= t->shape[d];
    return rows;
}

/* OpenMP threads for a loop of `work` elementary operations: 1 for small work. */
int sm__threads_for(const sm_ctx *ctx, int64_t work);

/* GEMM through the context's backend with "logical" strides: element (i, p) of A is
 * a[i·ar + p·ac], (p, j) of B is b[p·br + j·bc], (i, j) of C is c[i·cr + j·cc];
 * C (m×n) := alpha·A·B + beta·C. Transposes are swapped strides (no copies). */
void sm__gemm(sm_ctx *ctx, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
              int64_t ar, int64_t ac, const float *b, int64_t br, int64_t bc, float beta,
              float *c, int64_t cr, int64_t cc);
/* C (m×n, row stride cr, contiguous rows) := A·B + bias (n floats added to every row), same
 * strides as sm__gemm: the backend adds the bias while writing C where it can. */
void sm__gemm_bias(sm_ctx *ctx, int64_t m, int64_t n, int64_t k, const float *a, int64_t ar,
                   int64_t ac, const float *b, int64_t br, int64_t bc, const float *bias, float *c,
                   int64_t cr);
/* batch GEMMs, operand i at a + i·sa, b + i·sb, c + i·sc (sc != 0: outputs disjoint). */
void sm__gemm_batched(sm_ctx *ctx, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                      int64_t ar, int64_t ac, int64_t sa, const float *b, int64_t br, int64_t bc,
                      int64_t sb, float beta, float *c, int64_t cr, int64_t cc, int64_t sc,
                      int64_t batch);

/* Small GEMM for window attention (small_gemm.c), same logical-stride convention as sm__gemm,
 * for n <= SM__SMALL_N; scratch: k·SM__SMALL_N floats, 64-byte aligned, owned by the caller
 * (one per thread). Deterministic; does not use the backend. */
#define SM__SMALL_N 64
void sm__gemm_small(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t ar,
                    int64_t ac, const float *b, int64_t br, int64_t bc, float beta, float *c,
                    int64_t cr, int64_t cc, float *scratch);

/* dst[j] += Σ_r row_w[r]·src[r·ld + j] for j < cols, r < rows (row_w NULL: weights 1): fixed
 * row blocks, combined in double in block order, so the result does not depend on the thread
 * count. */
void sm__colsum_acc(sm_ctx *ctx, const float *src, int64_t rows, int64_t cols, int64_t ld,
                    const float *row_w, float *dst);

/* Strided copy/accumulate: dst (contiguous, shape of src view) = / += src view. */
void sm__strided_copy(sm_ctx *ctx, const sm_tensor *src, float *dst);
/* dst view (strided) += src (contiguous, dst's shape). */
void sm__strided_acc(sm_ctx *ctx, const sm_tensor *dst_view, float *dst_data, const float *src);

/* Softmax row kernels (softmax.c), shared with attention. In place: each row of s (rows × n)
 * becomes softmax(s + bias + mask) (bias, mask: NULL or rows × n). Backward: each row of dx
 * becomes (acc: gets added) p ⊙ (g - Σ g·p); dx may alias g when !acc. */
void sm__softmax_rows(float *s, int64_t rows, int64_t n, const float *bias, const float *mask);
void sm__softmax_rows_bwd(const float *p, const float *g, float *dx, int64_t rows, int64_t n,
                          bool acc);

/* Runs `body` over [0, n) in chunks of 16384 (variables i0, len) spread over the threads;
 * the chunking never changes results. */
#define SM__CHUNKED(ctx, n, body)                                                              \
    do {                                                                                       \
        int64_t n_ = (n), nc_ = (n_ + 16383) / 16384;                                          \
        _Pragma("omp parallel for schedule(static) num_threads(sm__threads_for(ctx, n_))")     \
        for (int64_t c_ = 0; c_ < nc_; c_++) {                                                 \
            int64_t i0 = c_ * 16384, len = SM__MIN(n_ - i0, 16384);                            \
            body;                                                                              \
        }                                                                                      \
    } while (0)

/* For the index-map ops (one bijection used both ways): copies n floats from a to b when
 * a_to_b, else from b to a; adds instead of copying when acc (backward). */
static inline void sm__move(float *a, float *b, int64_t n, bool a_to_b, bool acc)
{
    float *dst = a_to_b ? b : a;
    const float *src = a_to_b ? a : b;
    if (acc)
        for (int64_t i = 0; i < n; i++) dst[i] += src[i];
    else
        memcpy(dst, src, (size_t)n * sizeof(float));
}

/* ---- vectorisable math ------------------------------------------------------------------ */

/* e^x for float (Cephes' expf polynomial, ~2 ulp) for x in [-87.3, 88.3]; inputs outside are
 * clamped (so exp(-inf) gives 1e-38, not 0). Only arithmetic and bit casts: loops using it
 * vectorise. */
static inline float sm__expf(float x)
{
    x = x < -87.3f ? -87.3f : x; /* two plain selects: both vectorise (AVX2 too) */
    x = x > 88.3f ? 88.3f : x;
    /* n = nearest integer to x·log2(e) (adding 1.5·2^23 rounds without SSE4.1) */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f; /* ln 2 in two parts: exact reduction */
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    n = n == n ? n : 0.0f; /* NaN in: p is NaN already; keep the int conversion defined */
    union {
        float f;
        int32_t i;
    } u = {.i = ((int32_t)n + 127) * (1 << 23)}; /* n in [-126, 128]: no overflow */
    return p * u.f;
}

/* erf(x) for float: x·P(x²)/Q(x²) for |x| <= 3.925 and ±1 beyond (erf(3.925) is 1 to float
 * precision). P (degree 6 in x²) and Q (degree 4) are our own minimax fit of erf on [0, 3.925]
 * (tools/fit_rational.py: linear programming over 6000 points, bisecting on the error bound).
 * Error of the float evaluation with FMAs below 3.5e-7 over [0, 5] (2e-7 for |x| < 3). One
 * division and no exp: GELU's forward was bound by the vector ports (an exp and a 10-term
 * polynomial per element before; 2x faster per element now). NaN stays NaN. */
static inline float sm__erff(float x)
{
    float c = x > 3.925f ? 3.925f : x; /* plain selects: vectorise (AVX2 too) */
    c = c < -3.925f ? -3.925f : c;
    float s = c * c;
    float p = 1.992182943e-08f;
    p = p * s - 1.971091714e-06f;
    p = p * s + 1.443977995e-04f;
    p = p * s + 3.796286910e-03f;
    p = p * s + 5.085234957e-02f;
    p = p * s + 2.020695655e-01f;
    p = p * s + 1.128378997e+00f;
    float q = 9.800889363e-04f;
    q = q * s + 1.453714353e-02f;
    q = q * s + 1.158822340e-01f;
    q = q * s + 5.124101646e-01f;
    q = q * s + 1.0f;
    float r = c * p / q;
    r = r > 1.0f ? 1.0f : r; /* the fit overshoots 1 by up to 2e-7 near the clamp */
    return r < -1.0f ? -1.0f : r;
}

#endif /* SIMMIM_OPS_INTERNAL_H */
