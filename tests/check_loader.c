/* tests/check_loader.c - the threaded loader over a small reader defined here: batches are
 * bit-identical with 0, 1 and 4 workers and after a resume; bad files are skipped (listed, never
 * trained on) or stop the run; too many bad files stop it; stop mid-epoch is clean; shards
 * (data-parallel ranks) split each global batch and share their bad files. */
#include "imgutil.h"
#include "testutil.h"

#include <png.h>
#include <string.h>

/* ---- a reader over files named in a list ------------------------------------------------ */
typedef struct list_ds {
    int n;
    char **paths;
    int *labels;
} list_ds;

static int64_t ld_count(const void *self) { return ((const list_ds *)self)->n; }
static int ld_classes(const void *self) { (void)self; return 4; }
static int ld_get(const void *self, int64_t i, sm_sample *out, sm_error *err)
{
    const list_ds *d = self;
    (void)err;
    memset(out, 0, sizeof *out);
    out->path = out->name = d->paths[i];
    out->label = d->labels[i];
    return 0;
}
static void ld_close(void *self) { (void)self; }
static const sm_dataset_vtbl ld_vt = {
    .hdr = SM_COMPONENT_INIT(sm_dataset_vtbl, SM_KIND_DATASET, "testlist", "test", NULL, NULL),
    .close = ld_close,
    .count = ld_count,
    .num_classes = ld_classes,
    .get = ld_get,
};

static char *dir;
static list_ds ds;
static sm_dataset dset;

/* n images of varied sizes; the indices in `bad` are truncated JPEGs */
static void make_dataset(int n, const int *bad, int nbad)
{
    dir = sm_test_tmpdir();
    ds.n = n;
    ds.paths = calloc(n, sizeof(char *));
    ds.labels = calloc(n, sizeof(int));
    for (int i = 0; i < n; i++) {
        char p[4200];
        int w = 20 + (i * 7) % 30, h = 18 + (i * 5) % 25;
        uint8_t *px = malloc((size_t)w * h * 3);
        for (int k = 0; k < w * h * 3; k++) px[k] = (uint8_t)(k * 31 + i * 17);
        bool is_bad = false;
        for (int b = 0; b < nbad; b++) is_bad |= bad[b] == i;
        if (i % 2 || is_bad) {
            snprintf(p, sizeof p, "%s/img%03d.jpg", dir, i);
            sm_img_write_jpeg(p, px, w, h, 3, 90, false, false);
            if (is_bad) {
                size_t len;
                char *b = sm_test_read_file(p, &len);
                sm_test_write_file(p, b, len / 2);
                free(b);
            }
        } else {
            snprintf(p, sizeof p, "%s/img%03d.png", dir, i);
            sm_img_write_png(p, px, w, h, PNG_COLOR_TYPE_RGB, 8, NULL, 0);
        }
        free(px);
        ds.paths[i] = strdup(p);
        ds.labels[i] = i % 4;
    }
    dset.vt = &ld_vt;
    dset.self = &ds;
    dset.split = SM_SPLIT_TRAIN;
}

static void teardown(void)
{
    for (int i = 0; i < ds.n; i++) free(ds.paths[i]);
    free(ds.paths);
    free(ds.labels);
    memset(&ds, 0, sizeof ds);
    sm_test_rmtree(dir);
    free(dir);
}

static sm_loader_opts opts(int B, int workers)
{
    sm_loader_opts o = {.batch_size = B, .num_workers = workers, .prefetch = 3, .shuffle = true,
                        .drop_last = true, .seed = 42, .on_bad = SM_BAD_SKIP,
                        .max_bad_fraction = 0.2};
    return o;
}

typedef struct run {
    int nb;
    float *img;
    float *mask;
    float *tgt;
    int64_t idx[64];
} run;

