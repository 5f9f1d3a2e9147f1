/* synth: the `facrnn synth NAME --out FILE` command. Rank 0 generates
 * (core/synth.c) and writes (io/synth_write.c); the generators and their
 * settings are documented in docs/synthetic.md. */
#include <stdio.h>
#include <string.h>

#include "facrnn/cli.h"
#include "facrnn/comm.h"
#include "facrnn/synth.h"

static void synth_usage(void)
{
    printf("usage: facrnn synth NAME --out FILE [--seed S] [--set key=value ...]\n"
           "generators: lorenz-thomas, facrnn, entangled, multiregion, systems\n"
           "keys: trials bins N seed obs rate burn bin_size (all); noise (all but systems);\n"
           "      b dt (lorenz-thomas); leak (lorenz-thomas, systems); groups lags inputs\n"
           "      gain enc_noise (facrnn, entangled, multiregion); coupling (facrnn,\n"
           "      multiregion, systems); systems snr (systems)\n"
           "systems: a list of families vdp rossler hopf ring line damped l96[:D] noise[:D],\n"
           "      e.g. --set 'systems=[vdp,rossler]' --set coupling=0.5 --set snr=2\n");
}

static fr_err parse_synth_args(int argc, char **argv, fr_synth_spec *s, const char **out, int *help)
{
    *out = NULL;
    *help = 0;
    const char *name = NULL;
    for (int i = 1; i < argc; ++i)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            *help = 1;
            return FR_OK;
        }
    if (argc < 2 || argv[1][0] == '-')
        return FR_FAIL(FR_EUSAGE, "synth: missing generator NAME (lorenz-thomas, facrnn, entangled, multiregion, systems)");
    name = argv[1];
    TRY(fr_synth_spec_init(s, name));
    for (int i = 2; i < argc; ++i) {
        const char *a = argv[i];
        if ((!strcmp(a, "--out") || !strcmp(a, "--seed") || !strcmp(a, "--set")) && i + 1 >= argc)
            return FR_FAIL(FR_EUSAGE, "synth: %s needs a value", a);
        if (!strcmp(a, "--out")) *out = argv[++i];
        else if (!strcmp(a, "--seed")) {
            char kv[128];
            snprintf(kv, sizeof kv, "seed=%s", argv[++i]);
            TRY(fr_synth_spec_set(s, kv));
        } else if (!strcmp(a, "--set")) TRY(fr_synth_spec_set(s, argv[++i]));
        else if (!strncmp(a, "--set=", 6)) TRY(fr_synth_spec_set(s, a + 6));
        else return FR_FAIL(FR_EUSAGE, "synth: unexpected argument '%s'", a);
    }
    if (!*out) return FR_FAIL(FR_EUSAGE, "synth: --out FILE is required");
    return fr_synth_spec_check(s);
}

fr_err fr_cmd_synth(int argc, char **argv)
{
    MPI_Comm comm = MPI_COMM_WORLD;
    int rank;
    CHECK_MPI(MPI_Comm_rank(comm, &rank));
    fr_synth_spec s;
    const char *out = NULL;
    int help = 0;
    /* Every rank parses the same arguments, so they agree without talking. */
    fr_err rc = parse_synth_args(argc, argv, &s, &out, &help);
    if (help) {
        if (rank == 0) synth_usage();
        return FR_OK;
    }
    rc = fr_error_agree(&comm, rc);
    if (rc != FR_OK) return rc;
    if (rank == 0) {
        fr_synth_data d;
        rc = fr_synth_generate(&s, &d);
        if (rc == FR_OK) {
            rc = fr_synth_write(&s, &d, out);
            if (rc == FR_OK)
                LOG_INFO("synth %s: wrote %s (%lld trials x %lld bins, N = %d, K = %d, %s)", s.name, out, d.n_trials,
                         s.bins, d.N, d.K, s.poisson ? "poisson" : "gaussian");
            fr_synth_free(&d);
        }
    }
    return fr_error_agree(&comm, rc);
}
