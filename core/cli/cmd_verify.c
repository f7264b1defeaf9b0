/* core/cli/cmd_verify.c - PLACEHOLDER: the command is not implemented yet. */
#include "cli.h"

int sm_cmd_verify(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "simmimctl %s: not implemented yet\n", argv[0]);
    return SM_EXIT_FAILURE;
}

