/* core/cli/cmd_reconstruct.c - `simmimctl reconstruct CONFIG --checkpoint FILE IMAGE...`: what
 * a pretrained SimMIM model makes of masked images. Each image goes through the evaluation
 * transform of the config's pretraining data (shorter side resized, centre crop, bands,
 * normalisation), gets an official random mask keyed by (seed, its position), and the figure
 * of sm_recon_figure is written, with each image's loss printed. Bad images are reported and
 * left out; the exit status is then 1. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "simmim/image.h"
#include "simmim/loader.h"
#include "simmim/train.h"

enum { SM__RECON_MAX_IMAGES = 64 };

static const char recon_usage[] =
    "usage: simmimctl reconstruct CONFIG --checkpoint FILE [--output FILE.png] [--seed N]\n"
    "                      [--backend NAME] [--options key=value ...] [--plugin-dir DIR]\n"
    "                      IMAGE...\n\n"
    "Runs the SimMIM model of a pretraining CONFIG with the weights of a checkpoint (a\n"
    "pretraining checkpoint of that model: encoder, mask token and decoder) on up to 64\n"
    "images. Each image is resized on its shorter side and centre-cropped to\n"
    "train_config.image_size as for evaluation (pretrain_dataset: crop_pct, interpolation,\n"
    "bands, norm_mean, norm_std), then masked by the official generator (model.mask_patch_size,\n"
    "model.mask_ratio; the mask of image i is keyed by the seed and i).\n\n"
    "Writes one PNG, one row per image: the input, the input with its masked patches grey,\n"
    "the reconstruction, and the reconstructed patches pasted into the visible ones. Prints\n"
    "each image's loss: mean |x - x_rec| over its masked pixels, in normalised units.\n\n"
    "  --checkpoint FILE  weights (safetensors written by `simmimctl run`, or official names)\n"
    "  --output FILE      the figure (default reconstruction.png)\n"
    "  --seed N           mask seed (default train_config.seed, else 0)\n"
    "  --backend NAME     compute backend (default: backend.name of the config, else blis)\n"
    "Exit status: 0 ok; 1 a bad image (the others are still shown), checkpoint or write\n"
    "failure; 2 usage or configuration error.\n";

/* Every parameter of the model must be in the checkpoint: a classifier checkpoint has no
 * decoder, another model has other names. Prints the problem; returns 0 or 1. */
static int sm__recon_check_ckpt(sm_model *m, const char *path)
{
    sm_st_file *f = NULL;
    sm_error e;
    sm_error_clear(&e);
    if (sm_st_open(path, &f, &e)) {
        sm_cli_print_error(&e);
        return 1;
    }
    sm_params *p = sm_model_params(m);
    size_t missing = 0;
    const char *first = NULL;
    for (size_t i = 0; i < sm_params_count(p); i++) {
        const char *name = sm_params_at(p, i)->name;
        if (!sm_st_find(f, name) && !missing++) first = name;
    }
    if (missing)
        fprintf(stderr,
                "simmimctl: %s: lacks %zu of the model's %zu tensors (first: %s); reconstruct "
                "needs a SimMIM pretraining checkpoint of the config's model\n",
                path, missing, sm_params_count(p), first);
    sm_st_close(f);
    return missing ? 1 : 0;
}

static const char *const recon_values[] = {"--checkpoint", "--output", "--seed", "--backend"};
static const char *const recon_defaults[] = {NULL, "reconstruction.png", NULL, NULL};
static const sm_cli_command recon_cmd = {"reconstruct", recon_usage, recon_values, recon_defaults,
                                         4, NULL, 2, 1 + SM__RECON_MAX_IMAGES};
enum { V_CKPT, V_OUTPUT, V_SEED, V_BACKEND };

/* The images of the command line, transformed and masked. */
typedef struct recon_set {
    int n, S, C, g;     /* images read; their side, channels and mask side */
    float *images, *masks;
    double *losses;
    const char **names;
} recon_set;

static void recon_set_free(recon_set *r)
{
    free(r->images);
    free(r->masks);
    free(r->losses);
    free(r->names);
}

static int recon_check_args(const sm_cli_session *s, unsigned long long *seed)
{
    const char *seed_s = s->values[V_SEED];
    char *end = NULL;
    *seed = seed_s ? strtoull(seed_s, &end, 10) : 0;
    if (s->values[V_CKPT] && (!seed_s || (*seed_s && !*end && seed_s[0] != '-'))) return 0;
    fprintf(stderr, "simmimctl reconstruct: %s (see --help)\n",
            !s->values[V_CKPT] ? "--checkpoint FILE is required"
                               : "--seed takes a non-negative integer");
    return SM_EXIT_USAGE;
}

/* A pretraining config, and its evaluation transform with masks. */
static int recon_pipeline(sm_cli_session *s)
{
    const char *task = sm_cfg_str(s->root, "task");
    if (task ? strcmp(task, "pretrain") != 0 : !sm_cfg_get(s->root, "pretrain_dataset")) {
        fprintf(stderr, "simmimctl: %s: reconstruct needs a pretraining config (task: pretrain, "
                        "a pretrain_dataset section); this one has task: %s\n",
                s->o.config, task ? task : "finetune");
        return SM_EXIT_USAGE;
    }
    if (sm_pipeline_from_config(&s->pipe, s->root, "pretrain_dataset", SM_PIPELINE_EVAL, &s->err))
        return sm_cli_session_fail(s, SM_EXIT_USAGE);
    s->pipe.use_mask = true;
    return 0;
}

