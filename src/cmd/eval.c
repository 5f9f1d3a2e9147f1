/* eval: the `facrnn eval` command: every metric of docs/model.md for a
 * fitted run, recomputed on any data file with the same code fit uses.
 *
 * Usage, which trials are evaluated (the stored split on the data the run
 * was fitted on; every trial, as one set "all", on any other file), the
 * metrics and the output formats are documented in docs/model.md,
 * "Evaluate a fitted run".
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "facrnn/atomic.h"
#include "facrnn/cli.h"
#include "facrnn/evaluate.h"
#include "facrnn/fitted.h"
#include "facrnn/readout.h"

typedef struct {
    const char *results, *data, *out, *run;
    int csv, help;
} eval_args;

static void eval_usage(void)
{
    printf("usage: [mpirun -n P] facrnn eval RESULTS.h5 --data FILE [--run ID] [--out FILE.json|FILE.csv] [--csv]\n\n"
           "Recomputes every metric of a fitted run on FILE (the training data: training and\n"
           "held-out trials as fit split them; any other file: all trials).\n");
}

static fr_err parse_eval_args(int argc, char **argv, eval_args *a)
{
    memset(a, 0, sizeof *a);
    const fr_cli_opt opts[] = {{"--data", &a->data, NULL},
                               {"--out", &a->out, NULL},
                               {"--run", &a->run, NULL},
                               {"--csv", NULL, &a->csv}};
    TRY(fr_cli_results_args(argc, argv, opts, 4, &a->results, &a->help));
    if (a->help) return FR_OK;
    if (!a->data) return FR_FAIL(FR_EUSAGE, "eval: missing --data FILE");
    return FR_OK;
}

enum { M_N = FR_N_METRICS };

static void metric_values(const fr_fit_metrics *m, double v[M_N])
{
    for (int i = 0; i < M_N; ++i) v[i] = fr_metric_get(m, i);
}

/* JSON number: NaN/Inf as null, full precision otherwise. */
static void json_num(FILE *f, double v)
{
    if (isfinite(v)) fprintf(f, "%.17g", v);
    else fprintf(f, "null");
}

static void csv_num(FILE *f, double v)
{
    if (isfinite(v)) fprintf(f, "%.17g", v);
}

typedef struct {
    const eval_args *a;
    const fr_fitted_run *run;
    const fr_model *m;
    int same;
    int nsets;
    const char *set_name[2];
    double val[2][M_N], stored[2][M_N];
    int conn_have;
    double r_W, r_groups[FR_MAX_GROUPS];
} eval_report;

static void write_json(FILE *f, const eval_report *r)
{
    fprintf(f, "{\n  \"results\": \"%s\",\n  \"run\": \"%s\",\n  \"data\": \"%s\",\n  \"same_data\": %s,\n",
            r->a->results, r->run->run_id, r->a->data, r->same ? "true" : "false");
    fprintf(f, "  \"encoder_std\": ");
    json_num(f, r->m->s_enc);
    fprintf(f, ",\n  \"sets\": {");
    for (int s = 0; s < r->nsets; ++s) {
        fprintf(f, "%s\n    \"%s\": {", s ? "," : "", r->set_name[s]);
        for (int i = 0; i < M_N; ++i) {
            fprintf(f, "%s\"%s\": ", i ? ", " : "", fr_metric_defs[i].name);
            json_num(f, r->val[s][i]);
        }
        fprintf(f, "}");
    }
    fprintf(f, "\n  },\n  \"connectivity\": ");
    if (r->conn_have) {
        fprintf(f, "{\"connectivity_r_W\": ");
        json_num(f, r->r_W);
        fprintf(f, ", \"connectivity_r_groups\": [");
        for (int g = 0; g < r->m->spec.G; ++g) {
            fprintf(f, "%s", g ? ", " : "");
            json_num(f, r->r_groups[g]);
        }
        fprintf(f, "]}");
    } else {
        fprintf(f, "null");
    }
    if (r->same) {
        fprintf(f, ",\n  \"stored\": {");
        for (int s = 0; s < r->nsets; ++s) {
            fprintf(f, "%s\n    \"%s\": {", s ? "," : "", r->set_name[s]);
            for (int i = 0; i < M_N; ++i) {
                fprintf(f, "%s\"%s\": ", i ? ", " : "", fr_metric_defs[i].name);
                json_num(f, r->stored[s][i]);
            }
            fprintf(f, "}");
        }
        fprintf(f, "\n  }");
    }
    fprintf(f, "\n}\n");
}

/* CSV: one row per (set, metric); connectivity rows use set "connectivity". */
static void write_csv(FILE *f, const eval_report *r)
{
    fprintf(f, "run,set,metric,value,stored\n");
    for (int s = 0; s < r->nsets; ++s)
        for (int i = 0; i < M_N; ++i) {
            fprintf(f, "%s,%s,%s,", r->run->run_id, r->set_name[s], fr_metric_defs[i].name);
            csv_num(f, r->val[s][i]);
            fprintf(f, ",");
            if (r->same) csv_num(f, r->stored[s][i]);
            fprintf(f, "\n");
        }
    if (r->conn_have) {
        fprintf(f, "%s,connectivity,connectivity_r_W,", r->run->run_id);
        csv_num(f, r->r_W);
        fprintf(f, ",");
        if (r->same) csv_num(f, r->run->stored_conn_r_W);
        fprintf(f, "\n");
        for (int g = 0; g < r->m->spec.G; ++g) {
            fprintf(f, "%s,connectivity,connectivity_r_groups[%d],", r->run->run_id, g);
            csv_num(f, r->r_groups[g]);
            fprintf(f, ",");
            if (r->same) csv_num(f, r->run->stored_conn_r_groups[g]);
            fprintf(f, "\n");
        }
    }
}

