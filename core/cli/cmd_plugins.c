/* core/cli/cmd_plugins.c - `simmimctl plugins`: every component by kind with its source file,
 * plugin version, description and config keys; the plugins that were refused and why. */
#include "cli.h"

#include <string.h>

static const char usage[] =
    "usage: simmimctl plugins [--plugin-dir DIR]... [--no-plugins] [--core]\n"
    "\n"
    "Loads the plugins (--plugin-dir directories, $SIMMIM_PLUGIN_PATH, the installed\n"
    "directory) and lists every component by kind: its name, the file it came from, the\n"
    "plugin version, a description and its configuration keys (type, default, range, doc).\n"
    "Plugins that were refused are listed last with the reason.\n"
    "\n"
    "options:\n"
    "  --plugin-dir DIR  load plugins from DIR first (repeatable)\n"
    "  --no-plugins      load plugins only from --plugin-dir directories\n"
    "  --core            also list the core's own keys of every config section\n"
    "  -h, --help        print this help\n"
    "\n"
    "exit status: 0 ok, 1 some plugin was refused, 2 usage error\n";

/* "int", "int|null" */
static void type_text(const sm_key *k, char *buf, size_t n)
{
    snprintf(buf, n, "%s%s", sm_key_type_name(k->type),
             (k->flags & SM_KEY_NULLABLE) ? "|null" : "");
}

static void print_keys(const sm_key *keys, const char *indent)
{
    if (!keys || !keys->name) {
        printf("%s(no configuration keys)\n", indent);
        return;
    }
    printf("%s%-30s %-16s %-22s %-18s %s\n", indent, "key", "type", "default", "range", "doc");
    for (const sm_key *k = keys; k->name; k++) {
        char type[32];
        type_text(k, type, sizeof type);
        const char *def = k->type == SM_KEY_MAP || k->type == SM_KEY_IGNORED ? "-"
                          : k->def                                            ? k->def
                                                                              : "(required)";
        printf("%s%-30s %-16s %-22s %-18s %s\n", indent, k->name, type, def,
               k->range ? k->range : "-", k->doc ? k->doc : "");
    }
}

/* A backend opened with its defaults: what it would run with (kernels, threads). */
static void print_backend_state(const sm_registry *reg, const char *name)
{
    sm_backend *be = NULL;
    sm_error err;
    sm_error_clear(&err);
    if (sm_backend_new(reg, name, NULL, 0, &be, &err) != 0) {
        printf("    runs as: cannot open: %s\n", err.text);
        return;
    }
    char desc[512];
    sm_backend_describe(be, desc, sizeof desc);
    printf("    runs as: %s\n", desc);
    sm_backend_free(be);
}

static void print_core(void)
{
    printf("core keys\n");
    const char *sec;
    for (size_t i = 0; (sec = sm_config_core_section(i)) != NULL; i++) {
        printf("  section %s\n", sec[0] ? sec : "(top level)");
        print_keys(sm_config_core_keys(sec), "    ");
    }
    printf("\n");
}

int sm_cmd_plugins(int argc, char **argv)
{
    sm_cli_opts o;
    static const char *const known[] = {"--core", NULL};
    int rc = sm_cli_parse(argc, argv, &o, usage);
    if (rc) return rc == SM_CLI_HELP ? SM_EXIT_OK : rc;
    if ((rc = sm_cli_check_args(&o, argv[0], known, 0, 0)) != 0) {
        sm_cli_opts_free(&o);
        return rc;
    }
    sm_registry *reg = sm_registry_new();
    sm_diag *refused = sm_diag_new();
    if (!reg || !refused) {
        fprintf(stderr, "simmimctl plugins: out of memory\n");
        sm_registry_free(reg);
        sm_diag_free(refused);
        sm_cli_opts_free(&o);
        return SM_EXIT_FAILURE;
    }
    sm_cli_load_plugins(reg, &o, NULL, refused);
    if (sm_cli_has_flag(&o, "--core")) print_core();
    for (int k = 0; k < SM_KIND_COUNT; k++) {
        size_t n = sm_registry_count(reg, (sm_kind)k);
        printf("%s components: %zu\n", sm_kind_name((sm_kind)k), n);
        for (size_t i = 0; i < n; i++) {
            const sm_component *c = sm_registry_get(reg, (sm_kind)k, i);
            const char *ver = sm_registry_plugin_version(reg, c);
            printf("  %s %s\n", sm_kind_name(c->kind), c->name);
            printf("    file:    %s\n", sm_registry_source(reg, c));
            if (ver[0]) printf("    version: %s\n", ver);
            printf("    about:   %s\n", c->description);
            if (k == SM_KIND_BACKEND) print_backend_state(reg, c->name);
            print_keys(c->keys, "    ");
        }
        printf("\n");
    }
    size_t nr = sm_diag_count(refused);
    printf("refused plugins: %zu\n", nr);
    char line[SM_ERROR_LINE_MAX];
    for (size_t i = 0; i < nr; i++) {
        sm_error_format(sm_diag_get(refused, i, NULL), line, sizeof line);
        printf("  %s\n", line);
    }
    sm_diag_free(refused);
    sm_registry_free(reg);
    sm_cli_opts_free(&o);
    return nr ? SM_EXIT_FAILURE : SM_EXIT_OK;
}
