/* core/cli/cmd_model.c - `simmimctl model CONFIG`: build the configured model, describe it, and
 * time steps on random inputs: forward + backward (the default; only the model part of a config
 * is needed, so it is the quickest way to check a backbone setting or a new backbone plugin),
 * a whole training step with clipping and the optimizer (--train, through sm_trainer), or the
 * evaluation forward (--eval). --profile breaks the steps down by op family (sm_ctx_set_profile)
 * and --json prints the figures as one JSON object (bench/run reads it). */
#include "cli.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char model_usage[] =
    "usage: simmimctl model CONFIG [--task pretrain|finetune] [--batch N] [--steps N]\n"
    "                      [--warmup N] [--train | --eval] [--recompute] [--profile] [--json]\n"
    "                      [--backend NAME] [--options key=value ...] [--plugin-dir DIR]\n\n"
    "Builds the model a config describes (model section, train_config.image_size and\n"
    "num_classes), prints its backbone, geometry and parameter counts, then runs steps on random\n"
    "images (and a random SimMIM mask, or random labels) and prints the loss and times.\n\n"
    "  --task      pretrain (SimMIM) or finetune (classifier); default from the config\n"
    "  --batch N   batch size of the timed steps (default 2); --steps N (default 1; 0 = none)\n"
    "  --train     whole training steps: forward, backward, gradient clipping and the\n"
    "              optimizer update with the config's optimizer and schedule (the config must\n"
    "              validate fully; no data is read)\n"
    "  --eval      evaluation forward only (no gradients): classifier logits, or the SimMIM\n"
    "              loss of a pretraining model\n"
    "  --recompute recompute each block's activations in backward (less memory); default\n"
    "              from train_config.recompute\n"
    "  --warmup N  the first N steps are left out of the summary, the profile and --json's\n"
    "              medians (default 0)\n"
    "  --profile   time every op and print the breakdown per step by op family\n"
    "  --json      print one JSON object on stdout (the text goes to stderr)\n"
    "  --backend   compute backend (default: backend.name of the config, else blis or ref)\n";

static const char *const model_values[] = {"--task", "--backend", "--batch", "--steps",
                                           "--warmup"};
static const char *const model_flags[] = {"--recompute", "--train", "--eval", "--profile",
                                          "--json", NULL};
static const sm_cli_command model_cmd = {"model", model_usage, model_values, NULL, 5, model_flags,
                                         1, 1};
enum { V_TASK, V_BACKEND, V_BATCH, V_STEPS, V_WARMUP };

typedef enum { RUN_FWDBWD, RUN_TRAIN, RUN_EVAL } run_mode;

/* One invocation: what it runs and, per step, what it measured. */
typedef struct model_run {
    run_mode mode;
    long batch, steps, warmup;
    bool profile, json;
    FILE *out;           /* the text: stdout, or stderr with --json */
    sm_model *model;     /* the session's, or the trainer's */
    sm_ctx *ctx;
    sm_trainer *trainer; /* --train */
    sm_batch b;          /* the random batch (malloc'd) */
    double *step_s, *loss, *fwd_s, *bwd_s, *opt_s;
    sm_profile prof;     /* accumulated over the steps after the warm-up */
} model_run;

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