/* Collects all batches of one epoch (images, masks or targets, indices). */
static run collect(const sm_pipeline *p, sm_loader_opts o, int64_t epoch, int64_t batch,
                   int64_t pos, sm_loader **keep)
{
    sm_loader *l;
    sm_error e;
    sm_error_clear(&e);
    ck_assert_msg(sm_loader_new(&dset, p, &o, &l, &e) == 0, "%s", e.text);
    ck_assert_int_eq(sm_loader_start(l, epoch, batch, pos, &e), 0);
    run r = {0};
    size_t per = (size_t)3 * p->image_size * p->image_size;
    r.img = malloc(sizeof(float) * per * 64);
    r.mask = calloc(64 * 64, sizeof(float));
    r.tgt = calloc(64 * 8, sizeof(float));
    const sm_batch *b;
    int k = 0;
    while (sm_loader_next(l, &b, &e) == 0 && b) {
        ck_assert_int_eq(b->size, o.batch_size);
        memcpy(r.img + per * k, b->images, sizeof(float) * per * b->size);
        if (b->mask) memcpy(r.mask + 4 * k, b->mask, sizeof(float) * 4 * b->size);
        if (b->targets) memcpy(r.tgt + 4 * k, b->targets, sizeof(float) * 4 * b->size);
        for (int i = 0; i < b->size; i++) r.idx[k + i] = b->indices[i];
        k += b->size;
        r.nb++;
    }
    ck_assert_msg(e.code == 0, "%s", e.text);
    if (keep) *keep = l;
    else sm_loader_free(l);
    return r;
}

static void run_free(run *r)
{
    free(r->img);
    free(r->mask);
    free(r->tgt);
}

START_TEST(test_workers_bit_identical)
{
    make_dataset(20, NULL, 0);
    sm_pipeline p;
    sm_pipeline_defaults(&p, SM_PIPELINE_PRETRAIN, 32);
    p.mask = (sm_mask_spec){32, 32, 16, 0.6};
    run r0 = collect(&p, opts(4, 0), 3, 0, 0, NULL);
    run r1 = collect(&p, opts(4, 1), 3, 0, 0, NULL);
    run r4 = collect(&p, opts(4, 4), 3, 0, 0, NULL);
    ck_assert_int_eq(r0.nb, 5);
    size_t bytes = sizeof(float) * 3 * 32 * 32 * 20;
    ck_assert_mem_eq(r0.img, r1.img, bytes);
    ck_assert_mem_eq(r0.img, r4.img, bytes);
    ck_assert_mem_eq(r0.mask, r4.mask, sizeof(float) * 4 * 20);
    ck_assert_mem_eq(r0.idx, r4.idx, sizeof(int64_t) * 20);
    /* a permutation of the dataset */
    int seen[20] = {0};
    for (int i = 0; i < 20; i++) seen[r0.idx[i]]++;
    for (int i = 0; i < 20; i++) ck_assert_int_eq(seen[i], 1);
    /* each mask has exactly one of its single 32x32 cell... ratio 0.6 of 1 cell = 1 */
    for (int i = 0; i < 20; i++)
        for (int k = 0; k < 4; k++) ck_assert_float_eq(r0.mask[4 * i + k], 1.0f);
    /* another epoch: another order */
    run r5 = collect(&p, opts(4, 4), 4, 0, 0, NULL);
    ck_assert(memcmp(r0.idx, r5.idx, sizeof(int64_t) * 20) != 0);
    run_free(&r0);
    run_free(&r1);
    run_free(&r4);
    run_free(&r5);
    teardown();
}
END_TEST

