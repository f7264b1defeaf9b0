/* core/config/config_schema.c - the core's key tables (RingMo-Framework's keys, spec section 11, plus
 * our few additions), and the checks of a value against a key: type, range, choices.
 * docs/config.md describes every key; keep the two in step. */
#include "config/config_internal.h"

#include <ctype.h>

#define NUL SM_KEY_NULLABLE
#define PATH SM_KEY_PATH
#define IGNORED(name_) {name_, SM_KEY_IGNORED, NULL, NULL, 0, "RingMo/MindSpore-only: ignored"}

static const sm_key sm__top_keys[] = {
    {"seed", SM_KEY_INT, "2022", "[0,)", 0, "random seed of the run"},
    {"arch", SM_KEY_STRING, "simmim", "simmim", NUL, "architecture (only simmim)"},
    {"task", SM_KEY_STRING, "null", "pretrain|finetune|eval", NUL,
     "what run does; null: pretrain if pretrain_dataset is present, else finetune"},
    {"loss_type", SM_KEY_STRING, "null", "soft_ce|ce", NUL,
     "fine-tuning loss: soft_ce (soft targets: Mixup/CutMix, label smoothing) or ce (hard "
     "labels: needs mixup and cutmix 0); null: soft_ce"},
    {"output_dir", SM_KEY_STRING, "output", NULL, PATH,
     "directory a run writes its config, metrics and checkpoints to"},
    {"plugin_path", SM_KEY_STRING_LIST, "[]", NULL, PATH,
     "plugin directories searched after --plugin-dir"},
    {"step_semantics", SM_KEY_STRING, "simmim", "simmim|ringmo", 0,
     "whose training-step details to reproduce: simmim (the official microsoft/SimMIM code: "
     "the lr schedule one step behind, layer decay scaling the peak lr) or ringmo "
     "(RingMo-Framework: no lag, layer decay scaling the whole schedule, no decay on the mask "
     "token)"},
    IGNORED("use_parallel"), IGNORED("profile"), IGNORED("profile_start_step"),
    IGNORED("profile_end_step"), IGNORED("auto_tune"), IGNORED("filepath_prefix"),
    IGNORED("autotune_per_step"), IGNORED("aicc_config"), IGNORED("context"),
    IGNORED("parallel"), IGNORED("device_id"), IGNORED("device_num"), IGNORED("local_rank"),
    {0},
};

static const sm_key sm__model_keys[] = {
    {"backbone", SM_KEY_STRING, NULL, NULL, 0, "backbone component (vit, swin, ...)"},
    {"mask_ratio", SM_KEY_FLOAT, "0.6", "(0,1)", 0, "share of mask cells masked in pretraining"},
    {"mask_patch_size", SM_KEY_INT, "32", "[1,)", 0, "side of a mask cell in pixels"},
    IGNORED("patch_type"),
    {0},
};

static const sm_key sm__train_keys[] = {
    {"epoch", SM_KEY_INT, "100", "[1,)", 0, "number of training epochs"},
    {"batch_size", SM_KEY_INT, "64", "[1,)", 0, "images per micro-batch on each rank (per device, as RingMo)"},
    {"image_size", SM_KEY_INT, "224", "[1,16384]", 0,
     "side of the (square) input images in pixels"},
    {"per_epoch_size", SM_KEY_INT, "0", "[0,)", 0, "batches (micro-batches) per epoch; 0: one pass over the data"},
    {"initial_epoch", SM_KEY_INT, "0", "[0,)", 0, "epoch to start counting from"},
    {"resume_ckpt", SM_KEY_STRING, "null", NULL, NUL | PATH,
     "checkpoint to resume from (pretraining) or to initialise the encoder from (fine-tuning)"},
    {"num_classes", SM_KEY_INT, "null", "[1,)", NUL,
     "classes of the classifier head; null: as many as the dataset has"},
    {"accumulation_steps", SM_KEY_INT, "1", "[1,4096]", 0,
     "micro-batches of batch_size per optimizer step (official TRAIN.ACCUMULATION_STEPS); the "
     "global batch is batch_size x ranks x accumulation_steps"},
    {"accumulation_mode", SM_KEY_STRING, "exact", "exact|official", 0,
     "exact: the update of one batch accumulation_steps times larger; official: "
     "microsoft/SimMIM's path (each partial sum clipped, the schedule counted in micro-batches)"},
    {"recompute", SM_KEY_BOOL, "false", NULL, 0,
     "recompute block activations in backward: less memory, some forward work done twice"},
    IGNORED("sink_mode"), IGNORED("has_trained_epoches"), IGNORED("has_trained_steps"),
    {0},
};

