/* core/cli/cmd_extract.c - `simmimctl extract CONFIG --checkpoint FILE`: the pooled backbone
 * features of every image of a configured dataset split, for k-NN, retrieval or a linear probe
 * outside the tool. The images go through the evaluation transform; the backbone pools as the
 * classifier does (the config's model section: mean pooling + fc_norm, or the class token), or
 * with --block N the mean of the patch tokens after block N (sm_model_features), the head is
 * not used. One safetensors file: features (N, F) float32 and labels and indices (N)
 * int64 in the loader's (dataset) order, with a text file of the sample names beside it. */
#include "cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "simmim/loader.h"
#include "simmim/train.h"

static const char extract_usage[] =
    "usage: simmimctl extract CONFIG --checkpoint FILE [--output FILE.safetensors]\n"
    "                      [--split train|eval] [--block N] [--batch N] [--backend NAME]\n"
    "                      [--options key=value ...] [--plugin-dir DIR]\n\n"
    "Writes the pooled backbone features of every image of a dataset split of CONFIG\n"
    "(finetune_dataset if the config has one, else pretrain_dataset), computed with the\n"
    "weights of a checkpoint (pretraining or fine-tuning; the head is not used). Images get\n"
    "the evaluation transform (resize, centre crop, normalise); features are pooled as the\n"
    "config's classifier pools them (mean of the patch tokens and fc_norm, or the class token).\n\n"
    "Output (default features.safetensors): features (N, F) float32, labels (N) int64 (-1 for\n"
    "unlabeled images) and indices (N) int64 (the sample's position in the dataset), in\n"
    "dataset order, metadata naming the config, checkpoint, split and class names; and\n"
    "FILE.names.txt, the sample (file) of each row. Images that cannot be read are left out\n"
    "(on_bad_image / max_bad_fraction of the section apply) and listed on stderr.\n\n"
    "  --split    train or eval (default: eval for finetune_dataset, train for pretraining)\n"
    "  --block N  the features after block N instead: the mean of the patch tokens as block N\n"
    "             outputs them, no norm (SimMIM's ViT-B linear probe: --block 8); 0 = the\n"
    "             embedded patches. Blocks count 1..depth (Swin: through all stages; the width\n"
    "             is that of the block's stage). Needs a backbone with forward_features\n"
    "  --batch N  images per forward (default train_config.batch_size)\n";

/* The dataset's class names as a JSON array (malloc'd), "[]" when unlabeled. */
static char *class_names_json(const sm_dataset *ds)
{
    json_t *a = json_array();
    int K = ds->vt->num_classes(ds->self);
    for (int k = 0; a && k < K; k++) {
        const char *n = ds->vt->class_name ? ds->vt->class_name(ds->self, k) : NULL;
        json_array_append_new(a, n ? json_string(n) : json_integer(k));
    }
    char *s = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return s;
}

static const char *const extract_values[] = {"--checkpoint", "--output", "--split", "--batch",
                                             "--backend",    "--block"};
static const char *const extract_defaults[] = {NULL, "features.safetensors", NULL, NULL, NULL, NULL};
static const sm_cli_command extract_cmd = {"extract", extract_usage, extract_values,
                                           extract_defaults, 6, NULL, 1, 1};
enum { V_CKPT, V_OUTPUT, V_SPLIT, V_BATCH, V_BACKEND, V_BLOCK };

/* The features of the images read so far, in loader order. */
typedef struct extract_rows {
    int64_t n, rows; /* images in the split; rows filled */
    int block;       /* --block, or -1: the classifier's pooling */
    int F;           /* the width, known from the first batch */
    float *feat;     /* (n, F) */
    int64_t *labels, *indices;
    unsigned char *seen;
} extract_rows;

static void rows_free(extract_rows *x)
{
    free(x->feat);
    free(x->labels);
    free(x->indices);
    free(x->seen);
}

