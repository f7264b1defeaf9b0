/* core/data/loader.c - the threaded loader.
 *
 * Positions 0, 1, 2... of the epoch order map to dataset indices order[pos % L], where the
 * order holds `repeat` permutations of the N samples (L = repeat * N). Workers claim
 * positions in increasing order and write each result into ring slot pos % cap; a worker may
 * claim pos only when pos < cursor + cap (its slot has been consumed) and pos < need_end (the
 * positions the rest of the epoch needs, grown by one per bad sample). The consumer takes
 * positions strictly in order, so which samples form a batch never depends on thread timing;
 * every random draw is keyed by (seed, epoch, dataset index) or (seed, epoch, batch).
 *
 * Shards (data-parallel ranks): the epoch order is cut into chunks of batch_size positions and
 * chunk c belongs to shard c % num_shards. A shard's loader walks its own stream of positions
 * k = 0, 1, 2...: stream position k is global position ((k / B) x S + shard) x B + k % B. All
 * of the above (cursor, claims, replacements of bad samples) is in stream positions; with one
 * shard the stream is the epoch order itself. */
#include "data/data_internal.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

enum { SM__SLOT_EMPTY = 0, SM__SLOT_BUSY, SM__SLOT_DONE };

typedef struct sm__slot {
    int state;
    int64_t pos, index;
    int label;
    int rc;       /* 0 ok; a data error (bad file) or a fatal one */
    bool known;   /* index was already known bad: not decoded again */
    sm_error err;
    float *img, *mask;
} sm__slot;

typedef struct sm__worker {
    sm_loader *l;
    sm_image a, b;
    uint8_t *buf;
    size_t cap;
    pthread_t thread;
} sm__worker;

typedef struct sm__bad {
    int64_t index;
    char *name, *reason;
} sm__bad;

struct sm_loader {
    sm_dataset ds;
    sm_pipeline p;
    sm_loader_opts o;
    int64_t n, len; /* samples; positions per epoch (repeat * n) */
    int64_t shard, shards; /* this loader's share of the epoch order (shards >= 1)        */
    int64_t *order;
    int64_t epoch, batch, nbatches;
    int64_t cursor, claim, need_end;
    int cap;
    sm__slot *slots;
    size_t img_floats, mask_floats;
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    sm__worker *workers;
    int nworkers, busy;
    bool stop, started;
    int failed; /* sticky status after an error */
    uint8_t *bad_flag;
    sm__bad *bad;
    size_t nbad, bad_cap;
    sm_batch b;
    sm__worker inline_w;
};

static bool sm__is_data_error(int rc)
{
    return rc == SM_EFORMAT || rc == SM_EUNSUPPORTED || rc == SM_ERANGE || rc == SM_EIO ||
           rc == SM_EDATA;
}

/* The epoch-order position of stream position k (see the top of this file). */
static int64_t sm__global(const sm_loader *l, int64_t k)
{
    int64_t B = l->o.batch_size;
    return ((k / B) * l->shards + l->shard) * B + k % B;
}

/* The dataset index at stream position k. */
static int64_t sm__index_at(const sm_loader *l, int64_t k) { return l->order[sm__global(l, k) % l->len]; }

/* How many positions of this shard's stream lie below epoch-order position `limit`. */
static int64_t sm__stream_below(const sm_loader *l, int64_t limit)
{
    int64_t B = l->o.batch_size, full = limit / B, part = limit % B;
    int64_t mine = full > l->shard ? (full - l->shard + l->shards - 1) / l->shards : 0;
    return mine * B + (part && full % l->shards == l->shard ? part : 0);
}

