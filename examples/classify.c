/* examples/classify.c - embedding libsimmim: classify one image with a trained model.
 *
 * Build against an installed simmim (docs/embedding.md):
 *     cc -o classify classify.c $(pkg-config --cflags --libs simmim)
 * Run:
 *     ./classify CONFIG CHECKPOINT IMAGE
 * CONFIG is the fine-tuning config the checkpoint was trained with: its model section builds the
 * classifier (train_config.num_classes, else the number of classes of its finetune_dataset),
 * its finetune_dataset section gives the evaluation transform (resize, centre crop, normalise)
 * and, when the reader can open the data, the class names; its backend section the backend.
 * Prints the top-5 classes with their softmax probabilities, then the pooled features (the
 * input of the head) on one line, "features F: v0 v1 ...", each with %.9g (float32 exactly),
 * the same numbers `simmimctl extract` writes for this image. Plugins are found as simmimctl
 * finds them: the config's plugin_path, $SIMMIM_PLUGIN_PATH, then the installed directory.
 * Exit status 0, 1 on a failure (the message on stderr), 2 on a usage or config error. */
#include <simmim/simmim.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* What the example works with; cleanup frees what is set. */
typedef struct app {
    sm_registry *reg;
    sm_config *cfg;
    const sm_cfg *root;
    sm_dataset ds; /* for the class names; ds.vt NULL when the data cannot be opened */
    sm_model *model;
    sm_backend *be;
    sm_ctx *ctx;
    float *pixels; /* the transformed image (C, S, S) */
    sm_error err;
} app;

static int fail(const sm_error *e)
{
    char line[SM_ERROR_LINE_MAX];
    sm_error_format(e, line, sizeof line);
    fprintf(stderr, "classify: %s\n", line);
    return 1;
}

/* Prints the config's and the plugins' diagnostics. */
static void print_diag(const sm_diag *d)
{
    char line[SM_ERROR_LINE_MAX];
    for (size_t i = 0; i < sm_diag_count(d); i++) {
        sm_error_format(sm_diag_get(d, i, NULL), line, sizeof line);
        fprintf(stderr, "%s\n", line);
    }
}

/* Reads the config, loads the plugins it may need (its plugin_path first), validates. */
static int load_config(app *a, const char *path)
{
    sm_diag *d = sm_diag_new();
    char *dirs[16] = {0};
    int rc = !d || !(a->reg = sm_registry_new()) ? SM_ENOMEM : 0;
    if (!rc) rc = sm_config_read(path, NULL, 0, &a->cfg, d);
    size_t n = rc ? 0 : sm_config_plugin_dirs(a->cfg, dirs, 16);
    if (!rc) sm_plugin_load_path(a->reg, NULL, 0, (const char *const *)dirs, n < 16 ? n : 16, d);
    for (size_t i = 0; i < n && i < 16; i++) free(dirs[i]);
    if (!rc) rc = sm_config_validate(a->cfg, a->reg, d); /* refused plugins are only warnings */
    if (d) print_diag(d);
    sm_diag_free(d);
    if (rc) return 2;
    a->root = sm_config_root(a->cfg);
    return 0;
}

/* The classifier with the checkpoint's weights (parameters it lacks keep the config's seeded
 * initialisation, as `simmimctl extract` does). */
static int load_model(app *a, const char *ckpt)
{
    sm_dataset_opts dopts = {SM_SPLIT_EVAL, 0, NULL};
    if (sm_dataset_open(&a->ds, a->reg, a->root, "finetune_dataset", &dopts, &a->err)) {
        char line[SM_ERROR_LINE_MAX]; /* no names then; the config may still give the classes */
        sm_error_format(&a->err, line, sizeof line);
        fprintf(stderr, "classify: warning: %s; printing class indices\n", line);
        sm_error_clear(&a->err);
    }
    const sm_cfg *nc = sm_cfg_get(a->root, "train_config.num_classes");
    int K = nc && sm_cfg_kind_of(nc) != SM_CFG_NULL ? 0
            : a->ds.vt                               ? a->ds.vt->num_classes(a->ds.self)
                                                     : 0;
    uint64_t seed = (uint64_t)sm_cfg_int(a->root, "seed");
    char note[1024];
    if (sm_model_new_classes(a->reg, a->root, SM_TASK_CLASSIFY, K, &a->model, &a->err) ||
        sm_model_init(a->model, seed, &a->err) ||
        sm_model_load_weights(a->model, ckpt, note, sizeof note, &a->err))
        return fail(&a->err);
    fprintf(stderr, "weights: %s\n", note);
    const char *be = sm_cfg_str(a->root, "backend.name");
    int threads = (int)sm_cfg_int(a->root, "backend.threads");
    if (sm_backend_new(a->reg, be ? be : "ref", sm_cfg_get(a->root, "backend"), threads, &a->be,
                       &a->err))
        return fail(&a->err);
    if (!(a->ctx = sm_ctx_new(a->be))) return 1;
    return 0;
}

