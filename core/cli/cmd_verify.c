/* core/cli/cmd_verify.c - `simmimctl verify FILE...`: check the models against reference files
 * in the format of ../shared/golden (safetensors with the official state_dict, inputs, outputs
 * and every gradient, and the official constructor arguments in __metadata__.config).
 *
 * For each file: build the model from the metadata (any sizes, windows, mask ratios, batch
 * sizes), load the weights, run forward and backward on the stored inputs, and compare every
 * output and gradient with err = max|ours - ref| / max|ref| (loss: |ours - ref| / |ref|) against
 * the README's tiers: required 1e-4 (outputs) / 1e-3 (gradients), strict 1e-5 / 1e-4. The
 * buffers (relative position indices, shifted-window masks) must match exactly.
 * --precision bf16 runs the GEMMs in bf16 and checks the bf16 tier instead (docs/backends.md
 * derives it): outputs 2e-2, gradients 5e-2 for classifiers and 3e-1 for SimMIM, whose L1 loss
 * has the gradient sign(x_rec - x): where bf16 moves a prediction across its target the
 * gradient of that pixel flips, a whole step that these small models barely average out. */
#include "cli.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The tiers a precision is held to: required (pass/fail) and strict (reported). */
typedef struct vtiers {
    double out_req, grad_req, out_strict, grad_strict;
    double grad_l1; /* required tier of gradients through the L1 loss (SimMIM) */
    bool has_strict;
} vtiers;
static const vtiers tiers_fp32 = {1e-4, 1e-3, 1e-5, 1e-4, 1e-3, true};
static const vtiers tiers_bf16 = {2e-2, 5e-2, 2e-2, 5e-2, 3e-1, false};

static const char verify_usage[] =
    "usage: simmimctl verify [--backend NAME] [--precision fp32|bf16] [--quiet]\n"
    "                        [--plugin-dir DIR] FILE...\n\n"
    "Checks the ViT/Swin SimMIM models and classifiers against reference files in the format\n"
    "of the official-code golden files (safetensors: weights, inputs, outputs, gradients, and\n"
    "the constructor arguments in __metadata__.config). Prints the error of every output and\n"
    "gradient (max|ours - ref| / max|ref|) and, per file, whether the required tier (outputs\n"
    "1e-4, gradients 1e-3) and the strict tier (1e-5, 1e-4) are reached.\n\n"
    "  --backend NAME   compute backend (default: blis if available, else ref)\n"
    "  --precision P    GEMM inputs in fp32 (default) or bf16; bf16 is held to the bf16 tier\n"
    "                   instead: outputs 2e-2, gradients 5e-2 (classifiers) or 3e-1\n"
    "                   (SimMIM: its L1 loss's gradient flips sign under bf16 noise)\n"
    "  --quiet          print only the verdict line of each file\n\n"
    "Exit status: 0 if every file passes the required tier, 1 otherwise, 2 on usage errors.\n";

typedef struct vstate {
    const char *file;
    const vtiers *t;
    bool simmim;
    bool quiet;
    bool pass, strict;
    int n_checked;
} vstate;

/* ---- metadata -> YAML config ---------------------------------------------------------------- */

typedef struct sbuf {
    char *s;
    size_t n, cap;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) SM_PRINTF(2, 3);
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int r = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (r < 0) return;
        if (b->s && b->n + (size_t)r < b->cap) {
            b->n += (size_t)r;
            return;
        }
        size_t cap = (b->cap + (size_t)r + 1) * 2;
        char *ns = realloc(b->s, cap);
        if (!ns) return;
        b->s = ns;
        b->cap = cap;
    }
}

/* A JSON scalar or list as a YAML flow value. */
static int yaml_value(sbuf *b, json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_NULL: sb_printf(b, "null"); return 0;
    case JSON_TRUE: sb_printf(b, "true"); return 0;
    case JSON_FALSE: sb_printf(b, "false"); return 0;
    case JSON_INTEGER: sb_printf(b, "%lld", (long long)json_integer_value(v)); return 0;
    case JSON_REAL: sb_printf(b, "%.17g", json_real_value(v)); return 0;
    case JSON_STRING: {
        sb_printf(b, "\"");
        for (const char *p = json_string_value(v); *p; p++)
            sb_printf(b, (*p == '"' || *p == '\\') ? "\\%c" : "%c", *p);
        sb_printf(b, "\"");
        return 0;
    }
    case JSON_ARRAY: {
        sb_printf(b, "[");
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i) sb_printf(b, ", ");
            if (yaml_value(b, json_array_get(v, i))) return -1;
        }
        sb_printf(b, "]");
        return 0;
    }
    default: return -1;
    }
}

