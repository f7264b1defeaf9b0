/* core/cli/cli_util.c - option parsing, error printing, config + plugin loading for commands. */
#include "cli.h"

#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <string.h>

static int push(const char ***v, size_t *n, const char *s)
{
    const char **nv = realloc(*v, (*n + 1) * sizeof **v);
    if (!nv) return -1;
    nv[(*n)++] = s;
    *v = nv;
    return 0;
}

static int usage_error(sm_cli_opts *o, const char *cmd, const char *what)
{
    fprintf(stderr, "simmimctl %s: %s (see 'simmimctl %s --help')\n", cmd, what, cmd);
    sm_cli_opts_free(o);
    return SM_EXIT_USAGE;
}

int sm_cli_parse(int argc, char **argv, sm_cli_opts *o, const char *usage)
{
    memset(o, 0, sizeof *o);
    int oom = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            sm_cli_opts_free(o);
            return SM_CLI_HELP;
        } else if (strcmp(a, "--options") == 0 || strcmp(a, "-o") == 0) {
            int k = 0;
            while (i + 1 < argc && argv[i + 1][0] != '-' && strchr(argv[i + 1], '=')) {
                oom |= push(&o->options, &o->n_options, argv[++i]);
                k++;
            }
            if (k == 0) return usage_error(o, argv[0], "--options needs key=value arguments");
        } else if (strcmp(a, "--opts") == 0) {
            /* SimMIM/yacs habit: --opts KEY VALUE [KEY VALUE ...], the same as key=value; the
             * value is taken as it is (it may start with '-') */
            int k = 0;
            while (i + 1 < argc && argv[i + 1][0] != '-' && !strchr(argv[i + 1], '=')) {
                if (i + 2 >= argc)
                    return usage_error(o, argv[0], "--opts takes KEY VALUE pairs");
                size_t len = strlen(argv[i + 1]) + strlen(argv[i + 2]) + 2;
                char *kv = malloc(len);
                if (kv) snprintf(kv, len, "%s=%s", argv[i + 1], argv[i + 2]);
                oom |= !kv || push((const char ***)&o->owned, &o->n_owned, kv) ||
                       push(&o->options, &o->n_options, kv);
                if (!kv) break;
                i += 2;
                k++;
            }
            if (k == 0) return usage_error(o, argv[0], "--opts needs KEY VALUE pairs");
        } else if (strncmp(a, "--options=", 10) == 0) {
            oom |= push(&o->options, &o->n_options, a + 10);
        } else if (strcmp(a, "--plugin-dir") == 0) {
            if (i + 1 >= argc) return usage_error(o, argv[0], "--plugin-dir needs a directory");
            oom |= push(&o->plugin_dirs, &o->n_plugin_dirs, argv[++i]);
        } else if (strncmp(a, "--plugin-dir=", 13) == 0) {
            oom |= push(&o->plugin_dirs, &o->n_plugin_dirs, a + 13);
        } else if (strcmp(a, "--no-plugins") == 0) {
            o->no_plugins = true;
        } else if (a[0] == '-' && a[1] != '\0') {
            oom |= push(&o->flags, &o->n_flags, a);
        } else {
            oom |= push(&o->positional, &o->n_positional, a);
        }
    }
    if (oom) {
        fprintf(stderr, "simmimctl: out of memory\n");
        sm_cli_opts_free(o);
        return SM_EXIT_FAILURE;
    }
    o->config = o->n_positional ? o->positional[0] : NULL;
    return 0;
}

int sm_cli_add_option(sm_cli_opts *o, const char *key, const char *value)
{
    size_t len = strlen(key) + 2 * strlen(value) + 4, k = 0;
    char *kv = malloc(len);
    if (!kv) return -1;
    k = (size_t)snprintf(kv, len, "%s='", key);
    for (const char *c = value; *c; c++) { /* YAML single quotes: ' is written '' */
        if (*c == '\'') kv[k++] = '\'';
        kv[k++] = *c;
    }
    memcpy(kv + k, "'", 2);
    if (push((const char ***)&o->owned, &o->n_owned, kv)) {
        free(kv);
        return -1;
    }
    return push(&o->options, &o->n_options, kv);
}

void sm_cli_opts_free(sm_cli_opts *o)
{
    for (size_t i = 0; i < o->n_owned; i++) free(o->owned[i]);
    free(o->owned);
    free(o->options);
    free(o->plugin_dirs);
    free(o->positional);
    free(o->flags);
    memset(o, 0, sizeof *o);
}

