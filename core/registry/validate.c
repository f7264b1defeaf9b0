/* core/registry/validate.c - phase 2 of loading a config: every key against the core schema and
 * the schemas of the selected components, defaults filled in, cross-field checks, components'
 * validate hooks. Every error of the tree is collected (nothing stops at the first). */
#include "registry/registry_internal.h"

#include <ctype.h>

typedef struct sm__hook {
    const sm_component *comp;
    const sm_cfg *section;
} sm__hook;

typedef struct sm__val {
    sm_config *cfg;
    const sm_registry *reg;
    sm_diag *diag;
    size_t errors;
    int oom;
    sm__hook hooks[16];
    size_t n_hooks;
    bool model_only; /* sm_config_validate_model: only what building a model needs */
} sm__val;

/* Sections checked by sm_config_validate_model. */
static bool sm__model_section(const char *name)
{
    return !strcmp(name, "model") || !strcmp(name, "train_config") || !strcmp(name, "backend");
}

/* Sections sm_config_validate_model fills in when absent (backend only when given). */
static bool sm__model_default_section(const char *name)
{
    return !strcmp(name, "model") || !strcmp(name, "train_config");
}

/* An error about node, located at its value (or at its key when at_key). */
static void sm__verr(sm__val *v, sm_cfg *node, bool at_key, const char *fmt, ...)
    SM_PRINTF(4, 5);
static void sm__verr(sm__val *v, sm_cfg *node, bool at_key, const char *fmt, ...)
{
    char path[SM__ERR_PATH_MAX];
    sm__cfg_keypath_fit(node, NULL, path, sizeof path);
    sm_error e;
    sm_error_clear(&e);
    va_list ap;
    va_start(ap, fmt);
    sm_error_setv(&e, SM_ECONFIG, node->file, at_key ? node->key_line : node->line,
                  at_key ? node->key_column : node->column, path, fmt, ap);
    va_end(ap);
    if (sm_diag_add(v->diag, SM_SEV_ERROR, &e) != 0) v->oom = 1;
    node->bad = true;
    v->errors++;
}

/* An error about a key that is missing from `map` (located at the map's key, or at the main
 * file when the map is the root or was not in any file). */
static void sm__missing(sm__val *v, const sm_cfg *map, const char *path, const char *fmt, ...)
    SM_PRINTF(4, 5);
static void sm__missing(sm__val *v, const sm_cfg *map, const char *path, const char *fmt, ...)
{
    bool located = map && map->parent && map->key_line > 0;
    sm_error e;
    sm_error_clear(&e);
    va_list ap;
    va_start(ap, fmt);
    sm_error_setv(&e, SM_ECONFIG, located ? map->file : v->cfg->file,
                  located ? map->key_line : 0, located ? map->key_column : 0, path, fmt, ap);
    va_end(ap);
    if (sm_diag_add(v->diag, SM_SEV_ERROR, &e) != 0) v->oom = 1;
    v->errors++;
}

static void sm__record_ignored(sm__val *v, const sm_cfg *node)
{
    sm_config *c = v->cfg;
    if (c->n_ignored == c->cap_ignored) {
        size_t cap = c->cap_ignored ? 2 * c->cap_ignored : 16;
        const char **a = realloc(c->ignored, cap * sizeof *a);
        if (!a) {
            v->oom = 1;
            return;
        }
        c->ignored = a;
        c->cap_ignored = cap;
    }
    size_t len = sm_cfg_keypath(node, NULL, 0);
    char *s = sm__pool_alloc(&c->pool, len + 1);
    if (!s) {
        v->oom = 1;
        return;
    }
    sm_cfg_keypath(node, s, len + 1);
    c->ignored[c->n_ignored++] = s;
}

/* ---- keys of one map ------------------------------------------------------------------ */

/* The key of `tables` called prefix+name. */
static const sm_key *sm__lookup(const sm_key *const *tables, size_t nt, const char *prefix,
                                const char *name)
{
    char full[SM__KEY_NAME_MAX + 1];
    if ((size_t)snprintf(full, sizeof full, "%s%s", prefix, name) >= sizeof full)
        return NULL; /* longer than any declared key */
    for (size_t t = 0; t < nt; t++) {
        const sm_key *k = sm__key_find(tables[t], full);
        if (k) return k;
    }
    return NULL;
}