/* Builds our config from the official constructor arguments. */
static int build_yaml(json_t *cfg, sm_task task, sbuf *out, sm_error *err)
{
    const char *arch = json_string_value(json_object_get(cfg, "arch"));
    json_t *enc = json_object_get(cfg, "encoder");
    if (!arch || !json_is_object(enc))
        return sm_error_set(err, SM_EFORMAT, NULL, 0, 0, "__metadata__.config",
                            "needs \"arch\" and an \"encoder\" object");
    json_t *img = json_object_get(enc, "img_size");
    if (json_is_array(img)) {
        if (json_array_size(img) != 2 || json_integer_value(json_array_get(img, 0)) !=
                                             json_integer_value(json_array_get(img, 1)))
            return sm_error_set(err, SM_EUNSUPPORTED, NULL, 0, 0, "__metadata__.config.encoder",
                                "non-square img_size is not supported");
        img = json_array_get(img, 0);
    }
    if (!json_is_integer(img))
        return sm_error_set(err, SM_EFORMAT, NULL, 0, 0, "__metadata__.config.encoder",
                            "img_size must be an integer");
    sb_printf(out, "task: %s\nmodel:\n  backbone: \"%s\"\n",
              task == SM_TASK_SIMMIM ? "pretrain" : "finetune", arch);
    const char *key;
    json_t *v;
    json_object_foreach(enc, key, v)
    {
        if (!strcmp(key, "img_size") || !strcmp(key, "num_classes") ||
            !strcmp(key, "use_checkpoint"))
            continue;
        if (!strcmp(key, "norm_layer")) {
            const char *s = json_string_value(v), *eq = s ? strstr(s, "eps=") : NULL;
            if (!s || strncmp(s, "LayerNorm", 9) != 0)
                return sm_error_set(err, SM_EUNSUPPORTED, NULL, 0, 0,
                                    "__metadata__.config.encoder.norm_layer",
                                    "only LayerNorm is supported");
            sb_printf(out, "  layer_norm_eps: %s\n", eq ? eq + 4 : "1e-5");
            /* strip the closing parenthesis */
            if (eq && out->n && out->s[out->n - 2] == ')') {
                out->s[out->n - 2] = '\n';
                out->s[--out->n] = '\0';
            }
            continue;
        }
        sb_printf(out, "  %s: ", !strcmp(key, "depths") ? "depth" : key);
        if (yaml_value(out, v))
            return sm_error_set(err, SM_EFORMAT, NULL, 0, 0, "__metadata__.config.encoder",
                                "unsupported value for '%s'", key);
        sb_printf(out, "\n");
    }
    json_t *mg = json_object_get(cfg, "mask_generator");
    if (task == SM_TASK_SIMMIM && json_is_object(mg)) {
        sb_printf(out, "  mask_patch_size: ");
        yaml_value(out, json_object_get(mg, "mask_patch_size"));
        sb_printf(out, "\n  mask_ratio: ");
        yaml_value(out, json_object_get(mg, "mask_ratio"));
        sb_printf(out, "\n");
    }
    sb_printf(out, "train_config:\n  image_size: %lld\n", (long long)json_integer_value(img));
    json_t *nc = json_object_get(cfg, "num_classes");
    if (!nc) nc = json_object_get(enc, "num_classes");
    if (task == SM_TASK_CLASSIFY) {
        if (!json_is_integer(nc))
            return sm_error_set(err, SM_EFORMAT, NULL, 0, 0, "__metadata__.config",
                                "a classification case needs num_classes");
        sb_printf(out, "  num_classes: %lld\n", (long long)json_integer_value(nc));
    }
    return 0;
}

/* ---- comparisons ------------------------------------------------------------------------------
 */

static double rel_err(const float *a, const float *ref, int64_t n)
{
    double md = 0, mr = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)ref[i]);
        if (!(d <= md)) md = isnan(d) ? INFINITY : d;
        double r = fabs((double)ref[i]);
        if (r > mr) mr = r;
    }
    return mr > 0 ? md / mr : md;
}