/* Decodes and transforms position pos (dataset index idx) into slot s. No lock held. */
static void sm__process(sm__worker *w, int64_t idx, sm__slot *s)
{
    sm_loader *l = w->l;
    sm_sample smp;
    memset(&smp, 0, sizeof smp);
    sm_error_clear(&s->err);
    s->index = idx;
    s->label = -1;
    int rc = l->ds.vt->get(l->ds.self, idx, &smp, &s->err);
    const char *name = smp.name ? smp.name : smp.path;
    if (rc == 0) {
        s->label = smp.label;
        if (smp.path) {
            size_t len = 0;
            rc = sm_file_read(smp.path, &w->buf, &len, &w->cap, &s->err);
            if (rc == 0) rc = sm_image_decode(w->buf, len, name, &l->p.decode, &w->a, NULL, &s->err);
        } else if (smp.pixels) {
            rc = sm_image_from_u8(&w->a, smp.pixels, smp.width, smp.height, smp.channels,
                                  l->p.decode.max_pixels, &s->err);
        } else {
            rc = sm_error_set(&s->err, SM_EINTERNAL, name, 0, 0, NULL, "reader returned an empty sample");
        }
    }
    if (rc == 0 && l->p.num_classes > 0 && smp.label >= l->p.num_classes)
        rc = sm_error_set(&s->err, SM_ECONFIG, name, 0, 0, "train_config.num_classes",
                          "label %d is out of range for num_classes %d", smp.label,
                          l->p.num_classes);
    if (rc == 0)
        rc = sm_pipeline_apply(&l->p, &w->a, name, l->o.seed, l->epoch, idx, s->img, s->mask,
                               &w->b, &s->err);
    if (rc && !s->err.file[0] && name) sm__path_copy(s->err.file, sizeof s->err.file, name);
    s->rc = rc;
}

static void *sm__worker_main(void *arg)
{
    sm__worker *w = arg;
    sm_loader *l = w->l;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stop && !(l->claim < l->need_end && l->claim < l->cursor + l->cap))
            pthread_cond_wait(&l->cv_work, &l->mu);
        if (l->stop) break;
        int64_t pos = l->claim++;
        sm__slot *s = &l->slots[pos % l->cap];
        int64_t idx = sm__index_at(l, pos);
        s->state = SM__SLOT_BUSY;
        s->pos = pos;
        s->known = l->bad_flag[idx] != 0;
        l->busy++;
        pthread_mutex_unlock(&l->mu);
        if (s->known) {
            s->index = idx;
            s->rc = SM_EDATA;
        } else {
            sm__process(w, idx, s);
        }
        pthread_mutex_lock(&l->mu);
        s->state = SM__SLOT_DONE;
        l->busy--;
        pthread_cond_broadcast(&l->cv_done);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static int sm__fail(sm_loader *l, int rc)
{
    l->failed = rc;
    return rc;
}

int64_t sm_loader_num_batches(const sm_loader *l) { return l->nbatches; }
int64_t sm_loader_position(const sm_loader *l) { return l->cursor; }
size_t sm_loader_bad_count(const sm_loader *l) { return l->nbad; }
const char *sm_loader_bad_name(const sm_loader *l, size_t i) { return i < l->nbad ? l->bad[i].name : NULL; }
const char *sm_loader_bad_reason(const sm_loader *l, size_t i) { return i < l->nbad ? l->bad[i].reason : NULL; }

void sm_loader_opts_from_config(sm_loader_opts *o, const sm_cfg *root, const char *section,
                                sm_split split)
{
    const sm_cfg *s = sm_cfg_get(root, section), *tc = sm_cfg_get(root, "train_config");
    memset(o, 0, sizeof *o);
    o->batch_size = tc && sm_cfg_get(tc, "batch_size") ? (int)sm_cfg_int(tc, "batch_size") : 1;
    o->num_workers = s && sm_cfg_get(s, "num_workers") ? (int)sm_cfg_int(s, "num_workers") : 8;
    o->prefetch = s && sm_cfg_get(s, "prefetch_size") ? (int)sm_cfg_int(s, "prefetch_size") : 30;
    o->repeat = s && sm_cfg_get(s, "repeat") ? (int)sm_cfg_int(s, "repeat") : 1;
    o->shuffle = split == SM_SPLIT_TRAIN && (!s || !sm_cfg_get(s, "shuffle") || sm_cfg_bool(s, "shuffle"));
    o->drop_last = split == SM_SPLIT_TRAIN;
    o->seed = sm_cfg_get(root, "seed") ? (uint64_t)sm_cfg_int(root, "seed") : 0;
    const char *bad = s ? sm_cfg_str(s, "on_bad_image") : NULL;
    o->on_bad = bad && sm__strcasecmp(bad, "fail") == 0 ? SM_BAD_FAIL : SM_BAD_SKIP;
    o->max_bad_fraction = s && sm_cfg_get(s, "max_bad_fraction") ? sm_cfg_float(s, "max_bad_fraction") : 0.01;
}

