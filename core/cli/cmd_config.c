/* core/cli/cmd_config.c - `simmimctl check-config` and `simmimctl run`. Neither writes any
 * file of its own: check-config prints the effective configuration; run validates it and runs
 * the job (sm_train), stopping after a checkpoint on SIGINT / SIGTERM. */
#include "cli.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define SM_CONFIG_OPTIONS_HELP                                                                 \
    "options:\n"                                                                               \
    "  --options KEY=VALUE...  override keys after merging (RingMo's form, e.g.\n"             \
    "                          train_config.batch_size=64); values are YAML: 5, 2e-4, true,\n" \
    "                          [2,2,6,2]; several per flag, flag repeatable\n"                 \
    "  --plugin-dir DIR        load plugins from DIR before any other directory (repeatable)\n" \
    "  --no-plugins            load plugins only from --plugin-dir directories (not from the\n" \
    "                          config's plugin_path, $SIMMIM_PLUGIN_PATH or the installed dir)\n" \
    "  -h, --help              print this help\n"

static const char check_usage[] =
    "usage: simmimctl check-config CONFIG [--options KEY=VALUE...] [--plugin-dir DIR]...\n"
    "                              [--no-plugins]\n"
    "\n"
    "Reads CONFIG (YAML, RingMo-Framework schema) with its base_config files, applies the\n"
    "overrides, loads the plugins and validates every key against the schemas of the core and\n"
    "of the selected components. Prints the effective configuration (merged, defaults filled\n"
    "in) as YAML on stdout. Problems go to stderr, one 'file:line:col: key: message' line\n"
    "each. Writes no file.\n"
    "\n" SM_CONFIG_OPTIONS_HELP "\n"
    "exit status: 0 valid, 2 usage or configuration error, 1 other failure\n";

static const char run_usage[] =
    "usage: simmimctl run CONFIG [--options KEY=VALUE...] [--plugin-dir DIR]... [--no-plugins]\n"
    "\n"
    "Runs the job CONFIG describes: pretraining (task pretrain), fine-tuning (finetune) or\n"
    "evaluation (eval). The configuration is validated completely first (as check-config does);\n"
    "a configuration error stops the run before anything is written.\n"
    "\n"
    "Everything is written to output_dir: config.yaml (the effective configuration),\n"
    "metrics.jsonl, checkpoints (<prefix>-<epoch>_<step>.safetensors), summary.json, and\n"
    "bad_images.txt when images were skipped. A run whose output_dir holds checkpoints of the\n"
    "same model resumes from the newest. Ctrl-C (SIGINT) or SIGTERM stops after the current\n"
    "step and writes a checkpoint; a second Ctrl-C aborts at once.\n"
    "\n" SM_CONFIG_OPTIONS_HELP "\n"
    "exit status: 0 done, 2 usage or configuration error, 1 runtime failure\n";

static const sm_cli_command check_cmd = {"check-config", check_usage, NULL, NULL, 0, NULL, 1, 1};
static const sm_cli_command run_cmd = {"run", run_usage, NULL, NULL, 0, NULL, 1, 1};

int sm_cmd_check_config(int argc, char **argv)
{
    sm_cli_session s;
    int rc = sm_cli_session_begin(&s, &argc, argv, &check_cmd);
    if (!rc) rc = sm_cli_session_config(&s, false);
    if (rc) return sm_cli_session_end(&s, rc);
    char *yaml = NULL;
    size_t len = 0;
    int st = sm_config_to_yaml(s.cfg, &yaml, &len);
    if (st == 0) {
        fwrite(yaml, 1, len, stdout);
        if (fflush(stdout) != 0) {
            perror("simmimctl check-config: writing the configuration");
            st = SM_EIO;
        }
    } else {
        fprintf(stderr, "simmimctl check-config: cannot write the configuration: %s\n",
                sm_status_str(st));
    }
    free(yaml);
    return sm_cli_session_end(&s, st ? SM_EXIT_FAILURE : SM_EXIT_OK);
}

static volatile int sm_stop_requested;

static void on_signal(int sig)
{
    if (sm_stop_requested) { /* a second signal: leave at once */
        signal(sig, SIG_DFL);
        raise(sig);
    }
    sm_stop_requested = 1;
}

int sm_cmd_run(int argc, char **argv)
{
    sm_cli_session s;
    int rc = sm_cli_session_begin(&s, &argc, argv, &run_cmd);
    if (!rc) rc = sm_cli_session_config(&s, false);
    if (rc) return sm_cli_session_end(&s, rc);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sm_train_opts opts = {.stop = &sm_stop_requested};
    sm_train_result res;
    sm_error err;
    sm_error_clear(&err);
    rc = sm_train(s.reg, s.cfg, &opts, &res, &err);
    if (rc) {
        sm_cli_print_error(&err);
    } else {
        fprintf(stderr, "simmimctl run: done: %lld epochs, %lld steps", (long long)res.epochs,
                (long long)res.steps);
        if (isfinite(res.last_loss)) fprintf(stderr, ", last loss %.5f", res.last_loss);
        if (res.eval_top1 >= 0) fprintf(stderr, ", top-1 %.2f %%", res.eval_top1);
        if (res.best_epoch >= 0 && res.best_top1 > res.eval_top1)
            fprintf(stderr, " (best %.2f %% after epoch %lld)", res.best_top1,
                    (long long)res.best_epoch + 1);
        fprintf(stderr, "%s%s\n", res.checkpoint[0] ? ", checkpoint " : "", res.checkpoint);
    }
    return sm_cli_session_end(&s, sm_cli_exit_code(rc == SM_ECONFIG ? SM_ECONFIG
                                                   : rc             ? SM_EDATA
                                                                    : 0));
}
