/* simmim/tensor.h - float32 tensors, the per-step context (arena + tape), and autograd.
 *
 * Tensors use PyTorch's dimension order (shape[0] outermost; images NCHW, tokens (B, L, C),
 * Linear weights [out, in]) with element strides, up to 6 dimensions (Swin's window partition is
 * a 6-D permute).
 *
 * Three lifetimes:
 *  - parameters, their gradients and optimizer state: an sm_params store (params.h), each one
 *    contiguous block;
 *  - activations, activation gradients and the tape: the per-step arenas inside an sm_ctx. They
 *    are rewound by sm_ctx_reset() at the start of every step; the one per-tensor free is
 *    sm_tensor_release (an activation that no backward reads), and after the first step they
 *    do not grow (same shapes, same allocations). Backward releases
 *    each activation gradient as soon as it is dead (after the op that produced the tensor) and
 *    reuses its memory for the next gradients, so after sm_backward only the gradients of leaves
 *    (parameters, and tensors that no op produced) remain; sm_ctx_set_keep_grads keeps them all;
 *  - long-lived tensors (inputs kept across steps, buffers): sm_tensor_new / sm_tensor_free.
 *
 * Autograd is a define-by-run tape: every op (ops.h) computes its result eagerly and, when
 * gradients are enabled and an input requires them, appends an entry to the tape. sm_backward()
 * walks the tape in reverse; every backward ACCUMULATES into the input gradients, so fan-out and
 * residual connections need no special handling.
 *
 * Errors caused by user input (shapes that follow from a config) never abort: an op that cannot
 * run records the first error in the context ("sticky" status) and returns NULL, and every op
 * given a NULL input returns NULL at once. Model code is written straight-line and checks
 * sm_ctx_status() once at the end.
 */
#ifndef SIMMIM_TENSOR_H
#define SIMMIM_TENSOR_H

#include "simmim/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SM_MAX_DIMS 6

/* Flags */
#define SM_TENSOR_REQUIRES_GRAD 0x1u /* gradients flow into this tensor                       */
#define SM_TENSOR_PARAM 0x2u         /* lives in an sm_params store                            */

struct sm__node;

typedef struct sm_tensor {
    int32_t ndim;
    uint32_t flags;
    int64_t shape[SM_MAX_DIMS];
    int64_t stride[SM_MAX_DIMS]; /* in elements                                               */
    float *data;                 /* element (i0, i1, ...) is data[i0*stride[0] + i1*stride[1]...] */
    float *grad;                 /* same layout as data; NULL until gradients reach it. For a */
                                 /* view, use sm_tensor_grad() (it lives in the base's buffer) */
    struct sm_tensor *base;      /* views: the tensor owning the storage; NULL otherwise       */
    int64_t offset;              /* views: element offset of data within base->data            */
    const char *name;            /* parameters: the official state_dict name; else NULL        */
    struct sm__node *node;       /* internal: the tape entry that produced it                  */
} sm_tensor;

/* Compound literal for shapes: sm_ctx_tensor(ctx, 3, SM_SHAPE(B, L, C)). */
#define SM_SHAPE(...) ((const int64_t[]){__VA_ARGS__})

SM_API int64_t sm_tensor_numel(const sm_tensor *t);
/* Row-major contiguous (strides are the running products of the shape). */
SM_API bool sm_tensor_is_contiguous(const sm_tensor *t);
/* True if the shapes are equal. */
SM_API bool sm_tensor_same_shape(const sm_tensor *a, const sm_tensor *b);
/* "(2, 197, 768)"; snprintf semantics. */
SM_API size_t sm_tensor_shape_str(const sm_tensor *t, char *buf, size_t n);

/* Heap tensor, contiguous, zero-filled. NULL on ENOMEM or bad shape (ndim outside 0..6, a
 * negative dimension, element count overflow). Free with sm_tensor_free (NULL-safe). */
SM_API sm_tensor *sm_tensor_new(int ndim, const int64_t *shape);
SM_API void sm_tensor_free(sm_tensor *t);

