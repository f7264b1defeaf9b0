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

/* What verifying one file holds. */
typedef struct vfile {
    const char *path;
    sm_st_file *f;
    json_t *meta;
    sm_config *cfg;
    sm_model *model;
    sm_ctx *ctx;
    sm_task task;
    const char *arch;
    sm_tensor *x, *out, *loss;
    sm_error err;
} vfile;

/* The model the metadata describes (official constructor arguments -> our config). */
static int vf_model(vfile *v, sm_registry *reg)
{
    const char *mc = sm_st_meta(v->f, "config");
    json_error_t je;
    if (!mc || !(v->meta = json_loads(mc, 0, &je)))
        return sm_error_set(&v->err, SM_EFORMAT, v->path, 0, 0, "__metadata__.config",
                            mc ? "not valid JSON: %s" : "missing%s", mc ? je.text : "");
    const char *task_s = json_string_value(json_object_get(v->meta, "task"));
    if (!task_s || (strcmp(task_s, "simmim") && strcmp(task_s, "classification")))
        return sm_error_set(&v->err, SM_EFORMAT, v->path, 0, 0, "__metadata__.config.task",
                            "expected \"simmim\" or \"classification\"");
    v->task = !strcmp(task_s, "simmim") ? SM_TASK_SIMMIM : SM_TASK_CLASSIFY;
    v->arch = json_string_value(json_object_get(v->meta, "arch"));
    sbuf yaml = {0};
    sm_diag *diag = sm_diag_new();
    int rc = build_yaml(v->meta, v->task, &yaml, &v->err);
    if (!rc && (sm_config_read_string(yaml.s, yaml.n, v->path, NULL, 0, &v->cfg, diag) ||
                sm_config_validate_model(v->cfg, reg, diag))) {
        sm_error e0 = *sm_diag_get(diag, 0, NULL);
        rc = sm_error_set(&v->err, SM_ECONFIG, v->path, 0, 0, e0.path[0] ? e0.path : NULL,
                          "the reference's model configuration is not accepted: %s", e0.text);
    }
    free(yaml.s);
    sm_diag_free(diag);
    if (rc || (rc = sm_model_new(reg, sm_config_root(v->cfg), v->task, &v->model, &v->err)))
        return rc;
    json_t *es = json_object_get(v->meta, "encoder_stride");
    int stride = sm_model_info(v->model)->encoder_stride;
    if (v->task == SM_TASK_SIMMIM && json_is_integer(es) && json_integer_value(es) != stride)
        return sm_error_set(&v->err, SM_EDATA, v->path, 0, 0, "__metadata__.config.encoder_stride",
                            "the file says %lld, the %s backbone computes %d",
                            (long long)json_integer_value(es), v->arch, stride);
    return 0;
}

/* Weights: every parameter of ours is in the file with the same shape, and every parameter the
 * file lists is ours. */
static int vf_weights(vfile *v)
{
    sm_params *params = sm_model_params(v->model);
    for (size_t i = 0; i < sm_params_count(params); i++) {
        sm_tensor *t = sm_params_at(params, i);
        const sm_st_info *in = sm_st_find(v->f, t->name);
        if (!in)
            return sm_error_set(&v->err, SM_EDATA, v->path, 0, 0, t->name,
                                "parameter built by simmim is absent from the file");
        bool same = in->ndim == t->ndim;
        for (int d = 0; same && d < t->ndim; d++) same = in->shape[d] == t->shape[d];
        if (!same) {
            char s[64];
            sm_tensor_shape_str(t, s, sizeof s);
            return sm_error_set(&v->err, SM_EDATA, v->path, 0, 0, t->name,
                                "shape differs: simmim builds %s", s);
        }
        int rc = sm_st_read_f32(v->f, t->name, t->data, sm_tensor_numel(t), &v->err);
        if (rc) return rc;
    }
    const char *pl = sm_st_meta(v->f, "parameters");
    json_t *plist = json_loads(pl ? pl : "[]", 0, NULL);
    int rc = 0;
    for (size_t i = 0; !rc && plist && i < json_array_size(plist); i++) {
        const char *name = json_string_value(json_array_get(plist, i));
        if (name && !sm_params_find(params, name))
            rc = sm_error_set(&v->err, SM_EDATA, v->path, 0, 0, name,
                              "parameter in the file is not built by simmim");
    }
    json_decref(plist);
    return rc;
}

