/* core/data/pipeline.c - the per-sample pipelines (spec §3 pretraining, §8 fine-tuning and
 * evaluation), their settings from a config, and opening a dataset reader by name. */
#include "data/data_internal.h"

#include <math.h>

static const float sm__imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
static const float sm__imagenet_std[3] = {0.229f, 0.224f, 0.225f};

void sm_pipeline_defaults(sm_pipeline *p, sm_pipeline_mode mode, int image_size)
{
    memset(p, 0, sizeof *p);
    p->mode = mode;
    p->image_size = image_size;
    p->channels = 3;
    memcpy(p->mean, sm__imagenet_mean, sizeof sm__imagenet_mean);
    memcpy(p->std, sm__imagenet_std, sizeof sm__imagenet_std);
    p->interp = mode == SM_PIPELINE_PRETRAIN ? SM_INTERP_BILINEAR : SM_INTERP_BICUBIC;
    p->scale_min = mode == SM_PIPELINE_PRETRAIN ? 0.67 : 0.08;
    p->scale_max = 1.0;
    p->ratio_min = 3.0 / 4.0;
    p->ratio_max = 4.0 / 3.0;
    p->flip_prob = 0.5;
    p->crop_pct = 0.875;
    p->erase_mode = SM_ERASE_PIXEL;
    p->erase_count = 1;
    if (mode == SM_PIPELINE_FINETUNE) {
        p->use_randaug = true;
        sm_randaug_parse("rand-m9-mstd0.5-inc1", &p->randaug, NULL);
        p->erase_prob = 0.25;
        p->mixup_alpha = 0.8;
        p->cutmix_alpha = 1.0;
        p->mix_prob = 1.0;
        p->switch_prob = 0.5;
        p->smoothing = 0.1;
    }
    p->use_mask = mode == SM_PIPELINE_PRETRAIN;
    p->mask = (sm_mask_spec){image_size, 32, 16, 0.6};
}

/* Reads optional keys: an absent key leaves the default in place. */
static bool sm__has(const sm_cfg *s, const char *k)
{
    const sm_cfg *n = sm_cfg_get(s, k);
    return n && sm_cfg_kind_of(n) != SM_CFG_NULL;
}

static int sm__cfg_err(sm_error *err, const sm_cfg *s, const char *key, const char *fmt,
                       const char *what)
{
    const sm_cfg *n = sm_cfg_get(s, key);
    char path[SM__ERR_PATH_MAX] = ""; /* declared keys: the whole path fits */
    if (n) sm_cfg_keypath(n, path, sizeof path);
    return sm_error_set(err, SM_ECONFIG, n ? sm_cfg_file(n) : NULL, n ? sm_cfg_line(n) : 0,
                        n ? sm_cfg_column(n) : 0, path[0] ? path : key, fmt, what);
}