/* Decodes the image and applies the evaluation transform of finetune_dataset. */
static int load_image(app *a, const char *path, sm_pipeline *p)
{
    sm_image im, tmp;
    sm_image_init(&im);
    sm_image_init(&tmp);
    int rc = sm_pipeline_from_config(p, a->root, "finetune_dataset", SM_PIPELINE_EVAL, &a->err);
    size_t n = rc ? 0 : (size_t)p->channels * (size_t)p->image_size * (size_t)p->image_size;
    if (!rc && !(a->pixels = malloc(n * sizeof *a->pixels)))
        rc = sm_error_set(&a->err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    if (!rc) rc = sm_image_load(path, &p->decode, &im, NULL, &a->err);
    if (!rc)
        rc = sm_pipeline_apply(p, &im, path, (uint64_t)sm_cfg_int(a->root, "seed"), 0, 0,
                               a->pixels, NULL, &tmp, &a->err);
    sm_image_deinit(&im);
    sm_image_deinit(&tmp);
    return rc ? fail(&a->err) : 0;
}

/* The top-5 of the logits z (K) as softmax probabilities, with names when known. */
static void print_top5(const app *a, const float *z, int K)
{
    double mx = z[0], se = 0;
    for (int k = 1; k < K; k++) mx = fmax(mx, z[k]);
    for (int k = 0; k < K; k++) se += exp((double)z[k] - mx);
    int shown[5];
    for (int r = 0; r < 5 && r < K; r++) { /* the r-th largest, ties to the lower index */
        int best = -1;
        for (int k = 0; k < K; k++) {
            bool used = false;
            for (int q = 0; q < r; q++) used |= shown[q] == k;
            if (!used && (best < 0 || z[k] > z[best])) best = k;
        }
        shown[r] = best;
        const char *name = a->ds.vt && a->ds.vt->class_name && best < a->ds.vt->num_classes(a->ds.self)
                               ? a->ds.vt->class_name(a->ds.self, best)
                               : NULL;
        printf("%d. %s%s%d%s  %.4f\n", r + 1, name ? name : "", name ? " (" : "class ", best,
               name ? ")" : "", exp((double)z[best] - mx) / se);
    }
}

/* One forward: the pooled features and the logits of the image. */
static int classify(app *a, const sm_pipeline *p)
{
    int S = p->image_size;
    sm_ctx_set_grad(a->ctx, false);
    sm_ctx_set_train(a->ctx, false);
    sm_tensor *x = sm_ctx_wrap(a->ctx, a->pixels, 4, SM_SHAPE(1, p->channels, S, S));
    sm_tensor *f = sm_model_features(a->model, a->ctx, x, -1); /* (1, F) */
    sm_tensor *z = sm_model_logits(a->model, a->ctx, x);       /* (1, K) */
    if (!f || !z) return fail(sm_ctx_error(a->ctx));
    print_top5(a, z->data, (int)z->shape[1]);
    printf("features %lld:", (long long)f->shape[1]);
    for (int64_t j = 0; j < f->shape[1]; j++) printf(" %.9g", f->data[j]);
    printf("\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: classify CONFIG CHECKPOINT IMAGE\n");
        return 2;
    }
    /* as simmimctl does, before any thread exists: subnormal floats flushed to zero (faster on
     * Intel cores, and the same numbers as `simmimctl extract`) */
    sm_fpenv_flush_subnormals(true);
    app a = {0};
    sm_pipeline p;
    sm_error_clear(&a.err);
    int rc = load_config(&a, argv[1]);
    if (!rc) rc = load_model(&a, argv[2]);
    if (!rc) rc = load_image(&a, argv[3], &p);
    if (!rc) rc = classify(&a, &p);
    free(a.pixels);
    sm_ctx_free(a.ctx);
    sm_backend_free(a.be);
    sm_model_free(a.model);
    sm_dataset_close(&a.ds);
    sm_config_free(a.cfg);
    sm_registry_free(a.reg);
    return rc;
}
