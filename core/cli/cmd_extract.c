/* core/cli/cmd_extract.c - `simmimctl extract CONFIG --checkpoint FILE`: the pooled backbone
 * features of every image of a configured dataset split, for k-NN, retrieval or a linear probe
 * outside the tool. The images go through the evaluation transform; the backbone pools as the
 * classifier does (the config's model section: mean pooling + fc_norm, or the class token), the
 * head is not used. One safetensors file: features (N, F) float32 and labels and indices (N)
 * int64 in the loader's (dataset) order, with a text file of the sample names beside it. */
#include "cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "simmim/loader.h"
#include "simmim/train.h"

static const char extract_usage[] =
    "usage: simmimctl extract CONFIG --checkpoint FILE [--output FILE.safetensors]\n"
    "                      [--split train|eval] [--batch N] [--backend NAME]\n"
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

int sm_cmd_extract(int argc, char **argv)
{
    static const char *const keys[] = {"--checkpoint", "--output", "--split", "--batch",
                                       "--backend"};
    const char *v[5] = {NULL, "features.safetensors", NULL, NULL, NULL};
    if (sm_cli_take_values(&argc, argv, keys, v, 5)) return SM_EXIT_USAGE;
    const char *ckpt = v[0], *out = v[1], *split_s = v[2], *batch_s = v[3], *backend_name = v[4];
    sm_cli_opts o;
    int rc = sm_cli_parse(argc, argv, &o, extract_usage);
    if (rc == SM_CLI_HELP) return SM_EXIT_OK;
    if (rc) return rc;
    int exit_code = SM_EXIT_USAGE;
    long batch = 0;
    if (sm_cli_check_args(&o, "extract", NULL, 1, 1)) goto out_opts;
    if (!ckpt || (split_s && strcmp(split_s, "train") && strcmp(split_s, "eval")) ||
        (batch_s && sm_cli_parse_long(batch_s, 1, 4096, &batch))) {
        fprintf(stderr, "simmimctl extract: %s (see --help)\n",
                !ckpt     ? "--checkpoint FILE is required"
                : batch_s ? "--batch takes 1..4096"
                          : "--split takes train or eval");
        goto out_opts;
    }

    sm_registry *reg = NULL;
    sm_config *cfg = NULL;
    sm_model *m = NULL;
    sm_backend *be = NULL;
    sm_ctx *ctx = NULL;
    sm_loader *l = NULL;
    sm_st_writer *w = NULL;
    sm_dataset ds;
    memset(&ds, 0, sizeof ds);
    float *feat = NULL;
    int64_t *labels = NULL, *indices = NULL;
    unsigned char *seen = NULL;
    char *classes = NULL, *names_path = NULL;
    FILE *names = NULL;
    sm_error e;
    sm_error_clear(&e);
    if ((rc = sm_cli_load_config(&o, &reg, &cfg)) != 0) {
        exit_code = rc;
        goto out;
    }
    const sm_cfg *root = sm_config_root(cfg);
    const char *section =
        sm_cfg_get(root, "finetune_dataset") ? "finetune_dataset" : "pretrain_dataset";
    if (!sm_cfg_get(root, section)) {
        fprintf(stderr, "simmimctl: %s: no finetune_dataset or pretrain_dataset section\n",
                o.config);
        goto out;
    }
    /* fine-tuning data always has an evaluation split (the trainer evaluates on it) */
    bool finetune = strcmp(section, "finetune_dataset") == 0;
    sm_split split = split_s ? (strcmp(split_s, "eval") ? SM_SPLIT_TRAIN : SM_SPLIT_EVAL)
                     : finetune ? SM_SPLIT_EVAL
                                : SM_SPLIT_TRAIN;
    sm_pipeline p;
    if (sm_pipeline_from_config(&p, root, section, SM_PIPELINE_EVAL, &e)) {
        sm_cli_print_error(&e);
        goto out;
    }
    p.mixup_alpha = p.cutmix_alpha = 0;

    exit_code = SM_EXIT_FAILURE;
    uint64_t seed = sm_cfg_get(root, "seed") ? (uint64_t)sm_cfg_int(root, "seed") : 0;
    sm_dataset_opts dopts = {split, seed, NULL};
    if (sm_dataset_open(&ds, reg, root, section, &dopts, &e)) {
        sm_cli_print_error(&e);
        goto out;
    }
    int K = ds.vt->num_classes(ds.self);
    /* the head as the trainer builds it (train_config.num_classes, else the dataset's), so that
     * a fine-tuned checkpoint loads; its output is not used */
    const sm_cfg *nc = sm_cfg_get(root, "train_config.num_classes");
    bool cfg_k = nc && sm_cfg_kind_of(nc) != SM_CFG_NULL;
    if (sm_model_new_classes(reg, root, SM_TASK_CLASSIFY, cfg_k ? 0 : K > 0 ? K : 1, &m, &e)) {
        sm_cli_print_error(&e);
        exit_code = sm_cli_exit_code(e.code);
        goto out;
    }
    char note[512] = "";
    /* parameters the checkpoint lacks (fc_norm after SimMIM pretraining) start as the
     * fine-tuning would start them */
    if (sm_model_init(m, seed, &e) || sm_model_load_weights(m, ckpt, note, sizeof note, &e) ||
        sm_cli_backend(reg, root, backend_name, &be, &e) || !(ctx = sm_ctx_new(be))) {
        if (!e.code) sm_error_set(&e, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
        sm_cli_print_error(&e);
        goto out;
    }
    fprintf(stderr, "weights: %s\n", note);
    sm_loader_opts lo;
    sm_loader_opts_from_config(&lo, root, section, SM_SPLIT_EVAL); /* in order, all of it */
    lo.repeat = 1;
    if (batch) lo.batch_size = (int)batch;
    p.num_classes = K;
    int64_t n = ds.vt->count(ds.self);
    int F = sm_model_info(m)->num_features;
    feat = malloc((size_t)n * (size_t)F * sizeof *feat);
    labels = malloc((size_t)n * sizeof *labels);
    indices = malloc((size_t)n * sizeof *indices);
    seen = calloc((size_t)n, 1);
    if (!feat || !labels || !indices || !seen) {
        fprintf(stderr, "simmimctl: out of memory for %lld x %d features\n", (long long)n, F);
        goto out;
    }
    void *bself = NULL;
    const sm_backbone_vtbl *bvt = sm_model_backbone(m, &bself);
    const sm_batch *b = NULL;
    int64_t rows = 0, next_log = n / 10;
    rc = sm_loader_new(&ds, &p, &lo, &l, &e);
    if (!rc) rc = sm_loader_start(l, 0, 0, 0, &e);
    fprintf(stderr, "extracting %lld %s images of %s (%s split), %d features each\n",
            (long long)n, section, o.config, split == SM_SPLIT_EVAL ? "eval" : "train", F);
    while (!rc && (rc = sm_loader_next(l, &b, &e)) == 0 && b) {
        sm_ctx_reset(ctx);
        sm_ctx_set_grad(ctx, false);
        sm_ctx_set_train(ctx, false);
        sm_tensor *x =
            sm_ctx_wrap(ctx, b->images, 4, SM_SHAPE(b->size, b->channels, b->height, b->width));
        sm_tensor *f = bvt->forward(bself, ctx, x, NULL);
        if (!f || sm_ctx_status(ctx)) {
            e = *sm_ctx_error(ctx);
            rc = e.code ? e.code : SM_EINVAL;
            break;
        }
        for (int i = 0; i < b->size; i++) {
            int64_t idx = b->indices[i];
            if (idx < 0 || idx >= n || seen[idx]) continue; /* a bad image's stand-in */
            seen[idx] = 1;
            memcpy(feat + rows * F, f->data + (int64_t)i * F, (size_t)F * sizeof *feat);
            labels[rows] = b->labels[i];
            indices[rows++] = idx;
        }
        if (rows >= next_log && rows < n) {
            fprintf(stderr, "  %lld / %lld images\n", (long long)rows, (long long)n);
            next_log += n / 10 > 0 ? n / 10 : 1;
        }
    }
    for (size_t i = 0; l && i < sm_loader_bad_count(l); i++)
        fprintf(stderr, "simmimctl: left out %s: %s\n", sm_loader_bad_name(l, i),
                sm_loader_bad_reason(l, i));
    if (rc) {
        sm_cli_print_error(&e);
        goto out;
    }
    if (rows == 0) {
        fprintf(stderr, "simmimctl: no image could be read; nothing written\n");
        goto out;
    }
    classes = class_names_json(&ds);
    w = sm_st_writer_new();
    char split_name[8];
    snprintf(split_name, sizeof split_name, "%s", split == SM_SPLIT_EVAL ? "eval" : "train");
    if (!w || !classes ||
        sm_st_writer_add(w, "features", SM_DTYPE_F32, 2, SM_SHAPE(rows, F), feat, &e) ||
        sm_st_writer_add(w, "labels", SM_DTYPE_I64, 1, SM_SHAPE(rows), labels, &e) ||
        sm_st_writer_add(w, "indices", SM_DTYPE_I64, 1, SM_SHAPE(rows), indices, &e) ||
        sm_st_writer_meta(w, "format", "simmim-features-1", &e) ||
        sm_st_writer_meta(w, "config", o.config, &e) ||
        sm_st_writer_meta(w, "checkpoint", ckpt, &e) ||
        sm_st_writer_meta(w, "dataset", section, &e) ||
        sm_st_writer_meta(w, "split", split_name, &e) ||
        sm_st_writer_meta(w, "classes", classes, &e) ||
        sm_st_writer_meta(w, "layout", "features[i] = pooled backbone features of sample indices[i]",
                          &e)) {
        if (!e.code) sm_error_set(&e, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
        sm_cli_print_error(&e);
        goto out;
    }
    /* the names first (a temp file renamed), then the features: a features file always has
     * its names file */
    size_t plen = strlen(out) + 32;
    names_path = malloc(plen * 2);
    if (!names_path) goto out;
    char *tmp = names_path + plen;
    snprintf(names_path, plen, "%s.names.txt", out);
    snprintf(tmp, plen, "%s.names.txt.tmp", out);
    names = fopen(tmp, "w");
    bool ok = names != NULL;
    for (int64_t i = 0; ok && i < rows; i++) {
        sm_sample s;
        sm_error_clear(&e);
        const char *nm = ds.vt->get(ds.self, indices[i], &s, &e) ? NULL : s.path ? s.path : s.name;
        /* a file per sample, or a record of an archive (Fashion-MNIST): FILE#INDEX */
        ok = nm && (s.path ? fprintf(names, "%s\n", nm)
                           : fprintf(names, "%s#%lld\n", nm, (long long)indices[i])) > 0;
    }
    if (names) ok = fclose(names) == 0 && ok;
    names = NULL;
    if (!ok || rename(tmp, names_path) != 0) {
        fprintf(stderr, "simmimctl: %s: cannot write\n", names_path);
        remove(tmp);
        goto out;
    }
    if (sm_st_writer_write(w, out, &e)) {
        sm_cli_print_error(&e);
        remove(names_path); /* no names file without its features */
        goto out;
    }
    printf("wrote %s: %lld x %d features (%s split of %s), names in %s\n", out, (long long)rows,
           F, split_name, section, names_path);
    exit_code = rows == n ? SM_EXIT_OK : SM_EXIT_FAILURE;
    if (rows < n)
        fprintf(stderr, "simmimctl: %lld of %lld images left out\n", (long long)(n - rows),
                (long long)n);
out:
    sm_loader_free(l);
    sm_st_writer_free(w);
    free(feat);
    free(labels);
    free(indices);
    free(seen);
    free(classes);
    free(names_path);
    sm_ctx_free(ctx);
    sm_backend_free(be);
    sm_model_free(m);
    sm_dataset_close(&ds);
    sm_config_free(cfg);
    sm_registry_free(reg);
out_opts:
    sm_cli_opts_free(&o);
    return exit_code;
}
