/* sweep: the `facrnn sweep CONFIG [--set k=v] [--slice I/N] [--collect]`
 * command. Ranks form teams of sweep.ranks_per_fit (MPI_Comm_split by
 * rank / ranks_per_fit); each team opens the data set once and fits one run
 * at a time with fr_train on its own communicator. World rank 0 is the
 * coordinator and also leads team 0: it hands out runs longest first from a
 * work queue, answering the other team leaders' point-to-point requests
 * (which carry the previous run's record) from a hook the trainer calls
 * between steps, so no team waits longer than one step of team 0.
 *
 * Files (README "Sweeps"): each finished run is written atomically by its
 * team into <output.path>.runs/<run_id>.h5; rank 0 rewrites the manifest
 * <output.path>.manifest (atomic.h) after every finished run; at the end
 * rank 0 assembles <output.path> (H5Ocopy of every run group, /sweep/table,
 * /sweep/selection) and <output.path>.csv, each replaced atomically, so every
 * file is readable at every moment and a restart skips what is done.
 */
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "facrnn/atomic.h"
#include "facrnn/checkpoint.h"
#include "facrnn/cli.h"
#include "facrnn/config.h"
#include "facrnn/dataset.h"
#include "facrnn/fit_input.h"
#include "facrnn/h5util.h"
#include "facrnn/outlock.h"
#include "facrnn/results.h"
#include "facrnn/sweep.h"
#include "facrnn/coupling.h"
#include "facrnn/trainer.h"
#include "facrnn/version.h"

enum { TAG_REQ = 7101, TAG_WORK = 7102 };
#define NULL_SEED 0x5eedULL /* fixed: the null must not depend on the run's seed */

/* A team leader's request to the coordinator, carrying its last run. */
typedef struct {
    int index;       /* run index of rec, -1 when none */
    int interrupted; /* the run stopped on a signal (checkpointed, not finished) */
    fr_sweep_record rec;
} sweep_msg;

static void sweep_usage(void)
{
    printf("usage: [mpirun -n P] facrnn sweep CONFIG.yaml [--set key=value ...] [--slice I/N] [--collect]\n\n"
           "Fits every run of the sweep (sweep.ranks x partitions x betas x seeds x cv folds) in teams of\n"
           "sweep.ranks_per_fit ranks, then selects a model (README \"Sweeps\"). Rerunning resumes.\n"
           "  --slice I/N   run only runs with index %% N == I (0 <= I < N), e.g. one Slurm array task\n"
           "  --collect     only assemble the results file, table and selection from finished runs\n");
}

/* ---- coordinator (world rank 0) ------------------------------------------------------ */
typedef struct {
    const fr_sweep_run *runs;
    int n;
    fr_sweep_record *recs;  /* (n) */
    int *queue;             /* (nq) pending run indices, longest first */
    int nq, next;
    int remote_open;        /* other teams not yet told to stop */
    int stopping;
    const char *manifest;
    int finished, failed, todo;
    double cost_done, cost_todo, t0;
} coord;

static int coord_next(coord *c)
{
    if (c->stopping || fr_trainer_stop_requested()) c->stopping = 1;
    if (c->stopping || c->next >= c->nq) return -1;
    return c->queue[c->next++];
}

static void coord_record(coord *c, int index, const fr_sweep_record *rec, int interrupted)
{
    if (index < 0) return;
    if (interrupted) {
        c->stopping = 1;
        return;
    }
    c->recs[index] = *rec;
    c->finished++;
    c->cost_done += c->runs[index].cost;
    if (rec->status != FR_RUN_DONE) {
        c->failed++;
        LOG_WARN("sweep: run %s failed: %s", rec->id, rec->reason);
    }
    fr_err rc = fr_sweep_manifest_write(c->manifest, c->recs, c->n);
    if (rc != FR_OK) fr_fatal(rc); /* only rank 0 knows: abort rather than lose results silently */
    double el = fr_wtime() - c->t0;
    double eta = c->cost_done > 0 ? el * (c->cost_todo - c->cost_done) / c->cost_done : NAN;
    LOG_INFO("sweep: %d/%d runs finished (%d failed), last %s held-out nll/bin %.6g, %.2f runs/min, ETA %.0f s",
             c->finished, c->todo, c->failed, rec->id, rec->heldout_nll, c->finished / fmax(el, 1e-9) * 60, eta);
}

/* Answer pending requests from other team leaders; with block, until every
 * other team has been told to stop. */