/* ---------------------------------------------------------------------------------------- */
/* The context.                                                                              */

typedef struct sm_ctx sm_ctx;
typedef struct sm_backend sm_backend;

/* new. backend is borrowed (must outlive the context); NULL selects the built-in `ref`
 * backend. NULL on ENOMEM. */
SM_API sm_ctx *sm_ctx_new(sm_backend *backend);
SM_API void sm_ctx_free(sm_ctx *ctx);

/* Start of a step: rewinds the arena, clears the tape and the sticky error. Every tensor
 * allocated in the arena before becomes invalid. */
SM_API void sm_ctx_reset(sm_ctx *ctx);

/* Sticky status: 0 or the first error recorded since the last reset. */
SM_API int sm_ctx_status(const sm_ctx *ctx);
/* The first error (code 0 if none). Borrowed. */
SM_API const sm_error *sm_ctx_error(const sm_ctx *ctx);
/* Records an error (first one wins) and returns code. For use by ops and backbone plugins. */
SM_API int sm_ctx_fail(sm_ctx *ctx, int code, const char *fmt, ...) SM_PRINTF(3, 4);

/* Gradient recording (default on). When off, ops record nothing (evaluation). */
SM_API void sm_ctx_set_grad(sm_ctx *ctx, bool enabled);
SM_API bool sm_ctx_grad(const sm_ctx *ctx);
/* Training mode (default off): drop path is active only in training mode. */
SM_API void sm_ctx_set_train(sm_ctx *ctx, bool training);
SM_API bool sm_ctx_train(const sm_ctx *ctx);
/* Keys of the counter-based RNG used by stochastic ops (drop path): results depend only on
 * (seed, step, the op's own key, the sample index), never on threads. Resets the sample base. */
SM_API void sm_ctx_set_rng(sm_ctx *ctx, uint64_t seed, uint64_t step);
/* Row b of a batch draws as sample `first + b` (default 0): a batch split into micro-batches
 * or over ranks then draws what the whole batch would. */
SM_API void sm_ctx_set_rng_sample(sm_ctx *ctx, uint64_t first);
/* Keep every gradient until the next reset (default off): intermediate gradients stay readable
 * after backward, at the cost of memory for all of them (and no in-place backward). Gradients
 * are bitwise the same either way. */
SM_API void sm_ctx_set_keep_grads(sm_ctx *ctx, bool keep);
SM_API bool sm_ctx_keep_grads(const sm_ctx *ctx);
/* Recompute checkpointed blocks in backward instead of keeping their activations (default off;
 * see sm_checkpoint in ops.h): less memory, one more forward of each block but its kept
 * products; the same numbers. */
SM_API void sm_ctx_set_recompute(sm_ctx *ctx, bool recompute);
SM_API bool sm_ctx_recompute(const sm_ctx *ctx);
/* Number of threads for the core's own OpenMP kernels (default: omp_get_max_threads()).
 * Results never depend on it. */
SM_API void sm_ctx_set_threads(sm_ctx *ctx, int threads);
SM_API int sm_ctx_threads(const sm_ctx *ctx);
SM_API sm_backend *sm_ctx_backend(sm_ctx *ctx);

/* Subnormal floats (magnitude below 2^-126) flushed to zero, on (FTZ and DAZ) or off, for the
 * calling thread and the threads it creates afterwards: call it first in a program, before any
 * OpenMP, BLIS or oneDNN thread exists. Off is IEEE (the default of C programs). On changes
 * values only below 2^-126 and avoids the ~100-cycle penalty Intel cores take per operation on
 * a subnormal (Swin's masked attention weights are subnormal: its step runs 1.3x faster). The
 * library never sets it itself; simmimctl turns it on (SIMMIM_SUBNORMALS=keep: off). 0, or
 * SM_EUNSUPPORTED for on where the architecture has no such mode (x86 and AArch64 have). */
SM_API int sm_fpenv_flush_subnormals(bool on);
/* Whether the calling thread flushes subnormals. */
SM_API bool sm_fpenv_flushing(void);