START_TEST(test_finetune_mixup_identical_and_resume)
{
    make_dataset(16, NULL, 0);
    sm_pipeline p;
    sm_pipeline_defaults(&p, SM_PIPELINE_FINETUNE, 24);
    p.num_classes = 4;
    run a = collect(&p, opts(4, 1), 1, 0, 0, NULL);
    run b = collect(&p, opts(4, 4), 1, 0, 0, NULL);
    ck_assert_int_eq(a.nb, 4);
    size_t per = 3 * 24 * 24;
    ck_assert_mem_eq(a.img, b.img, sizeof(float) * per * 16);
    ck_assert_mem_eq(a.tgt, b.tgt, sizeof(float) * 4 * 16);
    /* resume at batch 2 (position 8): the same batches 2 and 3 */
    run c = collect(&p, opts(4, 3), 1, 2, 8, NULL);
    ck_assert_int_eq(c.nb, 2);
    ck_assert_mem_eq(c.img, a.img + per * 8, sizeof(float) * per * 8);
    ck_assert_mem_eq(c.tgt, a.tgt + 4 * 8, sizeof(float) * 4 * 8);
    run_free(&a);
    run_free(&b);
    run_free(&c);
    teardown();
}
END_TEST

START_TEST(test_bad_files_skipped)
{
    int bad[2] = {3, 8};
    make_dataset(20, bad, 2);
    sm_pipeline p;
    sm_pipeline_defaults(&p, SM_PIPELINE_PRETRAIN, 32);
    p.mask = (sm_mask_spec){32, 32, 16, 0.6};
    sm_loader *l;
    run r1 = collect(&p, opts(4, 1), 0, 0, 0, NULL);
    run r4 = collect(&p, opts(4, 4), 0, 0, 0, &l);
    /* batches stay full; the same replacements whatever the worker count */
    ck_assert_int_eq(r4.nb, 5);
    ck_assert_mem_eq(r1.idx, r4.idx, sizeof(int64_t) * 20);
    ck_assert_mem_eq(r1.img, r4.img, sizeof(float) * 3 * 32 * 32 * 20);
    for (int i = 0; i < 20; i++) ck_assert(r4.idx[i] != 3 && r4.idx[i] != 8); /* never trained on */
    ck_assert_int_eq(sm_loader_bad_count(l), 2);
    bool named[2] = {false, false};
    for (size_t i = 0; i < 2; i++) {
        ck_assert_msg(strstr(sm_loader_bad_reason(l, i), "Premature end") != NULL, "%s",
                      sm_loader_bad_reason(l, i));
        named[0] |= strstr(sm_loader_bad_name(l, i), "img003.jpg") != NULL;
        named[1] |= strstr(sm_loader_bad_name(l, i), "img008.jpg") != NULL;
    }
    ck_assert(named[0] && named[1]);
    char rep[4300];
    snprintf(rep, sizeof rep, "%s/bad.txt", dir);
    ck_assert_int_eq(sm_loader_write_bad_report(l, rep, NULL), 0);
    size_t len;
    char *txt = sm_test_read_file(rep, &len);
    ck_assert(strstr(txt, "img003.jpg\t") && strstr(txt, "img008.jpg\t"));
    free(txt);
    /* the next epoch skips them again without counting them twice */
    ck_assert_int_eq(sm_loader_start(l, 1, 0, 0, NULL), 0);
    const sm_batch *b;
    int n = 0;
    while (sm_loader_next(l, &b, NULL) == 0 && b) n++;
    ck_assert_int_eq(n, 5);
    ck_assert_int_eq(sm_loader_bad_count(l), 2);
    sm_loader_free(l);
    run_free(&r1);
    run_free(&r4);
    teardown();
}
END_TEST

/* A bad file that appears several times in the prefetch window (repeat > 1 on a small
 * dataset) is counted once, whatever the number of workers. */