static const sm_key sm__optim_keys[] = {
    {"optim_name", SM_KEY_STRING, "adamw", NULL, 0, "optimizer component (adamw, sgd, ...)"},
    {"weight_decay", SM_KEY_FLOAT, "0.05", "[0,)", 0, "weight decay of the decayed parameters"},
    {"layer_decay", SM_KEY_FLOAT, "1.0", "(0,1]", 0,
     "layer-wise learning-rate decay (fine-tuning); 1: none"},
    {0},
};

static const sm_key sm__sched_keys[] = {
    {"lr_type", SM_KEY_STRING, "warmup_cosine_decay", NULL, 0,
     "learning-rate schedule component"},
    {"base_lr", SM_KEY_FLOAT, "0.00015", "(0,)", 0, "peak learning rate (per 512 images)"},
    {"min_lr", SM_KEY_FLOAT, "0", "[0,)", 0, "final learning rate"},
    {"warmup_lr", SM_KEY_FLOAT, "0", "[0,)", 0, "learning rate at the start of the warmup"},
    {"warmup_epochs", SM_KEY_FLOAT, "0", "[0,)", 0, "length of the linear warmup in epochs"},
    {0},
};

/* Keys both dataset sections share, then each one's own. */
#define SM__DATASET_COMMON                                                                     \
    {"data_type", SM_KEY_STRING, "custom", "custom|mindrecord", 0,                             \
     "custom: image files (mindrecord is not supported)"},                                    \
    {"num_workers", SM_KEY_INT, "8", "[0,256]", 0, "decoding threads of the loader"},          \
    {"prefetch_size", SM_KEY_INT, "30", "[1,)", 0,                                             \
     "decoded samples kept ready ahead of the trainer (beyond one batch)"},                   \
    {"shuffle", SM_KEY_BOOL, "true", NULL, 0, "shuffle the samples every epoch"},              \
    {"repeat", SM_KEY_INT, "1", "[1,)", 0, "passes over the data per epoch"},                  \
    {"on_bad_image", SM_KEY_STRING, "skip", "skip|fail", 0,                                    \
     "an undecodable image is skipped and reported, or stops the run"},                       \
    {"max_bad_fraction", SM_KEY_FLOAT, "0.01", "[0,1]", 0,                                     \
     "the run stops when a larger share of images is bad"},                                   \
    {"bands", SM_KEY_INT_LIST, "null", "[0,)", NUL,                                            \
     "bands (channels) of multi-band images to use; null: RGB"},                               \
    {"norm_mean", SM_KEY_FLOAT_LIST, "null", "[0,1]", NUL,                                         \
     "per-channel mean on the 0..1 scale; null: ImageNet's"},                                  \
    {"norm_std", SM_KEY_FLOAT_LIST, "null", "(0,)", NUL,                                       \
     "per-channel standard deviation on the 0..1 scale; null: ImageNet's"},                    \
    {"max_pixels", SM_KEY_INT, "89478485", "[1,)", 0,                                          \
     "images with more pixels are refused before decoding"},                                  \
    IGNORED("numa_enable"), IGNORED("python_multiprocessing"), IGNORED("input_columns"),       \
    IGNORED("output_columns"), IGNORED("column_order")

static const sm_key sm__pretrain_keys[] = {
    {"reader", SM_KEY_STRING, "aircas", NULL, 0, "dataset reader component"},
    SM__DATASET_COMMON,
    {"crop_min", SM_KEY_FLOAT, "0.67", "(0,1]", 0, "smallest area share of the random crop"},
    {"prop", SM_KEY_FLOAT, "0.5", "[0,1]", 0, "horizontal flip probability"},
    {"interpolation", SM_KEY_STRING, "bilinear", "bilinear|bicubic", 0,
     "resampling of the random resized crop"},
    {0},
};

