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
/* Appends the override key='value' (value quoted for YAML, so any path stays a string) after
 * the user's --options, so it wins over them. Returns 0 or -1 (out of memory). */
int sm_cli_add_option(sm_cli_opts *o, const char *key, const char *value);
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

/* The job's ranks (simmimctl joins them in main, before any command): messages of every rank
 * but 0 are prefixed "[rank r]", and only its warnings and errors are logged. NULL-safe. */
void sm_cli_set_comm(sm_comm *comm);
sm_comm *sm_cli_comm(void);

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

/* ---- a command's set-up (session.c) ---------------------------------------------------------- */

enum { SM_CLI_MAX_VALUES = 12 };

/* What a command accepts besides the common options. */
typedef struct sm_cli_command {
    const char *name;            /* "extract"                                                 */
    const char *usage;           /* --help text                                               */
    const char *const *values;   /* options taking a value ("--checkpoint", ...)              */
    const char *const *defaults; /* their defaults (NULL: none), or NULL for all              */
    size_t n_values;             /* <= SM_CLI_MAX_VALUES                                      */
    const char *const *flags;    /* options without a value, NULL-terminated (may be NULL)    */
    size_t min_pos, max_pos;     /* positional arguments (CONFIG included)                   */
} sm_cli_command;

/* What a command works with. The steps fill it in order (begin, config, then any of backend,
 * model, data, loader); each prints its own error and returns an exit code (0: go on);
 * sm_cli_session_end frees everything and passes the exit code through. */
typedef struct sm_cli_session {
    const char *name;
    sm_cli_opts o;
    bool parsed;
    const char *values[SM_CLI_MAX_VALUES]; /* the values of cmd->values, or their defaults */
    sm_registry *reg;
    sm_config *cfg;
    const sm_cfg *root;
    sm_backend *be;
    sm_ctx *ctx;
    sm_model *model;
    sm_dataset ds;       /* open when ds.vt is set                                           */
    sm_pipeline pipe;    /* the pipeline of ds, from the config (adjust before the loader)  */
    sm_loader_opts lo;   /* the loader options of ds, from the config (likewise)            */
    sm_loader *loader;   /* started at epoch 0                                               */
    sm_error err;        /* the error of the last failed step                                */
} sm_cli_session;

/* Takes cmd's options out of argv, parses the common ones and checks the rest. Returns 0,
 * SM_CLI_HELP (usage printed) or SM_EXIT_USAGE. */
int sm_cli_session_begin(sm_cli_session *s, int *argc, char **argv, const sm_cli_command *cmd);
/* Reads the config (s->o.config) with its overrides, loads the plugins, validates: all of it,
 * or only what building the model needs (model_only). */
int sm_cli_session_config(sm_cli_session *s, bool model_only);
/* The compute backend (`name`, else the config's) and a context on it. */
int sm_cli_session_backend(sm_cli_session *s, const char *name);
/* The model for task with `classes` (0: the config's), initialised from seed, then the weights
 * of ckpt when given (their load report on stderr). */
int sm_cli_session_model(sm_cli_session *s, sm_task task, int classes, uint64_t seed,
                         const char *ckpt);
/* Opens a split of a dataset section and reads its pipeline (mode) and loader options. */
int sm_cli_session_data(sm_cli_session *s, const char *section, sm_split split,
                        sm_pipeline_mode mode);
/* A loader over s->ds with s->pipe and s->lo, started. */
int sm_cli_session_loader(sm_cli_session *s);
/* Prints s->err (ENOMEM if none was set) and returns exit_code, or the error's exit code when
 * exit_code is 0. */
int sm_cli_session_fail(sm_cli_session *s, int exit_code);
/* Frees everything; returns exit_code (SM_EXIT_OK for SM_CLI_HELP). */
int sm_cli_session_end(sm_cli_session *s, int exit_code);

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
int sm_cmd_eval(int argc, char **argv);
int sm_cmd_plot(int argc, char **argv);
int sm_cmd_convert(int argc, char **argv);

#endif