static void report(vstate *st, const char *name, double err, bool is_grad)
{
    double req = is_grad ? st->t->grad_req : st->t->out_req;
    if (is_grad && st->simmim) req = st->t->grad_l1;
    double strict = is_grad ? st->t->grad_strict : st->t->out_strict;
    const char *mark = !(err <= req)          ? "FAIL"
                       : !st->t->has_strict   ? "bf16"
                       : err <= strict        ? "strict"
                                              : "required";
    if (!(err <= req)) st->pass = false;
    if (!(err <= strict)) st->strict = false;
    st->n_checked++;
    if (!st->quiet || !(err <= req)) printf("  %-64s %10.3e  %s\n", name, err, mark);
}

static void fail_line(vstate *st, const char *fmt, ...) SM_PRINTF(2, 3);
static void fail_line(vstate *st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("  FAIL: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    st->pass = st->strict = false;
}

/* Compares the backbone's constant buffers with the file's (exact equality). */
static void check_buffers(vstate *st, sm_model *model, sm_st_file *f, const char *prefix)
{
    void *bself;
    const sm_backbone_vtbl *bb = sm_model_backbone(model, &bself);
    size_t nb = bb->buffer_count ? bb->buffer_count(bself) : 0, ok = 0;
    for (size_t i = 0; i < nb; i++) {
        sm_buffer b;
        if (bb->buffer_get(bself, i, &b)) continue;
        char name[256];
        snprintf(name, sizeof name, "%s%s", prefix, b.name);
        const sm_st_info *info = sm_st_find(f, name);
        if (!info) {
            fail_line(st, "buffer %s: built by simmim but absent from the file", name);
            continue;
        }
        int64_t n = 1;
        for (int d = 0; d < b.ndim; d++) n *= b.shape[d];
        bool same_shape = info->ndim == b.ndim && info->numel == n;
        for (int d = 0; same_shape && d < b.ndim; d++) same_shape = info->shape[d] == b.shape[d];
        if (!same_shape) {
            fail_line(st, "buffer %s: shape differs from the file's", name);
            continue;
        }
        bool equal = true;
        if (b.dtype == SM_DTYPE_I64) {
            int64_t *v = malloc((size_t)n * sizeof *v);
            equal = v && sm_st_read_i64(f, name, v, n, NULL) == 0 &&
                    memcmp(v, b.data, (size_t)n * sizeof *v) == 0;
            free(v);
        } else {
            float *v = malloc((size_t)n * sizeof *v);
            equal = v && sm_st_read_f32(f, name, v, n, NULL) == 0 &&
                    memcmp(v, b.data, (size_t)n * sizeof *v) == 0;
            free(v);
        }
        if (!equal)
            fail_line(st, "buffer %s: values differ from the file's", name);
        else
            ok++;
    }
    /* every buffer the file lists must be one we build */
    json_t *list = json_loads(sm_st_meta(f, "buffers") ? sm_st_meta(f, "buffers") : "[]", 0, NULL);
    for (size_t i = 0; list && i < json_array_size(list); i++) {
        const char *name = json_string_value(json_array_get(list, i));
        bool found = false;
        for (size_t k = 0; name && k < nb && !found; k++) {
            sm_buffer b;
            char full[256];
            if (bb->buffer_get(bself, k, &b)) continue;
            snprintf(full, sizeof full, "%s%s", prefix, b.name);
            found = strcmp(full, name) == 0;
        }
        if (name && !found) fail_line(st, "buffer %s: in the file but not built by simmim", name);
    }
    json_decref(list);
    if (!st->quiet) printf("  buffers: %zu of %zu equal to the file's\n", ok, nb);
}

/* ---- one file ---------------------------------------------------------------------------------
 */

static int verify_file(const char *path, sm_registry *reg, sm_backend *be, const vtiers *tiers,
                       bool quiet, bool *strict_out)
{
    vstate st = {.file = path, .t = tiers, .quiet = quiet, .pass = true,
                 .strict = tiers->has_strict};
    sm_error err;
    sm_error_clear(&err);
    sm_st_file *f = NULL;
    sm_config *cfg = NULL;
    sm_model *model = NULL;
    sm_ctx *ctx = NULL;
    json_t *meta = NULL;
    float *buf = NULL;
    sbuf yaml = {0};
    sm_diag *diag = sm_diag_new();

    if (sm_st_open(path, &f, &err)) goto fail;
    const char *mc = sm_st_meta(f, "config");
    json_error_t je;
    if (!mc || !(meta = json_loads(mc, 0, &je))) {
        sm_error_set(&err, SM_EFORMAT, path, 0, 0, "__metadata__.config",
                     mc ? "not valid JSON: %s" : "missing%s", mc ? je.text : "");
        goto fail;
    }
    const char *task_s = json_string_value(json_object_get(meta, "task"));
    sm_task task = task_s && !strcmp(task_s, "simmim") ? SM_TASK_SIMMIM : SM_TASK_CLASSIFY;
    st.simmim = task == SM_TASK_SIMMIM;
    if (!task_s || (strcmp(task_s, "simmim") && strcmp(task_s, "classification"))) {
        sm_error_set(&err, SM_EFORMAT, path, 0, 0, "__metadata__.config.task",
                     "expected \"simmim\" or \"classification\"");
        goto fail;
    }
    if (build_yaml(meta, task, &yaml, &err)) goto fail;
    if (sm_config_read_string(yaml.s, yaml.n, path, NULL, 0, &cfg, diag) ||
        sm_config_validate_model(cfg, reg, diag)) {
        sm_error e0 = *sm_diag_get(diag, 0, NULL);
        sm_error_set(&err, SM_ECONFIG, path, 0, 0, e0.path[0] ? e0.path : NULL,
                     "the reference's model configuration is not accepted: %s", e0.text);
        goto fail;
    }
    if (sm_model_new(reg, sm_config_root(cfg), task, &model, &err)) goto fail;
    const sm_backbone_info *info = sm_model_info(model);
    sm_params *params = sm_model_params(model);
    const char *arch = json_string_value(json_object_get(meta, "arch"));
    json_t *es = json_object_get(meta, "encoder_stride");
    if (task == SM_TASK_SIMMIM && json_is_integer(es) &&
        json_integer_value(es) != info->encoder_stride) {
        sm_error_set(&err, SM_EDATA, path, 0, 0, "__metadata__.config.encoder_stride",
                     "the file says %lld, the %s backbone computes %d",
                     (long long)json_integer_value(es), arch, info->encoder_stride);
        goto fail;
    }

    /* weights: every parameter of ours must be in the file with the same shape, and every
     * parameter the file lists must be ours */
    for (size_t i = 0; i < sm_params_count(params); i++) {
        sm_tensor *t = sm_params_at(params, i);
        const sm_st_info *in = sm_st_find(f, t->name);
        if (!in) {
            sm_error_set(&err, SM_EDATA, path, 0, 0, t->name,
                         "parameter built by simmim is absent from the file");
            goto fail;
        }
        bool same = in->ndim == t->ndim;
        for (int d = 0; same && d < t->ndim; d++) same = in->shape[d] == t->shape[d];
        if (!same) {
            char s[64];
            sm_tensor_shape_str(t, s, sizeof s);
            sm_error_set(&err, SM_EDATA, path, 0, 0, t->name, "shape differs: simmim builds %s", s);
            goto fail;
        }
        if (sm_st_read_f32(f, t->name, t->data, sm_tensor_numel(t), &err)) goto fail;
    }
    json_t *plist =
        json_loads(sm_st_meta(f, "parameters") ? sm_st_meta(f, "parameters") : "[]", 0, NULL);
    for (size_t i = 0; plist && i < json_array_size(plist); i++) {
        const char *name = json_string_value(json_array_get(plist, i));
        if (name && !sm_params_find(params, name)) {
            sm_error_set(&err, SM_EDATA, path, 0, 0, name,
                         "parameter in the file is not built by simmim");
            json_decref(plist);
            goto fail;
        }
    }
    json_decref(plist);

    /* inputs */
    const sm_st_info *xi = sm_st_find(f, "input.x");
    if (!xi || xi->ndim != 4) {
        sm_error_set(&err, SM_EFORMAT, path, 0, 0, "input.x", "missing or not (B, C, H, W)");
        goto fail;
    }
    int64_t B = xi->shape[0];
    if (!(ctx = sm_ctx_new(be))) {
        sm_error_set(&err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
        goto fail;
    }
    sm_tensor *x = sm_ctx_tensor(ctx, 4, xi->shape);
    if (!x || sm_st_read_f32(f, "input.x", x->data, xi->numel, &err)) goto fail;
    sm_tensor *out = NULL, *loss = NULL;
    if (task == SM_TASK_SIMMIM) {
        const sm_st_info *mi = sm_st_find(f, "input.mask");
        if (!mi || mi->ndim != 3) {
            sm_error_set(&err, SM_EFORMAT, path, 0, 0, "input.mask", "missing or not (B, Hp, Wp)");
            goto fail;
        }
        int64_t *mv = malloc((size_t)mi->numel * sizeof *mv);
        sm_tensor *mask = sm_ctx_tensor(ctx, 3, mi->shape);
        if (!mv || !mask || sm_st_read_i64(f, "input.mask", mv, mi->numel, &err)) {
            free(mv);
            goto fail;
        }
        for (int64_t i = 0; i < mi->numel; i++) mask->data[i] = mv[i] ? 1.0f : 0.0f;
        free(mv);
        loss = sm_model_simmim(model, ctx, x, mask, &out);
    } else {
        const sm_st_info *li = sm_st_find(f, "input.labels");
        if (!li || li->numel != B) {
            sm_error_set(&err, SM_EFORMAT, path, 0, 0, "input.labels", "missing or not (B)");
            goto fail;
        }
        int64_t *labels = sm_ctx_alloc(ctx, (size_t)B * sizeof *labels);
        if (!labels || sm_st_read_i64(f, "input.labels", labels, B, &err)) goto fail;
        for (int64_t i = 0; i < B; i++)
            if (labels[i] < 0 || labels[i] >= sm_model_num_classes(model)) {
                sm_error_set(&err, SM_EFORMAT, path, 0, 0, "input.labels",
                             "label %lld outside [0, %d)", (long long)labels[i],
                             sm_model_num_classes(model));
                goto fail;
            }
        out = sm_model_logits(model, ctx, x);
        loss = sm_cross_entropy(ctx, out, labels, 0.0f);
    }
    sm_params_zero_grad(params);
    if (!loss || sm_backward(ctx, loss)) {
        err = *sm_ctx_error(ctx);
        goto fail;
    }

    if (!quiet)
        printf("%s: %s %s, batch %lld, image %lldx%lld, %zu parameters (%lld values), backend "
               "%s (%s)\n",
               path, task == SM_TASK_SIMMIM ? "SimMIM" : "classifier", arch, (long long)B,
               (long long)xi->shape[2], (long long)xi->shape[3], sm_params_count(params),
               (long long)sm_params_numel(params), sm_backend_name(be),
               sm_precision_name(sm_backend_precision(be)));

    /* loss: against the float64 value when present */
    double ref_loss;
    const sm_st_info *l64 = sm_st_find(f, "output.loss_f64");
    float lf;
    if (l64 && l64->numel == 1 && sm_st_read_f64(f, "output.loss_f64", &ref_loss, 1, NULL) == 0) {
    } else if (sm_st_read_f32(f, "output.loss", &lf, 1, &err) == 0) {
        ref_loss = lf;
    } else {
        goto fail;
    }
    report(&st, "output.loss", fabs((double)loss->data[0] - ref_loss) / fabs(ref_loss), false);

    const char *oname = task == SM_TASK_SIMMIM ? "output.x_rec" : "output.logits";
    const sm_st_info *oi = sm_st_find(f, oname);
    if (!oi || oi->numel != sm_tensor_numel(out)) {
        fail_line(&st, "%s: missing or of another size than ours", oname);
    } else {
        buf = malloc((size_t)oi->numel * sizeof *buf);
        if (!buf || sm_st_read_f32(f, oname, buf, oi->numel, &err)) goto fail;
        report(&st, oname, rel_err(out->data, buf, oi->numel), false);
        free(buf);
        buf = NULL;
    }
    for (size_t i = 0; i < sm_params_count(params); i++) {
        sm_tensor *t = sm_params_at(params, i);
        char gname[300];
        snprintf(gname, sizeof gname, "grad.%s", t->name);
        const sm_st_info *gi = sm_st_find(f, gname);
        if (!gi) {
            fail_line(&st, "%s: absent from the file", gname);
            continue;
        }
        int64_t n = sm_tensor_numel(t);
        buf = malloc((size_t)n * sizeof *buf);
        if (!buf || gi->numel != n || sm_st_read_f32(f, gname, buf, n, &err)) goto fail;
        report(&st, gname, rel_err(t->grad, buf, n), true);
        free(buf);
        buf = NULL;
    }
    check_buffers(&st, model, f, task == SM_TASK_SIMMIM ? "encoder." : "");

    if (tiers->has_strict)
        printf("%s: %s at the required tier (outputs %.0e, gradients %.0e) over %d tensors; "
               "strict tier (%.0e, %.0e) %s\n",
               path, st.pass ? "PASS" : "FAIL", tiers->out_req, tiers->grad_req, st.n_checked,
               tiers->out_strict, tiers->grad_strict, st.strict ? "reached" : "not reached");
    else
        printf("%s: %s at the bf16 tier (outputs %.0e, gradients %.0e) over %d tensors\n", path,
               st.pass ? "PASS" : "FAIL", tiers->out_req,
               st.simmim ? tiers->grad_l1 : tiers->grad_req, st.n_checked);
    *strict_out = st.strict;
    goto done;
fail:
    if (!err.code) sm_error_set(&err, SM_EINTERNAL, path, 0, 0, NULL, "verification failed");
    if (!err.file[0]) snprintf(err.file, sizeof err.file, "%s", path);
    {
        char line[1024];
        sm_error_format(&err, line, sizeof line);
        printf("%s\n%s: FAIL (could not be checked)\n", line, path);
    }
    st.pass = false;
    *strict_out = false;
done:
    free(buf);
    free(yaml.s);
    json_decref(meta);
    sm_ctx_free(ctx);
    sm_model_free(model);
    sm_config_free(cfg);
    sm_st_close(f);
    sm_diag_free(diag);
    return st.pass ? 0 : 1;
}

int sm_cmd_verify(int argc, char **argv)
{
    const char *backend_name = NULL, *precision = NULL;
    int rc = sm_cli_take_value(&argc, argv, "--backend", &backend_name);
    if (rc == SM_EXIT_USAGE) return rc;
    rc = sm_cli_take_value(&argc, argv, "--precision", &precision);
    if (rc == SM_EXIT_USAGE) return rc;
    sm_precision prec = SM_PRECISION_FP32;
    if (precision && sm_precision_parse(precision, &prec) != 0) {
        fprintf(stderr,
                "simmimctl verify: --precision must be fp32 or bf16, not '%s' (see "
                "'simmimctl verify --help')\n",
                precision);
        return SM_EXIT_USAGE;
    }
    sm_cli_opts o;
    rc = sm_cli_parse(argc, argv, &o, verify_usage);
    if (rc == SM_CLI_HELP) return SM_EXIT_OK;
    if (rc) return rc;
    static const char *const known[] = {"--quiet", "-q", NULL};
    if (sm_cli_check_args(&o, "verify", known, 1, (size_t)-1)) {
        sm_cli_opts_free(&o);
        return SM_EXIT_USAGE;
    }
    bool quiet = sm_cli_has_flag(&o, "--quiet") || sm_cli_has_flag(&o, "-q");
    const char **files = o.positional;
    size_t nf = o.n_positional;
    sm_registry *reg = sm_cli_registry(&o, NULL);
    if (!reg) {
        sm_cli_opts_free(&o);
        return SM_EXIT_FAILURE;
    }
    if (!backend_name)
        backend_name = sm_registry_find(reg, SM_KIND_BACKEND, "blis") ? "blis" : "ref";
    sm_backend *be = NULL;
    sm_error err;
    sm_error_clear(&err);
    if (sm_backend_new(reg, backend_name, NULL, 0, &be, &err) ||
        sm_backend_set_precision(be, prec, &err)) {
        sm_backend_free(be);
        sm_cli_print_error(&err);
        sm_registry_free(reg);
        sm_cli_opts_free(&o);
        return sm_cli_exit_code(SM_EINVAL);
    }
    int failed = 0, strict = 0;
    for (size_t i = 0; i < nf; i++) {
        bool s = false;
        failed += verify_file(files[i], reg, be,
                              prec == SM_PRECISION_BF16 ? &tiers_bf16 : &tiers_fp32, quiet, &s);
        strict += s;
        if (!quiet && i + 1 < nf) printf("\n");
    }
    if (nf > 1 && prec == SM_PRECISION_BF16)
        printf("verify: %zu of %zu files pass the bf16 tier\n", nf - (size_t)failed, nf);
    else if (nf > 1)
        printf("verify: %zu of %zu files pass the required tier, %d reach the strict tier\n",
               nf - (size_t)failed, nf, strict);
    sm_backend_free(be);
    sm_registry_free(reg);
    sm_cli_opts_free(&o);
    return failed ? SM_EXIT_FAILURE : SM_EXIT_OK;
}