/* The part of a key name below prefix if it is a direct child ("ckpt_config." + "prefix"). */
static const char *sm__direct_child(const sm_key *k, const char *prefix)
{
    size_t lp = strlen(prefix);
    if (strncmp(k->name, prefix, lp) != 0 || strchr(k->name + lp, '.')) return NULL;
    return k->name + lp;
}

/* Unknown key: did-you-mean among the siblings the tables declare (and the section names at
 * the top level), else the list of valid keys. */
static void sm__unknown_key(sm__val *v, sm_cfg *node, const sm_key *const *tables, size_t nt,
                            const char *prefix, bool sections)
{
    size_t ns;
    const sm__section *secs = sm__config_sections(&ns);
    const char *best = NULL;
    int best_d = 3;
    char list[240] = "";
    size_t len = 0, more = 0;
    for (size_t t = 0; t <= nt; t++) {
        /* tables, then the extra names (top-level sections) */
        for (size_t i = 0;; i++) {
            const char *name;
            bool ignored = false;
            if (t < nt) {
                const sm_key *k = tables[t] ? &tables[t][i] : NULL;
                if (!k || !k->name) break;
                if (!(name = sm__direct_child(k, prefix))) continue;
                ignored = k->type == SM_KEY_IGNORED;
            } else {
                if (!sections || i >= ns) break;
                name = secs[i].name;
            }
            int d = sm__edit_distance(node->key, name, 2);
            if (d < best_d) best_d = d, best = name;
            if (ignored) continue;
            if (len + strlen(name) + 8 < sizeof list)
                len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", len ? ", " : "",
                                        name);
            else
                more++;
        }
    }
    if (best)
        sm__verr(v, node, true, "unknown key '%s' (did you mean '%s'?)", node->key, best);
    else if (more)
        sm__verr(v, node, true, "unknown key '%s' (valid keys: %s and %zu more)", node->key,
                 list, more);
    else
        sm__verr(v, node, true, "unknown key '%s' (valid keys: %s)", node->key,
                 len ? list : "none");
}

static sm_cfg *sm__default_node(sm__val *v, const sm_key *k)
{
    sm_cfg *node = NULL;
    char why[200];
    if (k->type == SM_KEY_MAP) {
        node = sm__cfg_new(&v->cfg->pool, SM_CFG_MAP, SM__CFG_DEFAULT, 0, 0);
    } else if (sm__cfg_parse_value(&v->cfg->pool, k->def, SM__CFG_DEFAULT, &node, why,
                                   sizeof why) != 0) {
        node = NULL; /* impossible for registered tables (checked at registration) */
    }
    if (!node) v->oom = 1;
    return node;
}

/* Checks a value against its key, reporting a mismatch. Choices take the schema's spelling
 * ("BICUBIC" -> "bicubic"), so consumers can compare with strcmp. */
static bool sm__check_key(sm__val *v, const sm_key *k, sm_cfg *c)
{
    const sm_cfg *at;
    char why[SM__ERR_TEXT_MAX];
    if (sm__key_check_value(k, c, &at, why, sizeof why) != 0) {
        sm__verr(v, (sm_cfg *)at, false, "%s", why);
        return false;
    }
    if (!k->range || (k->type != SM_KEY_STRING && k->type != SM_KEY_STRING_LIST)) return true;
    bool list = k->type == SM_KEY_STRING_LIST;
    for (sm_cfg *it = list ? c->head : c; it; it = list ? it->next : NULL) {
        size_t len;
        const char *canon = it->kind == SM_CFG_SCALAR ? sm__choice_find(k->range, it->text, &len)
                                                      : NULL;
        if (!canon || strncmp(canon, it->text, len) == 0) continue;
        const char *t = sm__pool_strndup(&v->cfg->pool, canon, len);
        if (t)
            it->text = t;
        else
            v->oom = 1;
    }
    return true;
}

