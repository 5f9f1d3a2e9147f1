/* cli: the subcommands of the facrnn executable. main.c only dispatches;
 * each command lives with the module that owns it. Every command is
 * collective over MPI_COMM_WORLD and returns an fr_err that all ranks agree
 * on (errors found on a single rank go through fr_fatal instead).
 * argv[0] is the subcommand name. */
#ifndef FACRNN_CLI_H
#define FACRNN_CLI_H

#include "facrnn/common.h"

fr_err fr_cmd_synth(int argc, char **argv);
fr_err fr_cmd_fit(int argc, char **argv);
fr_err fr_cmd_sweep(int argc, char **argv);
fr_err fr_cmd_eval(int argc, char **argv);
fr_err fr_cmd_simulate(int argc, char **argv);
fr_err fr_cmd_transform(int argc, char **argv);
fr_err fr_cmd_info(int argc, char **argv);
fr_err fr_cmd_selftest(int argc, char **argv);
fr_err fr_cmd_config(int argc, char **argv);

/* One option of a command's table: a value option stores its argument in
 * *value; a flag (value NULL) sets *flag to 1. */
typedef struct {
    const char *name; /* "--data" */
    const char **value;
    int *flag;
} fr_cli_opt;

/* "CMD RESULTS.h5 [options of opts (n)]" (eval, simulate, transform): the
 * one positional argument into *results; --help/-h sets *help. One-line
 * errors for an unknown option, a missing value, a second positional or no
 * RESULTS.h5. Not collective (same argv on every rank). */
fr_err fr_cli_results_args(int argc, char **argv, const fr_cli_opt *opts, int n, const char **results, int *help);

/* Shared argument handling: "CMD CONFIG [--set key=value ...]". Not collective. */
fr_err fr_cli_config_args(int argc, char **argv, const char **path, int *nset, char **sets, int maxset,
                          void (*usage)(void), int *want_help);

#endif
