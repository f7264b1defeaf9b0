/* core/train/reduce.c - the trainer's side of data parallelism: summing the gradients over the
 * ranks while backward runs, and giving every rank rank 0's state.
 *
 * The gradient block (sm_params_grads, parameters in declaration order) is cut at parameter
 * boundaries into buckets of about SM__BUCKET floats. Backward walks the tape from the last
 * operation to the first, so the buckets of the last layers are complete first: a tape hook
 * (sm_ctx_set_backward_hook) starts the sum of bucket b as soon as backward has passed the
 * first operation reading any of its parameters (noted during the forward by
 * sm_ctx_watch_reads; with recomputation, the block reading it), and keeps MPI moving
 * between operations. Buckets start strictly from the last to the first, the same order on
 * every rank (MPI matches collectives by order). After backward the rest are started and all
 * are waited for. SIMMIM_COMM_OVERLAP=0 starts them all after backward instead (to measure what
 * the overlap hides); SIMMIM_COMM_BUCKET sets the bucket size in floats (tests use small
 * buckets to check that none starts before its gradients are final). */
#include "train/train_internal.h"

#include <math.h>

enum { SM__BUCKET = 4 << 20 }; /* floats per bucket: 16 MB (SIMMIM_COMM_BUCKET) */

void sm__reduce_free(sm_trainer *t)
{
    free(t->bucket_end);
    free(t->bucket_first);
    free(t->param_end);
    free(t->param_first);
}

int sm__reduce_plan(sm_trainer *t, sm_comm *comm, sm_error *err)
{
    t->comm = comm;
    t->rank = sm_comm_rank(comm);
    if (sm_comm_size(comm) < 2) return 0;
    const char *ov = getenv("SIMMIM_COMM_OVERLAP");
    t->overlap = !(ov && strcmp(ov, "0") == 0);
    const char *bk = getenv("SIMMIM_COMM_BUCKET");
    t->bucket_floats = bk && atoll(bk) > 0 ? atoll(bk) : SM__BUCKET;
    sm_params *p = sm_model_params(t->model);
    size_t np = sm_params_count(p);
    const float *base = sm_params_data(p);
    t->param_end = malloc((np ? np : 1) * sizeof *t->param_end);
    t->param_first = malloc((np ? np : 1) * sizeof *t->param_first);
    t->bucket_end = malloc((np ? np : 1) * sizeof *t->bucket_end);
    t->bucket_first = malloc((np ? np : 1) * sizeof *t->bucket_first);
    if (!t->param_end || !t->param_first || !t->bucket_end || !t->bucket_first)
        return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    for (size_t i = 0; i < np; i++) {
        const sm_tensor *w = sm_params_at(p, i);
        t->param_end[i] = (w->data - base) + sm_tensor_numel(w);
    }
    /* buckets end at parameter boundaries; larger ones when there would be more than can be in
     * flight at once (models above 64 x 16 MB) */
    do {
        int64_t start = 0;
        t->nbuckets = 0;
        for (size_t i = 0; i < np; i++)
            if (t->param_end[i] - start >= t->bucket_floats || i + 1 == np) {
                t->bucket_end[t->nbuckets++] = t->param_end[i];
                start = t->param_end[i];
            }
    } while (t->nbuckets > SM_COMM_MAX_PENDING && (t->bucket_floats *= 2));
    sm_log(SM_LOG_INFO,
           "gradients summed over %d ranks in %zu buckets of about %lld floats (%.3g MB; %.1f MB per "
           "step)%s",
           sm_comm_size(comm), t->nbuckets, (long long)t->bucket_floats,
           (double)t->bucket_floats * 4.0 / 1e6,
           (double)sm_params_numel(p) * 4.0 / 1e6,
           t->overlap ? ", while backward runs" : ", after backward (SIMMIM_COMM_OVERLAP=0)");
    return 0;
}

/* Starts the sum of bucket next_bucket - 1 and those below it that are complete (in backward:
 * done_from is the position backward has just passed). */