int sm_pipeline_from_config(sm_pipeline *p, const sm_cfg *root, const char *section,
                            sm_pipeline_mode mode, sm_error *err)
{
    const sm_cfg *s = sm_cfg_get(root, section);
    const sm_cfg *tc = sm_cfg_get(root, "train_config"), *m = sm_cfg_get(root, "model");
    int size = tc && sm__has(tc, "image_size") ? (int)sm_cfg_int(tc, "image_size") : 224;
    sm_pipeline_defaults(p, mode, size);
    if (!s) return sm_error_set(err, SM_ECONFIG, NULL, 0, 0, section, "missing section");
    if (tc && sm__has(tc, "num_classes")) p->num_classes = (int)sm_cfg_int(tc, "num_classes");
    if (m && sm__has(m, "in_chans")) p->channels = (int)sm_cfg_int(m, "in_chans");
    if (m && sm__has(m, "patch_size")) p->mask.model_patch_size = (int)sm_cfg_int(m, "patch_size");
    if (m && sm__has(m, "mask_patch_size")) p->mask.mask_patch_size = (int)sm_cfg_int(m, "mask_patch_size");
    if (m && sm__has(m, "mask_ratio")) p->mask.ratio = sm_cfg_float(m, "mask_ratio");
    if (sm__has(s, "interpolation") && sm_interp_parse(sm_cfg_str(s, "interpolation"), &p->interp) != 0)
        return sm__cfg_err(err, s, "interpolation", "unknown interpolation '%s' (bilinear, bicubic)",
                           sm_cfg_str(s, "interpolation"));
    if (sm__has(s, "crop_min")) p->scale_min = sm_cfg_float(s, "crop_min");
    const char *flip_key = mode == SM_PIPELINE_PRETRAIN ? "prop" : "hflip";
    if (sm__has(s, flip_key)) p->flip_prob = sm_cfg_float(s, flip_key);
    if (sm__has(s, "crop_pct")) p->crop_pct = sm_cfg_float(s, "crop_pct");
    if (sm__has(s, "max_pixels")) p->decode.max_pixels = sm_cfg_int(s, "max_pixels");
    if (mode == SM_PIPELINE_FINETUNE) {
        p->use_randaug = sm__has(s, "auto_augment") || !sm_cfg_get(s, "auto_augment");
        if (sm__has(s, "auto_augment") &&
            sm_randaug_parse(sm_cfg_str(s, "auto_augment"), &p->randaug, err) != 0)
            return sm__cfg_err(err, s, "auto_augment", "%s", "bad RandAugment string");
        if (sm__has(s, "mixup")) p->mixup_alpha = sm_cfg_float(s, "mixup");
        if (sm__has(s, "cutmix")) p->cutmix_alpha = sm_cfg_float(s, "cutmix");
        if (sm__has(s, "mixup_prob")) p->mix_prob = sm_cfg_float(s, "mixup_prob");
        if (sm__has(s, "switch_prob")) p->switch_prob = sm_cfg_float(s, "switch_prob");
        if (sm__has(s, "label_smoothing")) p->smoothing = sm_cfg_float(s, "label_smoothing");
        if (sm__has(s, "re_prop")) p->erase_prob = sm_cfg_float(s, "re_prop");
        if (sm__has(s, "re_count")) p->erase_count = (int)sm_cfg_int(s, "re_count");
        if (sm__has(s, "re_mode")) {
            const char *rm = sm_cfg_str(s, "re_mode");
            if (sm__strcasecmp(rm, "pixel") == 0) p->erase_mode = SM_ERASE_PIXEL;
            else if (sm__strcasecmp(rm, "rand") == 0) p->erase_mode = SM_ERASE_RAND;
            else if (sm__strcasecmp(rm, "const") == 0) p->erase_mode = SM_ERASE_CONST;
            else return sm__cfg_err(err, s, "re_mode", "unknown re_mode '%s' (pixel, rand, const)", rm);
        }
    }
    if (sm__has(s, "bands")) {
        int64_t b[SM_MAX_BANDS + 1];
        size_t n = sm_cfg_int_list(s, "bands", b, SM_MAX_BANDS + 1);
        if (n > SM_MAX_BANDS) return sm__cfg_err(err, s, "bands", "%s", "more than 16 bands");
        p->n_bands = (int)n;
        for (size_t i = 0; i < n; i++) {
            if (b[i] < 0 || b[i] > 4096)
                return sm__cfg_err(err, s, "bands", "%s", "band numbers go from 0 to 4096");
            p->bands[i] = (int)b[i];
        }
    }
    for (int pass = 0; pass < 2; pass++) {
        const char *key = pass ? "norm_std" : "norm_mean";
        float *dst = pass ? p->std : p->mean;
        if (sm__has(s, key)) {
            double v[SM_MAX_BANDS + 1];
            size_t n = sm_cfg_float_list(s, key, v, SM_MAX_BANDS + 1);
            if ((int)n != p->channels) {
                char what[96];
                snprintf(what, sizeof what, "%zu values for model.in_chans = %d", n, p->channels);
                return sm__cfg_err(err, s, key, "has %s", what);
            }
            for (size_t i = 0; i < n; i++) dst[i] = (float)v[i];
        } else if (p->channels == 1) {
            dst[0] = pass ? 0.226f : 0.449f; /* ImageNet's averaged over RGB */
        } else if (p->channels != 3) {
            char what[96];
            snprintf(what, sizeof what, "model.in_chans = %d", p->channels);
            return sm__cfg_err(err, s, key, "must be given (one value per channel) for %s", what);
        }
    }
    int rc = sm_pipeline_check(p, err);
    if (rc && err) {
        err->code = SM_ECONFIG;
        if (!err->path[0]) sm__strlcpy(err->path, section, sizeof err->path);
    }
    return rc ? SM_ECONFIG : 0;
}

