/* core/train/checkpoint.c - training checkpoints: the model's parameters under their official names,
 * the optimizer state, and where the run stands, in one safetensors file written atomically.
 *
 *   <param name>                      F32, the parameter
 *   optimizer.<state>.<param name>    F32, e.g. optimizer.exp_avg.encoder.norm.weight
 *   ema.<param name>                  F32, train_wrapper.use_ema: the moving average
 *   __metadata__: format "simmim-checkpoint-1", task, epoch (the epoch in progress), batch (the
 *   next batch of that epoch; 0 at an epoch boundary), position (the loader's epoch-order
 *   position), step (optimizer steps done), optimizer (its name), config (the effective YAML);
 *   written by several ranks: ranks, and positions ("p0,p1,...": each rank's loader position
 *   in its share of the epoch order; position is rank 0's). */
#include "train/train_internal.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

#define SM__CKPT_FORMAT "simmim-checkpoint-1"

int sm__checkpoint_save(const char *path, const sm_trainer *tr, const sm__ckpt_state *st,
                        const char *config_yaml, sm_error *err)
{
    sm_model *m = tr->model;
    const sm_optimizer_vtbl *ovt = tr->ovt;
    void *oself = tr->opt;
    const char *optim_name = tr->set.optim_name;
    sm_params *p = sm_model_params(m);
    sm_st_writer *w = sm_st_writer_new();
    if (!w) return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    int rc = 0;
    char(*names)[320] = NULL;
    int slots = ovt ? ovt->state_count(oself) : 0;
    size_t np = sm_params_count(p);
    int rows = slots + (tr->ema_ready ? 1 : 0); /* optimizer states, then the EMA weights */
    if (rows > 0 && !(names = malloc((size_t)rows * np * sizeof *names)))
        rc = sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    for (size_t i = 0; i < np && !rc; i++) {
        sm_tensor *t = sm_params_at(p, i);
        rc = sm_st_writer_add(w, t->name, SM_DTYPE_F32, t->ndim, t->shape, t->data, err);
    }
    for (int s = 0; s < slots && !rc; s++) {
        float *block = sm_params_state(p, s, err);
        if (!block) {
            rc = SM_ENOMEM;
            break;
        }
        for (size_t i = 0; i < np && !rc; i++) {
            sm_tensor *t = sm_params_at(p, i);
            char *n = names[(size_t)s * np + i];
            snprintf(n, sizeof names[0], "optimizer.%s.%s", ovt->state_name(oself, s), t->name);
            rc = sm_st_writer_add(w, n, SM_DTYPE_F32, t->ndim, t->shape,
                                  block + (t->data - sm_params_data(p)), err);
        }
    }
    for (size_t i = 0; i < np && !rc && tr->ema_ready; i++) {
        sm_tensor *t = sm_params_at(p, i);
        char *n = names[(size_t)slots * np + i];
        snprintf(n, sizeof names[0], "ema.%s", t->name);
        rc = sm_st_writer_add(w, n, SM_DTYPE_F32, t->ndim, t->shape,
                              tr->ema + (t->data - sm_params_data(p)), err);
    }
    char num[64];
#define META(k, v)                                                                                 \
    if (!rc) rc = sm_st_writer_meta(w, k, v, err)
    META("format", SM__CKPT_FORMAT);
    META("task", sm_model_task(m) == SM_TASK_SIMMIM ? "pretrain" : "finetune");
    snprintf(num, sizeof num, "%lld", (long long)st->epoch);
    META("epoch", num);
    snprintf(num, sizeof num, "%lld", (long long)st->batch);
    META("batch", num);
    snprintf(num, sizeof num, "%lld", (long long)st->position);
    META("position", num);
    snprintf(num, sizeof num, "%lld", (long long)st->step);
    META("step", num);
    char *list = st->ranks > 1 ? malloc((size_t)st->ranks * 21 + 1) : NULL;
    if (st->ranks > 1 && !list && !rc) rc = sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    if (list) {
        size_t at = 0;
        for (int64_t q = 0; q < st->ranks; q++)
            at += (size_t)sprintf(list + at, "%s%lld", q ? "," : "", (long long)st->positions[q]);
        snprintf(num, sizeof num, "%lld", (long long)st->ranks);
        META("ranks", num);
        META("positions", list);
    }
    META("optimizer", optim_name ? optim_name : "");
    META("config", config_yaml ? config_yaml : "");
    META("simmim_version", sm_version());
#undef META
    if (!rc) rc = sm_st_writer_write(w, path, err);
    sm_st_writer_free(w);
    free(names);
    free(list);
    return rc;
}

