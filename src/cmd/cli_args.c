/* cli_args: the argument form shared by the commands that apply a fitted
 * run to a data file (eval, simulate, transform):
 *   CMD RESULTS.h5 [--data FILE] [--out FILE] [--run ID] [command options]
 * Each command describes its options once, in a table (fr_cli_opt), and
 * converts typed values itself; this file owns the walk over argv and its
 * one-line errors. */
#include <string.h>

#include "facrnn/cli.h"

fr_err fr_cli_results_args(int argc, char **argv, const fr_cli_opt *opts, int n, const char **results, int *help)
{
    const char *cmd = argv[0];
    *results = NULL;
    *help = 0;
    for (int i = 1; i < argc; ++i) {
        const char *o = argv[i];
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            *help = 1;
            return FR_OK;
        }
        int k = 0;
        while (k < n && strcmp(o, opts[k].name)) ++k;
        if (k < n) {
            if (opts[k].flag) {
                *opts[k].flag = 1;
                continue;
            }
            if (i + 1 >= argc) return FR_FAIL(FR_EUSAGE, "%s: %s needs a value", cmd, o);
            *opts[k].value = argv[++i];
        } else if (o[0] == '-') {
            return FR_FAIL(FR_EUSAGE, "%s: unknown option '%s'", cmd, o);
        } else if (!*results) {
            *results = o;
        } else {
            return FR_FAIL(FR_EUSAGE, "%s: unexpected argument '%s'", cmd, o);
        }
    }
    if (!*results) return FR_FAIL(FR_EUSAGE, "%s: missing RESULTS.h5 (see facrnn %s --help)", cmd, cmd);
    return FR_OK;
}