/* Arena statistics in bytes (activation and gradient arenas together): in use now, the
 * high-water mark since creation, and the memory held from the system (malloc'd chunks whole;
 * of an arena's reserved address range, the part it has touched). */
SM_API size_t sm_ctx_arena_used(const sm_ctx *ctx);
SM_API size_t sm_ctx_arena_peak(const sm_ctx *ctx);
SM_API size_t sm_ctx_arena_reserved(const sm_ctx *ctx);

/* Arena tensors (valid until the next reset), contiguous. NULL (and a sticky error) on a bad
 * shape or ENOMEM. sm_ctx_tensor leaves the data uninitialised. */
SM_API sm_tensor *sm_ctx_tensor(sm_ctx *ctx, int ndim, const int64_t *shape);
SM_API sm_tensor *sm_ctx_zeros(sm_ctx *ctx, int ndim, const int64_t *shape);
/* A tensor header in the arena over external contiguous data (borrowed, not copied). It does
 * not require grad. */
SM_API sm_tensor *sm_ctx_wrap(sm_ctx *ctx, float *data, int ndim, const int64_t *shape);
/* Raw arena memory, 64-byte aligned, uninitialised; NULL + sticky error on ENOMEM. */
SM_API void *sm_ctx_alloc(sm_ctx *ctx, size_t bytes);

/* The gradient buffer of t (allocating a zeroed one in the arena if needed; for views, inside
 * the base's gradient), laid out like t->data. NULL if t does not require grad. After backward,
 * the gradient of a tensor an op produced is gone (unless keep_grads): this returns a new zeroed
 * buffer. */
SM_API float *sm_tensor_grad(sm_ctx *ctx, sm_tensor *t);

/* The caller is done with t, an activation of this step (a no-op for parameters and heap
 * tensors). When an op recorded on the tape made t and no recorded backward reads its data
 * (neither that op nor an op given t or a view of it: add, drop path, window partition and
 * reverse read none), its memory goes back to the context and the next tensor of the same size
 * reuses it; so it does when the backwards that read it read it through their inputs (linear)
 * and its maker can make it again from inputs it keeps (GELU): t is then made again in backward
 * where it is read, bitwise as it was; when a backward reads it otherwise, its memory serves
 * gradients after that backward ran. Only during a forward with gradients on and recomputation
 * off, or inside a block run without gradients (sm_checkpoint in evaluation: at once, as
 * nothing reads it later); otherwise it stays as it is.
 * Either way an op given t (or a view of it) afterwards fails with SM_EINVAL; reading t->data
 * yourself is undefined. Releasing changes no number, only where tensors are stored: a
 * backbone releases what it no longer passes to ops, as soon as it can (see swin.c). */
SM_API void sm_tensor_release(sm_ctx *ctx, sm_tensor *t);

/* Backpropagates from a scalar (numel 1) `loss` with d loss = 1. Gradients ACCUMULATE into
 * every tensor that requires grad (parameters: their store's grad block). Returns the sticky
 * status. Backward consumes the tape: it runs once per step (a second call before
 * sm_ctx_reset is an SM_EINVAL error). */
SM_API int sm_backward(sm_ctx *ctx, sm_tensor *loss);
/* Same from any tensor with an explicit upstream gradient (contiguous, numel(out) floats),
 * which is added to out's gradient. dout NULL: out's gradient was already filled by the caller
 * through sm_tensor_grad(ctx, out) and is used as it is. */
SM_API int sm_backward_from(sm_ctx *ctx, sm_tensor *out, const float *dout);

/* Number of entries on the tape (for tests and debugging). */
SM_API size_t sm_ctx_tape_size(const sm_ctx *ctx);

/* Work overlapped with backward (data-parallel training reduces the gradients of the last
 * layers while the first ones are still computed). The hook runs on the calling thread after
 * each tape entry's backward, with that entry's position (0 = the first recorded): every entry
 * at that position or later is done. NULL removes it. */
