/* core/train/evaluate.c - evaluation of the classifier on the evaluation split: top-1, top-5,
 * the mean loss, per-class accuracy and the confusion matrix (metrics.jsonl, confusion.csv).
 * With several ranks each evaluates its share of the split (its loader's shard) and the counts
 * and the matrix are summed over the ranks, so every count is the one process's. */
#include "train/train_internal.h"

#include <math.h>

/* Counts of an evaluation. */
typedef struct sm__eval_counts {
    int64_t n, c1, c5;
    double loss_sum;
} sm__eval_counts;

/* Adds a batch's logits (B, K) to the counts and the confusion matrix; labels outside 0..K-1
 * (padding) are not counted. */
static void sm__eval_batch(const sm_tensor *logits, const sm_batch *b, sm__eval_counts *c,
                           sm__confusion *conf)
{
    int K = (int)logits->shape[1];
    for (int i = 0; i < b->size; i++) {
        const float *z = logits->data + (int64_t)i * K;
        int y = b->labels[i];
        if (y < 0 || y >= K) continue;
        int rank = 0, top = 0;
        double mx = z[0];
        for (int k = 1; k < K; k++) {
            mx = fmax(mx, z[k]);
            top = z[k] > z[top] ? k : top;
        }
        sm__confusion_add(conf, y, top);
        double se = 0;
        for (int k = 0; k < K; k++) {
            se += exp((double)z[k] - mx);
            rank += z[k] > z[y] || (z[k] == z[y] && k < y);
        }
        c->loss_sum += log(se) + mx - z[y];
        c->c1 += rank < 1;
        c->c5 += rank < 5;
        c->n++;
    }
}

/* Runs the model over the evaluation split. */
static int sm__eval_pass(sm__run *r, sm__eval_counts *c, sm__confusion *conf, sm_error *err)
{
    sm_ctx *ctx = sm_trainer_ctx(r->tr);
    sm_model *m = sm_trainer_model(r->tr);
    const sm_batch *b;
    int rc = sm_loader_start(r->eval_loader, 0, 0, 0, err);
    while (!rc && (rc = sm_loader_next(r->eval_loader, &b, err)) == 0 && b) {
        sm_ctx_reset(ctx);
        sm_ctx_set_train(ctx, false);
        sm_ctx_set_grad(ctx, false);
        sm_tensor *x =
            sm_ctx_wrap(ctx, b->images, 4, SM_SHAPE(b->size, b->channels, b->height, b->width));
        sm_tensor *logits = sm_model_logits(m, ctx, x);
        if (!logits) {
            *err = *sm_ctx_error(ctx);
            rc = err->code;
            break;
        }
        sm__eval_batch(logits, b, c, conf);
        if (sm__stop_requested(r) && r->ranks == 1) /* ranks agree on stops at updates only */
            rc = sm_error_set(err, SM_ECANCELED, NULL, 0, 0, NULL, "stopped during evaluation");
    }
    sm_ctx_set_grad(ctx, true);
    return rc;
}

/* The counts and the matrix summed over the ranks (doubles: exact below 2^53). */
static int sm__eval_sum(sm__run *r, sm__eval_counts *c, sm__confusion *conf, sm_error *err)
{
    if (r->ranks < 2) return 0;
    size_t k2 = (size_t)conf->classes * (size_t)conf->classes;
    double *v = malloc((4 + k2) * sizeof *v);
    if (!v) return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    v[0] = (double)c->n;
    v[1] = (double)c->c1;
    v[2] = (double)c->c5;
    v[3] = c->loss_sum;
    for (size_t i = 0; i < k2; i++) v[4 + i] = (double)conf->m[i];
    int rc = sm_comm_allreduce_f64(r->comm, v, 4 + k2, SM_COMM_SUM, err);
    if (!rc) {
        *c = (sm__eval_counts){(int64_t)v[0], (int64_t)v[1], (int64_t)v[2], v[3]};
        for (size_t i = 0; i < k2; i++) conf->m[i] = (int64_t)v[4 + i];
    }
    free(v);
    return rc;
}