/* SimMIM: the mask of the file; the loss and the reconstruction. */
static int vf_forward_simmim(vfile *v)
{
    const sm_st_info *mi = sm_st_find(v->f, "input.mask");
    if (!mi || mi->ndim != 3)
        return sm_error_set(&v->err, SM_EFORMAT, v->path, 0, 0, "input.mask",
                            "missing or not (B, Hp, Wp)");
    int64_t *mv = malloc((size_t)mi->numel * sizeof *mv);
    sm_tensor *mask = sm_ctx_tensor(v->ctx, 3, mi->shape);
    int rc = !mv || !mask ? sm_error_set(&v->err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory")
                          : sm_st_read_i64(v->f, "input.mask", mv, mi->numel, &v->err);
    for (int64_t i = 0; !rc && i < mi->numel; i++) mask->data[i] = mv[i] ? 1.0f : 0.0f;
    free(mv);
    if (!rc) v->loss = sm_model_simmim(v->model, v->ctx, v->x, mask, &v->out);
    return rc;
}

/* Classifier: the labels of the file; the cross-entropy of the logits. */
static int vf_forward_classify(vfile *v)
{
    int64_t B = v->x->shape[0];
    const sm_st_info *li = sm_st_find(v->f, "input.labels");
    if (!li || li->numel != B)
        return sm_error_set(&v->err, SM_EFORMAT, v->path, 0, 0, "input.labels",
                            "missing or not (B)");
    int64_t *labels = sm_ctx_alloc(v->ctx, (size_t)B * sizeof *labels);
    int K = sm_model_num_classes(v->model);
    int rc = labels ? sm_st_read_i64(v->f, "input.labels", labels, B, &v->err) : SM_ENOMEM;
    for (int64_t i = 0; !rc && i < B; i++)
        if (labels[i] < 0 || labels[i] >= K)
            rc = sm_error_set(&v->err, SM_EFORMAT, v->path, 0, 0, "input.labels",
                              "label %lld outside [0, %d)", (long long)labels[i], K);
    if (rc) return rc;
    v->out = sm_model_logits(v->model, v->ctx, v->x);
    v->loss = sm_cross_entropy(v->ctx, v->out, labels, 0.0f);
    return 0;
}

/* Forward and backward on the file's inputs. */
static int vf_run(vfile *v, sm_backend *be)
{
    const sm_st_info *xi = sm_st_find(v->f, "input.x");
    if (!xi || xi->ndim != 4)
        return sm_error_set(&v->err, SM_EFORMAT, v->path, 0, 0, "input.x",
                            "missing or not (B, C, H, W)");
    if (!(v->ctx = sm_ctx_new(be)))
        return sm_error_set(&v->err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    v->x = sm_ctx_tensor(v->ctx, 4, xi->shape);
    if (!v->x) return sm_error_set(&v->err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    int rc = sm_st_read_f32(v->f, "input.x", v->x->data, xi->numel, &v->err);
    if (!rc) rc = v->task == SM_TASK_SIMMIM ? vf_forward_simmim(v) : vf_forward_classify(v);
    if (rc) return rc;
    sm_params_zero_grad(sm_model_params(v->model));
    if (!v->loss || sm_backward(v->ctx, v->loss)) {
        v->err = *sm_ctx_error(v->ctx);
        return v->err.code ? v->err.code : SM_EINTERNAL;
    }
    return 0;
}

/* Compares tensor `name` of the file with n values of ours. */
static int vf_compare(vfile *v, vstate *st, const char *name, const float *ours, int64_t n,
                      bool grad)
{
    const sm_st_info *in = sm_st_find(v->f, name);
    if (!in || in->numel != n) {
        fail_line(st, "%s: %s", name, in ? "of another size than ours" : "absent from the file");
        return 0;
    }
    float *buf = malloc((size_t)n * sizeof *buf);
    int rc = buf ? sm_st_read_f32(v->f, name, buf, n, &v->err) : SM_ENOMEM;
    if (!rc) report(st, name, rel_err(ours, buf, n), grad);
    free(buf);
    return rc;
}

/* The loss (against the float64 value when present), the output, every gradient, the
 * buffers. */
static int vf_check(vfile *v, vstate *st)
{
    double ref_loss;
    float lf;
    const sm_st_info *l64 = sm_st_find(v->f, "output.loss_f64");
    if (!(l64 && l64->numel == 1 && sm_st_read_f64(v->f, "output.loss_f64", &ref_loss, 1, NULL) == 0)) {
        int rc = sm_st_read_f32(v->f, "output.loss", &lf, 1, &v->err);
        if (rc) return rc;
        ref_loss = lf;
    }
    report(st, "output.loss", fabs((double)v->loss->data[0] - ref_loss) / fabs(ref_loss), false);
    const char *oname = v->task == SM_TASK_SIMMIM ? "output.x_rec" : "output.logits";
    int rc = vf_compare(v, st, oname, v->out->data, sm_tensor_numel(v->out), false);
    sm_params *params = sm_model_params(v->model);
    for (size_t i = 0; !rc && i < sm_params_count(params); i++) {
        sm_tensor *t = sm_params_at(params, i);
        char gname[300];
        snprintf(gname, sizeof gname, "grad.%s", t->name);
        rc = vf_compare(v, st, gname, t->grad, sm_tensor_numel(t), true);
    }
    if (!rc) check_buffers(st, v->model, v->f, v->task == SM_TASK_SIMMIM ? "encoder." : "");
    return rc;
}

static void vf_verdict(const vfile *v, const vstate *st, const vtiers *tiers)
{
    if (tiers->has_strict)
        printf("%s: %s at the required tier (outputs %.0e, gradients %.0e) over %d tensors; "
               "strict tier (%.0e, %.0e) %s\n",
               v->path, st->pass ? "PASS" : "FAIL", tiers->out_req, tiers->grad_req,
               st->n_checked, tiers->out_strict, tiers->grad_strict,
               st->strict ? "reached" : "not reached");
    else
        printf("%s: %s at the bf16 tier (outputs %.0e, gradients %.0e) over %d tensors\n", v->path,
               st->pass ? "PASS" : "FAIL", tiers->out_req,
               st->simmim ? tiers->grad_l1 : tiers->grad_req, st->n_checked);
}

static int verify_file(const char *path, sm_registry *reg, sm_backend *be, const vtiers *tiers,
                       bool quiet, bool *strict_out)
{
    vstate st = {.file = path, .t = tiers, .quiet = quiet, .pass = true,
                 .strict = tiers->has_strict};
    vfile v = {.path = path};
    sm_error_clear(&v.err);
    int rc = sm_st_open(path, &v.f, &v.err);
    if (!rc) rc = vf_model(&v, reg);
    if (!rc) rc = vf_weights(&v);
    if (!rc) rc = vf_run(&v, be);
    st.simmim = v.task == SM_TASK_SIMMIM;
    if (!rc && !quiet) {
        sm_params *params = sm_model_params(v.model);
        printf("%s: %s %s, batch %lld, image %lldx%lld, %zu parameters (%lld values), backend "
               "%s (%s)\n",
               path, st.simmim ? "SimMIM" : "classifier", v.arch, (long long)v.x->shape[0],
               (long long)v.x->shape[2], (long long)v.x->shape[3], sm_params_count(params),
               (long long)sm_params_numel(params), sm_backend_name(be),
               sm_precision_name(sm_backend_precision(be)));
    }
    if (!rc) rc = vf_check(&v, &st);
    if (!rc) {
        vf_verdict(&v, &st, tiers);
    } else {
        if (!v.err.code) sm_error_set(&v.err, SM_EINTERNAL, path, 0, 0, NULL, "verification failed");
        if (!v.err.file[0]) snprintf(v.err.file, sizeof v.err.file, "%s", path);
        char line[SM_ERROR_LINE_MAX];
        sm_error_format(&v.err, line, sizeof line);
        printf("%s\n%s: FAIL (could not be checked)\n", line, path);
        st.pass = false;
    }
    *strict_out = rc == 0 && st.strict;
    json_decref(v.meta);
    sm_ctx_free(v.ctx);
    sm_model_free(v.model);
    sm_config_free(v.cfg);
    sm_st_close(v.f);
    return st.pass ? 0 : 1;
}

static const char *const verify_values[] = {"--backend", "--precision"};
static const char *const verify_flags[] = {"--quiet", "-q", NULL};
static const sm_cli_command verify_cmd = {"verify", verify_usage, verify_values, NULL, 2,
                                          verify_flags, 1, (size_t)-1};

/* The backend (--backend, else blis when loaded, else ref) at the precision asked for. */
static int verify_backend(sm_cli_session *s, sm_precision *prec)
{
    const char *name = s->values[0], *precision = s->values[1];
    *prec = SM_PRECISION_FP32;
    if (precision && sm_precision_parse(precision, prec) != 0) {
        fprintf(stderr,
                "simmimctl verify: --precision must be fp32 or bf16, not '%s' (see "
                "'simmimctl verify --help')\n",
                precision);
        return SM_EXIT_USAGE;
    }
    if (!(s->reg = sm_cli_registry(&s->o, NULL))) return SM_EXIT_FAILURE;
    if (!name) name = sm_registry_find(s->reg, SM_KIND_BACKEND, "blis") ? "blis" : "ref";
    if (sm_backend_new(s->reg, name, NULL, 0, &s->be, &s->err) ||
        sm_backend_set_precision(s->be, *prec, &s->err))
        return sm_cli_session_fail(s, sm_cli_exit_code(SM_EINVAL));
    return 0;
}

int sm_cmd_verify(int argc, char **argv)
{
    sm_cli_session s;
    sm_precision prec;
    int rc = sm_cli_session_begin(&s, &argc, argv, &verify_cmd);
    if (!rc) rc = verify_backend(&s, &prec);
    if (rc) return sm_cli_session_end(&s, rc);
    bool quiet = sm_cli_has_flag(&s.o, "--quiet") || sm_cli_has_flag(&s.o, "-q");
    size_t nf = s.o.n_positional;
    int failed = 0, strict = 0;
    for (size_t i = 0; i < nf; i++) {
        bool st = false;
        failed += verify_file(s.o.positional[i], s.reg, s.be,
                              prec == SM_PRECISION_BF16 ? &tiers_bf16 : &tiers_fp32, quiet, &st);
        strict += st;
        if (!quiet && i + 1 < nf) printf("\n");
    }
    if (nf > 1 && prec == SM_PRECISION_BF16)
        printf("verify: %zu of %zu files pass the bf16 tier\n", nf - (size_t)failed, nf);
    else if (nf > 1)
        printf("verify: %zu of %zu files pass the required tier, %d reach the strict tier\n",
               nf - (size_t)failed, nf, strict);
    return sm_cli_session_end(&s, failed ? SM_EXIT_FAILURE : SM_EXIT_OK);
}