/* "ranks" and "positions" (absent: one rank at "position"), into got (positions malloc'd). */
static int sm__meta_positions(const sm_st_file *f, sm__ckpt_state *got, sm_error *err)
{
    const char *nr = sm_st_meta(f, "ranks"), *list = sm_st_meta(f, "positions");
    long long ranks = nr ? atoll(nr) : 1;
    if (ranks < 1 || ranks > (1 << 24) || (ranks > 1 && !list))
        return sm_error_set(err, SM_EFORMAT, sm_st_path(f), 0, 0, "__metadata__",
                            "checkpoint metadata 'ranks' / 'positions' are not valid");
    got->ranks = ranks;
    if (!(got->positions = malloc((size_t)ranks * sizeof *got->positions)))
        return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    got->positions[0] = got->position;
    const char *at = list;
    for (long long q = 0; list && q < ranks; q++) {
        char *end;
        long long v = strtoll(at, &end, 10);
        if (end == at || v < 0 || *end != (q + 1 < ranks ? ',' : '\0')) {
            free(got->positions);
            got->positions = NULL;
            return sm_error_set(err, SM_EFORMAT, sm_st_path(f), 0, 0, "__metadata__",
                                "checkpoint metadata 'positions' is not %lld counts", ranks);
        }
        got->positions[q] = v;
        at = end + 1;
    }
    return 0;
}

static int sm__meta_int(const sm_st_file *f, const char *key, int64_t *out, sm_error *err)
{
    const char *v = sm_st_meta(f, key);
    char *end;
    long long x = v ? strtoll(v, &end, 10) : 0;
    if (!v || !*v || *end || x < 0)
        return sm_error_set(err, SM_EFORMAT, sm_st_path(f), 0, 0, "__metadata__",
                            "checkpoint metadata '%s' is missing or not a count", key);
    *out = x;
    return 0;
}

/* The file's tensor `name` exists with t's shape. */
static bool sm__same_shape(const sm_st_file *f, const char *name, const sm_tensor *t)
{
    const sm_st_info *in = sm_st_find(f, name);
    bool same = in && in->ndim == t->ndim;
    for (int d = 0; same && d < t->ndim; d++) same = in->shape[d] == t->shape[d];
    return same;
}

/* How many of the parameters have EMA weights in the checkpoint: all or none, else SM_EDATA. */
static int sm__ema_check(const sm_st_file *f, const sm_trainer *tr, size_t *have, sm_error *err)
{
    sm_params *p = sm_model_params(tr->model);
    size_t np = sm_params_count(p);
    char n[320];
    *have = 0;
    for (size_t i = 0; i < np; i++) {
        snprintf(n, sizeof n, "ema.%s", sm_params_at(p, i)->name);
        *have += sm__same_shape(f, n, sm_params_at(p, i));
    }
    if (*have && *have < np)
        return sm_error_set(err, SM_EDATA, sm_st_path(f), 0, 0, NULL,
                            "holds EMA weights for %zu of the %zu parameters", *have, np);
    return 0;
}

/* The EMA weights of a checkpoint; without them the average starts again from the weights at
 * the next update. */
