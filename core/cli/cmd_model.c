/* core/cli/cmd_model.c - `simmimctl model CONFIG`: build the configured model, describe it, and
 * time one forward + backward step on random inputs. It needs only the model part of a config
 * (no dataset, optimizer or scheduler), so it is the quickest way to check a backbone setting or
 * a new backbone plugin. */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char model_usage[] =
    "usage: simmimctl model CONFIG [--task pretrain|finetune] [--batch N] [--steps N]\n"
    "                      [--recompute] [--backend NAME] [--options key=value ...]\n"
    "                      [--plugin-dir DIR]\n\n"
    "Builds the model a config describes (model section, train_config.image_size and\n"
    "num_classes), prints its backbone, geometry and parameter counts, then runs forward and\n"
    "backward steps on random images (and a random SimMIM mask) and prints the loss and times.\n\n"
    "  --task      pretrain (SimMIM) or finetune (classifier); default from the config\n"
    "  --batch N   batch size of the timed steps (default 2); --steps N (default 1; 0 = none)\n"
    "  --recompute recompute each block's activations in backward (less memory); default\n"
    "              from train_config.recompute\n"
    "  --backend   compute backend (default: backend.name of the config, else blis or ref)\n";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int sm_cmd_model(int argc, char **argv)
{
    static const char *const keys[] = {"--task", "--backend", "--batch", "--steps"};
    const char *v[4] = {NULL, NULL, NULL, NULL};
    if (sm_cli_take_values(&argc, argv, keys, v, 4)) return SM_EXIT_USAGE;
    const char *task_s = v[0], *backend_name = v[1], *batch_s = v[2], *steps_s = v[3];
    long batch = 2, steps = 1;
    sm_cli_opts o;
    int rc = sm_cli_parse(argc, argv, &o, model_usage);
    if (rc == SM_CLI_HELP) return SM_EXIT_OK;
    if (rc) return rc;
    int exit_code = SM_EXIT_USAGE;
    static const char *const flags[] = {"--recompute", NULL};
    if (sm_cli_check_args(&o, "model", flags, 1, 1)) goto out_opts;
    if ((batch_s && sm_cli_parse_long(batch_s, 1, 4096, &batch)) ||
        (steps_s && sm_cli_parse_long(steps_s, 0, 1000, &steps))) {
        fprintf(stderr, "simmimctl model: --batch takes 1..4096 and --steps 0..1000\n");
        goto out_opts;
    }
    if (task_s && strcmp(task_s, "pretrain") && strcmp(task_s, "finetune")) {
        fprintf(stderr, "simmimctl model: --task must be pretrain or finetune, not '%s'\n", task_s);
        goto out_opts;
    }

    sm_diag *d = sm_diag_new();
    sm_config *cfg = NULL;
    sm_registry *reg = NULL;
    sm_model *m = NULL;
    sm_backend *be = NULL;
    sm_ctx *ctx = NULL;
    sm_error err;
    sm_error_clear(&err);
    rc = sm_config_read(o.config, o.options, o.n_options, &cfg, d);
    if (!rc && !(reg = sm_cli_registry(&o, cfg))) rc = SM_ENOMEM;
    if (!rc) rc = sm_config_validate_model(cfg, reg, d);
    sm_diag_sort(d);
    sm_cli_print_diag(d);
    if (rc) {
        exit_code = sm_cli_exit_code(rc == SM_EIO ? SM_ECONFIG : rc);
        goto out;
    }
    exit_code = SM_EXIT_FAILURE;
    const sm_cfg *root = sm_config_root(cfg);
    if (!task_s) {
        const char *t = sm_cfg_str(root, "task");
        task_s = t ? t
                 : sm_cfg_get(root, "finetune_dataset") && !sm_cfg_get(root, "pretrain_dataset")
                     ? "finetune"
                     : "pretrain";
        if (!strcmp(task_s, "eval")) task_s = "finetune";
    }
    sm_task task = !strcmp(task_s, "pretrain") ? SM_TASK_SIMMIM : SM_TASK_CLASSIFY;
    if (sm_model_new(reg, root, task, &m, &err)) {
        sm_cli_print_error(&err);
        exit_code = sm_cli_exit_code(err.code);
        goto out;
    }
    const sm_backbone_info *info = sm_model_info(m);
    const char *bb_name = sm_cfg_str(root, "model.backbone");
    const sm_component *bc = sm_registry_find(reg, SM_KIND_BACKBONE, bb_name);
    int64_t img = sm_cfg_int(root, "train_config.image_size");
    sm_params *p = sm_model_params(m);
    int64_t n_enc = 0, n_dec = 0, n_head = 0;
    for (size_t i = 0; i < sm_params_count(p); i++) {
        sm_tensor *t = sm_params_at(p, i);
        int64_t n = sm_tensor_numel(t);
        if (!strncmp(t->name, "decoder.", 8))
            n_dec += n;
        else if (!strncmp(t->name, "head.", 5))
            n_head += n;
        else
            n_enc += n;
    }
    printf("model: %s with backbone %s (%s)\n", task == SM_TASK_SIMMIM ? "SimMIM" : "classifier",
           bc->name, sm_registry_source(reg, bc));
    printf("  input %d x %lld x %lld, patch %d (mask grid %lld x %lld), feature stride %d, "
           "%d features, %d layer ids\n",
           info->in_chans, (long long)img, (long long)img, info->patch_size,
           (long long)(img / info->patch_size), (long long)(img / info->patch_size),
           info->encoder_stride, info->num_features, info->num_layers);
    printf("  parameters: %lld (%zu tensors): backbone %lld", (long long)sm_params_numel(p),
           sm_params_count(p), (long long)n_enc);
    if (task == SM_TASK_SIMMIM)
        printf(", decoder %lld\n", (long long)n_dec);
    else
        printf(", head %lld (%d classes)\n", (long long)n_head, sm_model_num_classes(m));
    fflush(stdout);
    if (steps == 0) {
        exit_code = SM_EXIT_OK;
        goto out;
    }

    if (sm_cli_backend(reg, root, backend_name, &be, &err) || sm_model_init(m, 0, &err) || !(ctx = sm_ctx_new(be))) {
        if (!err.code) sm_error_set(&err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
        sm_cli_print_error(&err);
        goto out;
    }
    char desc[256];
    sm_backend_describe(be, desc, sizeof desc);
    printf("  backend: %s\n", desc);
    sm_ctx_set_train(ctx, true);
    sm_ctx_set_recompute(ctx, sm_cli_has_flag(&o, "--recompute") ||
                                  sm_cfg_bool(root, "train_config.recompute"));
    if (sm_ctx_recompute(ctx))
        printf("  recompute: on (block activations recomputed in backward)\n");
    for (long s = 0; s < steps; s++) {
        sm_ctx_reset(ctx);
        sm_ctx_set_rng(ctx, 0, (uint64_t)s);
        sm_rng r;
        sm_rng_init(&r, 0, 0x6d6f64656c /* "model" */, (uint64_t)s, 0);
        sm_tensor *x = sm_ctx_tensor(ctx, 4, SM_SHAPE(batch, info->in_chans, img, img));
        if (!x) break;
        for (int64_t i = 0; i < sm_tensor_numel(x); i++) x->data[i] = (float)sm_rng_normal(&r);
        double t0 = now_s();
        sm_tensor *loss = NULL;
        if (task == SM_TASK_SIMMIM) {
            int64_t g = img / info->patch_size;
            sm_tensor *mask = sm_ctx_tensor(ctx, 3, SM_SHAPE(batch, g, g));
            if (!mask) break;
            for (int64_t i = 0; i < sm_tensor_numel(mask); i++)
                mask->data[i] = sm_rng_uniform(&r) < 0.6 ? 1.0f : 0.0f;
            loss = sm_model_simmim(m, ctx, x, mask, NULL);
        } else {
            int64_t *labels = sm_ctx_alloc(ctx, (size_t)batch * sizeof *labels);
            if (!labels) break;
            for (long b = 0; b < batch; b++)
                labels[b] = (int64_t)sm_rng_below(&r, (uint64_t)sm_model_num_classes(m));
            sm_tensor *logits = sm_model_logits(m, ctx, x);
            loss = sm_cross_entropy(ctx, logits, labels, 0.0f);
        }
        double t1 = now_s();
        sm_params_zero_grad(p);
        if (loss) sm_backward(ctx, loss);
        double t2 = now_s();
        if (sm_ctx_status(ctx)) break;
        printf("  step %ld: batch %ld, loss %.6f, forward %.3f s, backward %.3f s, %.2f img/s, "
               "arena peak %.1f MiB\n",
               s, batch, loss->data[0], t1 - t0, t2 - t1, (double)batch / (t2 - t0),
               (double)sm_ctx_arena_peak(ctx) / (1024.0 * 1024.0));
        fflush(stdout);
    }
    if (sm_ctx_status(ctx)) {
        sm_cli_print_error(sm_ctx_error(ctx));
        goto out;
    }
    exit_code = SM_EXIT_OK;
out:
    sm_ctx_free(ctx);
    sm_backend_free(be);
    sm_model_free(m);
    sm_registry_free(reg);
    sm_config_free(cfg);
    sm_diag_free(d);
out_opts:
    sm_cli_opts_free(&o);
    return exit_code;
}
