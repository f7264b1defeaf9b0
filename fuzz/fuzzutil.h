/* fuzz/fuzzutil.h - what the reader targets share: a private scratch directory, files written
 * into it, and a dataset reader plugin of the fuzz build opened on a section and walked.
 *
 * fuzz/run.sh compiles each fuzz/fuzz_*.c with -DSM_FUZZ_PLUGINS='"<build>/datasets/.libs"'
 * (the reader plugins of the same ASan + UBSan build). Everything is made once per process and
 * reused by every input: the targets run millions of inputs. */
#ifndef SIMMIM_FUZZUTIL_H
#define SIMMIM_FUZZUTIL_H

#include <simmim/simmim.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef SM_FUZZ_PLUGINS
#error "build with -DSM_FUZZ_PLUGINS='\"<build>/datasets/.libs\"' (fuzz/run.sh does)"
#endif

/* A fresh directory for this process ("/tmp/sm-fuzz-<pid>"), made on first use; removed at
 * exit when everything in it is what fz_write and fz_mkdir made. */
static char fz_root[64];
static char fz_made[32][128];
static int fz_n_made;

static void fz_cleanup(void)
{
    for (int i = fz_n_made; i-- > 0;) {
        if (unlink(fz_made[i]) != 0) rmdir(fz_made[i]);
    }
    rmdir(fz_root);
}

static void fz_note(const char *path)
{
    for (int i = 0; i < fz_n_made; i++)
        if (strcmp(fz_made[i], path) == 0) return;
    if (fz_n_made < 32) snprintf(fz_made[fz_n_made++], sizeof fz_made[0], "%s", path);
}

static const char *fz_dir(void)
{
    if (!fz_root[0]) {
        snprintf(fz_root, sizeof fz_root, "%s/sm-fuzz-%ld",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (long)getpid());
        if (mkdir(fz_root, 0700) != 0) {
            perror(fz_root);
            abort();
        }
        atexit(fz_cleanup);
    }
    return fz_root;
}

/* fz_dir()/rel into buf. */
static const char *fz_path(const char *rel, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s", fz_dir(), rel);
    return buf;
}

/* Makes the directory fz_dir()/rel (once). */
static void fz_mkdir(const char *rel)
{
    char p[128];
    fz_path(rel, p, sizeof p);
    if (mkdir(p, 0700) == 0) fz_note(p);
}

/* Writes bytes to fz_dir()/rel, replacing it. */
static void fz_write(const char *rel, const void *data, size_t size)
{
    char p[128];
    fz_path(rel, p, sizeof p);
    FILE *f = fopen(p, "wb");
    if (!f) {
        perror(p);
        abort();
    }
    if (size) fwrite(data, 1, size, f);
    fclose(f);
    fz_note(p);
}

/* The vtable of the dataset reader `name`, from its plugin file SM_FUZZ_PLUGINS/sm_<name>.so,
 * loaded once (the registry lives as long as the process). */
static const sm_dataset_vtbl *fz_reader(const char *name)
{
    static sm_registry *reg;
    if (!reg) {
        sm_log_set_level(SM_LOG_ERROR); /* the readers' notes, millions of times: no */
        if (!(reg = sm_registry_new())) abort();
    }
    const sm_component *c = sm_registry_find(reg, SM_KIND_DATASET, name);
    if (!c) {
        char file[512];
        snprintf(file, sizeof file, "%s/sm_%s.so", SM_FUZZ_PLUGINS, name);
        sm_error e;
        sm_error_clear(&e);
        if (sm_plugin_load(reg, file, &e) != 0 ||
            !(c = sm_registry_find(reg, SM_KIND_DATASET, name))) {
            fprintf(stderr, "fuzz: cannot load %s: %s\n", file, e.text);
            abort();
        }
    }
    return (const sm_dataset_vtbl *)c;
}

/* Opens reader `name` on the section given as YAML (a map), for `split`; when it opens, every
 * sample is fetched and every class named, as the loader and the reports would. */
static void fz_open(const char *name, const char *section_yaml, sm_split split)
{
    const sm_dataset_vtbl *vt = fz_reader(name);
    sm_config *cfg = NULL;
    if (sm_config_read_string(section_yaml, strlen(section_yaml), "fuzz.yaml", NULL, 0, &cfg,
                              NULL) != 0)
        abort(); /* the section is ours: it must parse */
    sm_dataset_opts o = {.split = split, .seed = 1, .out_dir = NULL};
    void *self = NULL;
    sm_error e;
    sm_error_clear(&e);
    if (vt->open(sm_config_root(cfg), &o, &self, &e) == 0) {
        int64_t n = vt->count(self);
        int k = vt->num_classes(self);
        for (int64_t i = 0; i < n; i++) {
            sm_sample s;
            sm_error_clear(&e);
            if (vt->get(self, i, &s, &e) == 0 && k > 0 && (s.label < 0 || s.label >= k))
                abort(); /* a label outside the classes the reader announced */
        }
        size_t names = 0;
        for (int c = 0; vt->class_name && c < k; c++) {
            const char *cn = vt->class_name(self, c);
            names += cn ? strlen(cn) : 0; /* every name readable */
        }
        (void)names;
        vt->close(self);
    } else {
        char line[SM_ERROR_LINE_MAX];
        sm_error_format(&e, line, sizeof line); /* the message must be formattable */
    }
    sm_config_free(cfg);
}

#endif
