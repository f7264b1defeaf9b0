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

static const char *const model_values[] = {"--task", "--backend", "--batch", "--steps"};
static const char *const model_flags[] = {"--recompute", NULL};
static const sm_cli_command model_cmd = {"model", model_usage, model_values, NULL, 4, model_flags,
                                         1, 1};
enum { V_TASK, V_BACKEND, V_BATCH, V_STEPS };

/* The task: --task, else the config's (eval counts as finetune). */
static sm_task model_task(const sm_cli_session *s)
{
    const char *t = s->values[V_TASK];
    if (!t) {
        t = sm_cfg_str(s->root, "task");
        if (!t)
            t = sm_cfg_get(s->root, "finetune_dataset") && !sm_cfg_get(s->root, "pretrain_dataset")
                    ? "finetune"
                    : "pretrain";
    }
    return !strcmp(t, "pretrain") ? SM_TASK_SIMMIM : SM_TASK_CLASSIFY;
}

static void model_describe(const sm_cli_session *s)
{
    const sm_backbone_info *info = sm_model_info(s->model);
    const sm_component *bc =
        sm_registry_find(s->reg, SM_KIND_BACKBONE, sm_cfg_str(s->root, "model.backbone"));
    int64_t img = sm_cfg_int(s->root, "train_config.image_size");
    sm_params *p = sm_model_params(s->model);
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
    bool simmim = sm_model_task(s->model) == SM_TASK_SIMMIM;
    printf("model: %s with backbone %s (%s)\n", simmim ? "SimMIM" : "classifier", bc->name,
           sm_registry_source(s->reg, bc));
    printf("  input %d x %lld x %lld, patch %d (mask grid %lld x %lld), feature stride %d, "
           "%d features, %d layer ids\n",
           info->in_chans, (long long)img, (long long)img, info->patch_size,
           (long long)(img / info->patch_size), (long long)(img / info->patch_size),
           info->encoder_stride, info->num_features, info->num_layers);
    printf("  parameters: %lld (%zu tensors): backbone %lld", (long long)sm_params_numel(p),
           sm_params_count(p), (long long)n_enc);
    if (simmim)
        printf(", decoder %lld\n", (long long)n_dec);
    else
        printf(", head %lld (%d classes)\n", (long long)n_head, sm_model_num_classes(s->model));
    fflush(stdout);
}

/* The loss of a batch of random images (and masks or labels), keyed by step. */
static sm_tensor *model_random_loss(sm_cli_session *s, long batch, long step)
{
    const sm_backbone_info *info = sm_model_info(s->model);
    int64_t img = sm_cfg_int(s->root, "train_config.image_size");
    sm_rng r;
    sm_rng_init(&r, 0, 0x6d6f64656c /* "model" */, (uint64_t)step, 0);
    sm_tensor *x = sm_ctx_tensor(s->ctx, 4, SM_SHAPE(batch, info->in_chans, img, img));
    if (!x) return NULL;
    for (int64_t i = 0; i < sm_tensor_numel(x); i++) x->data[i] = (float)sm_rng_normal(&r);
    if (sm_model_task(s->model) == SM_TASK_SIMMIM) {
        int64_t g = img / info->patch_size;
        sm_tensor *mask = sm_ctx_tensor(s->ctx, 3, SM_SHAPE(batch, g, g));
        if (!mask) return NULL;
        for (int64_t i = 0; i < sm_tensor_numel(mask); i++)
            mask->data[i] = sm_rng_uniform(&r) < 0.6 ? 1.0f : 0.0f;
        return sm_model_simmim(s->model, s->ctx, x, mask, NULL);
    }
    int64_t *labels = sm_ctx_alloc(s->ctx, (size_t)batch * sizeof *labels);
    if (!labels) return NULL;
    for (long b = 0; b < batch; b++)
        labels[b] = (int64_t)sm_rng_below(&r, (uint64_t)sm_model_num_classes(s->model));
    return sm_cross_entropy(s->ctx, sm_model_logits(s->model, s->ctx, x), labels, 0.0f);
}

/* Timed forward + backward steps. */
static int model_steps(sm_cli_session *s, long batch, long steps)
{
    char desc[256];
    sm_backend_describe(s->be, desc, sizeof desc);
    printf("  backend: %s\n", desc);
    sm_ctx_set_train(s->ctx, true);
    sm_ctx_set_recompute(s->ctx, sm_cli_has_flag(&s->o, "--recompute") ||
                                     sm_cfg_bool(s->root, "train_config.recompute"));
    if (sm_ctx_recompute(s->ctx))
        printf("  recompute: on (block activations recomputed in backward)\n");
    for (long step = 0; step < steps; step++) {
        sm_ctx_reset(s->ctx);
        sm_ctx_set_rng(s->ctx, 0, (uint64_t)step);
        double t0 = now_s();
        sm_tensor *loss = model_random_loss(s, batch, step);
        double t1 = now_s();
        sm_params_zero_grad(sm_model_params(s->model));
        if (loss) sm_backward(s->ctx, loss);
        double t2 = now_s();
        if (!loss || sm_ctx_status(s->ctx)) break;
        printf("  step %ld: batch %ld, loss %.6f, forward %.3f s, backward %.3f s, %.2f img/s, "
               "arena peak %.1f MiB\n",
               step, batch, loss->data[0], t1 - t0, t2 - t1, (double)batch / (t2 - t0),
               (double)sm_ctx_arena_peak(s->ctx) / (1024.0 * 1024.0));
        fflush(stdout);
    }
    if (!sm_ctx_status(s->ctx)) return 0;
    sm_cli_print_error(sm_ctx_error(s->ctx));
    return SM_EXIT_FAILURE;
}

static int model_check_args(const sm_cli_session *s, long *batch, long *steps)
{
    const char *task = s->values[V_TASK], *b = s->values[V_BATCH], *n = s->values[V_STEPS];
    if ((b && sm_cli_parse_long(b, 1, 4096, batch)) || (n && sm_cli_parse_long(n, 0, 1000, steps))) {
        fprintf(stderr, "simmimctl model: --batch takes 1..4096 and --steps 0..1000\n");
        return SM_EXIT_USAGE;
    }
    if (task && strcmp(task, "pretrain") && strcmp(task, "finetune")) {
        fprintf(stderr, "simmimctl model: --task must be pretrain or finetune, not '%s'\n", task);
        return SM_EXIT_USAGE;
    }
    return 0;
}

int sm_cmd_model(int argc, char **argv)
{
    sm_cli_session s;
    long batch = 2, steps = 1;
    int rc = sm_cli_session_begin(&s, &argc, argv, &model_cmd);
    if (!rc) rc = model_check_args(&s, &batch, &steps);
    if (!rc) rc = sm_cli_session_config(&s, true);
    if (!rc && sm_model_new(s.reg, s.root, model_task(&s), &s.model, &s.err))
        rc = sm_cli_session_fail(&s, 0);
    if (!rc) model_describe(&s);
    if (!rc && steps > 0) rc = sm_cli_session_backend(&s, s.values[V_BACKEND]);
    if (!rc && steps > 0 && sm_model_init(s.model, 0, &s.err))
        rc = sm_cli_session_fail(&s, SM_EXIT_FAILURE);
    if (!rc && steps > 0) rc = model_steps(&s, batch, steps);
    return sm_cli_session_end(&s, rc);
}
