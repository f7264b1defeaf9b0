/* core/cli/simmimctl.c - the command-line front end: dispatch, help, version. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

typedef struct sm_command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} sm_command;

static int sm_cmd_version(int argc, char **argv);

static const sm_command commands[] = {
    {"run", sm_cmd_run, "run the job a config describes (pretraining, fine-tuning, evaluation)"},
    {"eval", sm_cmd_eval, "evaluate a checkpoint: top-1, top-5, mean class accuracy, confusion"},
    {"check-config", sm_cmd_check_config, "validate a config; print the effective merged YAML"},
    {"plugins", sm_cmd_plugins, "list every component: kind, name, file, version, config keys"},
    {"data", sm_cmd_data, "scan the configured dataset: counts, sizes, formats, bad files"},
    {"inspect", sm_cmd_inspect, "list the tensors and metadata of a safetensors file"},
    {"convert", sm_cmd_convert, "a PyTorch or MindSpore (RingMo) checkpoint to safetensors"},
    {"model", sm_cmd_model, "build the configured model; parameters; time a forward/backward step"},
    {"extract", sm_cmd_extract, "pooled backbone features of a dataset split, to safetensors"},
    {"probe", sm_cmd_probe, "linear probe: a classifier on extracted features, evaluated"},
    {"reconstruct", sm_cmd_reconstruct, "a pretrained SimMIM model's reconstructions of masked images"},
    {"plot", sm_cmd_plot, "training curves of runs (loss, learning rate, top-1) as PNG, SVG, PDF"},
    {"verify", sm_cmd_verify, "check the models against reference files (golden format)"},
    {"version", sm_cmd_version, "print the version and the plugin ABI"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: simmimctl COMMAND [ARGS...]\n\n"
               "SimMIM masked image modeling: pretrain ViT/Swin backbones, fine-tune, evaluate.\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-13s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'simmimctl COMMAND --help' describes a command.\n"
               "Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.\n"
               "Environment: SIMMIM_PLUGIN_PATH (plugin directories, ':'-separated);\n"
               "  SIMMIM_SUBNORMALS=flush|keep (subnormal floats flushed to zero, the default,\n"
               "  or kept as IEEE: docs/performance.md).\n");
}

static int sm_cmd_version(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: simmimctl version\n\nPrints the simmim version and its plugin ABI.\n");
        return SM_EXIT_OK;
    }
    if (argc > 1) {
        fprintf(stderr, "simmimctl version: unexpected argument '%s'\n", argv[1]);
        return SM_EXIT_USAGE;
    }
    printf("simmimctl %s (libsimmim %s, plugin ABI %d.%d)\n", SM_VERSION_STRING, sm_version(),
           SM_ABI_MAJOR, SM_ABI_MINOR);
    sm_comm *c = sm_cli_comm();
    if (sm_comm_mpi_built())
        printf("MPI: %s (data-parallel: mpirun -np N simmimctl run); this process: rank %d of "
               "%d\n", sm_comm_mpi_version(), sm_comm_rank(c), sm_comm_size(c));
    else
        printf("MPI: not built in (./configure --with-mpi for data-parallel training)\n");
    return SM_EXIT_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return SM_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return SM_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) return sm_cmd_version(1, argv + 1);
    /* subnormal floats flushed to zero in this thread and so in every thread made later
     * (OpenMP, BLIS, oneDNN, MPI): first, before any exists (sm_fpenv_flush_subnormals) */
    const char *sub = getenv("SIMMIM_SUBNORMALS");
    if (sub && strcmp(sub, "keep") != 0 && strcmp(sub, "flush") != 0) {
        fprintf(stderr, "simmimctl: SIMMIM_SUBNORMALS is '%s': it must be 'flush' (the default) "
                        "or 'keep'\n", sub);
        return SM_EXIT_USAGE;
    }
    if (!(sub && strcmp(sub, "keep") == 0)) (void)sm_fpenv_flush_subnormals(true);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) != 0) continue;
        sm_cli_log_install();
        /* join the job's ranks when an MPI launcher started this process (simmim/comm.h) */
        sm_comm *comm = NULL;
        sm_error err;
        sm_error_clear(&err);
        if (sm_comm_init(NULL, NULL, &comm, &err)) {
            sm_cli_print_error(&err);
            if (commands[i].fn != sm_cmd_version) return SM_EXIT_USAGE;
        }
        sm_cli_set_comm(comm);
        int rc = commands[i].fn(argc - 1, argv + 1);
        sm_cli_log_finish();
        sm_comm_finalize(comm);
        return rc;
    }
    fprintf(stderr, "simmimctl: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return SM_EXIT_USAGE;
}
