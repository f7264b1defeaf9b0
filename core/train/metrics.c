/* core/train/metrics.c - what a run reports: metrics.jsonl (one JSON object per optimizer step,
 * epoch and evaluation; docs/outputs.md), durations for the progress line, and summary.json. */
#include "train/train_internal.h"

#include <errno.h>
#include <math.h>
#include <time.h>
#include <unistd.h>

double sm__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

bool sm__stop_requested(const sm__run *r)
{
    if (r->ranks > 1) return r->stop_agreed;
    return r->opts && r->opts->stop && *r->opts->stop;
}

/* "42s", "7m05s", "3h12m" */
void sm__duration(double secs, char *buf, size_t n)
{
    long s = secs > 0 && secs < 1e9 ? (long)(secs + 0.5) : 0;
    if (s < 60)
        snprintf(buf, n, "%lds", s);
    else if (s < 3600)
        snprintf(buf, n, "%ldm%02lds", s / 60, s % 60);
    else
        snprintf(buf, n, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
}

json_t *sm__jnum(double v) { return isfinite(v) ? json_real(v) : json_null(); }

void sm__note_eval(sm__run *r, int64_t epoch, double top1)
{
    if (isfinite(top1) && (r->best_epoch < 0 || top1 > r->best_top1)) {
        r->best_top1 = top1;
        r->best_epoch = epoch;
    }
}

/* Copies the records of metrics.jsonl that stay into out: steps before st->step, epochs and
 * evaluations before st->epoch (a fresh start keeps nothing); a last line cut short when a
 * process was killed while writing it is dropped. Returns the number dropped. */
static size_t sm__metrics_filter(sm__run *r, FILE *in, FILE *out, const sm__ckpt_state *st)
{
    char *line = NULL;
    size_t cap = 0, dropped = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, in)) > 0) {
        json_t *o = line[n - 1] == '\n' ? json_loads(line, 0, NULL) : NULL;
        const char *ev = o ? json_string_value(json_object_get(o, "event")) : NULL;
        json_int_t step = o ? json_integer_value(json_object_get(o, "step")) : 0;
        json_int_t epoch = o ? json_integer_value(json_object_get(o, "epoch")) : 0;
        bool keep = ev && (!strcmp(ev, "step") ? step < st->step : epoch < st->epoch);
        double top1 = o ? json_number_value(json_object_get(o, "top1")) : 0;
        if (keep && !strcmp(ev, "eval") && json_is_number(json_object_get(o, "top1")))
            sm__note_eval(r, epoch, top1);
        if (keep)
            fputs(line, out);
        else
            dropped++;
        json_decref(o);
    }
    free(line);
    return dropped;
}

/* Opens metrics.jsonl for appending, first dropping the records of work the run will redo. */
int sm__metrics_open(sm__run *r, const sm__ckpt_state *st, bool append_only, sm_error *err)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/metrics.jsonl", r->set.out_dir);
    FILE *in = append_only ? NULL : fopen(path, "r");
    if (in) {
        char tmp[PATH_MAX + 64];
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
        FILE *out = fopen(tmp, "w");
        if (!out) {
            fclose(in);
            return sm_error_set(err, SM_EIO, tmp, 0, 0, NULL, "cannot write: %s", strerror(errno));
        }
        size_t dropped = sm__metrics_filter(r, in, out, st);
        fclose(in);
        bool ok = fflush(out) == 0 && fsync(fileno(out)) == 0;
        ok = fclose(out) == 0 && ok;
        if (!ok || rename(tmp, path) != 0) {
            unlink(tmp);
            return sm_error_set(err, SM_EIO, path, 0, 0, NULL, "cannot rewrite: %s",
                                strerror(errno));
        }
        if (dropped && st->step)
            sm_log(SM_LOG_INFO, "metrics.jsonl: %zu records after step %lld dropped (redone)",
                   dropped, (long long)st->step);
    }
    if (!(r->metrics = fopen(path, "a")))
        return sm_error_set(err, SM_EIO, path, 0, 0, NULL, "cannot open: %s", strerror(errno));
    return 0;
}

int sm__metric(sm__run *r, json_t *obj, sm_error *err)
{
    if (!obj) return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    int rc = 0;
    if (!r->metrics) { /* not the writing rank */
        json_decref(obj);
        return 0;
    }
    if (json_dumpf(obj, r->metrics, JSON_COMPACT) != 0 || fputc('\n', r->metrics) == EOF ||
        fflush(r->metrics) != 0) {
        rc = sm_error_set(err, SM_EIO, r->set.out_dir, 0, 0, NULL,
                          "cannot append to metrics.jsonl: %s", strerror(errno));
    }
    json_decref(obj);
    return rc;
}

int sm__write_summary(sm__run *r, const sm_train_result *res, int status, const sm_error *e)
{
    char line[SM_ERROR_LINE_MAX] = "";
    if (status) sm_error_format(e, line, sizeof line);
    double secs = sm__now() - r->t_start;
    json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:s, s:f, s:o, s:I, s:i}",
                          "task",
                          r->set.task_name, "status",
                          status == 0              ? "completed"
                          : status == SM_ECANCELED ? "stopped"
                                                   : "failed",
                          "epochs", (json_int_t)res->epochs, "steps", (json_int_t)res->steps,
                          "last_loss", sm__jnum(res->last_loss), "eval_top1",
                          res->eval_top1 >= 0 ? sm__jnum(res->eval_top1) : json_null(),
                          "eval_top5", res->eval_top5 >= 0 ? sm__jnum(res->eval_top5) : json_null(),
                          "best_eval_top1", res->best_epoch >= 0 ? sm__jnum(res->best_top1) : json_null(),
                          "best_eval_epoch",
                          res->best_epoch >= 0 ? json_integer(res->best_epoch) : json_null(),
                          "checkpoint", res->checkpoint, "seconds", secs, "images_per_second",
                          sm__jnum(secs > 0 ? (double)r->images_seen / secs : 0.0), "bad_images",
                          (json_int_t)(r->loader ? sm_loader_bad_count(r->loader) : 0), "ranks",
                          r->ranks);
    if (o)
        json_object_set_new(o, "eval_mean_class_top1",
                            res->eval_mean_class >= 0 ? sm__jnum(res->eval_mean_class)
                                                      : json_null());
    if (o && status) json_object_set_new(o, "error", json_string(line));
    char *text = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
    json_decref(o);
    if (!text) return SM_ENOMEM;
    size_t len = strlen(text);
    char *with_nl = malloc(len + 2);
    int rc = SM_ENOMEM;
    if (with_nl) {
        memcpy(with_nl, text, len);
        memcpy(with_nl + len, "\n", 2);
        rc = sm__write_file(r->set.out_dir,
                            r->set.task == SM__RUN_EVAL ? "eval-summary.json" : "summary.json",
                            with_nl, NULL);
    }
    free(with_nl);
    free(text);
    return rc;
}
