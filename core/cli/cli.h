/* core/cli/cli.h - simmimctl's commands and the helpers they share. Only simmimctl maps
 * statuses to exit codes: 0 ok, 1 runtime failure, 2 usage or config error. */
#ifndef SIMMIM_CLI_H
#define SIMMIM_CLI_H

#include "simmim/simmim.h"

#include <stdio.h>

enum { SM_EXIT_OK = 0, SM_EXIT_FAILURE = 1, SM_EXIT_USAGE = 2 };

/* sm_cli_parse's answer to --help (usage already printed on stdout): return SM_EXIT_OK. */
#define SM_CLI_HELP (-1)

/* Options common to the commands that read a config or load plugins. */
typedef struct sm_cli_opts {
    const char *config;          /* the first positional argument (or NULL)           */
    const char **options;        /* --options key=value ...                          */
    size_t n_options;
    const char **plugin_dirs;    /* --plugin-dir DIR (repeatable)                     */
    size_t n_plugin_dirs;
    bool no_plugins;             /* --no-plugins: only the --plugin-dir directories   */
    const char **positional;     /* positional arguments, config included             */
    size_t n_positional;
    const char **flags;          /* other arguments starting with '-', for the command */
    size_t n_flags;
    char **owned;                /* "key=value" strings made from --opts pairs        */
    size_t n_owned;
} sm_cli_opts;

/* Parses the common options out of argv (argv[0] is the command name): --options (followed
 * by one or more key=value arguments; repeatable; also --options=key=value), --opts KEY VALUE
 * [KEY VALUE ...] (SimMIM's form of the same), --plugin-dir DIR,
 * --no-plugins, --help/-h. Other arguments starting with '-' go to o->flags; the command
 * decides (sm_cli_check_args). Returns 0, SM_CLI_HELP (usage printed to stdout), or
 * SM_EXIT_USAGE (message printed to stderr). */
int sm_cli_parse(int argc, char **argv, sm_cli_opts *o, const char *usage);
void sm_cli_opts_free(sm_cli_opts *o);
/* Removes "--name VALUE" or "--name=VALUE" from argv (argc updated), for command options that
 * take a value; call it before sm_cli_parse. Returns 1 and sets *value if found (the last
 * occurrence wins), 0 if absent, SM_EXIT_USAGE (message printed) if the value is missing. */
int sm_cli_take_value(int *argc, char **argv, const char *name, const char **value);
/* sm_cli_take_value for each of names[0..n), into values[0..n) (left as they are when absent).
 * Returns 0 or SM_EXIT_USAGE (message printed). */
int sm_cli_take_values(int *argc, char **argv, const char *const *names, const char **values,
                       size_t n);

/* Usage check after sm_cli_parse: flags must be among `known` (NULL-terminated, may be NULL),
 * and the number of positionals within [min_pos, max_pos]. Prints the problem and a pointer to
 * --help; returns 0 or SM_EXIT_USAGE. */
int sm_cli_check_args(const sm_cli_opts *o, const char *cmd, const char *const *known,
                      size_t min_pos, size_t max_pos);
/* True if flag `name` was given. */
bool sm_cli_has_flag(const sm_cli_opts *o, const char *name);

/* Prints every entry of diag to stderr, one "file:line:col: key: message" line each
 * (warnings prefixed "warning: "). */
void sm_cli_print_diag(const sm_diag *d);
/* Prints one error to stderr as "simmimctl: <formatted error>". */
void sm_cli_print_error(const sm_error *e);
/* Installs simmimctl's log callback (stderr, time of day, progress lines redrawn in place on a
 * terminal); sm_cli_log_finish ends an open progress line. */
void sm_cli_log_install(void);
void sm_cli_log_finish(void);

/* Exit code for a status: 0 -> 0; SM_ECONFIG, SM_EINVAL -> 2; anything else -> 1. */
int sm_cli_exit_code(int status);

/* Loads plugins into reg in the standard order: --plugin-dir, then (unless --no-plugins) the
 * config's plugin_path (cfg may be NULL), $SIMMIM_PLUGIN_PATH and the installed directory.
 * Every refused plugin is added to d; returns the first error (0 if none). */
int sm_cli_load_plugins(sm_registry *reg, const sm_cli_opts *o, const sm_config *cfg,
                        sm_diag *d);
/* A registry with the built-ins and the plugins; refused plugins are printed as warnings.
 * NULL on ENOMEM (message printed). */
sm_registry *sm_cli_registry(const sm_cli_opts *o, const sm_config *cfg);

/* A decimal integer in [lo, hi] (the whole string): 0, else -1. */
int sm_cli_parse_long(const char *s, long lo, long hi, long *out);

/* The compute backend of a command: `name` (--backend) if given, else the config's
 * backend.name, else blis if loaded, else ref; backend.threads and the backend section apply. */
int sm_cli_backend(const sm_registry *reg, const sm_cfg *root, const char *name, sm_backend **be,
                   sm_error *err);

/* Reads, loads plugins for, and validates o->config. On success *reg and *cfg are set and 0 is
 * returned; otherwise every error is printed and the exit code (2 for config errors) returned.
 * Warnings (ignored keys, refused plugins) are printed in both cases. */
int sm_cli_load_config(const sm_cli_opts *o, sm_registry **reg, sm_config **cfg);

/* Commands: argc/argv start at the command name. Each returns an exit code. */
int sm_cmd_run(int argc, char **argv);
int sm_cmd_check_config(int argc, char **argv);
int sm_cmd_plugins(int argc, char **argv);
int sm_cmd_inspect(int argc, char **argv);
int sm_cmd_verify(int argc, char **argv);
int sm_cmd_data(int argc, char **argv);
int sm_cmd_model(int argc, char **argv);
int sm_cmd_reconstruct(int argc, char **argv);
int sm_cmd_extract(int argc, char **argv);
int sm_cmd_probe(int argc, char **argv);
int sm_cmd_convert(int argc, char **argv);

#endif