int sm_pipeline_check(const sm_pipeline *p, sm_error *err)
{
    if (p->image_size < 8 || p->image_size > 4096)
        return sm_error_set(err, SM_ECONFIG, NULL, 0, 0, "train_config.image_size",
                            "image_size %d is not in [8, 4096]", p->image_size);
    if (p->channels < 1 || p->channels > SM_MAX_BANDS)
        return sm_error_set(err, SM_ECONFIG, NULL, 0, 0, "model.in_chans",
                            "in_chans %d is not in [1, %d]", p->channels, SM_MAX_BANDS);
    if (p->n_bands && p->n_bands != p->channels)
        return sm_error_set(err, SM_ECONFIG, NULL, 0, 0, "bands",
                            "bands lists %d bands but model.in_chans is %d", p->n_bands, p->channels);
    for (int i = 0; i < p->n_bands; i++)
        if (p->bands[i] < 0)
            return sm_error_set(err, SM_ECONFIG, NULL, 0, 0, "bands", "bands[%d] = %d is negative", i, p->bands[i]);
    for (int c = 0; c < p->channels; c++)
        if (!(p->std[c] > 0.0f) || !isfinite(p->mean[c]))
            return sm_error_set(err, SM_ECONFIG, NULL, 0, 0, "norm_std",
                                "channel %d has mean %g and std %g: std must be > 0", c,
                                p->mean[c], p->std[c]);
    if (!(p->scale_min > 0 && p->scale_min <= p->scale_max && p->scale_max <= 1.0))
        return sm_error_set(err, SM_ECONFIG, NULL, 0, 0, "crop_min", "crop scale (%g, %g) is not in (0, 1]",
                            p->scale_min, p->scale_max);
    if (!(p->crop_pct > 0 && p->crop_pct <= 1.0))
        return sm_error_set(err, SM_ECONFIG, NULL, 0, 0, "crop_pct", "crop_pct %g is not in (0, 1]", p->crop_pct);
    if (p->use_mask) {
        sm_mask_spec m = p->mask;
        m.input_size = p->image_size;
        int rc = sm_mask_check(&m, err);
        if (rc) return rc;
    }
    return 0;
}

static void sm__swap(sm_image *a, sm_image *b)
{
    sm_image t = *a;
    *a = *b;
    *b = t;
}

