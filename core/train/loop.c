/* core/train/loop.c - the epochs of a run: each step (load batch, forward, loss, backward,
 * clip, optimizer step: sm_trainer_step), its metrics record and progress line, stop requests,
 * evaluations and checkpoints (with the reconstruction figure of pretraining). With several
 * ranks each runs this loop on its share of the data; after every update they exchange stop
 * requests and bad files (sm__ranks_step), and rank 0 writes. */
#include "train/train_internal.h"

#include <math.h>
#include <unistd.h>

/* ---- checkpoints and the reconstruction figure ------------------------------------------------ */

enum { SM__VIS_MAX = 4 };

/* Keeps the first images of a SimMIM batch and their masks for the next figure. */
static void sm__keep_for_figure(sm__run *r, const sm_batch *b)
{
    int n = b->size < SM__VIS_MAX ? b->size : SM__VIS_MAX;
    size_t img = (size_t)b->channels * b->height * b->width;
    size_t msk = (size_t)b->mask_side * b->mask_side;
    if (!r->vis_images || !r->vis_mask) {
        free(r->vis_images);
        free(r->vis_mask);
        r->vis_images = malloc((size_t)SM__VIS_MAX * img * sizeof(float));
        r->vis_mask = malloc((size_t)SM__VIS_MAX * msk * sizeof(float));
        if (!r->vis_images || !r->vis_mask) {
            free(r->vis_images);
            free(r->vis_mask);
            r->vis_images = r->vis_mask = NULL;
            r->vis_n = 0;
            return;
        }
    }
    memcpy(r->vis_images, b->images, (size_t)n * img * sizeof(float));
    memcpy(r->vis_mask, b->mask, (size_t)n * msk * sizeof(float));
    r->vis_n = n;
    r->vis_c = b->channels;
    r->vis_s = b->height;
    r->vis_g = b->mask_side;
}

/* recon-<epoch>.png from the kept images (sm_recon_figure). Failures are only logged: a figure
 * never stops a run. */
static void sm__write_figure(sm__run *r, int64_t epoch)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/recon-%lld.png", r->set.out_dir, (long long)epoch);
    sm_error e;
    sm_error_clear(&e);
    if (sm_recon_figure(sm_trainer_model(r->tr), sm_trainer_ctx(r->tr), r->vis_images,
                        r->vis_mask, r->vis_n, r->vis_c, r->vis_s, r->vis_g, r->pipe.mean,
                        r->pipe.std, path, NULL, &e) == 0)
        sm_log(SM_LOG_INFO,
               "reconstructions: %s (input, masked input, reconstruction, masked patches "
               "reconstructed)",
               path);
    else {
        char msg[SM_ERROR_LINE_MAX];
        sm_error_format(&e, msg, sizeof msg);
        sm_log(SM_LOG_WARN, "cannot write the reconstruction figure: %s", msg);
    }
}

/* Writes a checkpoint (and the figure), then keeps only the newest keep_checkpoint_max. */
static int sm__write_checkpoint(sm__run *r, const sm__ckpt_state *st, int64_t epochs_done,
                                sm_train_result *res, sm_error *err)
{
    char path[PATH_MAX + 256];
    snprintf(path, sizeof path, "%s/%s-%lld_%lld.safetensors", r->set.out_dir, r->set.prefix,
             (long long)epochs_done, (long long)st->step);
    sm__ckpt_state save = *st;
    save.ranks = r->ranks;
    save.positions = r->positions;
    int rc = sm__checkpoint_save(path, r->tr, &save, r->yaml, err);
    if (rc) return rc;
    if (strlen(path) < sizeof res->checkpoint) memcpy(res->checkpoint, path, strlen(path) + 1);
    if (r->vis_n > 0) sm__write_figure(r, epochs_done);
    sm_log(SM_LOG_INFO, "checkpoint %s", path);
    char **paths = NULL;
    size_t n = sm__checkpoint_list(r->set.out_dir, r->set.prefix, &paths);
    for (size_t i = 0; i < n; i++)
        if ((int64_t)i >= r->set.keep_max && strcmp(paths[i], path) != 0) unlink(paths[i]);
    sm__checkpoint_list_free(paths, n);
    return 0;
}

/* A checkpoint (every rank calls it): every rank's loader position and the same weights, rank
 * 0 writes, and every rank learns whether it could. */
static int sm__save(sm__run *r, const sm__ckpt_state *st, int64_t epochs_done,
                    sm_train_result *res, sm_error *err)
{
    int rc = sm__ranks_positions(r, st->position, err);
    if (!rc) rc = sm__ranks_same_weights(r, err);
    if (rc) return rc;
    if (r->writer) rc = sm__write_checkpoint(r, st, epochs_done, res, err);
    return sm__ranks_bcast_status(r, rc, "writing the checkpoint failed", err);
}

/* ---- one epoch ---------------------------------------------------------------------------------- */