/* The dataset section (finetune_dataset if the config has one) and split of the command. */
static int extract_where(sm_cli_session *s, const char **section, sm_split *split)
{
    *section = sm_cfg_get(s->root, "finetune_dataset") ? "finetune_dataset" : "pretrain_dataset";
    if (!sm_cfg_get(s->root, *section)) {
        fprintf(stderr, "simmimctl: %s: no finetune_dataset or pretrain_dataset section\n",
                s->o.config);
        return SM_EXIT_USAGE;
    }
    /* fine-tuning data always has an evaluation split (the trainer evaluates on it) */
    const char *v = s->values[V_SPLIT];
    bool finetune = strcmp(*section, "finetune_dataset") == 0;
    *split = v ? (strcmp(v, "eval") ? SM_SPLIT_TRAIN : SM_SPLIT_EVAL)
         : finetune ? SM_SPLIT_EVAL
                    : SM_SPLIT_TRAIN;
    return 0;
}

/* The model: the head as the trainer builds it (train_config.num_classes, else the dataset's),
 * so that a fine-tuned checkpoint loads; its output is not used. */
static int extract_model(sm_cli_session *s, int K, int block)
{
    const sm_cfg *nc = sm_cfg_get(s->root, "train_config.num_classes");
    bool cfg_k = nc && sm_cfg_kind_of(nc) != SM_CFG_NULL;
    uint64_t seed = sm_cfg_get(s->root, "seed") ? (uint64_t)sm_cfg_int(s->root, "seed") : 0;
    int rc = sm_cli_session_model(s, SM_TASK_CLASSIFY, cfg_k ? 0 : K > 0 ? K : 1, seed,
                                  s->values[V_CKPT]);
    if (!rc && block >= 0 && sm_model_check_block(s->model, block, &s->err)) /* --block */
        rc = sm_cli_session_fail(s, SM_EXIT_USAGE);
    return rc ? rc : sm_cli_session_backend(s, s->values[V_BACKEND]);
}

/* Room for n rows; the features themselves once their width is known (rows_features). */
static int rows_alloc(extract_rows *x, int64_t n)
{
    x->n = n;
    x->labels = malloc((size_t)n * sizeof *x->labels);
    x->indices = malloc((size_t)n * sizeof *x->indices);
    x->seen = calloc((size_t)n, 1);
    if (x->labels && x->indices && x->seen) return 0;
    fprintf(stderr, "simmimctl: out of memory for %lld images\n", (long long)n);
    return SM_EXIT_FAILURE;
}

/* The features of n rows of width F (the first batch's). */
static int rows_features(extract_rows *x, int F)
{
    x->F = F;
    if ((x->feat = malloc((size_t)x->n * (size_t)F * sizeof *x->feat))) return 0;
    fprintf(stderr, "simmimctl: out of memory for %lld x %d features\n", (long long)x->n, F);
    return SM_EXIT_FAILURE;
}

/* Pooled backbone features of every batch of the loader into x. */
static int extract_features(sm_cli_session *s, extract_rows *x)
{
    const sm_batch *b = NULL;
    int64_t next_log = x->n / 10;
    int rc;
    while ((rc = sm_loader_next(s->loader, &b, &s->err)) == 0 && b) {
        sm_ctx_reset(s->ctx);
        sm_ctx_set_grad(s->ctx, false);
        sm_ctx_set_train(s->ctx, false);
        sm_tensor *in =
            sm_ctx_wrap(s->ctx, b->images, 4, SM_SHAPE(b->size, b->channels, b->height, b->width));
        sm_tensor *f = sm_model_features(s->model, s->ctx, in, x->block); /* (B, F) */
        if (!f || sm_ctx_status(s->ctx)) {
            s->err = *sm_ctx_error(s->ctx);
            rc = s->err.code ? s->err.code : SM_EINVAL;
            break;
        }
        if (!x->feat && rows_features(x, (int)f->shape[1])) return SM_EXIT_FAILURE;
        for (int i = 0; i < b->size; i++) {
            int64_t idx = b->indices[i];
            if (idx < 0 || idx >= x->n || x->seen[idx]) continue; /* a bad image's stand-in */
            x->seen[idx] = 1;
            memcpy(x->feat + x->rows * x->F, f->data + (int64_t)i * x->F,
                   (size_t)x->F * sizeof *x->feat);
            x->labels[x->rows] = b->labels[i];
            x->indices[x->rows++] = idx;
        }
        if (x->rows >= next_log && x->rows < x->n) {
            fprintf(stderr, "  %lld / %lld images\n", (long long)x->rows, (long long)x->n);
            next_log += x->n / 10 > 0 ? x->n / 10 : 1;
        }
    }
    for (size_t i = 0; i < sm_loader_bad_count(s->loader); i++)
        fprintf(stderr, "simmimctl: left out %s: %s\n", sm_loader_bad_name(s->loader, i),
                sm_loader_bad_reason(s->loader, i));
    if (rc) return sm_cli_session_fail(s, SM_EXIT_FAILURE);
    if (x->rows == 0) {
        fprintf(stderr, "simmimctl: no image could be read; nothing written\n");
        return SM_EXIT_FAILURE;
    }
    return 0;
}