/* out: (C, S, S); mask: (S/p, S/p) */
int sm_pipeline_apply(const sm_pipeline *p, sm_image *im, const char *name, uint64_t seed,
                      int64_t epoch, int64_t index, float *out, float *mask, sm_image *tmp,
                      sm_error *err)
{
    int S = p->image_size;
    int rc = sm_image_convert(im, p->channels, p->bands, p->n_bands, name, err);
    if (rc) return rc;
    sm_rng r;
    uint64_t e = (uint64_t)epoch, i = (uint64_t)index;
    if (p->mode == SM_PIPELINE_EVAL) {
        /* torchvision Resize(int(S / crop_pct)) on the shorter side, then CenterCrop(S) */
        int size = (int)floor(S / p->crop_pct), W = im->width, H = im->height, ow, oh;
        if (W <= H) {
            ow = size;
            oh = (int)((int64_t)size * H / W);
        } else {
            oh = size;
            ow = (int)((int64_t)size * W / H);
        }
        if (ow != W || oh != H) {
            rc = sm_image_resize(im, (sm_rect){0, 0, W, H}, ow, oh, p->interp, tmp, err);
            if (rc) return rc;
            sm__swap(im, tmp);
        }
        int top = (int)nearbyint((oh - S) / 2.0), left = (int)nearbyint((ow - S) / 2.0);
        rc = sm_image_resize(im, (sm_rect){left, top, S, S}, S, S, p->interp, tmp, err);
        if (rc) return rc;
        sm__swap(im, tmp);
    } else {
        sm_rng_init(&r, seed, e, i, SM__RNG_CROP);
        sm_rect box = sm_random_resized_crop(im->width, im->height, p->scale_min, p->scale_max,
                                             p->ratio_min, p->ratio_max, &r);
        rc = sm_image_resize(im, box, S, S, p->interp, tmp, err);
        if (rc) return rc;
        sm__swap(im, tmp);
        sm_rng_init(&r, seed, e, i, SM__RNG_FLIP);
        if (sm_rng_uniform(&r) < p->flip_prob) sm_image_flip(im);
        if (p->mode == SM_PIPELINE_FINETUNE && p->use_randaug) {
            float fill[SM_MAX_BANDS];
            for (int c = 0; c < im->channels; c++)
                fill[c] = (float)fmin(fmax(nearbyint(im->max_value * (double)p->mean[c]), 0.0),
                                      im->max_value);
            sm_rng_init(&r, seed, e, i, SM__RNG_AUGMENT);
            rc = sm_randaug_apply(&p->randaug, im, fill, p->interp, &r, tmp, err);
            if (rc) return rc;
        }
    }
    sm_image_normalize(im, p->mean, p->std, out);
    if (p->mode == SM_PIPELINE_FINETUNE && p->erase_prob > 0) {
        sm_rng_init(&r, seed, e, i, SM__RNG_ERASE);
        sm_random_erase(out, p->channels, S, S, p->erase_prob, p->erase_mode, p->erase_count, &r);
    }
    if (p->use_mask && mask) {
        sm_mask_spec m = p->mask;
        m.input_size = S;
        sm_rng_init(&r, seed, e, i, SM__RNG_MASK);
        sm_mask_generate(&m, &r, mask);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */

int sm_dataset_open(sm_dataset *ds, const sm_registry *reg, const sm_cfg *root,
                    const char *section, const sm_dataset_opts *opts, sm_error *err)
{
    memset(ds, 0, sizeof *ds);
    const sm_cfg *s = sm_cfg_get(root, section);
    if (!s) return sm_error_set(err, SM_ECONFIG, NULL, 0, 0, section, "missing section");
    const char *type = sm_cfg_str(s, "data_type");
    if (type && sm__strcasecmp(type, "custom") != 0) {
        const sm_cfg *n = sm_cfg_get(s, "data_type");
        return sm_error_set(err, SM_EUNSUPPORTED, sm_cfg_file(n), sm_cfg_line(n), sm_cfg_column(n),
                            "data_type", "data_type '%s' is not supported: use 'custom' (image "
                            "files read by the `reader` plugin)", type);
    }
    const char *name = sm_cfg_str(s, "reader");
    if (!name) name = strcmp(section, "pretrain_dataset") == 0 ? "aircas" : "imagenet";
    const sm_component *c = sm_registry_lookup(reg, SM_KIND_DATASET, name, err);
    if (!c) return SM_ENOTFOUND;
    if (c->struct_size < sizeof(sm_dataset_vtbl))
        return sm_error_set(err, SM_EABI, sm_registry_source(reg, c), 0, 0, NULL,
                            "dataset reader '%s' has a vtable of %u bytes (need %zu)", name,
                            c->struct_size, sizeof(sm_dataset_vtbl));
    const sm_dataset_vtbl *vt = (const sm_dataset_vtbl *)c;
    int rc = vt->open(s, opts, &ds->self, err);
    if (rc) {
        ds->self = NULL;
        /* a data file the reader could not use: say which section of which config asked */
        char *text = err && !err->path[0] && sm_cfg_file(s) ? sm__strdup(err->text) : NULL;
        if (text) /* shortened in the middle if the whole does not fit, never cut at the end */
            sm__format_fit(err->text, sizeof err->text, "%s (%s, %s:%d)", text, section,
                           sm_cfg_file(s), sm_cfg_line(s));
        free(text);
        return rc;
    }
    ds->vt = vt;
    ds->split = opts->split;
    return 0;
}

void sm_dataset_close(sm_dataset *ds)
{
    if (!ds) return;
    if (ds->vt && ds->self) ds->vt->close(ds->self);
    memset(ds, 0, sizeof *ds);
}