static void sm__validate_section(sm__val *v, sm_cfg *node, const sm__section *sec);

/* Checks every key of `map` (whose keys are named prefix + key in tables), then adds the
 * missing ones with their defaults. At the top level, sections are validated on their own. */
static void sm__validate_map(sm__val *v, sm_cfg *map, const char *prefix,
                             const sm_key *const *tables, size_t nt)
{
    bool root = map == v->cfg->root;
    for (sm_cfg *c = map->head; c; c = c->next) {
        const sm__section *sec = root ? sm__config_section(c->key) : NULL;
        if (sec) {
            if (!v->model_only || sm__model_section(sec->name)) sm__validate_section(v, c, sec);
            continue;
        }
        const sm_key *k = sm__lookup(tables, nt, prefix, c->key);
        if (!k) {
            sm__unknown_key(v, c, tables, nt, prefix, root);
            continue;
        }
        if (k->type == SM_KEY_IGNORED) {
            sm__record_ignored(v, c);
            continue;
        }
        if (!sm__check_key(v, k, c)) continue;
        if (k->type == SM_KEY_MAP) {
            char sub[SM__KEY_NAME_MAX + 2];
            snprintf(sub, sizeof sub, "%s%s.", prefix, c->key);
            sm__validate_map(v, c, sub, tables, nt);
        }
    }
    for (size_t t = 0; t < nt; t++) {
        for (const sm_key *k = tables[t]; k && k->name; k++) {
            const char *name = sm__direct_child(k, prefix);
            if (!name || k->type == SM_KEY_IGNORED || sm__cfg_child(map, name)) continue;
            if (!k->def && k->type != SM_KEY_MAP) {
                char path[SM__ERR_PATH_MAX];
                sm__cfg_keypath_fit(map, name, path, sizeof path);
                sm__missing(v, map, path, "missing required key");
                continue;
            }
            sm_cfg *d = sm__default_node(v, k);
            const char *key = sm__pool_strdup(&v->cfg->pool, name);
            if (!d || !key) {
                v->oom = 1;
                continue;
            }
            sm__cfg_append(map, d, key);
            if (k->type == SM_KEY_MAP) {
                char sub[SM__KEY_NAME_MAX + 2];
                snprintf(sub, sizeof sub, "%s%s.", prefix, name);
                sm__validate_map(v, d, sub, tables, nt);
            }
        }
    }
}

/* ---- sections ------------------------------------------------------------------------- */

static void sm__validate_section(sm__val *v, sm_cfg *node, const sm__section *sec)
{
    if (node->kind != SM_CFG_MAP) {
        char got[96];
        sm__cfg_describe(node, got, sizeof got);
        sm__verr(v, node, false, "expected a map (a section of keys), got %s", got);
        return;
    }
    const sm_key *tables[2] = {sec->keys, NULL};
    size_t nt = 1;
    const sm_component *comp = NULL;
    if (sec->kind >= 0) {
        const sm_key *sk = sm__key_find(sec->keys, sec->selector);
        sm_cfg *sel = sm__cfg_child(node, sec->selector);
        const char *name = sk->def;
        if (sel) {
            if (!sm__check_key(v, sk, sel)) return;
            name = sel->text;
        } else if (!name) {
            char path[160];
            snprintf(path, sizeof path, "%s.%s", sec->name, sec->selector);
            sm__missing(v, node, path, "missing required key (it names the %s to use)",
                        sm_kind_name((sm_kind)sec->kind));
            return;
        }
        comp = sm_registry_find(v->reg, (sm_kind)sec->kind, name);
        if (!comp) {
            char *names = sm__registry_names_dup(v->reg, (sm_kind)sec->kind);
            if (sel) {
                sm__verr(v, sel, false, "unknown %s '%s' (available: %s)",
                         sm_kind_name((sm_kind)sec->kind), name, names ? names : "?");
            } else {
                char path[160];
                snprintf(path, sizeof path, "%s.%s", sec->name, sec->selector);
                sm__missing(v, node, path, "unknown %s '%s' (the default; available: %s)",
                            sm_kind_name((sm_kind)sec->kind), name, names ? names : "?");
            }
            free(names);
            return;
        }
        tables[nt++] = comp->keys;
    }
    size_t before = v->errors;
    sm__validate_map(v, node, "", tables, nt);
    if (comp && comp->validate && v->errors == before) {
        if (v->n_hooks < SM__ARRAY_LEN(v->hooks))
            v->hooks[v->n_hooks++] = (sm__hook){comp, node};
    }
}