START_TEST(test_bad_file_counted_once)
{
    int bad[1] = {0};
    make_dataset(4, bad, 1);
    sm_pipeline p;
    sm_pipeline_defaults(&p, SM_PIPELINE_PRETRAIN, 32);
    p.mask = (sm_mask_spec){32, 32, 16, 0.6};
    int batches[2];
    for (int k = 0; k < 2; k++) {
        sm_loader_opts o = opts(2, k ? 2 : 0);
        o.repeat = 8;
        o.prefetch = 30;
        o.max_bad_fraction = 1.0;
        sm_loader *l;
        sm_error e;
        sm_error_clear(&e);
        ck_assert_int_eq(sm_loader_new(&dset, &p, &o, &l, &e), 0);
        ck_assert_int_eq(sm_loader_start(l, 0, 0, 0, &e), 0);
        const sm_batch *b;
        int n = 0, rc;
        while ((rc = sm_loader_next(l, &b, &e)) == 0 && b) n++;
        ck_assert_msg(rc == 0, "workers %d: %s", k ? 2 : 0, e.text);
        ck_assert_int_eq(sm_loader_bad_count(l), 1);
        batches[k] = n;
        sm_loader_free(l);
    }
    ck_assert_int_eq(batches[0], batches[1]);
    teardown();
}
END_TEST

START_TEST(test_bad_policy_fail_and_fraction)
{
    int bad[3] = {1, 2, 5};
    make_dataset(12, bad, 3);
    sm_pipeline p;
    sm_pipeline_defaults(&p, SM_PIPELINE_PRETRAIN, 32);
    p.mask = (sm_mask_spec){32, 32, 16, 0.6};
    sm_loader_opts o = opts(2, 2);
    o.on_bad = SM_BAD_FAIL;
    sm_loader *l;
    ck_assert_int_eq(sm_loader_new(&dset, &p, &o, &l, NULL), 0);
    sm_loader_start(l, 0, 0, 0, NULL);
    const sm_batch *b;
    sm_error e;
    sm_error_clear(&e);
    int rc;
    while ((rc = sm_loader_next(l, &b, &e)) == 0 && b) {}
    ck_assert_int_eq(rc, SM_EDATA);
    ck_assert_msg(strstr(e.file, "img00") && strstr(e.text, "Premature end"), "%s: %s", e.file, e.text);
    ck_assert_int_eq(sm_loader_next(l, &b, NULL), SM_EDATA); /* sticky */
    sm_loader_free(l);
    /* skip, but 3 of 12 bad is more than max_bad_fraction 0.2 */
    o.on_bad = SM_BAD_SKIP;
    ck_assert_int_eq(sm_loader_new(&dset, &p, &o, &l, NULL), 0);
    sm_loader_start(l, 0, 0, 0, NULL);
    sm_error_clear(&e);
    while ((rc = sm_loader_next(l, &b, &e)) == 0 && b) {}
    ck_assert_int_eq(rc, SM_EDATA);
    ck_assert_msg(strstr(e.text, "max_bad_fraction"), "%s", e.text);
    sm_loader_free(l);
    teardown();
}
END_TEST

START_TEST(test_stop_mid_epoch_and_errors)
{
    make_dataset(24, NULL, 0);
    sm_pipeline p;
    sm_pipeline_defaults(&p, SM_PIPELINE_FINETUNE, 16);
    p.num_classes = 4;
    sm_loader_opts o = opts(3, 4);
    sm_loader *l;
    sm_error e;
    sm_error_clear(&e);
    /* Mixup needs an even batch */
    ck_assert_int_eq(sm_loader_new(&dset, &p, &o, &l, &e), SM_ECONFIG);
    ck_assert_msg(strstr(e.text, "even"), "%s", e.text);
    o.batch_size = 4;
    p.num_classes = 3; /* labels go up to 3: out of range is a config error, not a bad file */
    ck_assert_int_eq(sm_loader_new(&dset, &p, &o, &l, NULL), 0);
    sm_loader_start(l, 0, 0, 0, NULL);
    const sm_batch *b;
    sm_error_clear(&e);
    int rc;
    while ((rc = sm_loader_next(l, &b, &e)) == 0 && b) {}
    ck_assert_int_eq(rc, SM_ECONFIG);
    ck_assert_msg(strstr(e.text, "num_classes"), "%s", e.text);
    sm_loader_free(l);
    p.num_classes = 4;
    ck_assert_int_eq(sm_loader_new(&dset, &p, &o, &l, NULL), 0);
    sm_loader_start(l, 0, 0, 0, NULL);
    ck_assert_int_eq(sm_loader_next(l, &b, NULL), 0);
    ck_assert_ptr_nonnull(b);
    sm_loader_stop(l); /* workers busy prefetching: joined cleanly */
    ck_assert_int_eq(sm_loader_next(l, &b, NULL), SM_ECANCELED);
    sm_loader_free(l);
    /* an empty dataset and a dataset smaller than a batch are errors at creation */
    ds.n = 0;
    sm_error_clear(&e);
    ck_assert_int_eq(sm_loader_new(&dset, &p, &o, &l, &e), SM_EDATA);
    ds.n = 3;
    ck_assert_int_eq(sm_loader_new(&dset, &p, &o, &l, NULL), SM_EDATA);
    ds.n = 24;
    teardown();
}
END_TEST

