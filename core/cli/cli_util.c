/* core/cli/cli_util.c - option parsing, error printing, config + plugin loading for commands. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static int push(const char ***v, size_t *n, const char *s)
{
    const char **nv = realloc(*v, (*n + 1) * sizeof **v);
    if (!nv) return -1;
    nv[(*n)++] = s;
    *v = nv;
    return 0;
}

int sm_cli_parse(int argc, char **argv, sm_cli_opts *o, const char *usage)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            sm_cli_opts_free(o);
            return -1; /* caller returns SM_EXIT_OK */
        } else if (strcmp(a, "--options") == 0 || strcmp(a, "-o") == 0) {
            int k = 0;
            while (i + 1 < argc && argv[i + 1][0] != '-' && strchr(argv[i + 1], '=')) {
                push(&o->options, &o->n_options, argv[++i]);
                k++;
            }
            if (k == 0) {
                fprintf(stderr, "simmimctl %s: --options needs key=value arguments\n", argv[0]);
                sm_cli_opts_free(o);
                return SM_EXIT_USAGE;
            }
        } else if (strncmp(a, "--options=", 10) == 0) {
            push(&o->options, &o->n_options, a + 10);
        } else if (strcmp(a, "--plugin-dir") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "simmimctl %s: --plugin-dir needs a directory\n", argv[0]);
                sm_cli_opts_free(o);
                return SM_EXIT_USAGE;
            }
            push(&o->plugin_dirs, &o->n_plugin_dirs, argv[++i]);
        } else if (strncmp(a, "--plugin-dir=", 13) == 0) {
            push(&o->plugin_dirs, &o->n_plugin_dirs, a + 13);
        } else if (strcmp(a, "--no-plugins") == 0) {
            o->no_plugins = true;
        } else if (a[0] == '-' && a[1] != '\0') {
            push(&o->positional, &o->n_positional, a); /* command-specific flag */
        } else {
            push(&o->positional, &o->n_positional, a);
        }
    }
    return 0;
}

void sm_cli_opts_free(sm_cli_opts *o)
{
    free(o->options);
    free(o->plugin_dirs);
    free(o->positional);
    memset(o, 0, sizeof *o);
}

void sm_cli_print_diag(const sm_diag *d)
{
    char line[1024];
    for (size_t i = 0; i < sm_diag_count(d); i++) {
        sm_severity sev;
        const sm_error *e = sm_diag_get(d, i, &sev);
        sm_error_format(e, line, sizeof line);
        fprintf(stderr, "%s%s\n", sev == SM_SEV_WARNING ? "warning: " : sev == SM_SEV_NOTE ? "note: " : "", line);
    }
}

void sm_cli_print_error(const sm_error *e)
{
    char line[1024];
    sm_error_format(e, line, sizeof line);
    fprintf(stderr, "simmimctl: %s\n", line);
}

int sm_cli_exit_code(int status)
{
    if (status == 0) return SM_EXIT_OK;
    if (status == SM_ECONFIG || status == SM_EINVAL) return SM_EXIT_USAGE;
    return SM_EXIT_FAILURE;
}

sm_registry *sm_cli_registry(const sm_cli_opts *o, const sm_config *cfg)
{
    sm_registry *reg = sm_registry_new();
    if (!reg) {
        fprintf(stderr, "simmimctl: out of memory\n");
        return NULL;
    }
    if (o->no_plugins) return reg;
    char *cfg_dirs[32];
    size_t n_cfg = cfg ? sm_config_plugin_dirs(cfg, cfg_dirs, 32) : 0;
    if (n_cfg > 32) n_cfg = 32;
    sm_diag *d = sm_diag_new();
    sm_plugin_load_path(reg, o->plugin_dirs, o->n_plugin_dirs, (const char *const *)cfg_dirs,
                        n_cfg, d);
    /* A refused plugin is reported but does not stop the others from loading. */
    for (size_t i = 0; i < sm_diag_count(d); i++) {
        char line[1024];
        sm_error_format(sm_diag_get(d, i, NULL), line, sizeof line);
        fprintf(stderr, "warning: %s\n", line);
    }
    sm_diag_free(d);
    for (size_t i = 0; i < n_cfg; i++) free(cfg_dirs[i]);
    return reg;
}

int sm_cli_load_config(const sm_cli_opts *o, sm_registry **reg, sm_config **cfg)
{
    *reg = NULL;
    *cfg = NULL;
    sm_diag *d = sm_diag_new();
    if (!d) return SM_EXIT_FAILURE;
    sm_config *c = NULL;
    int rc = sm_config_read(o->config, o->options, o->n_options, &c, d);
    if (rc) {
        sm_diag_sort(d);
        sm_cli_print_diag(d);
        sm_diag_free(d);
        return sm_cli_exit_code(rc == SM_EIO ? SM_ECONFIG : rc);
    }
    sm_registry *r = sm_cli_registry(o, c);
    if (!r) {
        sm_config_free(c);
        sm_diag_free(d);
        return SM_EXIT_FAILURE;
    }
    rc = sm_config_validate(c, r, d);
    sm_diag_sort(d);
    sm_cli_print_diag(d);
    sm_diag_free(d);
    if (rc) {
        sm_config_free(c);
        sm_registry_free(r);
        return sm_cli_exit_code(rc);
    }
    *reg = r;
    *cfg = c;
    return SM_EXIT_OK;
}