static void model_describe(const sm_cli_session *s, sm_model *model, FILE *out)
{
    const sm_backbone_info *info = sm_model_info(model);
    const sm_component *bc =
        sm_registry_find(s->reg, SM_KIND_BACKBONE, sm_cfg_str(s->root, "model.backbone"));
    int64_t img = sm_cfg_int(s->root, "train_config.image_size");
    sm_params *p = sm_model_params(model);
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
    bool simmim = sm_model_task(model) == SM_TASK_SIMMIM;
    fprintf(out, "model: %s with backbone %s (%s)\n", simmim ? "SimMIM" : "classifier", bc->name,
            sm_registry_source(s->reg, bc));
    fprintf(out,
            "  input %d x %lld x %lld, patch %d (mask grid %lld x %lld), feature stride %d, "
            "%d features, %d layer ids\n",
            info->in_chans, (long long)img, (long long)img, info->patch_size,
            (long long)(img / info->patch_size), (long long)(img / info->patch_size),
            info->encoder_stride, info->num_features, info->num_layers);
    fprintf(out, "  parameters: %lld (%zu tensors): backbone %lld", (long long)sm_params_numel(p),
            sm_params_count(p), (long long)n_enc);
    if (simmim)
        fprintf(out, ", decoder %lld\n", (long long)n_dec);
    else
        fprintf(out, ", head %lld (%d classes)\n", (long long)n_head,
                sm_model_num_classes(model));
    fflush(out);
}

/* ---- the random batch -------------------------------------------------------------------- */

static int batch_alloc(model_run *r, const sm_cli_session *s)
{
    const sm_backbone_info *info = sm_model_info(r->model);
    int img = (int)sm_cfg_int(s->root, "train_config.image_size");
    sm_batch *b = &r->b;
    b->size = (int)r->batch;
    b->channels = info->in_chans;
    b->height = b->width = img;
    b->images = malloc((size_t)r->batch * (size_t)info->in_chans * (size_t)img * (size_t)img *
                       sizeof *b->images);
    if (!b->images) return SM_ENOMEM;
    if (sm_model_task(r->model) == SM_TASK_SIMMIM) {
        b->mask_side = img / info->patch_size;
        b->mask = malloc((size_t)r->batch * (size_t)b->mask_side * (size_t)b->mask_side *
                         sizeof *b->mask);
        return b->mask ? 0 : SM_ENOMEM;
    }
    b->num_classes = sm_model_num_classes(r->model);
    b->labels = malloc((size_t)r->batch * sizeof *b->labels);
    return b->labels ? 0 : SM_ENOMEM;
}

static void batch_free(sm_batch *b)
{
    free(b->images);
    free(b->mask);
    free(b->labels);
}

/* Random images (standard normal), SimMIM mask (60 %) or labels, keyed by step. */
static void batch_fill(sm_batch *b, long step)
{
    sm_rng r;
    sm_rng_init(&r, 0, 0x6d6f64656c /* "model" */, (uint64_t)step, 0);
    int64_t n = (int64_t)b->size * b->channels * b->height * b->width;
    for (int64_t i = 0; i < n; i++) b->images[i] = (float)sm_rng_normal(&r);
    if (b->mask) {
        int64_t m = (int64_t)b->size * b->mask_side * b->mask_side;
        for (int64_t i = 0; i < m; i++) b->mask[i] = sm_rng_uniform(&r) < 0.6 ? 1.0f : 0.0f;
    }
    if (b->labels)
        for (int i = 0; i < b->size; i++)
            b->labels[i] = (int)sm_rng_below(&r, (uint64_t)b->num_classes);
}

/* The batch's loss (SimMIM) or logits (classifier, eval) or loss (classifier), on the tape. */
static sm_tensor *batch_forward(model_run *r)
{
    sm_batch *b = &r->b;
    sm_ctx *ctx = r->ctx;
    sm_tensor *x =
        sm_ctx_wrap(ctx, b->images, 4, SM_SHAPE(b->size, b->channels, b->height, b->width));
    if (sm_model_task(r->model) == SM_TASK_SIMMIM) {
        sm_tensor *mask =
            sm_ctx_wrap(ctx, b->mask, 3, SM_SHAPE(b->size, b->mask_side, b->mask_side));
        return sm_model_simmim(r->model, ctx, x, mask, NULL);
    }
    sm_tensor *logits = sm_model_logits(r->model, ctx, x);
    if (r->mode == RUN_EVAL) return logits;
    int64_t *labels = sm_ctx_alloc(ctx, (size_t)b->size * sizeof *labels);
    if (!labels) return NULL;
    for (int i = 0; i < b->size; i++) labels[i] = b->labels[i];
    return sm_cross_entropy(ctx, logits, labels, 0.0f);
}