START_TEST(test_eval_partial_batch)
{
    make_dataset(10, NULL, 0);
    sm_pipeline p;
    sm_pipeline_defaults(&p, SM_PIPELINE_EVAL, 16);
    sm_loader_opts o = opts(4, 2);
    o.shuffle = false;
    o.drop_last = false;
    sm_loader *l;
    ck_assert_int_eq(sm_loader_new(&dset, &p, &o, &l, NULL), 0);
    ck_assert_int_eq(sm_loader_num_batches(l), 3);
    sm_loader_start(l, 0, 0, 0, NULL);
    const sm_batch *b;
    int sizes[4] = {0}, k = 0;
    while (sm_loader_next(l, &b, NULL) == 0 && b) {
        ck_assert_ptr_null(b->targets);
        ck_assert_ptr_null(b->mask);
        for (int i = 0; i < b->size; i++) ck_assert_int_eq(b->indices[i], k * 4 + i); /* in order */
        for (int i = 0; i < b->size; i++) ck_assert_int_eq(b->labels[i], (k * 4 + i) % 4);
        sizes[k++] = b->size;
    }
    ck_assert_int_eq(k, 3);
    ck_assert_int_eq(sizes[2], 2);
    sm_loader_free(l);
    teardown();
}
END_TEST

START_TEST(test_repeat_and_dataset_classes)
{
    make_dataset(10, NULL, 0);
    sm_pipeline p;
    sm_pipeline_defaults(&p, SM_PIPELINE_FINETUNE, 16);
    p.num_classes = 0; /* null in the config: the dataset's 4 classes */
    sm_loader_opts o = opts(4, 2);
    o.repeat = 2;
    sm_loader *l;
    ck_assert_int_eq(sm_loader_new(&dset, &p, &o, &l, NULL), 0);
    ck_assert_int_eq(sm_loader_num_batches(l), 5); /* 2 passes of 10 */
    sm_loader_start(l, 0, 0, 0, NULL);
    const sm_batch *b;
    int seen[10] = {0};
    while (sm_loader_next(l, &b, NULL) == 0 && b) {
        ck_assert_int_eq(b->num_classes, 4);
        ck_assert_ptr_nonnull(b->targets);
        for (int i = 0; i < b->size; i++) seen[b->indices[i]]++;
    }
    for (int i = 0; i < 10; i++) ck_assert_int_eq(seen[i], 2); /* each sample once per pass */
    sm_loader_free(l);
    teardown();
}
END_TEST

/* Shards (data-parallel ranks): shard r's batch k is chunk k x S + r of the epoch order, so the
 * S shards' batch k together are the single loader's batch k of S x B (images, masks and indices
 * bit-identical), Mixup is keyed by the chunk, and evaluation shares every sample out once. */
