/* core/tensor/profile.c - per-op wall time of a context (sm_ctx_set_profile, tensor.h).
 *
 * Off, it costs a NULL test per op and per GEMM. On, every forward op is timed from the end
 * of the previous one (ops compute eagerly and record themselves at their end, in sm__track),
 * every backward entry around its call in the tape walk, and backend GEMMs called from outside
 * a parallel region around the call (their time is taken out of their op's). */
#include "tensor/tensor_internal.h"

#include <time.h>

double sm_profile_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void sm_ctx_set_profile(sm_ctx *ctx, bool on)
{
    if (on && !ctx->prof) {
        ctx->prof = calloc(1, sizeof *ctx->prof);
        if (!ctx->prof) return; /* stays off */
    }
    if (!on && ctx->prof) {
        free(ctx->prof);
        ctx->prof = NULL;
        return;
    }
    if (on) {
        memset(&ctx->prof->acc, 0, sizeof ctx->prof->acc);
        sm__prof_restart(ctx);
    }
}

bool sm_ctx_profiling(const sm_ctx *ctx) { return ctx->prof != NULL; }

void sm_ctx_profile(const sm_ctx *ctx, sm_profile *out)
{
    if (ctx->prof)
        *out = ctx->prof->acc;
    else
        memset(out, 0, sizeof *out);
}

void sm_ctx_profile_clear(sm_ctx *ctx)
{
    if (ctx->prof) memset(&ctx->prof->acc, 0, sizeof ctx->prof->acc);
}

void sm_ctx_profile_add(sm_ctx *ctx, sm_profile_extra what, double seconds)
{
    if (ctx && ctx->prof && (unsigned)what < SM_PROFILE_EXTRAS)
        ctx->prof->acc.extra_s[what] += seconds;
}

const char *sm_profile_op_name(int i)
{
    return i >= 0 && i < SM__OP_COUNT ? sm__op_name((sm__op)i) : NULL;
}

void sm__prof_restart(sm_ctx *ctx)
{
    ctx->prof->last = sm_profile_now();
    ctx->prof->gemm = 0.0;
}

static void attribute(sm__prof *p, sm_profile_phase ph, sm__op op, double dt)
{
    p->acc.op_s[ph][op] += dt - p->gemm;
    p->acc.gemm_s[ph][op] += p->gemm;
    p->acc.calls[ph][op]++;
    p->gemm = 0.0;
}

void sm__prof_op(sm_ctx *ctx, sm__op op)
{
    sm__prof *p = ctx->prof;
    double now = sm_profile_now();
    attribute(p, ctx->replay ? SM_PROFILE_RECOMPUTE : SM_PROFILE_FORWARD, op, now - p->last);
    p->last = now;
}

void sm__prof_backward(sm_ctx *ctx, sm__op op, double t0)
{
    sm__prof *p = ctx->prof;
    if (op == SM__OP_CHECKPOINT) { /* its recomputation and inner entries counted themselves */
        p->gemm = 0.0;
        return;
    }
    attribute(p, SM_PROFILE_BACKWARD, op, sm_profile_now() - t0);
}

_Static_assert((int)SM__OP_COUNT <= (int)SM_PROFILE_OPS, "SM_PROFILE_OPS too small for the op table");