/* ---- the steps ----------------------------------------------------------------------------- */

/* Forward + backward (default) or forward alone (eval) of step `step`; *fwd, *bwd its parts. */
static int model_step_plain(model_run *r, long step, double *fwd, double *bwd, double *loss)
{
    sm_ctx_reset(r->ctx);
    sm_ctx_set_rng(r->ctx, 0, (uint64_t)step);
    double t0 = sm_profile_now();
    sm_tensor *out = batch_forward(r);
    double t1 = sm_profile_now();
    if (out && r->mode == RUN_FWDBWD) {
        sm_params_zero_grad(sm_model_params(r->model));
        sm_backward(r->ctx, out);
    }
    double t2 = sm_profile_now();
    if (!out || sm_ctx_status(r->ctx)) return SM_EINVAL;
    *fwd = t1 - t0;
    *bwd = t2 - t1;
    *loss = out->data[0];
    return 0;
}

static const char *mode_name(run_mode m)
{
    return m == RUN_TRAIN ? "train" : m == RUN_EVAL ? "eval" : "fwdbwd";
}

static void print_step(const model_run *r, long i)
{
    fprintf(r->out, "  step %ld: batch %ld, loss %.6f", i, r->batch, r->loss[i]);
    if (r->mode != RUN_TRAIN || r->profile)
        fprintf(r->out, ", forward %.3f s", r->fwd_s[i]);
    if (r->mode != RUN_EVAL && (r->mode != RUN_TRAIN || r->profile))
        fprintf(r->out, ", backward %.3f s", r->bwd_s[i]);
    if (r->mode == RUN_TRAIN)
        fprintf(r->out, "%s %.3f s, step %.3f s", r->profile ? ", optimizer" : "",
                r->profile ? r->opt_s[i] : 0.0, r->step_s[i]);
    fprintf(r->out, ", %.2f img/s, arena peak %.1f MiB (reserved %.1f)%s\n",
            (double)r->batch / r->step_s[i], (double)sm_ctx_arena_peak(r->ctx) / (1024.0 * 1024.0),
            (double)sm_ctx_arena_reserved(r->ctx) / (1024.0 * 1024.0),
            i < r->warmup ? " (warm-up)" : "");
    fflush(r->out);
}

/* Sum of the forward-phase figures of a profile (ops and their GEMMs). */
static double prof_phase_total(const sm_profile *p, sm_profile_phase ph)
{
    double t = 0.0;
    for (int i = 0; i < SM_PROFILE_OPS; i++) t += p->op_s[ph][i] + p->gemm_s[ph][i];
    return t;
}

static int model_steps(model_run *r)
{
    for (long i = 0; i < r->steps; i++) {
        if (i == r->warmup && r->profile) sm_ctx_profile_clear(r->ctx);
        sm_profile before;
        sm_ctx_profile(r->ctx, &before);
        double t0 = sm_profile_now();
        batch_fill(&r->b, i);
        double data_s = sm_profile_now() - t0;
        sm_ctx_profile_add(r->ctx, SM_PROFILE_DATA, data_s);
        double t1 = sm_profile_now();
        if (r->mode == RUN_TRAIN) {
            sm_step_info info;
            sm_error err;
            sm_error_clear(&err);
            if (sm_trainer_step(r->trainer, &r->b, &info, &err)) {
                sm_cli_print_error(&err);
                return SM_EXIT_FAILURE;
            }
            r->loss[i] = info.loss;
        } else if (model_step_plain(r, i, &r->fwd_s[i], &r->bwd_s[i], &r->loss[i])) {
            sm_cli_print_error(sm_ctx_error(r->ctx));
            return SM_EXIT_FAILURE;
        }
        r->step_s[i] = sm_profile_now() - t1;
        if (r->mode == RUN_TRAIN && r->profile) {
            sm_profile after;
            sm_ctx_profile(r->ctx, &after);
            r->fwd_s[i] = prof_phase_total(&after, SM_PROFILE_FORWARD) -
                          prof_phase_total(&before, SM_PROFILE_FORWARD);
            r->bwd_s[i] = after.backward_s - before.backward_s;
            r->opt_s[i] = after.extra_s[SM_PROFILE_OPTIMIZER] - before.extra_s[SM_PROFILE_OPTIMIZER];
        }
        print_step(r, i);
    }
    if (r->profile) sm_ctx_profile(r->ctx, &r->prof);
    return 0;
}