static void sm__worker_deinit(sm__worker *w)
{
    sm_image_deinit(&w->a);
    sm_image_deinit(&w->b);
    free(w->buf);
}

void sm_loader_stop(sm_loader *l)
{
    if (!l || !l->started) return;
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_broadcast(&l->cv_work);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->nworkers; i++) pthread_join(l->workers[i].thread, NULL);
    l->started = false;
    if (!l->failed) l->failed = SM_ECANCELED;
}

void sm_loader_free(sm_loader *l)
{
    if (!l) return;
    sm_loader_stop(l);
    for (int i = 0; i < l->nworkers; i++) sm__worker_deinit(&l->workers[i]);
    sm__worker_deinit(&l->inline_w);
    free(l->workers);
    for (int i = 0; l->slots && i < l->cap; i++) {
        free(l->slots[i].img);
        free(l->slots[i].mask);
    }
    free(l->slots);
    for (size_t i = 0; i < l->nbad; i++) {
        free(l->bad[i].name);
        free(l->bad[i].reason);
    }
    free(l->bad);
    free(l->bad_flag);
    free(l->order);
    free(l->b.images);
    free(l->b.mask);
    free(l->b.labels);
    free(l->b.targets);
    free(l->b.indices);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv_work);
    pthread_cond_destroy(&l->cv_done);
    free(l);
}

int sm_loader_new(const sm_dataset *ds, const sm_pipeline *p, const sm_loader_opts *o,
                  sm_loader **out, sm_error *err)
{
    *out = NULL;
    int rc = sm_pipeline_check(p, err);
    if (rc) return rc;
    if (!ds || !ds->vt || o->batch_size < 1 || o->num_workers < 0 || o->num_workers > 256)
        return sm_error_set(err, SM_EINVAL, NULL, 0, 0, NULL,
                            "loader: batch_size %d and num_workers %d must be >= 1 and in [0, 256]",
                            o->batch_size, o->num_workers);
    bool mix = p->mode == SM_PIPELINE_FINETUNE && (p->mixup_alpha > 0 || p->cutmix_alpha > 0);
    if (mix && o->batch_size % 2)
        return sm_error_set(err, SM_ECONFIG, NULL, 0, 0, "train_config.batch_size",
                            "Mixup/CutMix needs an even batch size, not %d", o->batch_size);
    int K = p->num_classes ? p->num_classes : ds->vt->num_classes(ds->self);
    if (mix && K < 1)
        return sm_error_set(err, SM_ECONFIG, NULL, 0, 0, "train_config.num_classes",
                            "Mixup/CutMix needs num_classes >= 1");
    int64_t n = ds->vt->count(ds->self);
    if (n < 1) return sm_error_set(err, SM_EDATA, NULL, 0, 0, NULL, "the dataset has no samples");
    int64_t shards = o->num_shards > 1 ? o->num_shards : 1;
    if (o->shard < 0 || o->shard >= shards)
        return sm_error_set(err, SM_EINVAL, NULL, 0, 0, NULL, "loader: shard %d of %d",
                            o->shard, o->num_shards);
    if (o->drop_last && n * (o->repeat > 1 ? o->repeat : 1) < o->batch_size * shards)
        return sm_error_set(err, SM_EDATA, NULL, 0, 0, "train_config.batch_size",
                            shards > 1 ? "the dataset has %lld samples, fewer than one batch of %d "
                                         "on each of the %lld ranks"
                                       : "the dataset has %lld samples, fewer than one batch of %d",
                            (long long)n, o->batch_size, (long long)shards);
    sm_loader *l = calloc(1, sizeof *l);
    if (!l) return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv_work, NULL);
    pthread_cond_init(&l->cv_done, NULL);
    l->ds = *ds;
    l->p = *p;
    l->o = *o;
    l->n = n;
    l->len = n * (o->repeat > 1 ? o->repeat : 1);
    l->nworkers = o->num_workers;
    l->p.num_classes = K;
    l->shard = o->shard;
    l->shards = shards;
    int B = o->batch_size, S = p->image_size, C = p->channels;
    /* every shard gets as many training batches; evaluation shares out the last, short one */
    l->nbatches = o->drop_last ? l->len / (B * shards) : (sm__stream_below(l, l->len) + B - 1) / B;
    l->cap = l->nworkers ? B + (o->prefetch > l->nworkers ? o->prefetch : l->nworkers) : 1;
    l->img_floats = (size_t)C * S * S;
    int side = p->use_mask ? S / p->mask.model_patch_size : 0;
    l->mask_floats = (size_t)side * side;
    l->order = malloc(sizeof(int64_t) * (size_t)l->len);
    l->bad_flag = calloc((size_t)n, 1);
    l->slots = calloc((size_t)l->cap, sizeof *l->slots);
    l->workers = calloc((size_t)(l->nworkers ? l->nworkers : 1), sizeof *l->workers);
    l->b.images = malloc(sizeof(float) * l->img_floats * B);
    l->b.labels = malloc(sizeof(int) * B);
    l->b.indices = malloc(sizeof(int64_t) * B);
    if (side) l->b.mask = malloc(sizeof(float) * l->mask_floats * B);
    if (mix) l->b.targets = malloc(sizeof(float) * (size_t)K * B);
    bool ok = l->order && l->bad_flag && l->slots && l->workers && l->b.images && l->b.labels &&
              l->b.indices && (!side || l->b.mask) && (!mix || l->b.targets);
    for (int i = 0; ok && i < l->cap; i++) {
        l->slots[i].img = malloc(sizeof(float) * l->img_floats);
        l->slots[i].mask = side ? malloc(sizeof(float) * l->mask_floats) : NULL;
        ok = l->slots[i].img && (!side || l->slots[i].mask);
    }
    if (!ok) {
        sm_loader_free(l);
        return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory for the loader");
    }
    l->b.channels = C;
    l->b.height = l->b.width = S;
    l->b.mask_side = side;
    l->b.num_classes = K;
    l->inline_w.l = l;
    l->need_end = 0; /* workers idle until sm_loader_start */
    for (int i = 0; i < l->nworkers; i++) {
        l->workers[i].l = l;
        if (pthread_create(&l->workers[i].thread, NULL, sm__worker_main, &l->workers[i]) != 0) {
            l->nworkers = i;
            l->started = i > 0;
            sm_loader_free(l);
            return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "cannot start loader thread %d", i);
        }
        l->started = true;
    }
    *out = l;
    return 0;
}