typedef void (*sm_backward_hook)(void *user, size_t position);
SM_API void sm_ctx_set_backward_hook(sm_ctx *ctx, sm_backward_hook fn, void *user);
/* When the gradients of consecutive ranges of a float block (the parameters, sm_params_data)
 * are final: range i is [ends[i - 1], ends[i]) of base (ends[-1] = 0), and while the forward
 * records, first[i] gets the position of the first tape entry reading it (its gradient is
 * complete once backward has passed that entry), SIZE_MAX when no entry reads it. Reads inside
 * a recomputed block (sm_checkpoint) count as reads by the block's own entry. Call it after
 * sm_ctx_reset and before the forward; it ends when backward starts. ends and first must stay
 * valid until then. */
SM_API void sm_ctx_watch_reads(sm_ctx *ctx, const float *base, size_t n, const int64_t *ends,
                               size_t *first);

/* ---------------------------------------------------------------------------------------- */
/* Profiling (off by default; when off it costs one test per op and per GEMM).               */

enum { SM_PROFILE_OPS = 32 };

typedef enum sm_profile_phase {
    SM_PROFILE_FORWARD,   /* ops run by the caller                                           */
    SM_PROFILE_BACKWARD,  /* backward of each tape entry                                     */
    SM_PROFILE_RECOMPUTE, /* forward ops run again in backward (recomputed blocks)           */
    SM_PROFILE_PHASES
} sm_profile_phase;

/* What the caller adds with sm_ctx_profile_add (the trainer adds the optimizer). */
typedef enum sm_profile_extra {
    SM_PROFILE_OPTIMIZER, /* gradient norm, clipping, the optimizer update                  */
    SM_PROFILE_DATA,      /* making or loading the batch                                      */
    SM_PROFILE_EXTRAS
} sm_profile_extra;

/* Wall time accumulated since profiling was turned on or cleared (sm_ctx_reset keeps it).
 * Forward ops run eagerly: an op's forward time is the wall time from the end of the previous
 * op (or the reset, or the start of a recomputed block) to its own end, so the caller's glue
 * between two ops counts to the second. A backward entry's time covers its backward and the
 * release of its scratch and dead gradient. GEMMs the backend runs for an op from outside a
 * parallel region are counted apart (gemm_s): op_s excludes them. GEMMs inside the core's
 * parallel loops (attention's per-head products, the window kernel) stay in their op's op_s.
 * A recomputed block's own backward entry is not counted (its ops are, in both phases). */
typedef struct sm_profile {
    double op_s[SM_PROFILE_PHASES][SM_PROFILE_OPS];   /* per op kind (sm_profile_op_name)  */
    double gemm_s[SM_PROFILE_PHASES][SM_PROFILE_OPS]; /* its backend GEMMs                 */
    int64_t calls[SM_PROFILE_PHASES][SM_PROFILE_OPS]; /* entries timed                     */
    double flop[SM_PROFILE_PHASES]; /* GEMM FLOPs (2·m·n·k): backend, attention, windows     */
    double backward_s;              /* wall time inside sm_backward / sm_backward_from       */
    double extra_s[SM_PROFILE_EXTRAS];
} sm_profile;

/* Turns profiling on (clearing the figures) or off (keeping them). */
SM_API void sm_ctx_set_profile(sm_ctx *ctx, bool on);
SM_API bool sm_ctx_profiling(const sm_ctx *ctx);
/* Copies the figures (all zero when profiling is off); _clear zeroes them. */
SM_API void sm_ctx_profile(const sm_ctx *ctx, sm_profile *out);
SM_API void sm_ctx_profile_clear(sm_ctx *ctx);
/* Adds seconds to an extra (no-op when profiling is off). */
SM_API void sm_ctx_profile_add(sm_ctx *ctx, sm_profile_extra what, double seconds);
/* Name of op kind i ("linear", "attention", ...), NULL for i out of range or unused. */
SM_API const char *sm_profile_op_name(int i);
/* Wall clock in seconds (CLOCK_MONOTONIC), for callers that add extras. */
SM_API double sm_profile_now(void);


#ifdef __cplusplus
}
#endif
#endif /* SIMMIM_TENSOR_H */