/* ---- the summary: medians and the breakdown by op family ------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of v[from..n). */
static double median_from(const double *v, long from, long n)
{
    long m = n - from;
    if (m <= 0) return NAN;
    double *c = malloc((size_t)m * sizeof *c);
    if (!c) return NAN;
    memcpy(c, v + from, (size_t)m * sizeof *c);
    qsort(c, (size_t)m, sizeof *c, cmp_double);
    double med = m % 2 ? c[m / 2] : 0.5 * (c[m / 2 - 1] + c[m / 2]);
    free(c);
    return med;
}

/* Op families of the breakdown. GEMM is every backend GEMM called by an op (linear, matmul,
 * the convolutions) outside the core's parallel loops; the families are the rest of each op's
 * time ("bias" is the non-GEMM part of linear, matmul and conv1x1: the bias gradient's column
 * sums, conv1x1's bias rows). The linear layer's forward bias is part of its GEMM
 * (sm_backend_sgemm_bias: added by the backend, or rows filled before a beta-1 GEMM). */
enum { F_GEMM, F_ATTN, F_LN, F_GELU, F_SOFTMAX, F_BIAS, F_ELEM, F_OTHER, F_COUNT };
static const char *const family_name[F_COUNT] = {"gemm",    "attention", "layernorm",
                                                 "gelu",    "softmax",   "bias",
                                                 "elementwise", "other"};

static int op_family(const char *op)
{
    static const struct {
        const char *op;
        int f;
    } map[] = {{"attention", F_ATTN},    {"relpos_bias", F_ATTN}, {"layernorm", F_LN},
               {"gelu", F_GELU},         {"softmax", F_SOFTMAX},  {"linear", F_BIAS},
               {"matmul", F_BIAS},       {"conv1x1", F_BIAS},     {"add", F_ELEM},
               {"mul", F_ELEM},          {"scale", F_ELEM},       {"drop_path", F_ELEM}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(op, map[i].op)) return map[i].f;
    return F_OTHER;
}

/* fam[family][phase], seconds per step. */
static void families(const sm_profile *p, double steps, double fam[F_COUNT][SM_PROFILE_PHASES])
{
    memset(fam, 0, sizeof(double) * F_COUNT * SM_PROFILE_PHASES);
    for (int i = 0; sm_profile_op_name(i); i++) {
        int f = op_family(sm_profile_op_name(i));
        for (int ph = 0; ph < SM_PROFILE_PHASES; ph++) {
            fam[f][ph] += p->op_s[ph][i] / steps;
            fam[F_GEMM][ph] += p->gemm_s[ph][i] / steps;
        }
    }
}