/* Progress of an epoch, for the log line. */
typedef struct sm__epoch {
    int64_t index, first, position; /* the epoch, its first batch and that batch's position */
    double loss_sum, t_start, t_log, wait_log;
    /* the trainer's reduce_wait at the last record and at the start, and its backward_seconds
     * at the start (several ranks: the time spent waiting for gradient sums) */
    double wait_seen, wait_start, backward_seen;
    int64_t done, img_log;
} sm__epoch;

/* The metrics record of an update, and every twentieth of an epoch the progress line. bi is
 * the epoch's batch that completed the update. */
static int sm__log_step(sm__run *r, sm__epoch *ep, int64_t bi, const sm_step_info *info,
                        double t_wait, sm_error *err)
{
    double now = sm__now();
    int64_t step = sm_trainer_steps(r->tr) - 1, u = (bi + 1) / r->set.accumulation; /* 1-based */
    json_t *rec = json_pack("{s:s, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f}", "event", "step",
                            "epoch", (json_int_t)ep->index, "batch", (json_int_t)bi, "step",
                            (json_int_t)step, "loss", info->loss, "lr", info->lr, "grad_norm",
                            info->grad_norm, "time", now - r->t_start, "data_time", t_wait);
    if (rec && r->ranks > 1) /* rank 0's wait for the gradient sums after its backward */
        json_object_set_new(rec, "comm_wait", json_real(r->tr->reduce_wait - ep->wait_seen));
    ep->wait_seen = r->tr->reduce_wait;
    int rc = sm__metric(r, rec, err);
    int64_t log_every = r->updates <= 20 ? 1 : (r->updates + 19) / 20;
    if (u % log_every != 0 && u != r->updates) return rc;
    double ips = (double)ep->img_log / (now - ep->t_log);
    double eta = (double)((r->set.epochs - ep->index) * r->updates - u) * (now - ep->t_start) /
                 (double)ep->done;
    char eta_s[32];
    sm__duration(eta, eta_s, sizeof eta_s);
    sm_log(SM_LOG_INFO,
           "epoch %lld/%lld step %lld/%lld loss %.5f lr %.3e grad %.3f %.1f img/s data %.0f%% "
           "eta %s",
           (long long)ep->index + 1, (long long)r->set.epochs, (long long)u,
           (long long)r->updates, info->loss, info->lr, info->grad_norm, ips,
           100.0 * ep->wait_log / (now - ep->t_log), eta_s);
    ep->t_log = now;
    ep->img_log = 0;
    ep->wait_log = 0;
    return rc;
}

/* A non-finite loss or gradient: recorded, and the run stops without a checkpoint. */
static int sm__diverged(sm__run *r, const sm__epoch *ep, int64_t bi, const sm_step_info *info,
                        sm_error *err)
{
    sm__metric(r,
               json_pack("{s:s, s:I, s:I, s:o, s:o}", "event", "step", "epoch",
                         (json_int_t)ep->index, "step", (json_int_t)sm_trainer_steps(r->tr),
                         "loss", sm__jnum(info->loss), "grad_norm", sm__jnum(info->grad_norm)),
               NULL);
    sm_error_clear(err);
    r->agreed = true; /* the loss and the norm are sums over the ranks: every rank sees them */
    return sm_error_set(err, SM_EDATA, NULL, 0, 0, NULL,
                        "the %s is not finite at epoch %lld, step %lld/%lld: stopping (no "
                        "checkpoint written; the previous one is kept)",
                        isfinite(info->loss) ? "gradient norm" : "loss",
                        (long long)ep->index + 1, (long long)(bi / r->set.accumulation) + 1,
                        (long long)r->updates);
}

/* A stop asked for in the middle of an epoch: a checkpoint, then SM_ECANCELED. */
static int sm__stop_mid_epoch(sm__run *r, sm__ckpt_state *st, int64_t epoch, int64_t bi,
                              sm_train_result *res, sm_error *err)
{
    int64_t u = (bi + 1) / r->set.accumulation; /* updates done in the epoch */
    st->epoch = epoch;
    sm_log(SM_LOG_WARN, "stop requested: saving a checkpoint at epoch %lld, step %lld",
           (long long)epoch + 1, (long long)u);
    int rc = sm__save(r, st, epoch, res, err);
    r->agreed = r->agreed || !rc;
    return rc ? rc
              : sm_error_set(err, SM_ECANCELED, NULL, 0, 0, NULL,
                             "stopped at epoch %lld, step %lld; resume with the same command",
                             (long long)epoch + 1, (long long)u);
}

