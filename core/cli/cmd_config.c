/* core/cli/cmd_config.c - `simmimctl check-config` and `simmimctl run`. Neither writes any
 * file of its own: check-config prints the effective configuration; run validates it and runs
 * the job (sm_train), stopping after a checkpoint on SIGINT / SIGTERM. */
#include "cli.h"

#include <fcntl.h>
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
    "same model resumes from the newest. Ctrl-C (SIGINT), SIGTERM or SIGUSR1 stops after the\n"
    "current step and writes a checkpoint; a second signal aborts at once.\n"
    "\n"
    "Under MPI (a build with ./configure --with-mpi), mpirun -np N simmimctl run CONFIG trains\n"
    "data-parallel: each rank takes batch_size images of every global batch (batch_size x N x\n"
    "accumulation_steps), rank 0 writes output_dir. Stop such a job with kill -USR1 on mpirun:\n"
    "after Ctrl-C, Open MPI sends SIGTERM and then SIGKILL odls_base_sigkill_timeout seconds\n"
    "apart (default 1); see docs/scaling.md.\n"
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

/* Under MPI (mpirun -np N simmimctl run): a rank that could not read its configuration stops
 * every rank before the job starts (the exit code of the first such rank), without MPI_Abort. */
static int run_agree(int rc)
{
    sm_comm *comm = sm_cli_comm();
    if (sm_comm_size(comm) < 2 || rc == SM_CLI_HELP) return rc;
    double v[2] = {rc != 0, rc != 0 ? (double)rc : 0};
    sm_error err;
    if (sm_comm_allreduce_f64(comm, v, 2, SM_COMM_MAX, &err)) {
        sm_cli_print_error(&err);
        return SM_EXIT_FAILURE;
    }
    if (v[0] && !rc)
        fprintf(stderr, "simmimctl run: rank %d of %d: another rank could not read the "
                        "configuration (its message is above)\n",
                sm_comm_rank(comm), sm_comm_size(comm));
    return v[0] ? (rc ? rc : (int)v[1]) : 0;
}

static volatile int sm_stop_requested;
static volatile int sm_stop_unblock_stderr; /* set when running as one of several MPI ranks */

/* Open MPI's mpirun answers Ctrl-C (SIGINT) by sending its ranks SIGTERM after
 * odls_base_sigkill_timeout seconds (default 1) and SIGKILL as long again after that: with the
 * default, a step and a checkpoint rarely fit in between. Rank 0 says so, and how to stop. */
static void sm_cli_note_stop_grace(sm_comm *comm)
{
    if (sm_comm_size(comm) < 2 || sm_comm_rank(comm) != 0 || !getenv("OMPI_COMM_WORLD_SIZE"))
        return;
    const char *v = getenv("OMPI_MCA_odls_base_sigkill_timeout");
    long grace = v ? atol(v) : 1;
    if (grace >= 60) return;
    fprintf(stderr,
            "simmimctl run: note: Ctrl-C on mpirun gives the ranks %ld s between SIGTERM and "
            "SIGKILL (Open MPI's odls_base_sigkill_timeout): maybe too short to save a "
            "checkpoint. For a clean stop send SIGUSR1 to mpirun, or start it with "
            "OMPI_MCA_odls_base_sigkill_timeout=120 in the environment (docs/scaling.md)\n",
            grace);
}

/* SIGTERM under mpirun means mpirun is ending the job (Ctrl-C): it stopped reading the ranks'
 * output when it got the Ctrl-C and reads none while it waits out its kill timeout, so a rank
 * that filled the pipe would stay blocked in a log write and never reach its checkpoint. From
 * then on log lines that do not fit are dropped (stderr non-blocking) instead. fcntl is
 * async-signal-safe. SIGUSR1 (the forwarded stop, mpirun still reading) keeps them. */
static void on_signal(int sig)
{
    if (sm_stop_requested) { /* a second signal: leave at once */
        signal(sig, SIG_DFL);
        raise(sig);
    }
    if (sm_stop_unblock_stderr && sig == SIGTERM) {
        int fl = fcntl(2, F_GETFL);
        if (fl != -1) fcntl(2, F_SETFL, fl | O_NONBLOCK);
    }
    sm_stop_requested = 1;
}

int sm_cmd_run(int argc, char **argv)
{
    sm_cli_session s;
    int rc = sm_cli_session_begin(&s, &argc, argv, &run_cmd);
    if (!rc) rc = sm_cli_session_config(&s, false);
    rc = run_agree(rc);
    if (rc) return sm_cli_session_end(&s, rc);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL); /* mpirun forwards SIGUSR1 to every rank (docs/scaling.md) */
    sm_comm *comm = sm_cli_comm();
    sm_stop_unblock_stderr = sm_comm_size(comm) > 1;
    sm_cli_note_stop_grace(comm);
    sm_train_opts opts = {.stop = &sm_stop_requested, .comm = comm};
    sm_train_result res;
    sm_error err;
    sm_error_clear(&err);
    rc = sm_train(s.reg, s.cfg, &opts, &res, &err);
    if (rc && res.abort_job) { /* the other ranks wait for this one: end the job */
        char line[SM_ERROR_LINE_MAX];
        sm_error_format(&err, line, sizeof line);
        sm_comm_abort(comm, sm_cli_exit_code(rc == SM_ECONFIG ? SM_ECONFIG : SM_EDATA), line);
    }
    if (rc) {
        sm_cli_print_error(&err);
    } else if (sm_comm_rank(comm) == 0) {
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