static void print_profile(const model_run *r, double step_s)
{
    double n = (double)(r->steps - r->warmup), fam[F_COUNT][SM_PROFILE_PHASES];
    const sm_profile *p = &r->prof;
    families(p, n, fam);
    FILE *o = r->out;
    fprintf(o, "  profile, seconds per step (mean of %ld steps; median step %.3f s):\n",
            r->steps - r->warmup, step_s);
    fprintf(o, "    %-12s %9s %9s %9s %9s %6s\n", "family", "forward", "backward", "recompute",
            "total", "share");
    double sum = 0.0;
    for (int f = 0; f < F_COUNT; f++) {
        double t = fam[f][0] + fam[f][1] + fam[f][2];
        sum += t;
        fprintf(o, "    %-12s %9.3f %9.3f %9.3f %9.3f %5.1f%%\n", family_name[f], fam[f][0],
                fam[f][1], fam[f][2], t, 100.0 * t / step_s);
    }
    double opt = p->extra_s[SM_PROFILE_OPTIMIZER] / n, data = p->extra_s[SM_PROFILE_DATA] / n;
    fprintf(o, "    %-12s %39.3f %5.1f%%\n", "optimizer", opt, 100.0 * opt / step_s);
    fprintf(o, "    %-12s %39.3f %5.1f%%  (random batch, outside the step)\n", "data", data,
            100.0 * data / step_s);
    double rest = step_s - sum - opt;
    fprintf(o, "    %-12s %39.3f %5.1f%%\n", "unaccounted", rest, 100.0 * rest / step_s);
    double gemm_t = fam[F_GEMM][0] + fam[F_GEMM][1] + fam[F_GEMM][2];
    double flop = (p->flop[0] + p->flop[1]) / n;
    fprintf(o, "    GEMM work: %.1f GFLOP per step (%.1f recomputed), %.1f GFLOP/s over the "
               "step, backend GEMMs %.1f GFLOP/s\n",
            flop * 1e-9, p->flop[2] / n * 1e-9, flop / step_s * 1e-9,
            gemm_t > 0 ? (flop - 0.0) / gemm_t * 1e-9 : 0.0);
    fflush(o);
}

/* One JSON object: the run, per-step figures and, with --profile, the breakdown. */
static void print_json(const model_run *r, const sm_cli_session *s, double step_s)
{
    char desc[256];
    sm_backend_describe(s->be, desc, sizeof desc);
    json_t *o = json_object(), *steps = json_array(), *loss = json_array();
    for (long i = 0; i < r->steps; i++) {
        json_array_append_new(steps, json_real(r->step_s[i]));
        json_array_append_new(loss, json_real(r->loss[i]));
    }
    double n = (double)(r->steps - r->warmup);
    json_object_set_new(o, "config", json_string(s->o.config));
    json_object_set_new(o, "task", json_string(sm_model_task(r->model) == SM_TASK_SIMMIM
                                                   ? "pretrain"
                                                   : "finetune"));
    json_object_set_new(o, "mode", json_string(mode_name(r->mode)));
    json_object_set_new(o, "batch", json_integer(r->batch));
    json_object_set_new(o, "threads", json_integer(sm_ctx_threads(r->ctx)));
    json_object_set_new(o, "backend", json_string(desc));
    json_object_set_new(o, "precision",
                        json_string(sm_precision_name(sm_backend_precision(s->be))));
    json_object_set_new(o, "recompute", json_boolean(sm_ctx_recompute(r->ctx)));
    json_object_set_new(o, "params", json_integer(sm_params_numel(sm_model_params(r->model))));
    json_object_set_new(o, "warmup", json_integer(r->warmup));
    json_object_set_new(o, "step_times", steps);
    json_object_set_new(o, "losses", loss);
    json_object_set_new(o, "step_s", json_real(step_s));
    json_object_set_new(o, "img_s", json_real((double)r->batch / step_s));
    json_object_set_new(o, "arena_peak_mib",
                        json_real((double)sm_ctx_arena_peak(r->ctx) / (1024.0 * 1024.0)));
    json_object_set_new(o, "arena_reserved_mib",
                        json_real((double)sm_ctx_arena_reserved(r->ctx) / (1024.0 * 1024.0)));
    if (r->profile && n > 0) {
        const sm_profile *p = &r->prof;
        double flop = (p->flop[0] + p->flop[1]) / n, fam[F_COUNT][SM_PROFILE_PHASES];
        json_object_set_new(o, "gflop_per_step", json_real(flop * 1e-9));
        json_object_set_new(o, "gflop_recomputed", json_real(p->flop[2] / n * 1e-9));
        json_object_set_new(o, "gflops", json_real(flop / step_s * 1e-9));
        families(p, n, fam);
        json_t *pf = json_object(), *ops = json_object();
        for (int f = 0; f < F_COUNT; f++)
            json_object_set_new(pf, family_name[f],
                                json_pack("[f,f,f]", fam[f][0], fam[f][1], fam[f][2]));
        json_object_set_new(pf, "optimizer", json_real(p->extra_s[SM_PROFILE_OPTIMIZER] / n));
        json_object_set_new(pf, "data", json_real(p->extra_s[SM_PROFILE_DATA] / n));
        json_object_set_new(pf, "backward", json_real(p->backward_s / n));
        for (int i = 0; sm_profile_op_name(i); i++) {
            double t = 0.0;
            for (int ph = 0; ph < SM_PROFILE_PHASES; ph++) t += p->op_s[ph][i] + p->gemm_s[ph][i];
            if (t > 0.0)
                json_object_set_new(
                    ops, sm_profile_op_name(i),
                    json_pack("{s:[f,f,f],s:[f,f,f]}", "op", p->op_s[0][i] / n,
                              p->op_s[1][i] / n, p->op_s[2][i] / n, "gemm", p->gemm_s[0][i] / n,
                              p->gemm_s[1][i] / n, p->gemm_s[2][i] / n));
        }
        json_object_set_new(o, "profile", pf);
        json_object_set_new(o, "ops", ops);
    }
    char *text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
    if (text) printf("%s\n", text);
    free(text);
    json_decref(o);
}