/* The steps of one epoch, from st->batch when it resumes mid-epoch. */
static int sm__run_epoch(sm__run *r, sm__ckpt_state *st, sm__epoch *ep, sm_train_result *res,
                         sm_error *err)
{
    int rc = sm_loader_start(r->loader, ep->index, ep->first, ep->position, err);
    for (int64_t bi = ep->first; bi < r->spe && !rc; bi++) {
        const sm_batch *b = NULL;
        double t_wait = sm__now(); /* time waiting for the loader: an I/O or decode stall */
        if ((rc = sm_loader_next(r->loader, &b, err)) || !b)
            break; /* an error, or the loader's epoch ended (fewer batches than per_epoch_size) */
        t_wait = sm__now() - t_wait;
        ep->wait_log += t_wait;
        sm_step_info info;
        rc = sm_trainer_step(r->tr, b, &info, err);
        if (rc == SM_EDATA && (!isfinite(info.loss) || !isfinite(info.grad_norm)))
            return sm__diverged(r, ep, bi, &info, err);
        if (rc) break;
        if (b->mask && r->writer) sm__keep_for_figure(r, b);
        ep->img_log += (int64_t)b->size * r->ranks;
        r->images_seen += (int64_t)b->size * r->ranks;
        if (!info.stepped) continue; /* a micro-batch of an update in progress */
        st->step = sm_trainer_steps(r->tr);
        st->batch = bi + 1;
        st->position = sm_loader_position(r->loader);
        ep->loss_sum += info.loss;
        ep->done++;
        rc = sm__ranks_step(r, err); /* stop requests and bad files of every rank */
        if (!rc) rc = sm__log_step(r, ep, bi, &info, t_wait, err);
        if (!rc && sm__stop_requested(r) && bi + 1 < r->spe)
            rc = sm__stop_mid_epoch(r, st, ep->index, bi, res, err);
    }
    return rc;
}

/* After an epoch: its record, evaluation, checkpoint; a stop asked for on its last step ends
 * the epoch normally first. */
static int sm__end_epoch(sm__run *r, sm__ckpt_state *st, const sm__epoch *ep,
                         sm_train_result *res, sm_error *err)
{
    int64_t epoch = ep->index;
    res->last_loss = ep->done ? ep->loss_sum / (double)ep->done : NAN;
    res->epochs = epoch + 1;
    res->steps = st->step;
    double secs = sm__now() - ep->t_start;
    sm_log(SM_LOG_INFO, "epoch %lld/%lld done: mean loss %.5f, %.1f s", (long long)epoch + 1,
           (long long)r->set.epochs, res->last_loss, secs);
    if (r->ranks > 1 && ep->done > 0)
        sm_log(SM_LOG_INFO, "gradient sums over %d ranks: %.1f ms per step waited after a "
                            "backward of %.1f ms; %lld of %lld buckets so far started while "
                            "backward ran",
               r->ranks, 1e3 * (r->tr->reduce_wait - ep->wait_start) / (double)ep->done,
               1e3 * (r->tr->backward_seconds - ep->backward_seen) / (double)ep->done,
               (long long)r->tr->buckets_early, (long long)r->tr->buckets_sent);
    int rc = sm__metric(r,
                        json_pack("{s:s, s:I, s:o, s:f, s:I}", "event", "epoch", "epoch",
                                  (json_int_t)epoch, "loss", sm__jnum(res->last_loss), "seconds",
                                  secs, "steps", (json_int_t)st->step),
                        err);
    st->epoch = epoch + 1;
    st->batch = 0;
    st->position = 0;
    bool stop = sm__stop_requested(r) && epoch + 1 < r->set.epochs;
    if (stop)
        sm_log(SM_LOG_WARN, "stop requested: saving a checkpoint at the end of epoch %lld",
               (long long)epoch + 1);
    int64_t every = r->set.task == SM__RUN_FINETUNE ? r->set.eval_interval : 0;
    if (!rc && every > 0 && (epoch + 1) % every == r->set.eval_offset % every)
        rc = sm__evaluate(r, epoch, &res->eval_top1, &res->eval_top5, err);
    if (!rc && ((epoch + 1) % r->set.save_every == 0 || epoch + 1 == r->set.epochs || stop))
        rc = sm__save(r, st, epoch + 1, res, err);
    r->agreed = r->agreed || (!rc && stop);
    if (!rc && stop)
        rc = sm_error_set(err, SM_ECANCELED, NULL, 0, 0, NULL,
                          "stopped after epoch %lld; resume with the same command",
                          (long long)epoch + 1);
    return rc;
}

int sm__train_loop(sm__run *r, sm__ckpt_state *st, sm_train_result *res, sm_error *err)
{
    int rc = 0;
    for (int64_t epoch = st->epoch; epoch < r->set.epochs && !rc; epoch++) {
        double t = sm__now();
        bool resumed = epoch == st->epoch;
        sm__epoch ep = {.index = epoch, .first = resumed ? st->batch : 0,
                        .position = resumed ? st->position : 0, .t_start = t, .t_log = t,
                        .wait_seen = r->tr->reduce_wait, .wait_start = r->tr->reduce_wait,
                        .backward_seen = r->tr->backward_seconds};
        rc = sm__run_epoch(r, st, &ep, res, err);
        if (!rc) rc = sm__end_epoch(r, st, &ep, res, err);
    }
    return rc;
}