static void coord_service(coord *c, int block)
{
    for (;;) {
        int flag = 0;
        MPI_Status st;
        if (block) {
            if (c->remote_open <= 0) return;
            CHECK_MPI_FATAL(MPI_Probe(MPI_ANY_SOURCE, TAG_REQ, MPI_COMM_WORLD, &st));
            flag = 1;
        } else {
            CHECK_MPI_FATAL(MPI_Iprobe(MPI_ANY_SOURCE, TAG_REQ, MPI_COMM_WORLD, &flag, &st));
        }
        if (!flag) return;
        sweep_msg m;
        CHECK_MPI_FATAL(MPI_Recv(&m, (int)sizeof m, MPI_BYTE, st.MPI_SOURCE, TAG_REQ, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
        coord_record(c, m.index, &m.rec, m.interrupted);
        int next = coord_next(c);
        CHECK_MPI_FATAL(MPI_Send(&next, 1, MPI_INT, st.MPI_SOURCE, TAG_WORK, MPI_COMM_WORLD));
        if (next < 0) c->remote_open--;
    }
}

static void coord_hook(void *ctx) { coord_service((coord *)ctx, 0); }

/* ---- one run, on a team --------------------------------------------------------------- */
/* Held-out means (rows of held-out trials, context bins dropped), gathered
 * in trial order to the team's rank 0. Collective over team. */
static fr_err gather_heldout(MPI_Comm team, const fr_dataset *ds, const unsigned char *split, int K,
                             const double *lat /* (rows, K) */, double **all, int *n_all)
{
    int tr, ts;
    CHECK_MPI(MPI_Comm_rank(team, &tr));
    CHECK_MPI(MPI_Comm_size(team, &ts));
    long long rows = ds->row_hi - ds->row_lo, m = 0;
    double *mine = NULL;
    TRY(FR_CALLOC(mine, (rows ? rows : 1) * K));
    for (long long k = ds->trial_lo; k < ds->trial_hi; ++k) {
        if (split[k]) continue;
        for (long long r = ds->offsets[k] - ds->row_lo; r < ds->offsets[k + 1] - ds->row_lo; ++r) {
            if (isnan(lat[r * K])) continue;
            memcpy(mine + m * K, lat + r * K, (size_t)K * sizeof(double));
            ++m;
        }
    }
    int cnt = (int)(m * K), *cnts = NULL, *dsp = NULL;
    fr_err rc = FR_CALLOC(cnts, ts);
    if (rc == FR_OK) rc = FR_CALLOC(dsp, ts);
    if (rc == FR_OK) rc = fr_check_mpi(MPI_Gather(&cnt, 1, MPI_INT, cnts, 1, MPI_INT, 0, team), "MPI_Gather",
                                       __FILE__, __LINE__);
    int tot = 0;
    for (int r = 0; r < ts && tr == 0; ++r) {
        dsp[r] = tot;
        tot += cnts[r];
    }
    *all = NULL;
    if (rc == FR_OK && tr == 0) rc = FR_CALLOC(*all, tot ? tot : 1);
    if (rc == FR_OK)
        rc = fr_check_mpi(MPI_Gatherv(mine, cnt, MPI_DOUBLE, *all, cnts, dsp, MPI_DOUBLE, 0, team), "MPI_Gatherv",
                          __FILE__, __LINE__);
    *n_all = tot / K;
    free(mine);
    free(cnts);
    free(dsp);
    return rc;
}

/* Held-out dynamical coupling between the groups of one fitted run
 * (coupling.h): latents standardised with training-bin moments, pair
 * moments summed over the team (trials are whole on each rank, so every
 * consecutive pair is local). Every rank gets the same numbers. Collective
 * over team. */
static fr_err team_coupling(MPI_Comm team, const fr_dataset *ds, const unsigned char *split, const fr_sweep_run *run,
                            const double *lat /* (rows, K) */, double *c_max)
{
    int K = run->K, quad = K <= FR_COUPLING_QUAD_MAX_K, P = fr_coupling_nfeat(K, quad);
    long long nt = ds->trial_hi - ds->trial_lo;
    *c_max = NAN;
    if (run->G < 2) {
        *c_max = 0;
        return FR_OK;
    }
    fr_moments zm, tr, te;
    memset(&zm, 0, sizeof zm), memset(&tr, 0, sizeof tr), memset(&te, 0, sizeof te);
    long long *off = NULL;
    unsigned char *is_train = NULL;
    double *mean = NULL, *sd = NULL; /* (K) each, one allocation */
    fr_err rc = FR_CALLOC(mean, 2 * (size_t)K);
    if (rc == FR_OK) sd = mean + K;
    if (rc == FR_OK) rc = fr_moments_init(&zm, K);
    if (rc == FR_OK) rc = fr_moments_init(&tr, P + K);
    if (rc == FR_OK) rc = fr_moments_init(&te, P + K);
    if (rc == FR_OK) rc = FR_CALLOC(off, nt + 1);
    if (rc == FR_OK) rc = FR_CALLOC(is_train, nt ? nt : 1);
    for (long long k = 0; k <= nt && rc == FR_OK; ++k) off[k] = ds->offsets[ds->trial_lo + k] - ds->row_lo;
    for (long long k = 0; k < nt && rc == FR_OK; ++k) {
        is_train[k] = split[ds->trial_lo + k] != 0;
        if (is_train[k]) rc = fr_moments_add(&zm, off[k + 1] - off[k], K, lat + off[k] * K, 0, NULL);
    }
    rc = fr_error_agree(&team, rc);
    if (rc == FR_OK)
        rc = fr_check_mpi(MPI_Allreduce(MPI_IN_PLACE, zm.buf, (int)zm.len, MPI_DOUBLE, MPI_SUM, team), "MPI_Allreduce",
                          __FILE__, __LINE__);
    for (int i = 0; i < K && rc == FR_OK; ++i) {
        double n = *zm.n, m = n > 0 ? zm.s[i] / n : 0, v = n > 0 ? zm.S[(size_t)i * K + i] / n - m * m : 0;
        mean[i] = m;
        sd[i] = v > 0 ? sqrt(v) : 1;
    }
    if (rc == FR_OK) rc = fr_coupling_pairs_add(&tr, &te, K, quad, mean, sd, nt, off, is_train, lat);
    /* training and held-out pair moments in one Allreduce */
    double *flat = NULL;
    if (rc == FR_OK) rc = FR_CALLOC(flat, tr.len + te.len);
    rc = fr_error_agree(&team, rc);
    if (rc == FR_OK) {
        memcpy(flat, tr.buf, tr.len * sizeof(double));
        memcpy(flat + tr.len, te.buf, te.len * sizeof(double));
        rc = fr_check_mpi(MPI_Allreduce(MPI_IN_PLACE, flat, (int)(tr.len + te.len), MPI_DOUBLE, MPI_SUM, team),
                          "MPI_Allreduce", __FILE__, __LINE__);
        memcpy(tr.buf, flat, tr.len * sizeof(double));
        memcpy(te.buf, flat + tr.len, te.len * sizeof(double));
    }
    free(flat);
    if (rc == FR_OK && fr_coupling_from_moments(&tr, &te, K, quad, run->G, run->groups, NULL, c_max) != FR_OK) {
        /* too few pairs (tiny data): no evidence either way, not a failed run */
        LOG_WARN("sweep: %s: no dynamical coupling: %s", run->id, fr_error_msg());
        fr_error_clear();
        *c_max = NAN;
    }
    fr_moments_free(&zm), fr_moments_free(&tr), fr_moments_free(&te);
    free(off);
    free(is_train);
    free(mean);
    return rc;
}

static void fail_record(fr_sweep_record *rec, const char *id)
{
    memset(rec, 0, sizeof *rec);
    snprintf(rec->id, sizeof rec->id, "%s", id);
    rec->status = FR_RUN_FAILED;
    snprintf(rec->reason, sizeof rec->reason, "%s", fr_error_msg());
    rec->heldout_nll = rec->heldout_r2 = rec->heldout_pc = rec->group_latent_r2 = rec->train_nll = NAN;
    rec->pc_obs = rec->pc_null_mean = rec->pc_null_sd = NAN;
    rec->objective = rec->coupling = NAN;
}

/* Fit run `run` on the team, write its per-run file, fill rec. Returns
 * FR_ESIGNAL when stopped on a signal (checkpointed); every other failure
 * is recorded in rec as a failed run. ph: the run's phase clock, in its
 * start-up since the team's previous run ended (the first: since the
 * process started); a done run logs it. Collective over team. */
static fr_err fit_one(MPI_Comm team, const fr_config *base, const fr_dataset *ds, const fr_sweep_run *run,
                      const fr_sweep_rule *rule, const char *runs_dir, fr_phases *ph, fr_sweep_record *rec)
{
    int tr;
    CHECK_MPI(MPI_Comm_rank(team, &tr));
    fr_config *cfg = NULL;
    unsigned char *split = NULL;
    TRY(FR_CALLOC(cfg, 1));
    fr_sweep_run_config(base, run, cfg);
    fr_fit_result res;
    memset(&res, 0, sizeof res);
    char ckpt[FR_CFG_PATH_MAX + 300], path[FR_CFG_PATH_MAX + 300];
    snprintf(ckpt, sizeof ckpt, "%s/%s.ckpt.h5", cfg->checkpoint_dir, run->id);
    snprintf(path, sizeof path, "%s/%s.h5", runs_dir, run->id);
    fr_err rc = FR_CALLOC(split, ds->n_trials);
    /* the split of `facrnn fit` with this run's config: same fold and seed */
    if (rc == FR_OK) rc = fr_cv_split(ds->n_trials, ds->condition, cfg->folds, cfg->fold, FR_CV_SEED, split);
    rc = fr_error_agree(&team, rc);
    if (rc == FR_OK) rc = fr_error_agree(&team, fr_train(team, cfg, ds, split, ckpt, &res));
    double null3[3] = {NAN, NAN, NAN};
    if (rc == FR_OK) {
        fr_phases_absorb(ph, &res.phases);
        fr_phases_enter(ph, FR_PH_EVAL); /* the selection's read-outs: independence null, coupling */
        fr_trainer_service();            /* on rank 0, the coordinator answers between them (trainer.h) */
        double *all = NULL;
        int n_all = 0;
        rc = gather_heldout(team, ds, split, run->K, res.latents, &all, &n_all);
        if (rc == FR_OK && tr == 0)
            rc = fr_sweep_pc_null(run->K, run->G, run->groups, n_all, all, res.model.s_enc, rule, NULL_SEED, &null3[0],
                                  &null3[1], &null3[2]);
        free(all);
        fr_trainer_service();
        rc = fr_error_agree(&team, rc);
        if (rc == FR_OK)
            rc = fr_check_mpi(MPI_Bcast(null3, 3, MPI_DOUBLE, 0, team), "MPI_Bcast(null3)", __FILE__, __LINE__);
    }
    double coupling = NAN;
    if (rc == FR_OK) rc = team_coupling(team, ds, split, run, res.latents, &coupling);
    if (rc == FR_OK) {
        fr_trainer_service();
        fr_phases_enter(ph, FR_PH_OUTPUT);
        fr_results out;
        rc = fr_results_create(team, path, 1, &out);
        if (rc == FR_OK) {
            fr_err w = fr_results_write_root(&out, cfg, ds);
            if (w == FR_OK) w = fr_results_write_run(&out, run->id, cfg, ds, split, &res, "done");
            if (w == FR_OK) {
                char mpath[FR_SWEEP_ID_MAX + 32];
                snprintf(mpath, sizeof mpath, "/runs/%s/metrics", run->id);
                hid_t g = H5Gopen2(out.file, mpath, H5P_DEFAULT);
                if (g < 0) w = FR_FAIL(FR_EIO, "%s: cannot open %s", path, mpath);
                if (w == FR_OK) w = fr_h5_attr_double(g, "heldout_pc_partition", null3[0]);
                if (w == FR_OK) w = fr_h5_attr_double(g, "heldout_pc_null_mean", null3[1]);
                if (w == FR_OK) w = fr_h5_attr_double(g, "heldout_pc_null_sd", null3[2]);
                if (w == FR_OK) w = fr_h5_attr_int(g, "heldout_pc_null_samples", rule->null_samples);
                if (w == FR_OK) w = fr_h5_attr_double(g, "heldout_group_coupling", coupling);
                if (g >= 0) H5Gclose(g);
            }
            w = fr_error_agree(&team, w);
            if (w == FR_OK) {
                rc = fr_results_close(&out);
            } else {
                fr_results_abort(&out);
                rc = w;
            }
        }
        rc = fr_error_agree(&team, rc);
    }
    if (rc == FR_OK) {
        fr_phases_enter(ph, FR_PH_OUTPUT);
        fr_phases_log(ph);
        memset(rec, 0, sizeof *rec);
        snprintf(rec->id, sizeof rec->id, "%s", run->id);
        rec->status = FR_RUN_DONE;
        rec->heldout_nll = res.heldout.nll_per_bin;
        rec->heldout_r2 = res.heldout.r2;
        rec->heldout_pc = res.heldout.pc;
        rec->group_latent_r2 = res.heldout.group_latent_r2;
        rec->train_nll = res.train.nll_per_bin;
        rec->pc_obs = null3[0];
        rec->pc_null_mean = null3[1];
        rec->pc_null_sd = null3[2];
        rec->epochs_done = res.epochs_done;
        rec->seconds = res.seconds;
        rec->objective = res.objective;
        rec->coupling = coupling;
    } else if (rc != FR_ESIGNAL) {
        fail_record(rec, run->id);
        fr_error_clear();
        rc = FR_OK;
    }
    fr_fit_result_free(&res);
    free(split);
    free(cfg);
    return rc;
}

/* ---- assembly (rank 0) ------------------------------------------------------------------ */
static fr_err write_str_col(hid_t loc, const char *name, int n, const char *const *s)
{
    size_t w = 1;
    for (int i = 0; i < n; ++i) w = strlen(s[i]) + 1 > w ? strlen(s[i]) + 1 : w;
    char *buf = NULL;
    TRY(FR_CALLOC(buf, (size_t)(n ? n : 1) * w));
    for (int i = 0; i < n; ++i) memcpy(buf + (size_t)i * w, s[i], strlen(s[i]));
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, w);
    hsize_t dims[1] = {(hsize_t)n};
    fr_err rc = fr_h5_write_small(loc, name, t, 0, 1, dims, buf);
    H5Tclose(t);
    free(buf);
    return rc;
}

static fr_err write_dbl_col(hid_t loc, const char *name, int n, const double *v)
{
    hsize_t dims[1] = {(hsize_t)n};
    return fr_h5_write_small(loc, name, H5T_NATIVE_DOUBLE, 0, 1, dims, v);
}

static fr_err write_ll_col(hid_t loc, const char *name, int n, const long long *v)
{
    hsize_t dims[1] = {(hsize_t)n};
    return fr_h5_write_small(loc, name, H5T_NATIVE_LLONG, 0, 1, dims, v);
}

/* One string attribute of a file's root ("" when absent or unreadable). */
static void read_root_str(const char *path, const char *name, char *buf, size_t cap)
{
    buf[0] = 0;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return;
    char *s = NULL;
    if (fr_h5_attr_read_str(f, name, path, &s) == FR_OK && s) snprintf(buf, cap, "%s", s);
    free(s);
    H5Fclose(f);
}

static fr_err write_table(hid_t sw, const fr_sweep_run *runs, const fr_sweep_record *recs, int n)
{
    hid_t g = H5Gcreate2(sw, "table", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return FR_FAIL(FR_EIO, "cannot create /sweep/table");
    fr_err rc = FR_OK;
    const char **ids = calloc((size_t)n + 1, sizeof *ids), **gt = calloc((size_t)n + 1, sizeof *gt);
    const char **st = calloc((size_t)n + 1, sizeof *st), **rs = calloc((size_t)n + 1, sizeof *rs);
    char(*gbuf)[256] = calloc((size_t)n + 1, sizeof *gbuf);
    long long *K = calloc((size_t)n + 1, sizeof *K), *seed = calloc((size_t)n + 1, sizeof *seed);
    long long *fold = calloc((size_t)n + 1, sizeof *fold), *ep = calloc((size_t)n + 1, sizeof *ep);
    double *col = calloc((size_t)n + 1, sizeof *col);
    if (!ids || !gt || !st || !rs || !gbuf || !K || !seed || !fold || !ep || !col) rc = FR_FAIL(FR_ENOMEM, "/sweep/table: out of memory");
    for (int i = 0; i < n && rc == FR_OK; ++i) {
        ids[i] = runs[i].id;
        fr_groups_text(runs[i].G, runs[i].groups, gbuf[i], sizeof gbuf[i]);
        gt[i] = gbuf[i];
        st[i] = fr_sweep_status_name(recs[i].status);
        rs[i] = recs[i].reason;
        K[i] = runs[i].K;
        seed[i] = runs[i].seed;
        fold[i] = runs[i].fold;
        ep[i] = recs[i].epochs_done;
    }
    if (rc == FR_OK) rc = write_str_col(g, "run_id", n, ids);
    if (rc == FR_OK) rc = write_ll_col(g, "K", n, K);
    if (rc == FR_OK) rc = write_str_col(g, "groups", n, gt);
    if (rc == FR_OK) {
        for (int i = 0; i < n; ++i) col[i] = runs[i].beta;
        rc = write_dbl_col(g, "beta", n, col);
    }
    if (rc == FR_OK) rc = write_ll_col(g, "seed", n, seed);
    if (rc == FR_OK) rc = write_ll_col(g, "fold", n, fold);
    if (rc == FR_OK) rc = write_str_col(g, "status", n, st);
#define DCOL(name, field)                                          \
    if (rc == FR_OK) {                                             \
        for (int i = 0; i < n; ++i) col[i] = recs[i].field;         \
        rc = write_dbl_col(g, name, n, col);                       \
    }
    DCOL("heldout_nll_per_bin", heldout_nll)
    DCOL("heldout_pc", heldout_pc)
    DCOL("heldout_r2", heldout_r2)
    DCOL("heldout_group_latent_r2", group_latent_r2)
    DCOL("train_nll_per_bin", train_nll)
    DCOL("heldout_pc_partition", pc_obs)
    DCOL("heldout_pc_null_mean", pc_null_mean)
    DCOL("heldout_pc_null_sd", pc_null_sd)
    if (rc == FR_OK) {
        for (int i = 0; i < n; ++i) col[i] = fr_sweep_independence(&runs[i], &recs[i]);
        rc = write_dbl_col(g, "independence", n, col);
    }
    DCOL("coupling", coupling)
    DCOL("objective", objective)
    if (rc == FR_OK) rc = write_ll_col(g, "epochs_done", n, ep);
    DCOL("seconds", seconds)
#undef DCOL
    if (rc == FR_OK) rc = write_str_col(g, "reason", n, rs);
    if (rc == FR_OK)
        rc = fr_h5_attr_str(g, "layout", "parallel 1-D datasets, one row per run in canonical run-list order");
    free(ids), free(gt), free(st), free(rs), free(gbuf), free(K), free(seed), free(fold), free(ep), free(col);
    H5Gclose(g);
    return rc;
}

static fr_err write_selection(hid_t sw, const fr_sweep_selection *sel, const fr_sweep_rule *rule)
{
    hid_t g = H5Gcreate2(sw, "selection", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return FR_FAIL(FR_EIO, "cannot create /sweep/selection");
    fr_err rc = fr_h5_attr_str(g, "rule", sel->rule);
    if (rc == FR_OK) rc = fr_h5_attr_str(g, "why", sel->why);
    if (rc == FR_OK) rc = fr_h5_attr_double(g, "se_rule", rule->se_mult);
    if (rc == FR_OK) rc = fr_h5_attr_double(g, "min_independence", rule->min_independence);
    if (rc == FR_OK) rc = fr_h5_attr_int(g, "null_samples", rule->null_samples);
    if (rc == FR_OK) rc = fr_h5_attr_double(g, "max_coupling", rule->max_coupling);
    int n = sel->n;
    const fr_sweep_score *s = sel->ranked;
    if (rc == FR_OK && sel->chosen >= 0) {
        const fr_sweep_score *c = &s[sel->chosen];
        char gt[256];
        fr_groups_text(c->G, c->groups, gt, sizeof gt);
        rc = fr_h5_attr_int(g, "selected_K", c->K);
        if (rc == FR_OK) rc = fr_h5_attr_str(g, "selected_groups", gt);
        if (rc == FR_OK) rc = fr_h5_attr_double(g, "selected_beta", c->beta);
        if (rc == FR_OK) rc = fr_h5_attr_double(g, "score", c->nll_mean);
        if (rc == FR_OK) rc = fr_h5_attr_double(g, "score_se", c->nll_se);
        if (rc == FR_OK) rc = fr_h5_attr_double(g, "independence", c->ind_mean);
        if (rc == FR_OK) rc = fr_h5_attr_double(g, "independence_se", c->ind_se);
        if (rc == FR_OK) rc = fr_h5_attr_double(g, "coupling", c->coup_mean);
        if (rc == FR_OK) rc = fr_h5_attr_double(g, "coupling_se", c->coup_se);
        if (rc == FR_OK) rc = fr_h5_attr_str(g, "score_name", "held-out NLL per bin, mean +- SE over folds x seeds");
    }
    /* ranked table, one row per configuration (K, groups, beta) */
    const char **gt = calloc((size_t)n + 1, sizeof *gt);
    char(*gb)[256] = calloc((size_t)n + 1, sizeof *gb);
    long long *iv = calloc((size_t)n + 1, sizeof *iv);
    double *dv = calloc((size_t)n + 1, sizeof *dv);
    if (!gt || !gb || !iv || !dv) rc = FR_FAIL(FR_ENOMEM, "/sweep/selection: out of memory");
    hid_t rk = rc == FR_OK ? H5Gcreate2(g, "ranked", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
    if (rc == FR_OK && rk < 0) rc = FR_FAIL(FR_EIO, "cannot create /sweep/selection/ranked");
#define ICOL(name, expr)                               \
    if (rc == FR_OK) {                                 \
        for (int i = 0; i < n; ++i) iv[i] = (expr);     \
        rc = write_ll_col(rk, name, n, iv);            \
    }
#define DCOL(name, expr)                               \
    if (rc == FR_OK) {                                 \
        for (int i = 0; i < n; ++i) dv[i] = (expr);     \
        rc = write_dbl_col(rk, name, n, dv);           \
    }
    ICOL("K", s[i].K)
    if (rc == FR_OK) {
        for (int i = 0; i < n; ++i) {
            fr_groups_text(s[i].G, s[i].groups, gb[i], sizeof gb[i]);
            gt[i] = gb[i];
        }
        rc = write_str_col(rk, "groups", n, gt);
    }
    DCOL("beta", s[i].beta)
    ICOL("n_runs", s[i].n)
    DCOL("nll_mean", s[i].nll_mean)
    DCOL("nll_se", s[i].nll_se)
    DCOL("independence_mean", s[i].ind_mean)
    DCOL("independence_se", s[i].ind_se)
    DCOL("heldout_pc_mean", s[i].pc_mean)
    ICOL("n_folds", s[i].n_folds)
    DCOL("coupling_mean", s[i].coup_mean)
    DCOL("coupling_se", s[i].coup_se)
    ICOL("in_band", s[i].in_band)
    ICOL("supported", s[i].supported)
    ICOL("selected", i == sel->chosen)
#undef ICOL
#undef DCOL
    if (rk >= 0) H5Gclose(rk);
    free(gt), free(gb), free(iv), free(dv);
    H5Gclose(g);
    return rc;
}

static fr_err write_csv(const char *path, const fr_sweep_run *runs, const fr_sweep_record *recs, int n)
{
    fr_atomic a;
    TRY(fr_atomic_fopen(&a, path));
    FILE *f = a.f;
    fprintf(f, "run_id,K,groups,beta,seed,fold,status,heldout_nll_per_bin,heldout_pc,heldout_r2,"
               "heldout_group_latent_r2,heldout_pc_null_mean,independence,coupling,objective,epochs_done,seconds\n");
    for (int i = 0; i < n; ++i) {
        char gt[256];
        fr_groups_text(runs[i].G, runs[i].groups, gt, sizeof gt);
        const fr_sweep_record *r = &recs[i];
        fprintf(f, "%s,%d,%s,%.17g,%lld,%d,%s,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%d,%.3f\n", runs[i].id,
                runs[i].K, gt, runs[i].beta, runs[i].seed, runs[i].fold, fr_sweep_status_name(r->status),
                r->heldout_nll, r->heldout_pc, r->heldout_r2, r->group_latent_r2, r->pc_null_mean,
                fr_sweep_independence(&runs[i], r), r->coupling, r->objective, r->epochs_done, r->seconds);
    }
    return fr_atomic_commit(&a);
}

/* Build <output.path> (atomic.h) and the CSV from the per-run files and
 * records. Not collective: rank 0 only, serial HDF5. */
static fr_err assemble(const fr_config *base, const fr_sweep_run *runs, fr_sweep_record *recs, int n,
                       const fr_sweep_rule *rule, const char *runs_dir, int n_ranks)
{
    char src[FR_CFG_PATH_MAX + 300], csv[FR_CFG_PATH_MAX + 16];
    /* a done run needs its per-run file */
    for (int i = 0; i < n; ++i) {
        snprintf(src, sizeof src, "%s/%s.h5", runs_dir, runs[i].id);
        if (recs[i].status == FR_RUN_DONE && access(src, R_OK) != 0) {
            LOG_WARN("sweep: %s is marked done but %s is missing; counted as pending", runs[i].id, src);
            recs[i].status = FR_RUN_PENDING;
        }
    }
    fr_sweep_selection sel;
    TRY(fr_sweep_select(runs, recs, n, rule, &sel));
    fr_atomic out;
    TRY(fr_atomic_begin(&out, base->output_path));
    const char *tmp = out.tmp;
    /* MPI-IO on MPI_COMM_SELF, so the shared small-dataset writers (which
     * use a collective transfer) work unchanged on this one rank */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, MPI_COMM_SELF, MPI_INFO_NULL);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    fr_err rc = f < 0 ? FR_FAIL(FR_EIO, "cannot create %s", tmp) : FR_OK;
    int ndone = 0;
    char checksum[128] = "";
    for (int i = 0; i < n; ++i) ndone += recs[i].status == FR_RUN_DONE;
    for (int i = 0; i < n && !checksum[0]; ++i)
        if (recs[i].status == FR_RUN_DONE) {
            snprintf(src, sizeof src, "%s/%s.h5", runs_dir, runs[i].id);
            read_root_str(src, "input_checksum", checksum, sizeof checksum);
        }
    if (rc == FR_OK) rc = fr_results_root_attrs(f, base, n_ranks, base->data_path, checksum, "facrnn sweep");
    if (rc == FR_OK) rc = fr_h5_attr_int(f, "n_runs", n);
    if (rc == FR_OK) rc = fr_h5_attr_int(f, "n_runs_done", ndone);
    hid_t rg = rc == FR_OK ? H5Gcreate2(f, "runs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
    if (rc == FR_OK && rg < 0) rc = FR_FAIL(FR_EIO, "%s: cannot create /runs", tmp);
    for (int i = 0; i < n && rc == FR_OK; ++i) {
        if (recs[i].status != FR_RUN_DONE) continue;
        snprintf(src, sizeof src, "%s/%s.h5", runs_dir, runs[i].id);
        hid_t s = H5Fopen(src, H5F_ACC_RDONLY, H5P_DEFAULT);
        char obj[FR_SWEEP_ID_MAX + 8];
        snprintf(obj, sizeof obj, "/runs/%s", runs[i].id);
        if (s < 0 || H5Ocopy(s, obj, rg, runs[i].id, H5P_DEFAULT, H5P_DEFAULT) < 0)
            rc = FR_FAIL(FR_EIO, "sweep: cannot copy %s from %s", obj, src);
        if (s >= 0) H5Fclose(s);
    }
    if (rg >= 0) H5Gclose(rg);
    hid_t sw = rc == FR_OK ? H5Gcreate2(f, "sweep", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
    if (rc == FR_OK && sw < 0) rc = FR_FAIL(FR_EIO, "%s: cannot create /sweep", tmp);
    if (rc == FR_OK) rc = write_table(sw, runs, recs, n);
    if (rc == FR_OK) rc = write_selection(sw, &sel, rule);
    if (sw >= 0) H5Gclose(sw);
    if (f >= 0 && H5Fclose(f) < 0 && rc == FR_OK) rc = FR_FAIL(FR_EIO, "cannot close %s", tmp);
    if (rc == FR_OK) rc = fr_atomic_commit(&out);
    else fr_atomic_abort(&out);
    snprintf(csv, sizeof csv, "%s.csv", base->output_path);
    if (rc == FR_OK) rc = write_csv(csv, runs, recs, n);
    if (rc == FR_OK) {
        LOG_INFO("sweep: %d of %d runs done; results %s, table %s", ndone, n, base->output_path, csv);
        LOG_INFO("selection: %s", sel.why);
        if (sel.chosen >= 0) {
            const fr_sweep_score *c = &sel.ranked[sel.chosen];
            char cg[256];
            fr_groups_text(c->G, c->groups, cg, sizeof cg);
            LOG_INFO("selected: K = %d, groups %s, beta %g, held-out nll/bin %.6g +- %.2g, independence %.3f +- %.3f, "
                     "coupling %.3f +- %.3f",
                     c->K, cg, c->beta, c->nll_mean, c->nll_se, c->ind_mean, c->ind_se, c->coup_mean, c->coup_se);
        }
        LOG_INFO("  %-3s %-10s %-8s %-4s %-22s %-20s %-20s %s", "K", "groups", "beta", "runs", "held-out nll/bin (SE)",
                 "independence (SE)", "coupling (SE)", "");
        /* the ten best by NLL, then every multi-group row of the selected K
         * that the partition rule looked at (the chosen one included) */
        int Kc = sel.chosen >= 0 ? sel.ranked[sel.chosen].K : -1;
        for (int c = 0; c < sel.n; ++c) {
            const fr_sweep_score *t = &sel.ranked[c];
            if (c >= 10 && c != sel.chosen && !(t->K == Kc && t->G > 1 && t->beta > 0)) continue;
            const fr_sweep_score *s = &sel.ranked[c];
            char gt[256];
            fr_groups_text(s->G, s->groups, gt, sizeof gt);
            LOG_INFO("  %-3d %-10s %-8g %-4d %-10.6g (%-8.2g)   %-7.3f (%-7.2g)   %-7.3f (%-7.2g)   %s%s", s->K, gt,
                     s->beta, s->n, s->nll_mean, s->nll_se, s->ind_mean, s->ind_se, s->coup_mean, s->coup_se,
                     c == sel.chosen ? "<- selected" : "", s->supported ? " supported" : "");
        }
    }
    fr_sweep_selection_free(&sel);
    return rc;
}

/* Records from every manifest of this sweep (the single-job one and any
 * --slice ones), matched to the run list. Not collective. */
static fr_err read_all_manifests(const char *out_path, const fr_sweep_run *runs, int n, fr_sweep_record *recs)
{
    char pat[FR_CFG_PATH_MAX + 32];
    snprintf(pat, sizeof pat, "%s.manifest*", out_path);
    glob_t gl;
    memset(&gl, 0, sizeof gl);
    int g = glob(pat, 0, NULL, &gl);
    fr_sweep_record *all = NULL;
    int nall = 0;
    fr_err rc = FR_OK;
    for (size_t i = 0; g == 0 && i < gl.gl_pathc && rc == FR_OK; ++i) {
        const char *p = gl.gl_pathv[i];
        size_t len = strlen(p);
        if (len > 4 && !strcmp(p + len - 4, ".tmp")) continue;
        fr_sweep_record *r = NULL;
        int nr = 0;
        rc = fr_sweep_manifest_read(p, &r, &nr);
        if (rc == FR_OK && nr > 0) {
            fr_sweep_record *na = realloc(all, (size_t)(nall + nr) * sizeof *all);
            if (!na) rc = FR_FAIL(FR_ENOMEM, "sweep: out of memory reading manifests");
            else {
                all = na;
                memcpy(all + nall, r, (size_t)nr * sizeof *r);
                nall += nr;
            }
        }
        free(r);
    }
    globfree(&gl);
    if (rc == FR_OK) fr_sweep_records_match(runs, n, all, nall, recs);
    free(all);
    return rc;
}

/* Say which cells of the grid the run list leaves out (fr_sweep_expand),
 * so a table with fewer rows than the grid is not a surprise. Rank 0. */
static void log_plan(const fr_config *b)
{
    int nb = b->n_sweep_betas ? b->n_sweep_betas : 1, zero = 0;
    const double *betas = b->n_sweep_betas ? b->sweep_betas : &b->beta;
    for (int i = 0; i < nb; ++i) zero |= betas[i] == 0;
    if (nb > 1)
        LOG_INFO("sweep: one-group partitions are fitted at the smallest beta only (beta does not change them)");
    if (zero && !b->sweep_fit_unpenalised)
        LOG_INFO("sweep: multi-group partitions are not fitted at beta = 0 where K has the one-group partition "
                 "(the same model from another start, never a candidate; sweep.fit_unpenalised_partitions)");
}

/* ---- the command ------------------------------------------------------------------------- */
typedef struct {
    const char *config;
    char **sets; /* (argc) the --set values, pointing into argv; free() */
    int nset, slice_i, slice_n, collect, help;
} sweep_args;

/* Both lists are sized from argc: no argument is ever dropped. Not collective. */
static fr_err parse_args(int argc, char **argv, sweep_args *a)
{
    memset(a, 0, sizeof *a);
    a->slice_n = 1;
    char **rest = NULL;
    TRY(FR_CALLOC(a->sets, argc));
    fr_err rc = FR_CALLOC(rest, argc);
    int nr = 0;
    if (rc == FR_OK) rest[nr++] = argv[0];
    for (int i = 1; i < argc && rc == FR_OK; ++i) {
        if (!strcmp(argv[i], "--collect")) a->collect = 1;
        else if (!strcmp(argv[i], "--slice") || !strncmp(argv[i], "--slice=", 8)) {
            const char *v = argv[i][7] == '=' ? argv[i] + 8 : (i + 1 < argc ? argv[++i] : NULL);
            char tail = 0;
            if (!v || sscanf(v, "%d/%d%c", &a->slice_i, &a->slice_n, &tail) != 2 || a->slice_n < 1 || a->slice_i < 0 ||
                a->slice_i >= a->slice_n)
                rc = FR_FAIL(FR_EUSAGE, "sweep: --slice needs I/N with 0 <= I < N, got '%s'", v ? v : "");
        } else {
            rest[nr++] = argv[i];
        }
    }
    if (rc == FR_OK) rc = fr_cli_config_args(nr, rest, &a->config, &a->nset, a->sets, argc, sweep_usage, &a->help);
    free(rest);
    return rc;
}

fr_err fr_cmd_sweep(int argc, char **argv)
{
    MPI_Comm world = MPI_COMM_WORLD;
    int rank, size;
    CHECK_MPI(MPI_Comm_rank(world, &rank));
    CHECK_MPI(MPI_Comm_size(world, &size));
    sweep_args a;
    fr_err rc = parse_args(argc, argv, &a);
    if (rc == FR_OK && a.help) {
        if (rank == 0) sweep_usage();
        free(a.sets);
        return FR_OK;
    }
    fr_config *base = NULL;
    if (rc == FR_OK) rc = FR_CALLOC(base, 1);
    if (rc == FR_OK) rc = fr_config_load(world, a.config, a.nset, a.sets, 1, base);
    free(a.sets);
    if (!base) return rc;
    fr_sweep_run *runs = NULL;
    fr_sweep_record *recs = NULL;
    int n = 0;
    /* the run list is a pure function of the config: every rank expands it */
    if (rc == FR_OK) {
        rc = base->folds < 2 ? FR_FAIL(FR_EINVAL, "sweep: cv.folds = %d, but selection needs held-out trials (>= 2)",
                                       base->folds)
                             : fr_sweep_expand(base, &runs, &n);
        if (rc == FR_OK) rc = FR_CALLOC(recs, n);
        rc = fr_error_agree(&world, rc);
    }
    fr_sweep_rule rule;
    fr_sweep_rule_from_config(base, &rule);
    char runs_dir[FR_CFG_PATH_MAX + 16], manifest[FR_CFG_PATH_MAX + 64];
    snprintf(runs_dir, sizeof runs_dir, "%s.runs", base->output_path);
    if (a.slice_n > 1) snprintf(manifest, sizeof manifest, "%s.manifest.slice%dof%d", base->output_path, a.slice_i, a.slice_n);
    else snprintf(manifest, sizeof manifest, "%s.manifest", base->output_path);
    /* before any work: a second sweep (or fit) on this output stops here;
     * slices of one sweep share the output and each lock their manifest */
    fr_outlock lock;
    memset(&lock, 0, sizeof lock);
    char slice[64];
    snprintf(slice, sizeof slice, "slice%dof%d", a.slice_i, a.slice_n);
    if (rc == FR_OK) rc = fr_outlock_take(world, base->output_path, a.slice_n > 1 && !a.collect ? slice : NULL, &lock);
    if (rc == FR_OK && a.collect) {
        fr_err lr = FR_OK;
        if (rank == 0) {
            lr = read_all_manifests(base->output_path, runs, n, recs);
            if (lr == FR_OK) lr = assemble(base, runs, recs, n, &rule, runs_dir, size);
        }
        rc = fr_error_agree(&world, lr);
        goto out;
    }
    if (rc == FR_OK) {
        fr_err lr = FR_OK;
        if (rank == 0) {
            lr = fr_mkdir_p(runs_dir);
            if (lr == FR_OK) lr = fr_ckpt_dir_ready(base->checkpoint_dir);
            if (lr == FR_OK) lr = fr_results_check_writable(MPI_COMM_SELF, base->output_path);
        }
        rc = fr_error_agree(&world, lr);
    }
    /* teams; each opens the data set once (only K, groups, beta, seed, fold vary) */
    int rpf = base->ranks_per_fit; /* >= 1: the option table's minimum */
    int team_id = rank / rpf, n_teams = (size + rpf - 1) / rpf;
    /* Results do not depend on a team's size, only the speed does: say so
     * rather than quietly fit with fewer ranks than asked. */
    if (rc == FR_OK && size % rpf != 0)
        LOG_WARN("sweep: sweep.ranks_per_fit = %d does not divide the %d ranks: the last team has %d rank(s)", rpf,
                 size, size - (n_teams - 1) * rpf);
    MPI_Comm team = MPI_COMM_NULL;
    if (rc == FR_OK) rc = fr_check_mpi(MPI_Comm_split(world, team_id, rank, &team), "MPI_Comm_split", __FILE__, __LINE__);
    /* inherited from world, but every communicator the program makes sets it */
    if (rc == FR_OK) rc = fr_comm_errors_return(team);
    int tr = 0;
    if (rc == FR_OK) rc = fr_check_mpi(MPI_Comm_rank(team, &tr), "MPI_Comm_rank(team)", __FILE__, __LINE__);
    fr_dataset ds;
    memset(&ds, 0, sizeof ds);
    unsigned char *split0 = NULL;
    if (rc == FR_OK) {
        rc = fr_fit_prepare(team, base, &ds, &split0);
        rc = fr_error_agree(&world, rc);
    }
    coord c;
    memset(&c, 0, sizeof c);
    if (rc == FR_OK && rank == 0) {
        fr_err lr = read_all_manifests(base->output_path, runs, n, recs);
        /* only this job's manifest counts for skipping, but every done run is kept */
        if (lr == FR_OK) lr = FR_CALLOC(c.queue, n);
        for (int i = 0; i < n && lr == FR_OK; ++i) {
            char p[FR_CFG_PATH_MAX + 300];
            snprintf(p, sizeof p, "%s/%s.h5", runs_dir, runs[i].id);
            if (recs[i].status == FR_RUN_DONE && access(p, R_OK) != 0) recs[i].status = FR_RUN_PENDING;
            if (recs[i].status != FR_RUN_DONE) memset(&recs[i], 0, sizeof recs[i]);
        }
        if (lr != FR_OK) fr_fatal(lr);
        int *order = c.queue;
        fr_sweep_queue_order(runs, n, order);
        int skipped = 0;
        for (int i = 0; i < n; ++i) {
            const fr_sweep_run *r = &runs[order[i]];
            if (!fr_sweep_in_slice(r->index, a.slice_i, a.slice_n)) continue;
            if (recs[r->index].status == FR_RUN_DONE) {
                ++skipped;
                continue;
            }
            order[c.nq++] = r->index;
            c.cost_todo += r->cost;
        }
        c.runs = runs;
        c.n = n;
        c.recs = recs;
        c.manifest = manifest;
        c.todo = c.nq;
        c.remote_open = n_teams - 1;
        c.t0 = fr_wtime();
        LOG_INFO("sweep: %d runs in the sweep%s, %d already done, %d to fit on %d team(s) of %d rank(s)", n,
                 a.slice_n > 1 ? " (this slice's share)" : "", skipped, c.nq, n_teams, rpf < size ? rpf : size);
        log_plan(base);
        /* the manifest exists from the start (done runs of earlier jobs included) */
        lr = fr_sweep_manifest_write(manifest, recs, n);
        if (lr != FR_OK) fr_fatal(lr);
        fr_trainer_set_between_steps(coord_hook, &c);
    }
    int stopped = 0;
    if (rc == FR_OK) {
        fr_trainer_install_signals();
        sweep_msg m;
        memset(&m, 0, sizeof m);
        m.index = -1;
        double fit_start = fr_process_start(); /* a run's start-up: since the team's previous run ended */
        for (;;) {
            int idx = -1;
            if (tr == 0) {
                if (rank == 0) {
                    coord_record(&c, m.index, &m.rec, m.interrupted);
                    coord_service(&c, 0);
                    idx = coord_next(&c);
                } else {
                    CHECK_MPI(MPI_Send(&m, (int)sizeof m, MPI_BYTE, 0, TAG_REQ, world));
                    CHECK_MPI(MPI_Recv(&idx, 1, MPI_INT, 0, TAG_WORK, world, MPI_STATUS_IGNORE));
                }
            }
            CHECK_MPI(MPI_Bcast(&idx, 1, MPI_INT, 0, team));
            if (idx < 0) break;
            memset(&m, 0, sizeof m);
            m.index = idx;
            fr_phases ph;
            fr_phases_start(&ph, FR_PH_STARTUP, fit_start);
            fr_err fr = fit_one(team, base, &ds, &runs[idx], &rule, runs_dir, &ph, &m.rec);
            fit_start = fr_wtime();
            if (fr == FR_ESIGNAL) {
                m.interrupted = stopped = 1;
            } else if (fr != FR_OK) {
                fr_fatal(fr); /* out of memory and the like: nothing sensible to continue with */
            }
        }
        if (rank == 0) coord_service(&c, 1);
        fr_trainer_set_between_steps(NULL, NULL);
        int any = stopped;
        CHECK_MPI(MPI_Allreduce(&stopped, &any, 1, MPI_INT, MPI_MAX, world));
        stopped = any;
    }
    if (rc == FR_OK && (stopped || fr_trainer_stop_requested())) {
        rc = FR_FAIL(FR_ESIGNAL, "sweep stopped on a signal; finished runs are in %s and running ones checkpointed: "
                                 "rerun the same command to resume",
                     manifest);
        rc = fr_error_agree(&world, rc);
    } else if (rc == FR_OK) {
        fr_err lr = FR_OK;
        if (rank == 0) {
            LOG_INFO("sweep: %d runs fitted (%d failed) in %.1f s", c.finished, c.failed, fr_wtime() - c.t0);
            if (a.slice_n > 1)
                LOG_INFO("sweep: slice %d/%d finished; assemble with `facrnn sweep CONFIG --collect` after all slices",
                         a.slice_i, a.slice_n);
            else lr = assemble(base, runs, recs, n, &rule, runs_dir, size);
        }
        rc = fr_error_agree(&world, lr);
    }
    free(c.queue);
    free(split0);
    fr_dataset_free(&ds);
    if (team != MPI_COMM_NULL) {
        fr_err fe = fr_check_mpi(MPI_Comm_free(&team), "MPI_Comm_free(team)", __FILE__, __LINE__);
        if (rc == FR_OK) rc = fe;
    }
out:
    fr_outlock_release(&lock);
    free(runs);
    free(recs);
    free(base);
    return rc;
}