START_TEST(test_shards_split_the_global_batch)
{
    make_dataset(23, NULL, 0);
    sm_pipeline p;
    sm_pipeline_defaults(&p, SM_PIPELINE_PRETRAIN, 32);
    p.mask = (sm_mask_spec){32, 32, 16, 0.6};
    size_t per = (size_t)3 * 32 * 32;
    run whole = collect(&p, opts(6, 2), 1, 0, 0, NULL); /* batch 6: 3 batches */
    ck_assert_int_eq(whole.nb, 3);
    for (int r = 0; r < 3; r++) {
        sm_loader_opts o = opts(2, r); /* 0, 1, 2 workers */
        o.shard = r;
        o.num_shards = 3;
        run part = collect(&p, o, 1, 0, 0, NULL);
        ck_assert_int_eq(part.nb, 3); /* floor(23 / 6) for every shard */
        for (int k = 0; k < 3; k++) {
            int at = k * 6 + r * 2; /* in the whole run: batch k, images 2r, 2r + 1 */
            for (int i = 0; i < 2; i++) ck_assert_int_eq(part.idx[k * 2 + i], whole.idx[at + i]);
            ck_assert(memcmp(part.img + per * (size_t)(k * 2), whole.img + per * (size_t)at,
                             sizeof(float) * per * 2) == 0);
            ck_assert(memcmp(part.mask + 4 * (k * 2), whole.mask + 4 * at, sizeof(float) * 4 * 2) == 0);
        }
        run_free(&part);
    }
    run_free(&whole);
    /* Mixup/CutMix: shard r's batch k is the single loader's batch 2k + r of the same size */
    sm_pipeline_defaults(&p, SM_PIPELINE_FINETUNE, 16);
    p.num_classes = 4;
    run one = collect(&p, opts(2, 1), 0, 0, 0, NULL);
    for (int r = 0; r < 2; r++) {
        sm_loader_opts o = opts(2, 1);
        o.shard = r;
        o.num_shards = 2;
        run part = collect(&p, o, 0, 0, 0, NULL);
        ck_assert_int_eq(part.nb, 5);
        for (int k = 0; k < part.nb; k++)
            ck_assert(memcmp(part.tgt + 4 * (k * 2), one.tgt + 4 * ((2 * k + r) * 2),
                             sizeof(float) * 4 * 2) == 0);
        run_free(&part);
    }
    run_free(&one);
    /* evaluation: chunks of 4 shared out as they come, the last one short; every sample once */
    sm_pipeline_defaults(&p, SM_PIPELINE_EVAL, 16);
    int seen[23] = {0};
    int64_t want_batches[3] = {2, 2, 2}; /* 6 chunks: 0,3 | 1,4 | 2,5 (chunk 5: 3 samples) */
    for (int r = 0; r < 3; r++) {
        sm_loader_opts o = opts(4, 1);
        o.shuffle = false;
        o.drop_last = false;
        o.shard = r;
        o.num_shards = 3;
        sm_loader *l;
        ck_assert_int_eq(sm_loader_new(&dset, &p, &o, &l, NULL), 0);
        ck_assert_int_eq(sm_loader_num_batches(l), want_batches[r]);
        sm_loader_start(l, 0, 0, 0, NULL);
        const sm_batch *b;
        int k = 0;
        while (sm_loader_next(l, &b, NULL) == 0 && b) {
            for (int i = 0; i < b->size; i++) {
                ck_assert_int_eq(b->indices[i], ((k * 3 + r) * 4) + i);
                seen[b->indices[i]]++;
            }
            k++;
        }
        ck_assert_int_eq(k, want_batches[r]);
        sm_loader_free(l);
    }
    for (int i = 0; i < 23; i++) ck_assert_int_eq(seen[i], 1);
    sm_loader_opts bad = opts(2, 0);
    bad.shard = 3;
    bad.num_shards = 3;
    sm_loader *l;
    ck_assert_int_eq(sm_loader_new(&dset, &p, &bad, &l, NULL), SM_EINVAL);
    bad = opts(8, 0);
    bad.num_shards = 3; /* 23 samples: not one batch of 8 on each of 3 ranks */
    sm_error e;
    sm_error_clear(&e);
    ck_assert_int_eq(sm_loader_new(&dset, &p, &bad, &l, &e), SM_EDATA);
    ck_assert_msg(strstr(e.text, "on each of the 3 ranks"), "%s", e.text);
    teardown();
}
END_TEST

