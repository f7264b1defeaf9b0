/* core/cli/cmd_data.c - `simmimctl data CONFIG`: opens the configured dataset sections, reports
 * samples per split and class, image formats and sizes (from the headers; every pixel with
 * --deep) and the bad files with their reasons; --preview writes a PNG grid of augmented samples
 * (with the mask darkened for pretraining). Exit 0 when the data is usable, 1 otherwise, 2 for
 * usage and config errors. */
#include "cli.h"

#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char sm__data_usage[] =
    "usage: simmimctl data CONFIG [--options key=value ...] [--plugin-dir DIR] [--no-plugins]\n"
    "                      [--deep] [--preview FILE.png] [--bad-report FILE]\n"
    "Scans the datasets of CONFIG: samples per split and class, image formats and sizes, bad\n"
    "files. --deep decodes every image (default: headers only). --preview writes a grid of\n"
    "augmented training samples (masked patches darkened for pretraining).\n";

typedef struct sm__hist {
    char key[64][48];
    size_t count[64];
    size_t n, overflow;
} sm__hist;

static void sm__hist_add(sm__hist *h, const char *key)
{
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->key[i], key) == 0) {
            h->count[i]++;
            return;
        }
    if (h->n == 64) {
        h->overflow++;
        return;
    }
    snprintf(h->key[h->n], sizeof h->key[0], "%s", key);
    h->count[h->n++] = 1;
}