/* FILE.names.txt: the sample of each row (a file, or FILE#INDEX for a record of an archive
 * such as Fashion-MNIST), through a temporary file. */
static int write_names(sm_cli_session *s, const extract_rows *x, const char *names_path)
{
    size_t len = strlen(names_path) + 8;
    char *tmp = malloc(len);
    if (!tmp) return SM_EXIT_FAILURE;
    snprintf(tmp, len, "%s.tmp", names_path);
    FILE *names = fopen(tmp, "w");
    bool ok = names != NULL;
    for (int64_t i = 0; ok && i < x->rows; i++) {
        sm_sample smp;
        sm_error_clear(&s->err);
        const char *nm = s->ds.vt->get(s->ds.self, x->indices[i], &smp, &s->err) ? NULL
                         : smp.path                                            ? smp.path
                                                                               : smp.name;
        ok = nm && (smp.path ? fprintf(names, "%s\n", nm)
                             : fprintf(names, "%s#%lld\n", nm, (long long)x->indices[i])) > 0;
    }
    if (names) ok = fclose(names) == 0 && ok;
    if (!ok || rename(tmp, names_path) != 0) {
        fprintf(stderr, "simmimctl: %s: cannot write\n", names_path);
        remove(tmp);
    }
    free(tmp);
    return ok ? 0 : SM_EXIT_FAILURE;
}

/* The features file, its names file first: a features file always has its names file. */
static int extract_write(sm_cli_session *s, const extract_rows *x, const char *section,
                         sm_split split)
{
    const char *out = s->values[V_OUTPUT], *split_name = split == SM_SPLIT_EVAL ? "eval" : "train";
    char *classes = class_names_json(&s->ds), block[32];
    if (x->block >= 0) snprintf(block, sizeof block, "%d", x->block);
    sm_st_writer *w = sm_st_writer_new();
    int rc = !w || !classes ||
             sm_st_writer_add(w, "features", SM_DTYPE_F32, 2, SM_SHAPE(x->rows, x->F), x->feat,
                              &s->err) ||
             sm_st_writer_add(w, "labels", SM_DTYPE_I64, 1, SM_SHAPE(x->rows), x->labels, &s->err) ||
             sm_st_writer_add(w, "indices", SM_DTYPE_I64, 1, SM_SHAPE(x->rows), x->indices,
                              &s->err) ||
             sm_st_writer_meta(w, "format", "simmim-features-1", &s->err) ||
             sm_st_writer_meta(w, "config", s->o.config, &s->err) ||
             sm_st_writer_meta(w, "checkpoint", s->values[V_CKPT], &s->err) ||
             sm_st_writer_meta(w, "dataset", section, &s->err) ||
             sm_st_writer_meta(w, "split", split_name, &s->err) ||
             sm_st_writer_meta(w, "classes", classes, &s->err) ||
             sm_st_writer_meta(w, "block", x->block >= 0 ? block : "classifier", &s->err) ||
             sm_st_writer_meta(w, "layout",
                               x->block >= 0 ? "features[i] = mean of the patch tokens of sample "
                                               "indices[i] after block `block`"
                                             : "features[i] = pooled backbone features of sample "
                                               "indices[i]",
                               &s->err)
                 ? sm_cli_session_fail(s, SM_EXIT_FAILURE)
                 : 0;
    size_t plen = strlen(out) + 32;
    char *names_path = rc ? NULL : malloc(plen);
    if (!rc && !names_path) rc = SM_EXIT_FAILURE;
    if (!rc) snprintf(names_path, plen, "%s.names.txt", out);
    if (!rc) rc = write_names(s, x, names_path);
    if (!rc && sm_st_writer_write(w, out, &s->err)) {
        rc = sm_cli_session_fail(s, SM_EXIT_FAILURE);
        remove(names_path); /* no names file without its features */
    }
    if (!rc)
        printf("wrote %s: %lld x %d features (%s split of %s), names in %s\n", out,
               (long long)x->rows, x->F, split_name, section, names_path);
    free(names_path);
    free(classes);
    sm_st_writer_free(w);
    return rc;
}