static void print_table(const eval_report *r)
{
    printf("run %s of %s on %s (%s)\n", r->run->run_id, r->a->results, r->a->data,
           r->same ? "the training data: stored split" : "other data: all trials");
    printf("%-22s", "metric");
    for (int s = 0; s < r->nsets; ++s) {
        printf(" %16s", r->set_name[s]);
        if (r->same) printf(" %16s", "(stored)");
    }
    printf("\n");
    for (int i = 0; i < M_N; ++i) {
        printf("%-22s", fr_metric_defs[i].name);
        for (int s = 0; s < r->nsets; ++s) {
            printf(" %16.8g", r->val[s][i]);
            if (r->same) printf(" %16.8g", r->stored[s][i]);
        }
        printf("\n");
    }
    if (r->conn_have) {
        printf("%-22s %16.8g", "connectivity_r_W", r->r_W);
        if (r->same) printf(" %16.8g", r->run->stored_conn_r_W);
        printf("\n");
        for (int g = 0; g < r->m->spec.G; ++g) {
            char name[40];
            snprintf(name, sizeof name, "connectivity_r_groups[%d]", g);
            printf("%-22s %16.8g", name, r->r_groups[g]);
            if (r->same) printf(" %16.8g", r->run->stored_conn_r_groups[g]);
            printf("\n");
        }
    }
    fflush(stdout);
}

/* Rank 0 writes the report; the outcome is agreed. Collective. */
static fr_err emit(MPI_Comm comm, const eval_report *r)
{
    int rank;
    CHECK_MPI(MPI_Comm_rank(comm, &rank));
    fr_err rc = FR_OK;
    if (rank == 0) {
        if (r->a->csv && !r->a->out) write_csv(stdout, r);
        else print_table(r);
        if (r->a->out) {
            fr_atomic out;
            rc = fr_atomic_fopen(&out, r->a->out);
            if (rc == FR_OK) {
                size_t n = strlen(r->a->out);
                if (n >= 4 && !strcmp(r->a->out + n - 4, ".csv")) write_csv(out.f, r);
                else write_json(out.f, r);
                rc = fr_atomic_commit(&out);
            }
        }
    }
    return fr_error_agree(&comm, rc);
}

fr_err fr_cmd_eval(int argc, char **argv)
{
    MPI_Comm comm = MPI_COMM_WORLD;
    int rank;
    CHECK_MPI(MPI_Comm_rank(comm, &rank));
    eval_args a;
    TRY(parse_eval_args(argc, argv, &a)); /* same argv everywhere: every rank agrees */
    if (a.help) {
        if (rank == 0) eval_usage();
        return FR_OK;
    }
    fr_fitted_data *fd;
    TRY(FR_CALLOC(fd, 1));
    double *latents = NULL;
    eval_report rep;
    memset(&rep, 0, sizeof rep);
    fr_err rc = fr_fitted_data_open(comm, a.results, a.run, a.data, FR_FD_MODEL_UNITS, fd);
    const fr_fitted_run *run = &fd->run;
    const fr_dataset *dsp = &fd->ds;
    const fr_model *mp = &fd->m;
    rep.same = fd->same;
    fr_fit_metrics train, held;
    fr_fit_metrics_nan(&train);
    fr_fit_metrics_nan(&held);
    if (rc == FR_OK) rc = fr_evaluate(comm, mp, run->flat, dsp, fd->split, 1, &train);
    if (rc == FR_OK && fd->heldout_any) rc = fr_evaluate(comm, mp, run->flat, dsp, fd->split, 0, &held);
    if (rc == FR_OK) {
        long long rows = dsp->row_hi - dsp->row_lo;
        rc = fr_error_agree(&comm, FR_CALLOC(latents, (rows ? rows : 1) * mp->spec.K));
    }
    if (rc == FR_OK) rc = fr_evaluate_latents(comm, mp, run->flat, dsp, latents);
    if (rc == FR_OK) rc = fr_readout_latent_metrics(comm, dsp, fd->split, mp, latents, &train, &held);
    if (rc == FR_OK)
        rc = fr_readout_connectivity_truth(dsp, mp, run->flat, &rep.conn_have, &rep.r_W, rep.r_groups);
    if (rc == FR_OK) {
        rep.a = &a;
        rep.run = run;
        rep.m = mp;
        rep.nsets = rep.same && fd->heldout_any ? 2 : 1;
        rep.set_name[0] = rep.same ? "train" : "all";
        rep.set_name[1] = "heldout";
        metric_values(&train, rep.val[0]);
        metric_values(&held, rep.val[1]);
        metric_values(&run->stored_train, rep.stored[0]);
        metric_values(&run->stored_heldout, rep.stored[1]);
        rc = emit(comm, &rep);
    }
    free(latents);
    fr_fitted_data_free(fd);
    free(fd);
    return rc;
}