static const sm_key sm__finetune_keys[] = {
    {"reader", SM_KEY_STRING, "imagenet", NULL, 0, "dataset reader component"},
    SM__DATASET_COMMON,
    {"interpolation", SM_KEY_STRING, "bicubic", "bilinear|bicubic", 0,
     "resampling of crops and resizes"},
    {"auto_augment", SM_KEY_STRING, "rand-m9-mstd0.5-inc1", NULL, NUL,
     "timm RandAugment policy; null: none"},
    {"crop_min", SM_KEY_FLOAT, "0.08", "(0,1]", 0, "smallest area share of the random crop"},
    {"hflip", SM_KEY_FLOAT, "0.5", "[0,1]", 0, "horizontal flip probability"},
    {"mixup", SM_KEY_FLOAT, "0.8", "[0,)", 0, "mixup alpha; 0: off"},
    {"cutmix", SM_KEY_FLOAT, "1.0", "[0,)", 0, "cutmix alpha; 0: off"},
    {"mixup_prob", SM_KEY_FLOAT, "1.0", "[0,1]", 0, "probability of mixup or cutmix per batch"},
    {"switch_prob", SM_KEY_FLOAT, "0.5", "[0,1]", 0, "probability of cutmix instead of mixup"},
    {"re_prop", SM_KEY_FLOAT, "0.25", "[0,1]", 0, "random erasing probability"},
    {"re_mode", SM_KEY_STRING, "pixel", "pixel|const|rand", 0, "random erasing fill"},
    {"re_count", SM_KEY_INT, "1", "[0,)", 0, "random erasing: most boxes per image"},
    {"label_smoothing", SM_KEY_FLOAT, "0.1", "[0,1)", 0, "label smoothing"},
    IGNORED("color_jitter"), /* timm applies it only without auto_augment; not implemented */
    {"eval_interval", SM_KEY_INT, "1", "[1,)", 0, "evaluate every this many epochs"},
    {"eval_offset", SM_KEY_INT, "-1", NULL, 0,
     "evaluate when epoch % eval_interval == eval_offset; < 0: epoch % eval_interval"},
    {"samples_num", SM_KEY_INT, "null", "[0,)", NUL,
     "evaluation set size for the accuracy; null: the number of images found"},
    {"crop_pct", SM_KEY_FLOAT, "0.875", "(0,1]", 0,
     "evaluation: resize to image_size / crop_pct, then centre crop"},
    {0},
};

static const sm_key sm__callback_keys[] = {
    {"ckpt_config", SM_KEY_MAP, NULL, NULL, 0, "checkpointing"},
    {"ckpt_config.save_ckpt_epochs", SM_KEY_INT, "1", "[1,)", 0,
     "write a checkpoint every this many epochs"},
    {"ckpt_config.keep_checkpoint_max", SM_KEY_INT, "1", "[1,)", 0,
     "checkpoints kept (older ones are deleted)"},
    {"ckpt_config.prefix", SM_KEY_STRING, "ring-mo", NULL, 0,
     "checkpoint file name prefix (no '/': checkpoints go to output_dir)"},
    IGNORED("ckpt_config.integrated_save"), IGNORED("ckpt_config.async_save"),
    IGNORED("summary_config"),
    {0},
};

static const sm_key sm__wrapper_keys[] = {
    {"use_ema", SM_KEY_BOOL, "false", NULL, 0, "keep an exponential moving average of weights"},
    {"ema_decay", SM_KEY_FLOAT, "0.9999", "(0,1)", 0, "decay of the moving average"},
    {"use_clip_grad", SM_KEY_BOOL, "true", NULL, 0, "clip the global gradient norm"},
    {"clip_norm", SM_KEY_FLOAT, "5.0", "(0,)", 0, "largest global gradient norm"},
    IGNORED("wrapper_type"), IGNORED("use_dynamic_loss_scale"), IGNORED("loss_scale"),
    {0},
};

static const sm_key sm__backend_keys[] = {
    {"name", SM_KEY_STRING, "blis", NULL, 0, "compute backend component (blis, onednn, ref)"},
    {"threads", SM_KEY_INT, "0", "[0,)", 0, "threads; 0: all cores"},
    {"precision", SM_KEY_STRING, "fp32", "fp32|bf16", 0,
     "GEMM inputs: fp32, or bf16 (rounded to bfloat16, fp32 accumulation and outputs; "
     "everything else stays fp32)"},
    {0},
};