/* The evaluation's log line, metrics record and confusion.csv. */
static int sm__eval_report(sm__run *r, int64_t epoch, const sm__eval_counts *c,
                           const sm__confusion *conf, double top1, double top5, double secs,
                           sm_error *err)
{
    double loss = c->n ? c->loss_sum / (double)c->n : NAN, mean_acc = sm__confusion_mean_acc(conf);
    r->last_mean_class = isfinite(mean_acc) ? mean_acc : -1;
    char when[48] = "", lowest[512]; /* epochs count from 1 in the log, from 0 in metrics.jsonl */
    if (r->set.task != SM__RUN_EVAL)
        snprintf(when, sizeof when, " after epoch %lld", (long long)epoch + 1);
    sm__confusion_lowest(conf, 3, r->eval_ds.vt, r->eval_ds.self, lowest, sizeof lowest);
    sm_log(SM_LOG_INFO,
           "eval%s%s: %lld images, top-1 %.2f %%, top-5 %.2f %%, mean class accuracy %.2f %%, "
           "loss %.4f (%.1f s); lowest classes: %s",
           when, sm_trainer_ema(r->tr) ? " (EMA weights)" : "", (long long)c->n, top1, top5,
           mean_acc, loss, secs, lowest);
    json_t *per_class = json_array();
    for (int k = 0; k < conf->classes && per_class; k++)
        json_array_append_new(per_class, sm__jnum(sm__confusion_class_acc(conf, k)));
    if (!r->writer) {
        json_decref(per_class);
        return 0;
    }
    int rc = sm__metric(r,
                        json_pack("{s:s, s:I, s:I, s:o, s:o, s:o, s:o, s:o*}", "event", "eval",
                                  "epoch", (json_int_t)epoch, "images", (json_int_t)c->n, "top1",
                                  sm__jnum(top1), "top5", sm__jnum(top5), "loss", sm__jnum(loss),
                                  "mean_class_top1", sm__jnum(mean_acc), "per_class_top1",
                                  per_class),
                        err);
    char *csv = rc ? NULL : sm__confusion_csv(conf, r->eval_ds.vt, r->eval_ds.self);
    if (!rc && !csv) rc = sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    if (!rc)
        rc = sm__write_file(r->set.out_dir,
                            r->set.task == SM__RUN_EVAL ? "eval-confusion.csv" : "confusion.csv",
                            csv, err);
    free(csv);
    return rc;
}

int sm__evaluate(sm__run *r, int64_t epoch, double *top1, double *top5, sm_error *err)
{
    sm__confusion conf;
    if (sm__confusion_init(&conf, sm_model_num_classes(sm_trainer_model(r->tr))))
        return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    sm__eval_counts c = {0};
    double t0 = sm__now();
    bool ema = sm_trainer_ema(r->tr) != NULL; /* use_ema: the average is evaluated */
    if (ema) sm__trainer_swap_ema(r->tr);
    int rc = sm__eval_pass(r, &c, &conf, err);
    if (ema) sm__trainer_swap_ema(r->tr);
    if (!rc) rc = sm__eval_sum(r, &c, &conf, err);
    if (!rc) rc = sm__ranks_after_eval(r, err);
    if (!rc) {
        /* RingMo divides by finetune_dataset.samples_num when it is set */
        double denom = r->set.samples_num > 0 ? (double)r->set.samples_num : (double)c.n;
        if (r->writer && r->set.samples_num > 0 && r->set.samples_num != c.n)
            sm_log(SM_LOG_WARN, "eval: samples_num is %lld but %lld images were evaluated; the "
                                "accuracy is counted over samples_num, as RingMo does",
                   (long long)r->set.samples_num, (long long)c.n);
        *top1 = denom > 0 ? 100.0 * (double)c.c1 / denom : 0;
        *top5 = denom > 0 ? 100.0 * (double)c.c5 / denom : 0;
        rc = sm__eval_report(r, epoch, &c, &conf, *top1, *top5, sm__now() - t0, err);
        sm__note_eval(r, epoch, *top1);
    }
    sm__confusion_deinit(&conf);
    return rc;
}