/* ---- set-up ------------------------------------------------------------------------------- */

static int model_check_args(const sm_cli_session *s, model_run *r)
{
    const char *task = s->values[V_TASK], *b = s->values[V_BATCH], *n = s->values[V_STEPS];
    const char *w = s->values[V_WARMUP];
    if ((b && sm_cli_parse_long(b, 1, 4096, &r->batch)) ||
        (n && sm_cli_parse_long(n, 0, 1000, &r->steps)) ||
        (w && sm_cli_parse_long(w, 0, 1000, &r->warmup))) {
        fprintf(stderr,
                "simmimctl model: --batch takes 1..4096, --steps and --warmup 0..1000\n");
        return SM_EXIT_USAGE;
    }
    if (task && strcmp(task, "pretrain") && strcmp(task, "finetune")) {
        fprintf(stderr, "simmimctl model: --task must be pretrain or finetune, not '%s'\n", task);
        return SM_EXIT_USAGE;
    }
    bool train = sm_cli_has_flag(&s->o, "--train"), eval = sm_cli_has_flag(&s->o, "--eval");
    if (train && eval) {
        fprintf(stderr, "simmimctl model: --train and --eval exclude each other\n");
        return SM_EXIT_USAGE;
    }
    if (train && task) {
        fprintf(stderr, "simmimctl model: with --train the task is the config's (use "
                        "--options task=...)\n");
        return SM_EXIT_USAGE;
    }
    r->mode = train ? RUN_TRAIN : eval ? RUN_EVAL : RUN_FWDBWD;
    r->profile = sm_cli_has_flag(&s->o, "--profile");
    r->json = sm_cli_has_flag(&s->o, "--json");
    r->out = r->json ? stderr : stdout;
    if (r->warmup >= r->steps && r->steps > 0 && (r->json || r->profile)) {
        fprintf(stderr, "simmimctl model: --warmup must be below --steps\n");
        return SM_EXIT_USAGE;
    }
    return 0;
}