static const sm__section sm__sections[] = {
    {"model", sm__model_keys, SM_KIND_BACKBONE, "backbone", true, false},
    {"train_config", sm__train_keys, -1, NULL, false, true},
    {"optimizer", sm__optim_keys, SM_KIND_OPTIMIZER, "optim_name", false, true},
    {"lr_schedule", sm__sched_keys, SM_KIND_SCHEDULER, "lr_type", false, true},
    {"pretrain_dataset", sm__pretrain_keys, SM_KIND_DATASET, "reader", false, false},
    {"finetune_dataset", sm__finetune_keys, SM_KIND_DATASET, "reader", false, false},
    {"callback", sm__callback_keys, -1, NULL, false, true},
    {"train_wrapper", sm__wrapper_keys, -1, NULL, false, true},
    {"backend", sm__backend_keys, SM_KIND_BACKEND, "name", false, true},
};

const sm_key *sm__config_top_keys(void) { return sm__top_keys; }

const sm__section *sm__config_sections(size_t *n)
{
    *n = SM__ARRAY_LEN(sm__sections);
    return sm__sections;
}

const sm__section *sm__config_section(const char *name)
{
    for (size_t i = 0; i < SM__ARRAY_LEN(sm__sections); i++)
        if (strcmp(sm__sections[i].name, name) == 0) return &sm__sections[i];
    return NULL;
}

const sm_key *sm_config_core_keys(const char *section)
{
    if (!section) return NULL;
    if (!*section) return sm__top_keys;
    const sm__section *s = sm__config_section(section);
    return s ? s->keys : NULL;
}

const char *sm_config_core_section(size_t i)
{
    if (i == 0) return "";
    return i <= SM__ARRAY_LEN(sm__sections) ? sm__sections[i - 1].name : NULL;
}

const sm_key *sm__key_find(const sm_key *keys, const char *name)
{
    for (const sm_key *k = keys; k && k->name; k++)
        if (strcmp(k->name, name) == 0) return k;
    return NULL;
}

/* ---- types and ranges ----------------------------------------------------------------- */

const char *sm__key_type_desc(sm_key_type t)
{
    switch (t) {
    case SM_KEY_BOOL: return "a boolean";
    case SM_KEY_INT: return "an integer";
    case SM_KEY_FLOAT: return "a number";
    case SM_KEY_STRING: return "a string";
    case SM_KEY_INT_LIST: return "a list of integers";
    case SM_KEY_FLOAT_LIST: return "a list of numbers";
    case SM_KEY_STRING_LIST: return "a list of strings";
    case SM_KEY_MAP: return "a map";
    default: return "any value";
    }
}

const char *sm_key_type_name(sm_key_type t)
{
    static const char *const names[] = {"?", "bool", "int", "float", "string", "int-list",
                                        "float-list", "string-list", "map", "ignored"};
    return (unsigned)t < SM__ARRAY_LEN(names) ? names[t] : "?";
}

static const char *sm__parse_bound(const char *p, double *v, bool *has)
{
    char *end;
    *has = false;
    if (*p == ',' || *p == ']' || *p == ')') return p;
    *v = strtod(p, &end);
    if (end == p) return NULL;
    *has = true;
    return end;
}

int sm__range_parse(const char *r, double *lo, bool *lo_open, bool *has_lo, double *hi,
                    bool *hi_open, bool *has_hi)
{
    if (!r || (r[0] != '[' && r[0] != '(')) return -1;
    *lo_open = r[0] == '(';
    const char *p = sm__parse_bound(r + 1, lo, has_lo);
    if (!p || *p != ',') return -1;
    p = sm__parse_bound(p + 1, hi, has_hi);
    if (!p || (*p != ']' && *p != ')') || p[1]) return -1;
    *hi_open = *p == ')';
    if (*has_lo && *has_hi && *lo > *hi) return -1;
    return 0;
}