static int sm__ema_load(const sm_st_file *f, sm_trainer *tr, size_t have, sm_error *err)
{
    sm_params *p = sm_model_params(tr->model);
    tr->ema_ready = have > 0;
    if (!have)
        sm_log(SM_LOG_WARN, "%s has no EMA weights: the average starts from the weights at the "
                            "next update", sm_st_path(f));
    char n[320];
    for (size_t i = 0; i < sm_params_count(p) && have; i++) {
        sm_tensor *t = sm_params_at(p, i);
        snprintf(n, sizeof n, "ema.%s", t->name);
        int rc = sm_st_read_f32(f, n, tr->ema + (t->data - sm_params_data(p)), sm_tensor_numel(t),
                                err);
        if (rc) return rc;
    }
    return 0;
}

int sm__checkpoint_load(const char *path, sm_trainer *tr, sm__ckpt_state *st, sm_error *err)
{
    sm_model *m = tr->model;
    const sm_optimizer_vtbl *ovt = tr->ovt;
    void *oself = tr->opt;
    sm_st_file *f = NULL;
    int rc = sm_st_open(path, &f, err); /* validates the whole file, sizes included */
    if (rc) return rc;
    const char *fmt = sm_st_meta(f, "format");
    const char *task = sm_st_meta(f, "task");
    const char *want = sm_model_task(m) == SM_TASK_SIMMIM ? "pretrain" : "finetune";
    sm__ckpt_state got = {0};
    sm_params *p = sm_model_params(m);
    size_t np = sm_params_count(p);
    int slots = ovt ? ovt->state_count(oself) : 0;
    if (!fmt || strcmp(fmt, SM__CKPT_FORMAT) != 0) {
        rc = sm_error_set(err, SM_EKIND, path, 0, 0, NULL,
                          "not a simmim training checkpoint (format '%s')", fmt ? fmt : "none");
        goto out;
    }
    if (!task || strcmp(task, want) != 0) {
        rc = sm_error_set(err, SM_EDATA, path, 0, 0, NULL,
                          "a %s checkpoint cannot resume a %s run", task ? task : "?", want);
        goto out;
    }
    if ((rc = sm__meta_int(f, "epoch", &got.epoch, err)) ||
        (rc = sm__meta_int(f, "batch", &got.batch, err)) ||
        (rc = sm__meta_int(f, "position", &got.position, err)) ||
        (rc = sm__meta_int(f, "step", &got.step, err)) ||
        (rc = sm__meta_positions(f, &got, err)))
        goto out;
    /* Check everything before changing anything: a checkpoint that cannot be used leaves the
     * model and the optimizer as they were. */
    size_t ema_have = 0;
    if (tr->ema && (rc = sm__ema_check(f, tr, &ema_have, err))) goto out;
    for (size_t i = 0; i < np; i++) {
        sm_tensor *t = sm_params_at(p, i);
        if (!sm__same_shape(f, t->name, t)) {
            char s[96];
            sm_tensor_shape_str(t, s, sizeof s);
            rc = sm_error_set(err, SM_EDATA, path, 0, 0, t->name,
                              sm_st_find(f, t->name)
                                  ? "shape differs from the model's %s (the architecture changed?)"
                                  : "absent from the checkpoint (the architecture changed?) %s",
                              sm_st_find(f, t->name) ? s : "");
            goto out;
        }
    }
    for (int k = 0; k < slots; k++)
        for (size_t i = 0; i < np; i++) {
            sm_tensor *t = sm_params_at(p, i);
            char n[320];
            snprintf(n, sizeof n, "optimizer.%s.%s", ovt->state_name(oself, k), t->name);
            if (!sm__same_shape(f, n, t)) {
                rc = sm_error_set(err, SM_EDATA, path, 0, 0, n,
                                  "optimizer state absent or of another shape (another "
                                  "optimizer?)");
                goto out;
            }
        }
    for (size_t i = 0; i < np && !rc; i++) {
        sm_tensor *t = sm_params_at(p, i);
        rc = sm_st_read_f32(f, t->name, t->data, sm_tensor_numel(t), err);
    }
    for (int k = 0; k < slots && !rc; k++) {
        float *block = sm_params_state(p, k, err);
        if (!block) {
            rc = SM_ENOMEM;
            break;
        }
        for (size_t i = 0; i < np && !rc; i++) {
            sm_tensor *t = sm_params_at(p, i);
            char n[320];
            snprintf(n, sizeof n, "optimizer.%s.%s", ovt->state_name(oself, k), t->name);
            rc = sm_st_read_f32(f, n, block + (t->data - sm_params_data(p)), sm_tensor_numel(t),
                                err);
        }
    }
    if (!rc && tr->ema) rc = sm__ema_load(f, tr, ema_have, err);
    if (!rc) {
        free(st->positions);
        *st = got;
        got.positions = NULL;
        tr->steps = got.step;
    }
out:
    free(got.positions);
    sm_st_close(f);
    return rc;
}