/* The model, context and (--train) trainer of the run. */
static int model_setup(sm_cli_session *s, model_run *r)
{
    if (r->mode == RUN_TRAIN) {
        sm_trainer_opts to = {.steps_per_epoch = 1000, .backend = s->be};
        if (sm_trainer_new(s->reg, s->cfg, &to, &r->trainer, &s->err))
            return sm_cli_session_fail(s, SM_EXIT_FAILURE);
        r->model = sm_trainer_model(r->trainer);
        r->ctx = sm_trainer_ctx(r->trainer);
    } else {
        if (sm_model_init(s->model, 0, &s->err)) return sm_cli_session_fail(s, SM_EXIT_FAILURE);
        r->model = s->model;
        r->ctx = s->ctx;
        if (sm_cfg_get(s->root, "backend.threads") && sm_cfg_int(s->root, "backend.threads") > 0)
            sm_ctx_set_threads(r->ctx, (int)sm_cfg_int(s->root, "backend.threads"));
    }
    sm_ctx_set_train(r->ctx, r->mode != RUN_EVAL);
    sm_ctx_set_grad(r->ctx, r->mode != RUN_EVAL);
    sm_ctx_set_recompute(r->ctx, sm_cli_has_flag(&s->o, "--recompute") ||
                                     sm_cfg_bool(s->root, "train_config.recompute"));
    if (r->profile) sm_ctx_set_profile(r->ctx, true);
    double *v = calloc(5 * (size_t)r->steps, sizeof *v);
    if (!v || batch_alloc(r, s)) {
        free(v);
        fprintf(stderr, "simmimctl: out of memory\n");
        return SM_EXIT_FAILURE;
    }
    r->step_s = v, r->loss = v + r->steps, r->fwd_s = v + 2 * r->steps;
    r->bwd_s = v + 3 * r->steps, r->opt_s = v + 4 * r->steps;
    char desc[256];
    sm_backend_describe(s->be, desc, sizeof desc);
    fprintf(r->out, "  backend: %s\n", desc);
    fprintf(r->out, "  mode: %s, %d core thread%s, subnormals %s\n",
            r->mode == RUN_TRAIN  ? "training step (forward, backward, clipping, optimizer)"
            : r->mode == RUN_EVAL ? "evaluation forward (no gradients)"
                                  : "forward + backward",
            sm_ctx_threads(r->ctx), sm_ctx_threads(r->ctx) == 1 ? "" : "s",
            sm_fpenv_flushing() ? "flushed to zero" : "kept (IEEE)");
    if (sm_ctx_recompute(r->ctx))
        fprintf(r->out, "  recompute: on (block activations recomputed in backward)\n");
    return 0;
}

static int model_run_all(sm_cli_session *s, model_run *r)
{
    int rc = model_setup(s, r);
    if (!rc && r->mode == RUN_TRAIN) model_describe(s, r->model, r->out);
    if (!rc) rc = model_steps(r);
    if (!rc && r->steps > r->warmup && (r->json || r->profile)) {
        double step_s = median_from(r->step_s, r->warmup, r->steps);
        if (r->profile) print_profile(r, step_s);
        if (r->json) print_json(r, s, step_s);
    }
    batch_free(&r->b);
    free(r->step_s);
    sm_trainer_free(r->trainer);
    return rc;
}

int sm_cmd_model(int argc, char **argv)
{
    sm_cli_session s;
    model_run r = {.batch = 2, .steps = 1};
    int rc = sm_cli_session_begin(&s, &argc, argv, &model_cmd);
    if (!rc) rc = model_check_args(&s, &r);
    if (!rc) rc = sm_cli_session_config(&s, r.mode != RUN_TRAIN);
    if (!rc && r.mode != RUN_TRAIN &&
        sm_model_new(s.reg, s.root, model_task(&s), &s.model, &s.err))
        rc = sm_cli_session_fail(&s, 0);
    if (!rc && s.model) model_describe(&s, s.model, r.json ? stderr : stdout);
    if (!rc && r.steps > 0) rc = sm_cli_session_backend(&s, s.values[V_BACKEND]);
    if (!rc && r.steps > 0) rc = model_run_all(&s, &r);
    return sm_cli_session_end(&s, rc);
}