static bool sm__in_range(double v, const char *range)
{
    double lo, hi;
    bool lo_open, hi_open, has_lo, has_hi;
    if (!range || sm__range_parse(range, &lo, &lo_open, &has_lo, &hi, &hi_open, &has_hi) != 0)
        return true;
    if (has_lo && (lo_open ? !(v > lo) : !(v >= lo))) return false;
    if (has_hi && (hi_open ? !(v < hi) : !(v <= hi))) return false;
    return true;
}

const char *sm__choice_find(const char *choices, const char *text, size_t *len)
{
    size_t tl = strlen(text);
    for (const char *p = choices; p;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == tl && strncasecmp(p, text, n) == 0) return *len = n, p;
        p = bar ? bar + 1 : NULL;
    }
    return NULL;
}

/* "'a', 'b' or 'c'" */
static void sm__choices_text(const char *choices, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = '\0';
    for (const char *p = choices; p && k < n;) {
        const char *bar = strchr(p, '|');
        int len = bar ? (int)(bar - p) : (int)strlen(p);
        const char *sep = p == choices ? "" : bar ? ", " : " or ";
        int r = snprintf(buf + k, n - k, "%s'%.*s'", sep, len, p);
        if (r < 0) break;
        k += (size_t)r;
        p = bar ? bar + 1 : NULL;
    }
}

static sm_key_type sm__item_type(sm_key_type t)
{
    return t == SM_KEY_INT_LIST ? SM_KEY_INT : t == SM_KEY_FLOAT_LIST ? SM_KEY_FLOAT
                                                                      : SM_KEY_STRING;
}

/* One scalar against a scalar type. */
static int sm__check_scalar(sm_key_type t, const char *range, const sm_cfg *node, char *why,
                            size_t n)
{
    char got[96];
    sm__cfg_describe(node, got, sizeof got);
    const char *desc = sm__key_type_desc(t);
    bool scalar = node->kind == SM_CFG_SCALAR;
    if (t == SM_KEY_STRING) {
        if (!scalar) return snprintf(why, n, "expected a string, got %s", got), -1;
        size_t len;
        if (range && !sm__choice_find(range, node->text, &len)) {
            char c[200];
            sm__choices_text(range, c, sizeof c);
            return snprintf(why, n, "expected %s, got %s", c, got), -1;
        }
        return 0;
    }
    const char *hint = scalar && node->quoted ? " (remove the quotes)" : "";
    if (!scalar || node->quoted)
        return snprintf(why, n, "expected %s, got %s%s", desc, got, hint), -1;
    double v = 0;
    if (t == SM_KEY_BOOL) {
        bool b;
        if (sm__parse_bool(node->text, &b) == 0) return 0;
        return snprintf(why, n, "expected a boolean (true or false), got %s", got), -1;
    }
    if (t == SM_KEY_INT) {
        int64_t i;
        bool overflow;
        if (sm__parse_int(node->text, &i, &overflow) != 0)
            return snprintf(why, n, "expected an integer, got %s%s", got,
                            overflow ? " (too large)" : ""), -1;
        v = (double)i;
    } else if (sm__parse_float(node->text, &v) != 0) {
        return snprintf(why, n, "expected a number, got %s", got), -1;
    }
    if (!sm__in_range(v, range))
        return snprintf(why, n, "expected %s in %s, got %s", desc, range, node->text), -1;
    return 0;
}

int sm__key_check_value(const sm_key *k, const sm_cfg *node, const sm_cfg **at, char *why,
                        size_t n)
{
    *at = node;
    if (k->type == SM_KEY_IGNORED) return 0;
    if (node->kind == SM_CFG_NULL) {
        if (k->flags & SM_KEY_NULLABLE) return 0;
        return snprintf(why, n, "expected %s, got null", sm__key_type_desc(k->type)), -1;
    }
    switch (k->type) {
    case SM_KEY_MAP:
        if (node->kind == SM_CFG_MAP) return 0;
        break;
    case SM_KEY_INT_LIST:
    case SM_KEY_FLOAT_LIST:
    case SM_KEY_STRING_LIST:
        if (node->kind != SM_CFG_SEQ) break;
        for (const sm_cfg *it = node->head; it; it = it->next) {
            if (sm__check_scalar(sm__item_type(k->type), k->range, it, why, n) != 0) {
                *at = it;
                return -1;
            }
        }
        return 0;
    default:
        return sm__check_scalar(k->type, k->range, node, why, n);
    }
    char got[96];
    sm__cfg_describe(node, got, sizeof got);
    return snprintf(why, n, "expected %s, got %s", sm__key_type_desc(k->type), got), -1;
}