int sm_loader_start(sm_loader *l, int64_t epoch, int64_t batch, int64_t position, sm_error *err)
{
    if (batch < 0 || batch > l->nbatches || position < 0)
        return sm_error_set(err, SM_EINVAL, NULL, 0, 0, NULL,
                            "loader: cannot start at batch %lld, position %lld (%lld batches)",
                            (long long)batch, (long long)position, (long long)l->nbatches);
    if (l->failed == SM_ECANCELED && !l->started && l->nworkers)
        return sm_error_set(err, SM_ECANCELED, NULL, 0, 0, NULL, "loader was stopped");
    pthread_mutex_lock(&l->mu);
    l->need_end = 0; /* no new claims */
    while (l->busy > 0) pthread_cond_wait(&l->cv_done, &l->mu);
    for (int i = 0; i < l->cap; i++) l->slots[i].state = SM__SLOT_EMPTY;
    for (int64_t pass = 0; pass * l->n < l->len; pass++) {
        int64_t *ord = l->order + pass * l->n;
        for (int64_t i = 0; i < l->n; i++) ord[i] = i;
        if (!l->o.shuffle) continue;
        sm_rng r; /* Fisher-Yates keyed by (seed, epoch, pass) */
        sm_rng_init(&r, l->o.seed, (uint64_t)epoch, (uint64_t)pass, SM__RNG_ORDER);
        for (int64_t i = l->n - 1; i > 0; i--) {
            int64_t j = (int64_t)sm_rng_below(&r, (uint64_t)i + 1), t = ord[i];
            ord[i] = ord[j];
            ord[j] = t;
        }
    }
    l->epoch = epoch;
    l->batch = batch;
    l->cursor = l->claim = position;
    l->need_end = l->o.drop_last ? position + (l->nbatches - batch) * l->o.batch_size
                                 : sm__stream_below(l, l->len);
    l->failed = 0;
    pthread_cond_broadcast(&l->cv_work);
    pthread_mutex_unlock(&l->mu);
    return 0;
}