static void sm__hist_print(const char *title, const sm__hist *h)
{
    size_t order[64];
    for (size_t i = 0; i < h->n; i++) order[i] = i;
    for (size_t i = 1; i < h->n; i++) /* by count, descending */
        for (size_t j = i; j > 0 && h->count[order[j]] > h->count[order[j - 1]]; j--) {
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    printf("  %s:", title);
    for (size_t i = 0; i < h->n && i < 12; i++)
        printf("%s %s %zu", i ? "," : "", h->key[order[i]], h->count[order[i]]);
    if (h->n > 12 || h->overflow) printf(", ... (%zu more kinds)", h->n > 12 ? h->n - 12 : h->overflow);
    printf("\n");
}

/* Reads at most `max` bytes of a file (the header scan); *whole says whether that was all of it. */
static int sm__read_head(const char *path, size_t max, uint8_t **buf, size_t *len, size_t *cap,
                         bool *whole, sm_error *err)
{
    /* O_NONBLOCK and a regular-file check first: a FIFO in the data must not block the scan */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    FILE *f = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? fdopen(fd, "rb") : NULL;
    if (!f) {
        if (fd >= 0) close(fd);
        return sm_file_read(path, buf, len, cap, err); /* for its error message */
    }
    if (*cap < max) {
        uint8_t *nb = realloc(*buf, max);
        if (!nb) {
            fclose(f);
            return sm_error_set(err, SM_ENOMEM, path, 0, 0, NULL, "out of memory");
        }
        *buf = nb;
        *cap = max;
    }
    *len = fread(*buf, 1, max, f);
    *whole = *len < max || fgetc(f) == EOF;
    fclose(f);
    return 0;
}

/* Scans one split. Returns the number of bad samples (or -1 if it could not be opened). */
static long sm__scan(const sm_registry *reg, const sm_cfg *root, const char *section,
                     sm_split split, bool deep, FILE *bad_report, size_t *n_out)
{
    const char *sname = split == SM_SPLIT_TRAIN ? "train" : "eval";
    sm_dataset ds;
    sm_dataset_opts dopts = {split, 0, NULL};
    sm_error e;
    sm_error_clear(&e);
    if (sm_dataset_open(&ds, reg, root, section, &dopts, &e) != 0) {
        printf("%s (%s): cannot open\n", section, sname);
        sm_cli_print_error(&e);
        return -1;
    }
    int64_t n = ds.vt->count(ds.self);
    int k = ds.vt->num_classes(ds.self);
    printf("%s (%s, %s): %lld samples, %s", section, ds.vt->hdr.name, sname, (long long)n,
           k ? "" : "unlabeled\n");
    if (k) printf("%d classes\n", k);
    size_t *per_class = k ? calloc((size_t)k, sizeof(size_t)) : NULL;
    sm__hist formats = {0}, sizes = {0};
    sm_pipeline p;
    sm_pipeline_from_config(&p, root, section,
                            strcmp(section, "pretrain_dataset") == 0 ? SM_PIPELINE_PRETRAIN
                                                                     : SM_PIPELINE_FINETUNE,
                            NULL);
    uint8_t *buf = NULL;
    size_t cap = 0;
    sm_image im;
    sm_image_init(&im);
    long bad = 0;
    for (int64_t i = 0; i < n; i++) {
        sm_sample s;
        sm_error_clear(&e);
        int rc = ds.vt->get(ds.self, i, &s, &e);
        sm_image_info info = {0};
        char key[64];
        if (rc == 0 && s.path) {
            size_t len = 0;
            bool whole = true;
            if (deep) {
                rc = sm_file_read(s.path, &buf, &len, &cap, &e);
                if (rc == 0) rc = sm_image_decode(buf, len, s.path, &p.decode, &im, &info, &e);
            } else { /* the first 256 KiB hold the header of nearly every file */
                rc = sm__read_head(s.path, 256 << 10, &buf, &len, &cap, &whole, &e);
                if (rc == 0) rc = sm_image_probe(buf, len, s.path, &p.decode, &info, &e);
                if (rc && !whole) { /* a header further in (e.g. a TIFF directory at the end) */
                    sm_error_clear(&e);
                    rc = sm_file_read(s.path, &buf, &len, &cap, &e);
                    if (rc == 0) rc = sm_image_probe(buf, len, s.path, &p.decode, &info, &e);
                }
            }
        } else if (rc == 0) {
            info = (sm_image_info){SM_IMAGE_FORMAT_RAW, s.width, s.height, s.channels, 8,
                                   s.channels == 1 ? "gray" : "rgb"};
        }
        if (rc == 0 && k && (s.label < 0 || s.label >= k))
            rc = sm_error_set(&e, SM_EDATA, s.name, 0, 0, NULL, "label %d outside [0, %d)", s.label, k);
        if (rc) {
            char line[700];
            sm_error_format(&e, line, sizeof line);
            if (bad < 20) printf("  bad: %s\n", line);
            if (bad_report) fprintf(bad_report, "%s\t%s\n", e.file[0] ? e.file : (s.name ? s.name : "?"), e.text);
            bad++;
            continue;
        }
        if (per_class) per_class[s.label]++;
        snprintf(key, sizeof key, "%s/%s/%dbit", sm_image_format_name(info.format), info.color,
                 info.bits);
        sm__hist_add(&formats, key);
        snprintf(key, sizeof key, "%dx%d", info.width, info.height);
        sm__hist_add(&sizes, key);
        if ((i + 1) % 20000 == 0) fprintf(stderr, "  ... %lld of %lld\n", (long long)i + 1, (long long)n);
    }
    if (bad > 20) printf("  bad: ... and %ld more\n", bad - 20);
    sm__hist_print("formats", &formats);
    sm__hist_print("sizes", &sizes);
    if (k) {
        size_t lo = 0, hi = 0;
        for (int c = 0; c < k; c++) {
            if (per_class[c] < per_class[lo]) lo = (size_t)c;
            if (per_class[c] > per_class[hi]) hi = (size_t)c;
        }
        const char *nlo = ds.vt->class_name ? ds.vt->class_name(ds.self, (int)lo) : NULL;
        const char *nhi = ds.vt->class_name ? ds.vt->class_name(ds.self, (int)hi) : NULL;
        printf("  per class: min %zu (%s), max %zu (%s)\n", per_class[lo], nlo ? nlo : "?",
               per_class[hi], nhi ? nhi : "?");
        if (k <= 64) {
            printf("  classes:");
            for (int c = 0; c < k; c++) {
                const char *nm = ds.vt->class_name ? ds.vt->class_name(ds.self, c) : NULL;
                printf("%s %s %zu", c ? "," : "", nm ? nm : "?", per_class[c]);
            }
            printf("\n");
        }
    }
    const sm_cfg *sec = sm_cfg_get(root, section);
    if (split == SM_SPLIT_EVAL && sm_cfg_get(sec, "samples_num") &&
        !sm_cfg_is_null(sec, "samples_num") && sm_cfg_int(sec, "samples_num") != n)
        printf("  note: samples_num is %lld but the eval split has %lld samples\n",
               (long long)sm_cfg_int(sec, "samples_num"), (long long)n);
    printf("  bad files: %ld%s\n", bad, deep ? "" : " (headers only; --deep decodes every image)");
    free(per_class);
    free(buf);
    sm_image_deinit(&im);
    sm_dataset_close(&ds);
    *n_out = (size_t)n;
    return bad;
}

/* Writes a grid of up to 16 augmented training samples of `section`. */
static int sm__preview(const sm_registry *reg, const sm_cfg *root, const char *section,
                       const char *out)
{
    sm_error e;
    sm_error_clear(&e);
    bool pre = strcmp(section, "pretrain_dataset") == 0;
    sm_pipeline p;
    if (sm_pipeline_from_config(&p, root, section, pre ? SM_PIPELINE_PRETRAIN : SM_PIPELINE_FINETUNE, &e)) {
        sm_cli_print_error(&e);
        return SM_EXIT_USAGE;
    }
    p.mixup_alpha = p.cutmix_alpha = 0; /* show single samples */
    sm_dataset ds;
    sm_dataset_opts dopts = {SM_SPLIT_TRAIN, 0, NULL};
    if (sm_dataset_open(&ds, reg, root, section, &dopts, &e)) {
        sm_cli_print_error(&e);
        return SM_EXIT_FAILURE;
    }
    sm_loader_opts lo;
    sm_loader_opts_from_config(&lo, root, section, SM_SPLIT_TRAIN);
    int64_t n = ds.vt->count(ds.self);
    lo.batch_size = (int)(n < 16 ? n : 16);
    lo.num_workers = 2;
    lo.max_bad_fraction = 1.0;
    sm_loader *l = NULL;
    const sm_batch *b = NULL;
    int rc = sm_loader_new(&ds, &p, &lo, &l, &e);
    if (rc == 0) rc = sm_loader_start(l, 0, 0, 0, &e);
    if (rc == 0) rc = sm_loader_next(l, &b, &e);
    if (rc || !b) {
        if (rc) sm_cli_print_error(&e);
        sm_loader_free(l);
        sm_dataset_close(&ds);
        return SM_EXIT_FAILURE;
    }
    int S = b->width, C = b->channels, cols = 4, rows = (b->size + cols - 1) / cols, gap = 2;
    int W = cols * (S + gap), H = rows * (S + gap);
    uint8_t *img = calloc((size_t)W * H * 3, 1);
    for (int i = 0; img && i < b->size; i++) {
        int ox = (i % cols) * (S + gap), oy = (i / cols) * (S + gap);
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                bool masked = false;
                if (b->mask) {
                    int pp = S / b->mask_side;
                    masked = b->mask[(size_t)i * b->mask_side * b->mask_side +
                                     (y / pp) * b->mask_side + x / pp] > 0.5f;
                }
                for (int c = 0; c < 3; c++) {
                    int ch = C >= 3 ? c : 0;
                    float v = b->images[(((size_t)i * C + ch) * S + y) * S + x] * p.std[ch] + p.mean[ch];
                    v = v < 0 ? 0 : v > 1 ? 1 : v;
                    if (masked) v = v * 0.35f + (c == 0 ? 0.25f : 0.0f); /* darkened, red tint */
                    img[((size_t)(oy + y) * W + ox + x) * 3 + c] = (uint8_t)lrintf(v * 255.0f);
                }
            }
    }
    rc = img ? sm_png_write(out, img, W, H, 3, &e) : SM_ENOMEM;
    if (rc) sm_cli_print_error(&e);
    else printf("preview: %d augmented %s samples written to %s\n", b->size, section, out);
    free(img);
    sm_loader_free(l);
    sm_dataset_close(&ds);
    return rc ? SM_EXIT_FAILURE : SM_EXIT_OK;
}

