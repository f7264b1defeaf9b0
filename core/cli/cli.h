/* core/cli/cli.h - simmimctl's commands and the helpers they share. Only simmimctl maps
 * statuses to exit codes: 0 ok, 1 runtime failure, 2 usage or config error. */
#ifndef SIMMIM_CLI_H
#define SIMMIM_CLI_H

#include "simmim/simmim.h"

#include <stdio.h>

enum { SM_EXIT_OK = 0, SM_EXIT_FAILURE = 1, SM_EXIT_USAGE = 2 };

/* Options common to the commands that read a config or load plugins. */
typedef struct sm_cli_opts {
    const char *config;          /* the positional CONFIG argument (or NULL)          */
    const char **options;        /* --options key=value ...                          */
    size_t n_options;
    const char **plugin_dirs;    /* --plugin-dir DIR (repeatable)                     */
    size_t n_plugin_dirs;
    bool no_plugins;             /* --no-plugins                                      */
    const char **positional;     /* other positional arguments                        */
    size_t n_positional;
} sm_cli_opts;

/* Parses the common options out of argv (argv[0] is the command name). Unknown options
 * starting with '-' are left for the command: their indices go to `rest` when rest != NULL,
 * otherwise they are a usage error. Returns 0 or SM_EXIT_USAGE (message printed). */
int sm_cli_parse(int argc, char **argv, sm_cli_opts *o, const char *usage);
void sm_cli_opts_free(sm_cli_opts *o);

/* Prints every entry of diag to stderr, one "file:line:col: key: message" line each
 * (warnings prefixed "warning: "). */
void sm_cli_print_diag(const sm_diag *d);
/* Prints one error to stderr as "simmimctl: <formatted error>". */
void sm_cli_print_error(const sm_error *e);
/* Exit code for a status: 0 -> 0; SM_ECONFIG, SM_EINVAL -> 2; anything else -> 1. */
int sm_cli_exit_code(int status);

/* Loads plugins in the standard order (command line, config, environment, installed dir).
 * cfg may be NULL. Refused plugins are printed as warnings; returns the registry or NULL. */
sm_registry *sm_cli_registry(const sm_cli_opts *o, const sm_config *cfg);

/* Reads, loads plugins for, and validates o->config. On success *reg and *cfg are set and 0 is
 * returned; otherwise every error is printed and the exit code (2 for config errors) returned. */
int sm_cli_load_config(const sm_cli_opts *o, sm_registry **reg, sm_config **cfg);

/* Commands: argc/argv start at the command name. Each returns an exit code. */
int sm_cmd_run(int argc, char **argv);
int sm_cmd_check_config(int argc, char **argv);
int sm_cmd_plugins(int argc, char **argv);
int sm_cmd_inspect(int argc, char **argv);
int sm_cmd_verify(int argc, char **argv);
int sm_cmd_data(int argc, char **argv);
int sm_cmd_model(int argc, char **argv);

#endif