/* ---- cross-field checks --------------------------------------------------------------- */

/* A valid (not flagged) integer or number at root.path. */
static sm_cfg *sm__good(sm__val *v, const char *path, double *out)
{
    sm_cfg *n = (sm_cfg *)sm_cfg_get(v->cfg->root, path);
    if (!n || n->bad || n->kind != SM_CFG_SCALAR || n->quoted ||
        sm__parse_float(n->text, out) != 0)
        return NULL;
    return n;
}

/* The node to blame for a relation between a and b: a, unless a is a default. */
static sm_cfg *sm__blame(sm_cfg *a, sm_cfg *b)
{
    return strcmp(a->file, SM__CFG_DEFAULT) == 0 && strcmp(b->file, SM__CFG_DEFAULT) != 0 ? b : a;
}

/* a must be a multiple of b; the message names the other key of the pair. */
static void sm__check_multiple(sm__val *v, const char *a_path, const char *b_path)
{
    double a, b;
    sm_cfg *na = sm__good(v, a_path, &a), *nb = sm__good(v, b_path, &b);
    if (!na || !nb || !(b > 0 && b < 0x1p62) || !(a > 0 && a < 0x1p62) ||
        (int64_t)a % (int64_t)b == 0)
        return;
    sm_cfg *at = sm__blame(na, nb);
    if (at == na)
        sm__verr(v, na, false, "%s is not a multiple of %s (%s)", na->text, b_path, nb->text);
    else
        sm__verr(v, nb, false, "%s (%s) is not a multiple of %s", a_path, na->text, nb->text);
}

static void sm__check_task(sm__val *v)
{
    sm_cfg *root = v->cfg->root;
    sm_cfg *task = sm__cfg_child(root, "task");
    bool pre = sm__cfg_child(root, "pretrain_dataset") != NULL;
    bool fin = sm__cfg_child(root, "finetune_dataset") != NULL;
    const char *t = NULL;
    if (!task || task->bad) return;
    if (task->kind == SM_CFG_NULL) {
        if (pre && fin) {
            sm__missing(v, root, "task",
                        "both pretrain_dataset and finetune_dataset are present: set task to "
                        "pretrain, finetune or eval");
            return;
        }
        if (!pre && !fin) {
            sm__missing(v, root, NULL,
                        "no dataset section: add pretrain_dataset (pretraining) or "
                        "finetune_dataset (fine-tuning, evaluation)");
            return;
        }
        t = pre ? "pretrain" : "finetune";
        task->kind = SM_CFG_SCALAR;
        task->text = t;
    } else {
        t = task->text; /* a checked choice, in the schema's spelling */
    }
    bool need_pre = strcmp(t, "pretrain") == 0;
    if (need_pre ? !pre : !fin)
        sm__missing(v, root, need_pre ? "pretrain_dataset" : "finetune_dataset",
                    "missing section (task '%s' reads its images from it)", t);
    if (need_pre) {
        sm__check_multiple(v, "train_config.image_size", "model.mask_patch_size");
        sm__check_multiple(v, "model.mask_patch_size", "model.patch_size");
    }
}

