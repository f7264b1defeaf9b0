/* core/cli/session.c - what the commands set up, in one place: their arguments, the config with
 * its overrides and plugins, the backend, the model and its weights, a dataset split with its
 * pipeline and loader (sm_cli_session, cli.h). Each step prints its own error and returns the
 * exit code; sm_cli_session_end frees whatever was made. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

int sm_cli_session_begin(sm_cli_session *s, int *argc, char **argv,
                         const sm_cli_command *cmd)
{
    memset(s, 0, sizeof *s);
    sm_error_clear(&s->err);
    s->name = cmd->name;
    for (size_t i = 0; i < cmd->n_values; i++) s->values[i] = cmd->defaults ? cmd->defaults[i] : NULL;
    if (cmd->n_values > SM_CLI_MAX_VALUES ||
        sm_cli_take_values(argc, argv, cmd->values, s->values, cmd->n_values))
        return SM_EXIT_USAGE;
    int rc = sm_cli_parse(*argc, argv, &s->o, cmd->usage);
    if (rc == SM_CLI_HELP) return SM_CLI_HELP;
    if (rc) return rc;
    s->parsed = true;
    return sm_cli_check_args(&s->o, cmd->name, cmd->flags, cmd->min_pos, cmd->max_pos);
}

int sm_cli_session_config(sm_cli_session *s, bool model_only)
{
    if (!model_only) {
        int rc = sm_cli_load_config(&s->o, &s->reg, &s->cfg);
        if (!rc) s->root = sm_config_root(s->cfg);
        return rc;
    }
    /* the model part only: a config without data, optimizer or schedule will do */
    sm_diag *d = sm_diag_new();
    if (!d) return SM_EXIT_FAILURE;
    int rc = sm_config_read(s->o.config, s->o.options, s->o.n_options, &s->cfg, d);
    if (!rc && !(s->reg = sm_cli_registry(&s->o, s->cfg))) rc = SM_ENOMEM;
    if (!rc) rc = sm_config_validate_model(s->cfg, s->reg, d);
    sm_diag_sort(d);
    sm_cli_print_diag(d);
    sm_diag_free(d);
    if (rc) return sm_cli_exit_code(rc == SM_EIO ? SM_ECONFIG : rc);
    s->root = sm_config_root(s->cfg);
    return 0;
}

int sm_cli_session_fail(sm_cli_session *s, int exit_code)
{
    if (!s->err.code) sm_error_set(&s->err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    sm_cli_print_error(&s->err);
    return exit_code ? exit_code : sm_cli_exit_code(s->err.code);
}

int sm_cli_session_backend(sm_cli_session *s, const char *name)
{
    if (sm_cli_backend(s->reg, s->root, name, &s->be, &s->err) || !(s->ctx = sm_ctx_new(s->be)))
        return sm_cli_session_fail(s, SM_EXIT_FAILURE);
    return 0;
}

int sm_cli_session_model(sm_cli_session *s, sm_task task, int classes, uint64_t seed,
                         const char *ckpt)
{
    if (sm_model_new_classes(s->reg, s->root, task, classes, &s->model, &s->err))
        return sm_cli_session_fail(s, 0);
    char note[SM_ERROR_LINE_MAX] = "";
    /* parameters a checkpoint lacks (fc_norm after SimMIM pretraining) start as fine-tuning
     * would start them */
    if (sm_model_init(s->model, seed, &s->err) ||
        (ckpt && sm_model_load_weights(s->model, ckpt, note, sizeof note, &s->err)))
        return sm_cli_session_fail(s, SM_EXIT_FAILURE);
    if (ckpt) fprintf(stderr, "weights: %s\n", note);
    return 0;
}

int sm_cli_session_data(sm_cli_session *s, const char *section, sm_split split,
                        sm_pipeline_mode mode)
{
    uint64_t seed = sm_cfg_get(s->root, "seed") ? (uint64_t)sm_cfg_int(s->root, "seed") : 0;
    sm_dataset_opts dopts = {split, seed, NULL};
    if (sm_pipeline_from_config(&s->pipe, s->root, section, mode, &s->err))
        return sm_cli_session_fail(s, SM_EXIT_USAGE);
    if (sm_dataset_open(&s->ds, s->reg, s->root, section, &dopts, &s->err))
        return sm_cli_session_fail(s, SM_EXIT_FAILURE);
    sm_loader_opts_from_config(&s->lo, s->root, section, split);
    return 0;
}

int sm_cli_session_loader(sm_cli_session *s)
{
    if (sm_loader_new(&s->ds, &s->pipe, &s->lo, &s->loader, &s->err) ||
        sm_loader_start(s->loader, 0, 0, 0, &s->err))
        return sm_cli_session_fail(s, SM_EXIT_FAILURE);
    return 0;
}

int sm_cli_session_end(sm_cli_session *s, int exit_code)
{
    sm_loader_free(s->loader);
    if (s->ds.vt) sm_dataset_close(&s->ds);
    sm_model_free(s->model);
    sm_ctx_free(s->ctx);
    sm_backend_free(s->be);
    sm_config_free(s->cfg);
    sm_registry_free(s->reg);
    if (s->parsed) sm_cli_opts_free(&s->o);
    memset(s, 0, sizeof *s);
    return exit_code == SM_CLI_HELP ? SM_EXIT_OK : exit_code;
}
