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

int sm_cmd_reconstruct(int argc, char **argv)
{
    static const char *const keys[] = {"--checkpoint", "--output", "--seed", "--backend"};
    const char *v[4] = {NULL, "reconstruction.png", NULL, NULL};
    if (sm_cli_take_values(&argc, argv, keys, v, 4)) return SM_EXIT_USAGE;
    const char *ckpt = v[0], *out = v[1], *seed_s = v[2], *backend_name = v[3];
    sm_cli_opts o;
    int rc = sm_cli_parse(argc, argv, &o, recon_usage);
    if (rc == SM_CLI_HELP) return SM_EXIT_OK;
    if (rc) return rc;
    int exit_code = SM_EXIT_USAGE;
    if (sm_cli_check_args(&o, "reconstruct", NULL, 2, 1 + SM__RECON_MAX_IMAGES)) goto out_opts;
    char *end = NULL;
    unsigned long long seed = seed_s ? strtoull(seed_s, &end, 10) : 0;
    if (!ckpt || (seed_s && (!*seed_s || *end || seed_s[0] == '-'))) {
        fprintf(stderr, "simmimctl reconstruct: %s (see --help)\n",
                !ckpt ? "--checkpoint FILE is required" : "--seed takes a non-negative integer");
        goto out_opts;
    }

    sm_registry *reg = NULL;
    sm_config *cfg = NULL;
    sm_model *m = NULL;
    sm_backend *be = NULL;
    sm_ctx *ctx = NULL;
    float *images = NULL, *masks = NULL;
    double *losses = NULL;
    const char **names = NULL;
    sm_image im, tmp;
    sm_image_init(&im);
    sm_image_init(&tmp);
    sm_error e;
    sm_error_clear(&e);
    if ((rc = sm_cli_load_config(&o, &reg, &cfg)) != 0) {
        exit_code = rc;
        goto out;
    }
    const sm_cfg *root = sm_config_root(cfg);
    const char *task = sm_cfg_str(root, "task");
    if (task ? strcmp(task, "pretrain") != 0 : !sm_cfg_get(root, "pretrain_dataset")) {
        fprintf(stderr, "simmimctl: %s: reconstruct needs a pretraining config (task: pretrain, "
                        "a pretrain_dataset section); this one has task: %s\n",
                o.config, task ? task : "finetune");
        goto out;
    }
    sm_pipeline p;
    if (sm_pipeline_from_config(&p, root, "pretrain_dataset", SM_PIPELINE_EVAL, &e)) {
        sm_cli_print_error(&e);
        goto out;
    }
    p.use_mask = true;
    if (!seed_s && sm_cfg_get(root, "seed")) seed = (unsigned long long)sm_cfg_int(root, "seed");

    exit_code = SM_EXIT_FAILURE;
    if (sm_model_new(reg, root, SM_TASK_SIMMIM, &m, &e)) {
        sm_cli_print_error(&e);
        exit_code = sm_cli_exit_code(e.code);
        goto out;
    }
    char note[512] = "";
    if (sm__recon_check_ckpt(m, ckpt)) goto out;
    if (sm_model_load_weights(m, ckpt, note, sizeof note, &e)) {
        sm_cli_print_error(&e);
        goto out;
    }
    if (sm_cli_backend(reg, root, backend_name, &be, &e) || !(ctx = sm_ctx_new(be))) {
        if (!e.code) sm_error_set(&e, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
        sm_cli_print_error(&e);
        goto out;
    }
    fprintf(stderr, "weights: %s\n", note);

    int S = p.image_size, C = p.channels, g = S / p.mask.model_patch_size;
    size_t n_img = o.n_positional - 1, img = (size_t)C * S * S;
    images = malloc(n_img * img * sizeof(float));
    masks = malloc(n_img * (size_t)g * g * sizeof(float));
    losses = malloc(n_img * sizeof(double));
    names = malloc(n_img * sizeof *names);
    if (!images || !masks || !losses || !names) {
        fprintf(stderr, "simmimctl: out of memory\n");
        goto out;
    }
    int n = 0, bad = 0;
    for (size_t i = 0; i < n_img; i++) {
        const char *path = o.positional[1 + i];
        sm_error_clear(&e);
        if (sm_image_load(path, &p.decode, &im, NULL, &e) ||
            sm_pipeline_apply(&p, &im, path, seed, 0, (int64_t)i, images + n * img,
                              masks + (size_t)n * g * g, &tmp, &e)) {
            if (!e.file[0]) snprintf(e.file, sizeof e.file, "%s", path);
            sm_cli_print_error(&e);
            bad++;
            continue;
        }
        names[n++] = path;
    }
    if (n == 0) {
        fprintf(stderr, "simmimctl: no image could be read; nothing written\n");
        goto out;
    }
    sm_error_clear(&e);
    if (sm_recon_figure(m, ctx, images, masks, n, C, S, g, p.mean, p.std, out, losses, &e)) {
        sm_cli_print_error(&e);
        goto out;
    }
    int per = p.mask.mask_patch_size / p.mask.model_patch_size; /* model patches per side */
    for (int i = 0; i < n; i++) {
        int masked = 0;
        for (int k = 0; k < g * g; k++) masked += masks[(size_t)i * g * g + k] > 0.5f;
        printf("%s: loss %.4f (%d of %d patches of %d px masked)\n", names[i], losses[i],
               masked / (per * per), g * g / (per * per), p.mask.mask_patch_size);
    }
    printf("wrote %s: %d image%s (input, masked input, reconstruction, masked patches "
           "reconstructed)\n",
           out, n, n == 1 ? "" : "s");
    exit_code = bad ? SM_EXIT_FAILURE : SM_EXIT_OK;
    if (bad) fprintf(stderr, "simmimctl: %d of %zu images could not be read\n", bad, n_img);
out:
    sm_image_deinit(&im);
    sm_image_deinit(&tmp);
    free(images);
    free(masks);
    free(losses);
    free(names);
    sm_ctx_free(ctx);
    sm_backend_free(be);
    sm_model_free(m);
    sm_config_free(cfg);
    sm_registry_free(reg);
out_opts:
    sm_cli_opts_free(&o);
    return exit_code;
}