/* With shards the loaders leave max_bad_fraction to the caller, who shares the bad files
 * (sm_loader_add_bad) so that every shard counts them once and decides alike. */
START_TEST(test_shards_share_bad_files)
{
    int bad[3] = {1, 2, 5};
    make_dataset(12, bad, 3);
    sm_pipeline p;
    sm_pipeline_defaults(&p, SM_PIPELINE_PRETRAIN, 32);
    p.mask = (sm_mask_spec){32, 32, 16, 0.6};
    sm_loader *l[2];
    for (int r = 0; r < 2; r++) {
        sm_loader_opts o = opts(2, 1); /* max_bad_fraction 0.2: 3 of 12 is too many */
        o.shard = r;
        o.num_shards = 2;
        ck_assert_int_eq(sm_loader_new(&dset, &p, &o, &l[r], NULL), 0);
        sm_loader_start(l[r], 0, 0, 0, NULL);
        const sm_batch *b;
        sm_error e;
        sm_error_clear(&e);
        while (sm_loader_next(l[r], &b, &e) == 0 && b) {}
        ck_assert_msg(e.code == 0, "shard %d: %s", r, e.text); /* no decision of its own */
    }
    size_t n0 = sm_loader_bad_count(l[0]), n1 = sm_loader_bad_count(l[1]);
    ck_assert_uint_gt(n0 + n1, 0);
    for (int r = 0; r < 2; r++) { /* each gets the other's list */
        sm_loader *from = l[1 - r];
        size_t n = r ? n0 : n1;
        for (size_t i = 0; i < n; i++)
            ck_assert_int_eq(sm_loader_add_bad(l[r], sm_loader_bad_index(from, i),
                                               sm_loader_bad_name(from, i),
                                               sm_loader_bad_reason(from, i), NULL),
                             0);
    }
    sm_error e;
    for (int r = 0; r < 2; r++) {
        ck_assert_uint_eq(sm_loader_bad_count(l[r]), 3); /* all three, each once */
        sm_error_clear(&e);
        ck_assert_int_eq(sm_loader_check_bad(l[r], &e), SM_EDATA);
        ck_assert_msg(strstr(e.text, "3 of 12 samples are bad"), "%s", e.text);
    }
    ck_assert_int_eq(sm_loader_add_bad(l[0], 12, "x", "y", NULL), SM_EINVAL);
    ck_assert_int_eq(sm_loader_bad_index(l[0], 99), -1);
    sm_loader_free(l[0]);
    sm_loader_free(l[1]);
    teardown();
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("loader");
    TCase *tc = tcase_create("loader");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_workers_bit_identical);
    tcase_add_test(tc, test_finetune_mixup_identical_and_resume);
    tcase_add_test(tc, test_bad_files_skipped);
    tcase_add_test(tc, test_bad_file_counted_once);
    tcase_add_test(tc, test_bad_policy_fail_and_fraction);
    tcase_add_test(tc, test_stop_mid_epoch_and_errors);
    tcase_add_test(tc, test_eval_partial_batch);
    tcase_add_test(tc, test_repeat_and_dataset_classes);
    tcase_add_test(tc, test_shards_split_the_global_batch);
    tcase_add_test(tc, test_shards_share_bad_files);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    sm_log_set_level(SM_LOG_ERROR); /* skipped files are logged as warnings */
    return sm_test_run(suite());
}