/* Records dataset index idx as bad (lock held). */
static int sm__add_bad(sm_loader *l, int64_t idx, const char *name, const char *reason)
{
    if (l->nbad == l->bad_cap) {
        size_t cap = l->bad_cap ? 2 * l->bad_cap : 16;
        sm__bad *nb = realloc(l->bad, cap * sizeof *nb);
        if (!nb) return SM_ENOMEM;
        l->bad = nb;
        l->bad_cap = cap;
    }
    l->bad[l->nbad].index = idx;
    l->bad[l->nbad].name = sm__strdup(name && name[0] ? name : "?");
    l->bad[l->nbad].reason = sm__strdup(reason ? reason : "");
    if (!l->bad[l->nbad].name || !l->bad[l->nbad].reason) {
        free(l->bad[l->nbad].name);
        free(l->bad[l->nbad].reason);
        return SM_ENOMEM;
    }
    l->nbad++;
    l->bad_flag[idx] = 1;
    return 0;
}

static bool sm__too_many_bad(const sm_loader *l)
{
    return l->nbad > 0 && (double)l->nbad > l->o.max_bad_fraction * (double)l->n;
}

/* Waits (lock held) until the slot of `pos` is done, reporting slow samples. */
static void sm__wait_slot(sm_loader *l, int64_t pos)
{
    sm__slot *s = &l->slots[pos % l->cap];
    int waited = 0;
    while (!(s->state == SM__SLOT_DONE && s->pos == pos)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 30;
        if (pthread_cond_timedwait(&l->cv_done, &l->mu, &ts) == ETIMEDOUT) {
            waited += 30;
            int64_t idx = sm__index_at(l, pos);
            sm_sample smp = {0};
            sm_error e;
            sm_error_clear(&e);
            const char *what = l->ds.vt->get(l->ds.self, idx, &smp, &e) ? NULL
                               : smp.name                             ? smp.name
                                                                      : smp.path;
            sm_log(SM_LOG_WARN, "data loader: waiting %d s for %s (dataset index %lld): a slow "
                   "or hung read (network file system?)", waited, what ? what : "a sample",
                   (long long)idx);
        }
    }
}

/* Handles one finished slot: 1 = a good sample, 0 = skipped, < 0 = error. */
static int sm__take(sm_loader *l, sm__slot *s, sm_error *err)
{
    if (s->rc == 0) return 1;
    if (s->known) return 0; /* reported when first met */
    if (!sm__is_data_error(s->rc)) {
        if (err) *err = s->err;
        return s->rc;
    }
    char msg[SM_ERROR_LINE_MAX];
    sm_error_format(&s->err, msg, sizeof msg);
    if (l->o.on_bad == SM_BAD_FAIL) {
        if (err) *err = s->err;
        if (err) sm__strlcpy(err->path, "on_bad_image: fail", sizeof err->path);
        return SM_EDATA;
    }
    /* The same index can be in the prefetch window twice (repeat > 1, small datasets): count and
     * report it once. bad_flag is read by the workers under the lock, so it is written there. */
    pthread_mutex_lock(&l->mu);
    bool seen = l->bad_flag[s->index] != 0;
    int added = seen ? 0 : sm__add_bad(l, s->index, s->err.file, s->err.text);
    pthread_mutex_unlock(&l->mu);
    if (seen) return 0;
    if (added) return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    sm_log(SM_LOG_WARN, "skipping bad image: %s", msg);
    if (l->shards == 1 && sm__too_many_bad(l))
        return sm_error_set(err, SM_EDATA, NULL, 0, 0, "max_bad_fraction",
                            "%zu of %lld samples are bad (more than max_bad_fraction %g); the "
                            "last: %s", l->nbad, (long long)l->n, l->o.max_bad_fraction, msg);
    return 0;
}

int sm_loader_check_bad(const sm_loader *l, sm_error *err)
{
    if (!sm__too_many_bad(l)) return 0;
    return sm_error_set(err, SM_EDATA, NULL, 0, 0, "max_bad_fraction",
                        "%zu of %lld samples are bad (more than max_bad_fraction %g); the last: "
                        "%s: %s", l->nbad, (long long)l->n, l->o.max_bad_fraction,
                        l->bad[l->nbad - 1].name, l->bad[l->nbad - 1].reason);
}

int64_t sm_loader_bad_index(const sm_loader *l, size_t i) { return i < l->nbad ? l->bad[i].index : -1; }

