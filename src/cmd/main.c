/* main: parse global flags and dispatch to a subcommand; nothing else. */
#include "facrnn/comm.h"
#include <stdio.h>
#include <string.h>

#include "facrnn/cli.h"
#include "facrnn/common.h"
#include "facrnn/version.h"

typedef struct {
    const char *name;
    fr_err (*run)(int, char **);
    const char *help;
} command;

static const command commands[] = {
    {"synth", fr_cmd_synth, "generate a synthetic data set with ground truth"},
    {"fit", fr_cmd_fit, "fit one configuration (data-parallel over ranks)"},
    {"sweep", fr_cmd_sweep, "cross-validated sweep over ranks, partitions, beta, seeds"},
    {"eval", fr_cmd_eval, "recompute every metric of a fitted run on a data file"},
    {"simulate", fr_cmd_simulate, "generative rollouts and perturbations of a fitted run"},
    {"transform", fr_cmd_transform, "latents of a fitted run for any data file"},
    {"info", fr_cmd_info, "summarise an input or results file"},
    {"selftest", fr_cmd_selftest, "check that MPI, BLAS, ScaLAPACK and parallel HDF5 work together"},
    {"config", fr_cmd_config, "print every configuration key (type, default, range, help)"},
};
#define NCOMMANDS (int)(sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out,
            "usage: [mpirun -n P] facrnn [--quiet|--verbose] COMMAND [ARGS...]\n"
            "       facrnn --help | --version\n\n"
            "Fit factorized low-rank RNNs (FacRNN) to neural population recordings.\n\n"
            "commands:\n");
    for (int i = 0; i < NCOMMANDS; ++i) fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].help);
    fprintf(out,
            "\nglobal options:\n"
            "  --help       this text (COMMAND --help for a command's options)\n"
            "  --version    version and git revision\n"
            "  --quiet      only warnings and errors\n"
            "  --verbose    debug messages from every rank\n\n"
            "exit codes: 0 success, 1 runtime failure, 2 usage or invalid input,\n"
            "            75 checkpointed on SIGTERM/SIGUSR1 (requeue and rerun to resume)\n");
}

int main(int argc, char **argv)
{
    fr_process_start_mark(); /* the start-up phase of a fit counts from here */
    if (MPI_Init(&argc, &argv) != MPI_SUCCESS) {
        fprintf(stderr, "facrnn: error: MPI_Init failed\n");
        return FR_EXIT_RUNTIME;
    }
    /* From here on a failing MPI call returns its code to CHECK_MPI, which
     * records the call and its location, instead of aborting inside MPI. */
    if (fr_comm_errors_return(MPI_COMM_WORLD) != FR_OK || fr_comm_errors_return(MPI_COMM_SELF) != FR_OK)
        fr_fatal(FR_EMPI);
    int rank = 0;
    CHECK_MPI_FATAL(MPI_Comm_rank(MPI_COMM_WORLD, &rank));

    /* Global flags may appear anywhere; strip them so commands never see them. */
    fr_log_level level = FR_LOG_INFO;
    int n = 1;
    for (int i = 1; i < argc; ++i) {
        if (!strcmp(argv[i], "--quiet")) level = FR_LOG_WARN;
        else if (!strcmp(argv[i], "--verbose")) level = FR_LOG_DEBUG;
        else argv[n++] = argv[i];
    }
    argc = n;
    fr_log_init(rank, level);

    fr_err rc = FR_OK;
    if (argc < 2) {
        if (rank == 0) usage(stderr);
        rc = FR_EUSAGE;
        fr_error_set(rc, __FILE__, __LINE__, "no command given");
    } else if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        if (rank == 0) usage(stdout);
    } else if (!strcmp(argv[1], "--version")) {
        if (rank == 0) printf("facrnn %s (git %s)\n", FACRNN_VERSION, FACRNN_GIT_REV);
    } else if (argv[1][0] == '-') {
        rc = FR_FAIL(FR_EUSAGE, "unknown option '%s' (see facrnn --help)", argv[1]);
    } else {
        const command *cmd = NULL;
        for (int i = 0; i < NCOMMANDS; ++i)
            if (!strcmp(argv[1], commands[i].name)) cmd = &commands[i];
        if (!cmd) rc = FR_FAIL(FR_EUSAGE, "unknown command '%s' (see facrnn --help)", argv[1]);
        else rc = cmd->run(argc - 1, argv + 1);
    }
    /* A failed MPI call is seen by the rank that made it, and the others
     * may be waiting for it in a collective: print where it failed and
     * abort every rank. */
    if (rc == FR_EMPI) fr_fatal(rc);
    /* Commands return errors that every rank agrees on, so a clean finalize
     * cannot hang; rank 0 prints the one line. */
    if (rc != FR_OK && rank == 0) {
        if (rc == FR_ESIGNAL) fprintf(stderr, "facrnn: %s\n", fr_error_msg());
        else fprintf(stderr, "facrnn: error: %s\n", fr_error_msg());
    }
    if (MPI_Finalize() != MPI_SUCCESS && rc == FR_OK) {
        fprintf(stderr, "facrnn: error (rank %d): MPI_Finalize failed\n", rank);
        rc = FR_EMPI;
    }
    return fr_exit_code(rc);
}