/* A section counts when the config file (not only the defaults) has it. */
static bool sm__configured(const sm_cfg *root, const char *section)
{
    const sm_cfg *s = sm_cfg_get(root, section);
    return s && sm_cfg_kind_of(s) == SM_CFG_MAP && strcmp(sm_cfg_file(s), "<default>") != 0;
}

int sm_cmd_data(int argc, char **argv)
{
    /* --preview FILE / --bad-report FILE (or --x=FILE) are taken out before the common parse */
    const char *preview = NULL, *report = NULL;
    char **args = malloc(sizeof(char *) * (size_t)(argc + 1));
    int nargs = 0;
    if (!args) return SM_EXIT_FAILURE;
    for (int i = 0; i < argc; i++) {
        const char **dst = strncmp(argv[i], "--preview", 9) == 0      ? &preview
                           : strncmp(argv[i], "--bad-report", 12) == 0 ? &report
                                                                      : NULL;
        const char *eq = dst ? strchr(argv[i], '=') : NULL;
        size_t nlen = eq ? (size_t)(eq - argv[i]) : strlen(argv[i]);
        if (dst && (nlen == 9 || nlen == 12) && (eq || i + 1 < argc)) {
            *dst = eq ? eq + 1 : argv[++i];
            continue;
        }
        args[nargs++] = argv[i];
    }
    args[nargs] = NULL;
    sm_cli_opts o;
    int rc = sm_cli_parse(nargs, args, &o, sm__data_usage);
    if (rc == 0) {
        static const char *const known[] = {"--deep", NULL};
        rc = sm_cli_check_args(&o, "data", known, 1, 1);
    }
    if (rc) {
        sm_cli_opts_free(&o); /* a refused flag: the parsed options too (zeroed if already freed) */
        free(args);
        return rc == SM_CLI_HELP ? SM_EXIT_OK : rc;
    }
    bool deep = sm_cli_has_flag(&o, "--deep");
    sm_registry *reg;
    sm_config *cfg;
    rc = sm_cli_load_config(&o, &reg, &cfg);
    if (rc) {
        sm_cli_opts_free(&o);
        free(args);
        return rc;
    }
    const sm_cfg *root = sm_config_root(cfg);
    FILE *bad_report = report ? fopen(report, "w") : NULL;
    if (report && !bad_report) {
        fprintf(stderr, "simmimctl data: cannot create %s\n", report);
        rc = SM_EXIT_FAILURE;
    }
    const char *sections[2] = {"pretrain_dataset", "finetune_dataset"};
    int used = 0;
    for (int s = 0; rc == 0 && s < 2; s++) {
        if (!sm__configured(root, sections[s])) continue;
        used++;
        const sm_cfg *sec = sm_cfg_get(root, sections[s]);
        double frac = sm_cfg_get(sec, "max_bad_fraction") ? sm_cfg_float(sec, "max_bad_fraction") : 0.01;
        const char *policy = sm_cfg_str(sec, "on_bad_image");
        bool fail = policy && strcmp(policy, "fail") == 0;
        for (int sp = 0; sp < (s == 0 ? 1 : 2); sp++) {
            size_t n = 0;
            long bad = sm__scan(reg, root, sections[s], (sm_split)sp, deep, bad_report, &n);
            if (bad < 0 || n == 0) rc = SM_EXIT_FAILURE;
            else if (bad > 0 && (fail || (double)bad > frac * (double)n)) {
                printf("  not usable: %ld bad files %s\n", bad,
                       fail ? "with on_bad_image: fail" : "exceed max_bad_fraction");
                rc = SM_EXIT_FAILURE;
            }
        }
        if (preview && rc == 0) rc = sm__preview(reg, root, sections[s], preview), preview = NULL;
    }
    if (used == 0) {
        fprintf(stderr, "simmimctl data: %s has no pretrain_dataset or finetune_dataset section\n", o.config);
        rc = SM_EXIT_USAGE;
    }
    if (bad_report) fclose(bad_report);
    printf("%s\n", rc == 0 ? "data: usable" : "data: NOT usable");
    sm_config_free(cfg);
    sm_registry_free(reg);
    sm_cli_opts_free(&o);
    free(args);
    return rc;
}