int sm_loader_add_bad(sm_loader *l, int64_t index, const char *name, const char *reason,
                      sm_error *err)
{
    if (index < 0 || index >= l->n)
        return sm_error_set(err, SM_EINVAL, NULL, 0, 0, NULL,
                            "loader: bad sample index %lld outside the %lld samples",
                            (long long)index, (long long)l->n);
    pthread_mutex_lock(&l->mu);
    int rc = l->bad_flag[index] ? 0 : sm__add_bad(l, index, name, reason);
    pthread_mutex_unlock(&l->mu);
    return rc ? sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory") : 0;
}

int sm_loader_next(sm_loader *l, const sm_batch **out, sm_error *err)
{
    *out = NULL;
    if (l->failed)
        return sm_error_set(err, l->failed, NULL, 0, 0, NULL, "the loader stopped after an error");
    if (l->batch >= l->nbatches) return 0;
    int B = l->o.batch_size, j = 0;
    /* wrap at most once */
    int64_t end_cap = sm__stream_below(l, l->o.drop_last ? 2 * l->len : l->len);
    while (j < B) {
        pthread_mutex_lock(&l->mu);
        if (l->cursor >= l->need_end) {
            if (l->cursor >= end_cap || !l->o.drop_last) {
                pthread_mutex_unlock(&l->mu);
                break;
            }
            l->need_end = l->cursor + (B - j); /* defensive: should not happen */
        }
        int64_t pos = l->cursor;
        sm__slot *s = &l->slots[pos % l->cap];
        if (l->nworkers) {
            sm__wait_slot(l, pos);
            pthread_mutex_unlock(&l->mu);
        } else {
            int64_t idx = sm__index_at(l, pos);
            s->pos = pos;
            s->known = l->bad_flag[idx] != 0;
            pthread_mutex_unlock(&l->mu);
            if (s->known) {
                s->index = idx;
                s->rc = SM_EDATA;
            } else {
                sm__process(&l->inline_w, idx, s);
            }
        }
        int got = sm__take(l, s, err);
        if (got < 0) return sm__fail(l, got);
        if (got) {
            memcpy(l->b.images + (size_t)j * l->img_floats, s->img, sizeof(float) * l->img_floats);
            if (l->b.mask)
                memcpy(l->b.mask + (size_t)j * l->mask_floats, s->mask, sizeof(float) * l->mask_floats);
            l->b.labels[j] = s->label;
            l->b.indices[j] = s->index;
            j++;
        }
        pthread_mutex_lock(&l->mu);
        if (!got && l->o.drop_last) l->need_end++; /* a replacement position */
        s->state = SM__SLOT_EMPTY;
        l->cursor++;
        pthread_cond_broadcast(&l->cv_work);
        pthread_mutex_unlock(&l->mu);
    }
    if (j == 0 || (j < B && l->o.drop_last)) {
        if (l->o.drop_last && j < B)
            return sm__fail(l, sm_error_set(err, SM_EDATA, NULL, 0, 0, NULL,
                                            "not enough good samples to fill a batch"));
        l->batch = l->nbatches;
        return 0;
    }
    sm_batch *b = &l->b;
    b->epoch = l->epoch;
    b->index = l->batch;
    b->size = j;
    if (b->targets) {
        sm_rng r;
        /* keyed by the batch's chunk of the epoch order, the same whatever the shards */
        uint64_t chunk = (uint64_t)(l->batch * l->shards + l->shard);
        sm_rng_init(&r, l->o.seed, (uint64_t)l->epoch, chunk, SM__RNG_MIXUP);
        sm_mixup_apply(b->images, j, b->channels, b->height, b->width, b->labels,
                       b->num_classes, l->p.mixup_alpha, l->p.cutmix_alpha, l->p.mix_prob,
                       l->p.switch_prob, l->p.smoothing, &r, b->targets);
    }
    l->batch++;
    *out = b;
    return 0;
}

int sm_loader_write_bad_report(const sm_loader *l, const char *path, sm_error *err)
{
    FILE *f = fopen(path, "w");
    if (!f) return sm_error_set(err, SM_EIO, path, 0, 0, NULL, "cannot create: %s", strerror(errno));
    for (size_t i = 0; i < l->nbad; i++) fprintf(f, "%s\t%s\n", l->bad[i].name, l->bad[i].reason);
    if (fclose(f) != 0) return sm_error_set(err, SM_EIO, path, 0, 0, NULL, "write failed: %s", strerror(errno));
    return 0;
}