static void sm__check_dataset(sm__val *v, const char *name)
{
    sm_cfg *sec = sm__cfg_child(v->cfg->root, name);
    if (!sec || sec->kind != SM_CFG_MAP) return;
    sm_cfg *dt = sm__cfg_child(sec, "data_type");
    if (dt && !dt->bad && dt->kind == SM_CFG_SCALAR && sm__strcasecmp(dt->text, "mindrecord") == 0)
        sm__verr(v, dt, false,
                 "MindRecord is not supported: use data_type: custom with image files");
    sm_cfg *mean = sm__cfg_child(sec, "norm_mean"), *std = sm__cfg_child(sec, "norm_std");
    sm_cfg *bands = sm__cfg_child(sec, "bands");
    if (mean && std && !mean->bad && !std->bad && mean->kind == SM_CFG_SEQ &&
        std->kind == SM_CFG_SEQ && mean->n != std->n)
        sm__verr(v, std, false, "norm_std has %zu values but norm_mean has %zu", std->n, mean->n);
    sm_cfg *lists[2] = {mean, std};
    for (size_t i = 0; i < 2; i++)
        if (bands && lists[i] && !bands->bad && !lists[i]->bad && bands->kind == SM_CFG_SEQ &&
            lists[i]->kind == SM_CFG_SEQ && bands->n != lists[i]->n)
            sm__verr(v, lists[i], false, "%s has %zu values but bands selects %zu channels",
                     lists[i]->key, lists[i]->n, bands->n);
}

static void sm__check_cross(sm__val *v)
{
    if (v->model_only) {
        const char *t = sm_cfg_str(v->cfg->root, "task");
        bool pretrain = t ? !strcmp(t, "pretrain") : !sm__cfg_child(v->cfg->root, "finetune_dataset");
        if (pretrain) {
            sm__check_multiple(v, "train_config.image_size", "model.mask_patch_size");
            sm__check_multiple(v, "model.mask_patch_size", "model.patch_size");
        }
        return;
    }
    sm__check_task(v);
    sm_cfg *prefix = (sm_cfg *)sm_cfg_get(v->cfg->root, "callback.ckpt_config.prefix");
    if (prefix && !prefix->bad && prefix->kind == SM_CFG_SCALAR &&
        (!prefix->text[0] || strchr(prefix->text, '/')))
        sm__verr(v, prefix, false, "a file name prefix: not empty, no '/'");
    sm_cfg *loss = (sm_cfg *)sm_cfg_get(v->cfg->root, "loss_type");
    double mixup = 0, cutmix = 0;
    sm__good(v, "finetune_dataset.mixup", &mixup);
    sm__good(v, "finetune_dataset.cutmix", &cutmix);
    if (loss && !loss->bad && loss->kind == SM_CFG_SCALAR && strcmp(loss->text, "ce") == 0 &&
        (mixup > 0 || cutmix > 0))
        sm__verr(v, loss, false,
                 "ce trains on hard labels, but Mixup/CutMix make soft targets: set "
                 "finetune_dataset.mixup and cutmix to 0, or use soft_ce");
    sm__check_dataset(v, "pretrain_dataset");
    sm__check_dataset(v, "finetune_dataset");
    double warm, epoch;
    sm_cfg *nw = sm__good(v, "lr_schedule.warmup_epochs", &warm);
    sm_cfg *ne = sm__good(v, "train_config.epoch", &epoch);
    if (nw && ne && warm > epoch) {
        if (sm__blame(nw, ne) == nw)
            sm__verr(v, nw, false, "%s exceeds train_config.epoch (%s)", nw->text, ne->text);
        else
            sm__verr(v, ne, false, "%s is less than lr_schedule.warmup_epochs (%s)", ne->text,
                     nw->text);
    }
}

/* ---- the ignored-keys warning --------------------------------------------------------- */