int sm_cli_check_args(const sm_cli_opts *o, const char *cmd, const char *const *known,
                      size_t min_pos, size_t max_pos)
{
    for (size_t i = 0; i < o->n_flags; i++) {
        bool ok = false;
        for (size_t j = 0; known && known[j] && !ok; j++) ok = strcmp(o->flags[i], known[j]) == 0;
        if (!ok) {
            fprintf(stderr, "simmimctl %s: unknown option '%s' (see 'simmimctl %s --help')\n",
                    cmd, o->flags[i], cmd);
            return SM_EXIT_USAGE;
        }
    }
    if (o->n_positional < min_pos || o->n_positional > max_pos) {
        if (o->n_positional < min_pos)
            fprintf(stderr, "simmimctl %s: missing argument (see 'simmimctl %s --help')\n", cmd,
                    cmd);
        else
            fprintf(stderr, "simmimctl %s: unexpected argument '%s' (see 'simmimctl %s --help')\n",
                    cmd, o->positional[max_pos], cmd);
        return SM_EXIT_USAGE;
    }
    return 0;
}

bool sm_cli_has_flag(const sm_cli_opts *o, const char *name)
{
    for (size_t i = 0; i < o->n_flags; i++)
        if (strcmp(o->flags[i], name) == 0) return true;
    return false;
}

static sm_comm *cli_comm;
static char cli_rank_tag[64]; /* "rank 1 of 4: " on a job of several ranks, else "" */

void sm_cli_set_comm(sm_comm *comm)
{
    cli_comm = comm;
    cli_rank_tag[0] = '\0';
    if (sm_comm_size(comm) < 2) return;
    snprintf(cli_rank_tag, sizeof cli_rank_tag, "rank %d of %d: ", sm_comm_rank(comm),
             sm_comm_size(comm));
    if (sm_comm_rank(comm) > 0) sm_log_set_level(SM_LOG_WARN);
}

sm_comm *sm_cli_comm(void) { return cli_comm; }

void sm_cli_print_diag(const sm_diag *d)
{
    char line[SM_ERROR_LINE_MAX];
    for (size_t i = 0; i < sm_diag_count(d); i++) {
        sm_severity sev;
        const sm_error *e = sm_diag_get(d, i, &sev);
        sm_error_format(e, line, sizeof line);
        fprintf(stderr, "%s%s%s\n", cli_rank_tag,
                sev == SM_SEV_WARNING ? "warning: " : sev == SM_SEV_NOTE ? "note: " : "", line);
    }
}

void sm_cli_print_error(const sm_error *e)
{
    char line[SM_ERROR_LINE_MAX];
    sm_error_format(e, line, sizeof line);
    fprintf(stderr, "simmimctl: %s%s\n", cli_rank_tag, line);
}

int sm_cli_exit_code(int status)
{
    if (status == 0) return SM_EXIT_OK;
    if (status == SM_ECONFIG || status == SM_EINVAL) return SM_EXIT_USAGE;
    return SM_EXIT_FAILURE;
}

int sm_cli_load_plugins(sm_registry *reg, const sm_cli_opts *o, const sm_config *cfg, sm_diag *d)
{
    int first = 0, rc;
    if (o->no_plugins) {
        for (size_t i = 0; i < o->n_plugin_dirs; i++)
            if ((rc = sm_plugin_load_dir(reg, o->plugin_dirs[i], d)) && !first) first = rc;
        return first;
    }
    enum { MAX_CFG_DIRS = 64 };
    char *cfg_dirs[MAX_CFG_DIRS] = {0};
    size_t n_cfg = cfg ? sm_config_plugin_dirs(cfg, cfg_dirs, MAX_CFG_DIRS) : 0;
    if (n_cfg > MAX_CFG_DIRS) {
        sm_diag_addf(d, SM_SEV_WARNING, SM_EINVAL, sm_config_file(cfg), 0, 0, "plugin_path",
                     "only the first %d directories are searched", MAX_CFG_DIRS);
        n_cfg = MAX_CFG_DIRS;
    }
    first = sm_plugin_load_path(reg, o->plugin_dirs, o->n_plugin_dirs,
                                (const char *const *)cfg_dirs, n_cfg, d);
    for (size_t i = 0; i < n_cfg; i++) free(cfg_dirs[i]);
    return first;
}