/* ---- component key tables ------------------------------------------------------------- */

static bool sm__valid_key_name(const char *s)
{
    if (!s || !*s || *s == '.') return false;
    for (const char *p = s; *p; p++) {
        if (*p == '.' && (p[1] == '.' || p[1] == '\0')) return false;
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_' || *p == '.'))
            return false;
    }
    return true;
}

static int sm__check_default(const sm_key *k, char *why, size_t n)
{
    if (!k->def || k->type == SM_KEY_MAP || k->type == SM_KEY_IGNORED) return 0;
    sm__pool pool = {0};
    sm_cfg *node = NULL;
    char inner[200];
    int rc = 0;
    if (sm__cfg_parse_value(&pool, k->def, SM__CFG_DEFAULT, &node, inner, sizeof inner) != 0) {
        snprintf(why, n, "key '%s': default '%s' is not valid YAML: %s", k->name, k->def, inner);
        rc = -1;
    } else {
        const sm_cfg *at;
        if (sm__key_check_value(k, node, &at, inner, sizeof inner) != 0) {
            snprintf(why, n, "key '%s': default '%s': %s", k->name, k->def, inner);
            rc = -1;
        }
    }
    sm__pool_free(&pool);
    return rc;
}

int sm__key_table_check(const sm_key *keys, int kind, char *why, size_t n)
{
    for (const sm_key *k = keys; k && k->name; k++) {
        if (!sm__valid_key_name(k->name))
            return snprintf(why, n, "key name '%s' is invalid (use [a-z0-9_], dots for nesting)",
                            k->name), -1;
        if (k->type <= SM_KEY_END || k->type > SM_KEY_IGNORED)
            return snprintf(why, n, "key '%s' has an invalid type %d", k->name, (int)k->type), -1;
        for (const sm_key *j = keys; j < k; j++)
            if (strcmp(j->name, k->name) == 0)
                return snprintf(why, n, "key '%s' is declared twice", k->name), -1;
        const char *dot = strrchr(k->name, '.');
        if (dot) {
            char parent[128];
            snprintf(parent, sizeof parent, "%.*s", (int)(dot - k->name), k->name);
            const sm_key *p = sm__key_find(keys, parent);
            if (!p || p->type != SM_KEY_MAP)
                return snprintf(why, n, "key '%s' needs a map entry '%s' declared before it",
                                k->name, parent), -1;
        }
        if (k->range) {
            double a, b;
            bool x, y, ha, hb;
            bool numeric = k->type == SM_KEY_INT || k->type == SM_KEY_FLOAT ||
                           k->type == SM_KEY_INT_LIST || k->type == SM_KEY_FLOAT_LIST;
            bool strings = k->type == SM_KEY_STRING || k->type == SM_KEY_STRING_LIST;
            if (numeric && sm__range_parse(k->range, &a, &x, &ha, &b, &y, &hb) != 0)
                return snprintf(why, n, "key '%s': range '%s' is not an interval like [0,1)",
                                k->name, k->range), -1;
            if (strings && !*k->range)
                return snprintf(why, n, "key '%s': empty list of choices", k->name), -1;
            if (!numeric && !strings)
                return snprintf(why, n, "key '%s': a %s key takes no range", k->name,
                                sm_key_type_name(k->type)), -1;
        }
        if (sm__check_default(k, why, n) != 0) return -1;
        size_t ns;
        const sm__section *secs = sm__config_sections(&ns);
        for (size_t i = 0; i < ns; i++)
            if (secs[i].kind == kind && sm__key_find(secs[i].keys, k->name))
                return snprintf(why, n, "key '%s' is already a core key of section '%s'",
                                k->name, secs[i].name), -1;
    }
    return 0;
}

const char *sm_kind_name(sm_kind kind)
{
    static const char *const names[SM_KIND_COUNT] = {"backend", "backbone", "dataset",
                                                     "optimizer", "scheduler"};
    return (unsigned)kind < SM_KIND_COUNT ? names[kind] : NULL;
}