/* "a, b, train_config.{sink_mode, has_trained_steps}, ..." within n bytes. */
static void sm__ignored_text(const sm_config *c, char *buf, size_t n)
{
    size_t len = 0, i = 0;
    buf[0] = '\0';
    while (i < c->n_ignored) {
        const char *dot = strrchr(c->ignored[i], '.');
        size_t plen = dot ? (size_t)(dot - c->ignored[i]) : 0;
        size_t j = i + 1;
        while (dot && j < c->n_ignored && strncmp(c->ignored[j], c->ignored[i], plen + 1) == 0 &&
               !strchr(c->ignored[j] + plen + 1, '.'))
            j++;
        char item[400];
        size_t k = 0; /* the whole item's length */
        if (!dot || j == i + 1) {
            k = (size_t)snprintf(item, sizeof item, "%s", c->ignored[i]);
        } else {
            k = (size_t)snprintf(item, sizeof item, "%.*s.{", (int)plen, c->ignored[i]);
            for (size_t m = i; m < j && k < sizeof item; m++)
                k += (size_t)snprintf(item + k, sizeof item - k, "%s%s", m > i ? ", " : "",
                                      c->ignored[m] + plen + 1);
            if (k < sizeof item) k += (size_t)snprintf(item + k, sizeof item - k, "}");
        }
        if (k >= sizeof item) sm__mark_cut(item, sizeof item);
        char tail[40];
        snprintf(tail, sizeof tail, " and %zu more", c->n_ignored - i);
        if (len + 2 + k + (j < c->n_ignored ? strlen(tail) : 0) >= n) {
            snprintf(buf + len, n - len, "%s", tail);
            return;
        }
        len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? ", " : "", item);
        i = j;
    }
}

/* ---- entry point ---------------------------------------------------------------------- */

static int sm__validate(sm_config *cfg, const sm_registry *reg, sm_diag *diag, bool model_only)
{
    if (!cfg || !cfg->root)
        return sm_diag_addf(diag, SM_SEV_ERROR, SM_EINVAL, NULL, 0, 0, NULL, "no config");
    sm__val v = {.cfg = cfg, .reg = reg, .diag = diag, .model_only = model_only};
    cfg->n_ignored = 0;
    sm_cfg *root = cfg->root;
    size_t ns;
    const sm__section *secs = sm__config_sections(&ns);
    const sm_key *top[1] = {sm__config_top_keys()};
    sm__validate_map(&v, root, "", top, 1);
    for (size_t i = 0; i < ns; i++) {
        if (sm__cfg_child(root, secs[i].name)) continue;
        if (model_only && !sm__model_default_section(secs[i].name)) continue;
        if (secs[i].required) {
            sm__missing(&v, root, secs[i].name, "missing required section (it selects the %s)",
                        sm_kind_name((sm_kind)secs[i].kind));
        } else if (secs[i].always) {
            sm_cfg *d = sm__cfg_new(&cfg->pool, SM_CFG_MAP, SM__CFG_DEFAULT, 0, 0);
            if (!d) {
                v.oom = 1;
                continue;
            }
            sm__cfg_append(root, d, secs[i].name);
            sm__validate_section(&v, d, &secs[i]);
        }
    }
    sm__check_cross(&v);
    for (size_t i = 0; i < v.n_hooks; i++) {
        size_t before = sm_diag_errors(diag);
        int rc = v.hooks[i].comp->validate(v.hooks[i].section, root, diag);
        size_t added = sm_diag_errors(diag) - before;
        if (rc != 0 && added == 0) {
            sm__verr(&v, (sm_cfg *)v.hooks[i].section, true, "%s '%s' refused the section (%s)",
                     sm_kind_name(v.hooks[i].comp->kind), v.hooks[i].comp->name,
                     sm_status_str(rc));
        }
        v.errors += added;
    }
    if (cfg->n_ignored) {
        static const char head[] = "ignored RingMo/MindSpore-only keys: ";
        char list[sizeof ((sm_error *)0)->text - sizeof head + 1];
        sm__ignored_text(cfg, list, sizeof list);
        sm_diag_addf(diag, SM_SEV_WARNING, SM_OK, cfg->file, 0, 0, NULL, "%s%s", head, list);
    }
    if (v.oom) {
        sm_diag_addf(diag, SM_SEV_ERROR, SM_ENOMEM, cfg->file, 0, 0, NULL,
                     "out of memory while validating");
        return SM_ENOMEM;
    }
    return v.errors ? SM_ECONFIG : 0;
}

int sm_config_validate(sm_config *cfg, const sm_registry *reg, sm_diag *diag)
{
    return sm__validate(cfg, reg, diag, false);
}

int sm_config_validate_model(sm_config *cfg, const sm_registry *reg, sm_diag *diag)
{
    return sm__validate(cfg, reg, diag, true);
}