static int extract_check_args(const sm_cli_session *s, long *batch, int *block)
{
    const char *ckpt = s->values[V_CKPT], *split = s->values[V_SPLIT], *b = s->values[V_BATCH];
    const char *bl = s->values[V_BLOCK];
    long n = -1;
    bool split_ok = !split || !strcmp(split, "train") || !strcmp(split, "eval");
    bool batch_ok = !b || !sm_cli_parse_long(b, 1, 4096, batch);
    bool block_ok = !bl || !sm_cli_parse_long(bl, 0, 100000, &n);
    *block = (int)n;
    if (ckpt && split_ok && batch_ok && block_ok) return 0;
    fprintf(stderr, "simmimctl extract: %s (see --help)\n",
            !ckpt       ? "--checkpoint FILE is required"
            : !batch_ok ? "--batch takes 1..4096"
            : !block_ok ? "--block takes a block number, 0 or more"
                        : "--split takes train or eval");
    return SM_EXIT_USAGE;
}

int sm_cmd_extract(int argc, char **argv)
{
    sm_cli_session s;
    extract_rows x = {0};
    long batch = 0;
    const char *section = NULL;
    sm_split split = SM_SPLIT_EVAL;
    int rc = sm_cli_session_begin(&s, &argc, argv, &extract_cmd);
    if (!rc) rc = extract_check_args(&s, &batch, &x.block);
    if (!rc) rc = sm_cli_session_config(&s, false);
    if (!rc) rc = extract_where(&s, &section, &split);
    if (!rc) rc = sm_cli_session_data(&s, section, split, SM_PIPELINE_EVAL);
    int K = rc ? 0 : s.ds.vt->num_classes(s.ds.self);
    if (!rc) rc = extract_model(&s, K, x.block);
    if (!rc) {
        s.pipe.mixup_alpha = s.pipe.cutmix_alpha = 0;
        s.pipe.num_classes = K;
        sm_loader_opts_from_config(&s.lo, s.root, section, SM_SPLIT_EVAL); /* in order, all */
        s.lo.repeat = 1;
        if (batch) s.lo.batch_size = (int)batch;
        rc = rows_alloc(&x, s.ds.vt->count(s.ds.self));
    }
    if (!rc) rc = sm_cli_session_loader(&s);
    if (!rc) {
        char where[48] = "the classifier's pooling";
        if (x.block >= 0) snprintf(where, sizeof where, "after block %d", x.block);
        fprintf(stderr, "extracting %lld %s images of %s (%s split), features %s\n",
                (long long)x.n, section, s.o.config, split == SM_SPLIT_EVAL ? "eval" : "train",
                where);
        rc = extract_features(&s, &x);
    }
    if (!rc) rc = extract_write(&s, &x, section, split);
    if (!rc && x.rows < x.n) {
        fprintf(stderr, "simmimctl: %lld of %lld images left out\n", (long long)(x.n - x.rows),
                (long long)x.n);
        rc = SM_EXIT_FAILURE;
    }
    rows_free(&x);
    return sm_cli_session_end(&s, rc);
}