static void sm__start_buckets(sm_trainer *t, size_t done_from, bool in_backward)
{
    float *g = sm_params_grads(sm_model_params(t->model));
    while (t->next_bucket > 0 && !t->reduce_rc) {
        size_t b = t->next_bucket - 1;
        if (t->bucket_first[b] != SIZE_MAX && t->bucket_first[b] < done_from) break;
        int64_t lo = b ? t->bucket_end[b - 1] : 0;
        t->reduce_rc = sm_comm_isum_f32(t->comm, g + lo, (size_t)(t->bucket_end[b] - lo),
                                        &t->reduce_err);
        t->next_bucket--;
        t->buckets_sent++;
        t->buckets_early += in_backward;
    }
}

static void sm__on_backward(void *user, size_t position)
{
    sm_trainer *t = user;
    sm__start_buckets(t, position, true);
    sm_comm_progress(t->comm);
}

void sm__reduce_watch(sm_trainer *t, sm_ctx *ctx)
{
    if (!t->comm || sm_comm_size(t->comm) < 2 || !t->overlap) return;
    sm_params *p = sm_model_params(t->model);
    sm_ctx_watch_reads(ctx, sm_params_data(p), sm_params_count(p), t->param_end, t->param_first);
}

int sm__reduce_backward(sm_trainer *t, sm_ctx *ctx, sm_tensor *loss, sm_error *err)
{
    if (!t->comm || sm_comm_size(t->comm) < 2) return loss ? sm_backward(ctx, loss) : 0;
    sm_params *p = sm_model_params(t->model);
    size_t np = sm_params_count(p);
    t->reduce_rc = 0;
    t->next_bucket = t->nbuckets;
    if (t->overlap && loss) {
        for (size_t b = 0, i = 0; b < t->nbuckets; b++) {
            size_t first = SIZE_MAX;
            for (; i < np && t->param_end[i] <= t->bucket_end[b]; i++)
                first = t->param_first[i] < first ? t->param_first[i] : first;
            t->bucket_first[b] = first;
        }
        sm_ctx_set_backward_hook(ctx, sm__on_backward, t);
    }
    double t0 = sm__now();
    if (loss) sm_backward(ctx, loss);
    sm_ctx_set_backward_hook(ctx, NULL, NULL);
    double t1 = sm__now();
    /* a failed backward still takes part in the sums (the others are in them): its error is
     * returned after */
    for (size_t b = 0; b < t->nbuckets; b++) t->bucket_first[b] = SIZE_MAX;
    sm__start_buckets(t, 0, false);
    int rc = t->reduce_rc ? t->reduce_rc : sm_comm_wait_all(t->comm, &t->reduce_err);
    t->backward_seconds += t1 - t0;
    t->reduce_wait += sm__now() - t1;
    if (rc) {
        *err = t->reduce_err;
        return rc;
    }
    return sm_ctx_status(ctx);
}

int sm__reduce_sum(sm_trainer *t, double *v, size_t n, sm_error *err)
{
    return sm_comm_allreduce_f64(t->comm, v, n, SM_COMM_SUM, err);
}

int sm__trainer_bcast(sm_trainer *t, int root, sm_error *err)
{
    if (sm_comm_size(t->comm) < 2) return 0;
    sm_params *p = sm_model_params(t->model);
    size_t bytes = (size_t)sm_params_numel(p) * sizeof(float);
    int slots = t->ovt ? t->ovt->state_count(t->opt) : 0;
    int64_t head[2] = {t->steps, t->ema_ready};
    int rc = sm_comm_bcast(t->comm, head, sizeof head, root, err);
    if (!rc) rc = sm_comm_bcast(t->comm, sm_params_data(p), bytes, root, err);
    for (int s = 0; s < slots && !rc; s++) {
        float *block = sm_params_state(p, s, err);
        rc = block ? sm_comm_bcast(t->comm, block, bytes, root, err) : SM_ENOMEM;
    }
    if (!rc && t->ema && head[1]) rc = sm_comm_bcast(t->comm, t->ema, bytes, root, err);
    if (!rc) {
        t->steps = head[0];
        t->ema_ready = head[1] != 0;
    }
    return rc;
}

uint64_t sm__trainer_hash(const sm_trainer *t)
{
    sm_params *p = sm_model_params(t->model);
    const float *w = sm_params_data(p);
    int64_t n = sm_params_numel(p);
    uint64_t h = 1469598103934665603ull; /* FNV-1a over 32-bit words */
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &w[i], sizeof u);
        h = (h ^ u) * 1099511628211ull;
    }
    return h;
}
