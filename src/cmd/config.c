/* config: the `facrnn config [--markdown]` command. Prints the option
 * table (every configuration key with its type, default, range and help)
 * as text, or as the Markdown page docs/config.md is generated from, so the
 * reference documentation comes from the table the parser walks. Collective
 * over MPI_COMM_WORLD: every rank parses the same arguments (so usage errors
 * agree without talking), rank 0 prints, and the ranks agree on whether
 * that write succeeded. */
#include <stdio.h>
#include <string.h>

#include "facrnn/cli.h"
#include "facrnn/comm.h"
#include "facrnn/config.h"

static void config_usage(void)
{
    printf("usage: facrnn config [--markdown]\n\n"
           "Prints every configuration key with its type, default, range and help, from\n"
           "the option table that parses them.\n"
           "  --markdown   the same as a Markdown page; docs/config.md is generated with\n"
           "               facrnn config --markdown > docs/config.md\n");
}

fr_err fr_cmd_config(int argc, char **argv)
{
    int rank;
    CHECK_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    int markdown = 0;
    for (int i = 1; i < argc; ++i) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            if (rank == 0) config_usage();
            return FR_OK;
        } else if (!strcmp(argv[i], "--markdown")) {
            markdown = 1;
        } else {
            return FR_FAIL(FR_EUSAGE, "config: unexpected argument '%s' (see facrnn config --help)", argv[i]);
        }
    }
    fr_err rc = FR_OK;
    if (rank == 0) {
        if (markdown) fr_config_write_markdown(stdout);
        else fr_config_write_help(stdout);
        if (fflush(stdout) != 0 || ferror(stdout)) rc = FR_FAIL(FR_EIO, "config: cannot write to standard output");
    }
    MPI_Comm comm = MPI_COMM_WORLD;
    return fr_error_agree(&comm, rc); /* only rank 0 writes, so only it can fail */
}