/* The SimMIM model with every tensor from the checkpoint, and the backend. */
static int recon_model(sm_cli_session *s)
{
    const char *ckpt = s->values[V_CKPT];
    char note[512] = "";
    if (sm_model_new(s->reg, s->root, SM_TASK_SIMMIM, &s->model, &s->err))
        return sm_cli_session_fail(s, 0);
    if (sm__recon_check_ckpt(s->model, ckpt)) return SM_EXIT_FAILURE;
    if (sm_model_load_weights(s->model, ckpt, note, sizeof note, &s->err))
        return sm_cli_session_fail(s, SM_EXIT_FAILURE);
    int rc = sm_cli_session_backend(s, s->values[V_BACKEND]);
    if (!rc) fprintf(stderr, "weights: %s\n", note);
    return rc;
}

/* Loads, transforms and masks each image; bad ones are reported and left out (*bad). */
static int recon_images(sm_cli_session *s, unsigned long long seed, recon_set *r, int *bad)
{
    const sm_pipeline *p = &s->pipe;
    r->S = p->image_size, r->C = p->channels, r->g = r->S / p->mask.model_patch_size;
    size_t n_img = s->o.n_positional - 1, img = (size_t)r->C * r->S * r->S;
    r->images = malloc(n_img * img * sizeof(float));
    r->masks = malloc(n_img * (size_t)r->g * r->g * sizeof(float));
    r->losses = malloc(n_img * sizeof(double));
    r->names = malloc(n_img * sizeof *r->names);
    if (!r->images || !r->masks || !r->losses || !r->names) {
        fprintf(stderr, "simmimctl: out of memory\n");
        return SM_EXIT_FAILURE;
    }
    sm_image im, tmp;
    sm_image_init(&im);
    sm_image_init(&tmp);
    for (size_t i = 0; i < n_img; i++) {
        const char *path = s->o.positional[1 + i];
        sm_error_clear(&s->err);
        if (sm_image_load(path, &p->decode, &im, NULL, &s->err) ||
            sm_pipeline_apply(p, &im, path, seed, 0, (int64_t)i, r->images + r->n * img,
                              r->masks + (size_t)r->n * r->g * r->g, &tmp, &s->err)) {
            if (!s->err.file[0]) snprintf(s->err.file, sizeof s->err.file, "%s", path);
            sm_cli_print_error(&s->err);
            (*bad)++;
            continue;
        }
        r->names[r->n++] = path;
    }
    sm_image_deinit(&im);
    sm_image_deinit(&tmp);
    if (r->n > 0) return 0;
    fprintf(stderr, "simmimctl: no image could be read; nothing written\n");
    return SM_EXIT_FAILURE;
}

/* The figure, then each image's loss. */
static int recon_write(sm_cli_session *s, recon_set *r)
{
    const char *out = s->values[V_OUTPUT];
    const sm_pipeline *p = &s->pipe;
    sm_error_clear(&s->err);
    if (sm_recon_figure(s->model, s->ctx, r->images, r->masks, r->n, r->C, r->S, r->g, p->mean,
                        p->std, out, r->losses, &s->err))
        return sm_cli_session_fail(s, SM_EXIT_FAILURE);
    int per = p->mask.mask_patch_size / p->mask.model_patch_size; /* model patches per side */
    int g2 = r->g * r->g;
    for (int i = 0; i < r->n; i++) {
        int masked = 0;
        for (int k = 0; k < g2; k++) masked += r->masks[(size_t)i * g2 + k] > 0.5f;
        printf("%s: loss %.4f (%d of %d patches of %d px masked)\n", r->names[i], r->losses[i],
               masked / (per * per), g2 / (per * per), p->mask.mask_patch_size);
    }
    printf("wrote %s: %d image%s (input, masked input, reconstruction, masked patches "
           "reconstructed)\n",
           out, r->n, r->n == 1 ? "" : "s");
    return 0;
}

int sm_cmd_reconstruct(int argc, char **argv)
{
    sm_cli_session s;
    recon_set r = {0};
    unsigned long long seed = 0;
    int bad = 0;
    int rc = sm_cli_session_begin(&s, &argc, argv, &recon_cmd);
    if (!rc) rc = recon_check_args(&s, &seed);
    if (!rc) rc = sm_cli_session_config(&s, false);
    if (!rc) rc = recon_pipeline(&s);
    if (!rc && !s.values[V_SEED] && sm_cfg_get(s.root, "seed"))
        seed = (unsigned long long)sm_cfg_int(s.root, "seed");
    if (!rc) rc = recon_model(&s);
    if (!rc) rc = recon_images(&s, seed, &r, &bad);
    if (!rc) rc = recon_write(&s, &r);
    if (!rc && bad) {
        fprintf(stderr, "simmimctl: %d of %zu images could not be read\n", bad,
                s.o.n_positional - 1);
        rc = SM_EXIT_FAILURE;
    }
    recon_set_free(&r);
    return sm_cli_session_end(&s, rc);
}