/* Refused plugins do not stop the others from loading: they are printed as warnings. */
static void print_as_warnings(const sm_diag *d)
{
    char line[SM_ERROR_LINE_MAX];
    for (size_t i = 0; i < sm_diag_count(d); i++) {
        sm_error_format(sm_diag_get(d, i, NULL), line, sizeof line);
        fprintf(stderr, "warning: %s\n", line);
    }
}

sm_registry *sm_cli_registry(const sm_cli_opts *o, const sm_config *cfg)
{
    sm_registry *reg = sm_registry_new();
    sm_diag *d = sm_diag_new();
    if (!reg || !d) {
        fprintf(stderr, "simmimctl: out of memory\n");
        sm_registry_free(reg);
        sm_diag_free(d);
        return NULL;
    }
    sm_cli_load_plugins(reg, o, cfg, d);
    print_as_warnings(d);
    sm_diag_free(d);
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

int sm_cli_take_value(int *argc, char **argv, const char *name, const char **value)
{
    size_t len = strlen(name);
    int found = 0;
    for (int i = 1; i < *argc;) {
        int used = 0;
        if (strcmp(argv[i], name) == 0) {
            if (i + 1 >= *argc || argv[i + 1][0] == '\0') {
                fprintf(stderr, "simmimctl %s: %s needs a value (see 'simmimctl %s --help')\n",
                        argv[0], name, argv[0]);
                return SM_EXIT_USAGE;
            }
            *value = argv[i + 1];
            used = 2;
        } else if (strncmp(argv[i], name, len) == 0 && argv[i][len] == '=') {
            *value = argv[i] + len + 1;
            used = 1;
        }
        if (!used) {
            i++;
            continue;
        }
        found = 1;
        for (int k = i; k + used <= *argc; k++) argv[k] = argv[k + used];
        *argc -= used;
    }
    return found;
}

/* The log callback of simmimctl: one line per message on stderr, with the time of day; warnings
 * and errors say so. On a terminal, training progress lines ("epoch 3/100 step 20/976 ...")
 * overwrite each other instead of scrolling; the last one stays when another message comes. */
static bool log_tty, log_progress_open;

static void cli_log(sm_log_level level, const char *msg, void *user)
{
    (void)user;
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char stamp[16];
    strftime(stamp, sizeof stamp, "%H:%M:%S", &tm);
    const char *tag = level >= SM_LOG_ERROR ? "error: " : level == SM_LOG_WARN ? "warning: " : "";
    bool progress = log_tty && level == SM_LOG_INFO && strncmp(msg, "epoch ", 6) == 0 &&
                    strstr(msg, " step ") != NULL;
    if (progress) {
        fprintf(stderr, "\r[%s] %s\033[K", stamp, msg);
        log_progress_open = true;
    } else {
        /* several ranks: every line of ranks > 0 and rank 0's warnings say which rank */
        bool ranked = (sm_comm_rank(cli_comm) > 0 || level >= SM_LOG_WARN) &&
                      strncmp(msg, "rank ", 5) != 0;
        fprintf(stderr, "%s[%s] %s%s%s\n", log_progress_open ? "\n" : "", stamp,
                ranked ? cli_rank_tag : "", tag, msg);
        log_progress_open = false;
    }
    fflush(stderr);
}

void sm_cli_log_install(void)
{
    log_tty = isatty(STDERR_FILENO);
    sm_log_set(cli_log, NULL);
}

void sm_cli_log_finish(void)
{
    if (log_progress_open) fputc('\n', stderr);
    log_progress_open = false;
}

int sm_cli_backend(const sm_registry *reg, const sm_cfg *root, const char *name, sm_backend **be,
                   sm_error *err)
{
    if (!name) {
        const char *b = sm_cfg_str(root, "backend.name");
        name = b ? b : sm_registry_find(reg, SM_KIND_BACKEND, "blis") ? "blis" : "ref";
    }
    int threads =
        sm_cfg_get(root, "backend.threads") ? (int)sm_cfg_int(root, "backend.threads") : 0;
    return sm_backend_new(reg, name, sm_cfg_get(root, "backend"), threads, be, err);
}

int sm_cli_take_values(int *argc, char **argv, const char *const *names, const char **values,
                       size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (sm_cli_take_value(argc, argv, names[i], &values[i]) == SM_EXIT_USAGE)
            return SM_EXIT_USAGE;
    return 0;
}

int sm_cli_parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}