/* Checkpoint files of a prefix in dir, newest (highest step, then highest epoch) first. */
typedef struct sm__ckpt_entry {
    char *path;
    int64_t epoch, step;
} sm__ckpt_entry;

static int sm__ckpt_cmp(const void *a, const void *b)
{
    const sm__ckpt_entry *x = a, *y = b;
    if (x->step != y->step) return x->step < y->step ? 1 : -1;
    if (x->epoch != y->epoch) return x->epoch < y->epoch ? 1 : -1;
    return strcmp(x->path, y->path);
}

/* Parses the decimal digits of [s, end) exactly; -1 if empty, not all digits or too long. */
static int64_t sm__digits(const char *s, const char *end)
{
    if (s >= end || end - s > 18) return -1;
    int64_t v = 0;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9') return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

/* "<prefix>-<epoch>_<step>.safetensors" -> 0 with epoch and step, or -1. Epoch and step are
 * digits only, so prefix "a" never claims the files of prefix "a-b". A NULL prefix matches any
 * (the part before the last '-'). */
static int sm__ckpt_name(const char *name, const char *prefix, int64_t *epoch, int64_t *step)
{
    static const char ext[] = ".safetensors";
    size_t ln = strlen(name), le = sizeof ext - 1;
    if (ln <= le || strcmp(name + ln - le, ext) != 0) return -1;
    const char *stop = name + ln - le, *us = NULL, *dash = NULL;
    for (const char *p = name; p < stop; p++) {
        if (*p == '-') dash = p;
        if (*p == '_') us = p;
    }
    if (!dash || !us || us < dash) return -1;
    if (prefix && ((size_t)(dash - name) != strlen(prefix) ||
                   strncmp(name, prefix, strlen(prefix)) != 0))
        return -1;
    *epoch = sm__digits(dash + 1, us);
    *step = sm__digits(us + 1, stop);
    return *epoch >= 0 && *step >= 0 ? 0 : -1;
}

size_t sm__checkpoint_list(const char *dir, const char *prefix, char ***paths)
{
    *paths = NULL;
    DIR *d = opendir(dir);
    if (!d) return 0;
    sm__ckpt_entry *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        int64_t epoch, step;
        if (sm__ckpt_name(de->d_name, prefix, &epoch, &step)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            sm__ckpt_entry *nv = realloc(v, cap * sizeof *nv);
            if (!nv) break;
            v = nv;
        }
        v[n].path = sm__path_join(dir, de->d_name);
        v[n].epoch = epoch;
        v[n].step = step;
        if (v[n].path) n++;
    }
    closedir(d);
    if (n) qsort(v, n, sizeof *v, sm__ckpt_cmp);
    char **out = n ? malloc(n * sizeof *out) : NULL;
    for (size_t i = 0; i < n; i++) {
        if (out)
            out[i] = v[i].path;
        else
            free(v[i].path);
    }
    free(v);
    *paths = out;
    return out ? n : 0;
}

void sm__checkpoint_list_free(char **paths, size_t n)
{
    for (size_t i = 0; i < n; i++) free(paths[i]);
    free(paths);
}
