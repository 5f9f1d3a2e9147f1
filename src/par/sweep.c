/* sweep: the `facrnn sweep CONFIG [--set k=v] [--slice I/N] [--collect]`
 * command. Ranks form teams of sweep.ranks_per_fit (MPI_Comm_split by
 * rank / ranks_per_fit); each team opens the data set once and fits one run
 * at a time with fr_train on its own communicator. World rank 0 is the
 * coordinator and also leads team 0: it hands out runs longest first from a
 * work queue, answering the other team leaders' point-to-point requests
 * (which carry the previous run's record) from a hook the trainer calls
 * between steps, so no team waits longer than one step of team 0.
 *
 * Files (docs/formats.md): each finished run is written atomically by its
 * team into <output.path>.runs/<run_id>.h5; rank 0 rewrites the manifest
 * <output.path>.manifest (atomic.h) after every finished run; at the end
 * rank 0 assembles <output.path> (sweep_assemble.c) and <output.path>.csv, each replaced atomically, so every
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
    printf("usage: [mpirun -n P] facrnn sweep CONFIG.yaml [--set key=value ...] [--slice I/N] [--collect [--partial]]\n"
           "                                     [--dry-run]\n\n"
           "Fits every run of the sweep (sweep.ranks x partitions x betas x seeds x cv folds) in teams of\n"
           "sweep.ranks_per_fit ranks, then selects a model (README \"Sweeps\"). Rerunning resumes.\n"
           "  --slice I/N   run only runs with index %% N == I (0 <= I < N), e.g. one Slurm array task\n"
           "  --collect     only assemble the results file, table and selection from finished runs;\n"
           "                refuses (listing them) while runs are missing, unless --partial\n"
           "  --dry-run     print the runs, a cost estimate per run (from a 2-epoch calibration fit of the\n"
           "                costliest run on this machine) and the total core-hours; fits nothing\n");
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
    const char *readout; /* fr_sweep_readout_text of the rule */
    int finished, failed, todo;
    double cost_done, cost_todo, t0;
    double t_polled;        /* when coord_hook last looked for requests */
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
    fr_err rc = fr_sweep_manifest_write(c->manifest, c->recs, c->n, c->readout);
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
            if (fr_comm_probe_idle(MPI_ANY_SOURCE, TAG_REQ, MPI_COMM_WORLD, &st) != FR_OK) fr_fatal(FR_EMPI);
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

/* Between the coordinator's own training steps: a look for requests at most
 * every FR_COORD_POLL_S seconds, since each look may yield the core (Open
 * MPI's yield_when_idle) and a step takes well under a millisecond. */
#define FR_COORD_POLL_S 0.005
static void coord_hook(void *ctx)
{
    coord *c = ctx;
    double now = fr_wtime();
    if (now - c->t_polled < FR_COORD_POLL_S) return;
    c->t_polled = now;
    coord_service(c, 0);
}

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

/* Held-out dynamical coupling between the groups of one fitted run, and
 * their predictability (coupling.h): latents standardised with
 * training-bin moments, pair moments of every lag of the rule summed over
 * the team in one Allreduce (trials are whole on each rank, so every pair
 * is local). c_max is the largest coupling over groups and lags, pred the
 * worst group's predictability at the first lag. Every rank gets the same
 * numbers. Collective over team. */
static fr_err team_coupling(MPI_Comm team, const fr_dataset *ds, const unsigned char *split, const fr_sweep_run *run,
                            const fr_sweep_rule *rule, const double *lat /* (rows, K) */, double *c_max, double *pred)
{
    int K = run->K, quad = K <= FR_COUPLING_QUAD_MAX_K, P = fr_coupling_nfeat(K, quad), NL = rule->n_coupling_lags;
    long long nt = ds->trial_hi - ds->trial_lo;
    *c_max = *pred = NAN;
    if (run->G < 2) {
        *c_max = 0;
        return FR_OK;
    }
    fr_moments zm, tr[FR_CFG_MAX_LIST], te[FR_CFG_MAX_LIST];
    memset(&zm, 0, sizeof zm), memset(tr, 0, sizeof tr), memset(te, 0, sizeof te);
    long long *off = NULL;
    unsigned char *is_train = NULL;
    double *mean = NULL, *sd = NULL, *flat = NULL; /* (K) each, one allocation; flat: every lag's moments */
    fr_err rc = FR_CALLOC(mean, 2 * (size_t)K);
    if (rc == FR_OK) sd = mean + K;
    if (rc == FR_OK) rc = fr_moments_init(&zm, K);
    for (int l = 0; l < NL && rc == FR_OK; ++l) {
        rc = fr_moments_init(&tr[l], P + K);
        if (rc == FR_OK) rc = fr_moments_init(&te[l], P + K);
    }
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
    for (int l = 0; l < NL && rc == FR_OK; ++l)
        rc = fr_coupling_pairs_add(&tr[l], &te[l], K, quad, rule->coupling_lags[l], mean, sd, nt, off, is_train, lat);
    /* training and held-out pair moments of every lag in one Allreduce */
    size_t len = 0;
    for (int l = 0; l < NL; ++l) len += tr[l].len + te[l].len;
    if (rc == FR_OK) rc = FR_CALLOC(flat, len ? len : 1);
    rc = fr_error_agree(&team, rc);
    if (rc == FR_OK) {
        size_t o = 0;
        for (int l = 0; l < NL; ++l) {
            memcpy(flat + o, tr[l].buf, tr[l].len * sizeof(double)), o += tr[l].len;
            memcpy(flat + o, te[l].buf, te[l].len * sizeof(double)), o += te[l].len;
        }
        rc = fr_check_mpi(MPI_Allreduce(MPI_IN_PLACE, flat, (int)len, MPI_DOUBLE, MPI_SUM, team), "MPI_Allreduce",
                          __FILE__, __LINE__);
        o = 0;
        for (int l = 0; l < NL; ++l) {
            memcpy(tr[l].buf, flat + o, tr[l].len * sizeof(double)), o += tr[l].len;
            memcpy(te[l].buf, flat + o, te[l].len * sizeof(double)), o += te[l].len;
        }
    }
    double cm = -INFINITY;
    for (int l = 0; l < NL && rc == FR_OK; ++l) {
        double c = NAN, p = NAN;
        if (fr_coupling_from_moments(&tr[l], &te[l], K, quad, run->G, run->groups, NULL, &c, &p) != FR_OK) {
            /* too few pairs at this lag (tiny data): no evidence either way, not a failed run */
            LOG_WARN("sweep: %s: no dynamical coupling at lag %d: %s", run->id, rule->coupling_lags[l], fr_error_msg());
            fr_error_clear();
            cm = NAN;
            break;
        }
        if (c > cm) cm = c;
        if (l == 0) *pred = p;
    }
    if (rc == FR_OK) *c_max = cm;
    fr_moments_free(&zm);
    for (int l = 0; l < NL; ++l) fr_moments_free(&tr[l]), fr_moments_free(&te[l]);
    free(flat);
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
    rec->co_bps = rec->co_r2 = rec->behavior_align_r2 = rec->behavior_align_all_r2 = NAN;
    rec->pc_obs = rec->pc_null_mean = rec->pc_null_sd = NAN;
    rec->objective = rec->coupling = rec->predictability = NAN;
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
    double coupling = NAN, predictability = NAN;
    if (rc == FR_OK) rc = team_coupling(team, ds, split, run, rule, res.latents, &coupling, &predictability);
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
                if (w == FR_OK) w = fr_h5_attr_double(g, "heldout_group_predictability", predictability);
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
        rec->co_bps = res.heldout.co_bps;
        rec->co_r2 = res.heldout.co_r2;
        rec->behavior_align_r2 = res.heldout.behavior_align_r2;
        rec->behavior_align_all_r2 = res.heldout.behavior_align_all_r2;
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
        rec->predictability = predictability;
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
/* Every manifest of the output (slices included) into recs. A manifest
 * whose done runs were measured with other read-out settings (readout) is
 * an error: their coupling or null would not compare with new runs'. One
 * written before the line existed measured the coupling at lag 1 only. */
static fr_err read_all_manifests(const char *out_path, const fr_sweep_run *runs, int n, fr_sweep_record *recs,
                                 const char *readout)
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
        char had[256];
        rc = fr_sweep_manifest_read(p, &r, &nr, had, sizeof had);
        if (rc == FR_OK && nr > 0) {
            const char *lags = strstr(readout, "coupling_lags=");
            int same = had[0] ? !strcmp(had, readout) : lags && !strcmp(lags, "coupling_lags=1");
            if (!same)
                rc = FR_FAIL(FR_EINVAL,
                             "sweep: %s: its runs' selection read-outs were measured with '%s', this configuration "
                             "asks for '%s'; keep those sweep.* keys, or write the sweep to a new output.path",
                             p, had[0] ? had : "coupling_lags=1", readout);
        }
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

/* --collect: every run must be done (its per-run file present) unless
 * --partial; a selection from some folds only is not the sweep's answer.
 * Lists the missing runs. Rank 0. */
static fr_err collect_check(const fr_sweep_run *runs, const fr_sweep_record *recs, int n, const char *runs_dir,
                            int partial)
{
    int missing = 0, done = 0;
    char list[512] = "";
    size_t k = 0;
    for (int i = 0; i < n; ++i) {
        char p[FR_CFG_PATH_MAX + 300];
        snprintf(p, sizeof p, "%s/%s.h5", runs_dir, runs[i].id);
        if (recs[i].status == FR_RUN_DONE && access(p, R_OK) == 0) {
            ++done;
            continue;
        }
        if (missing++ < 5 && k + strlen(runs[i].id) + 3 < sizeof list)
            k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", k ? ", " : "", runs[i].id);
    }
    if (done == 0) return FR_FAIL(FR_EINVAL, "sweep --collect: none of the %d runs has finished (nothing to collect)", n);
    if (missing && !partial)
        return FR_FAIL(FR_EINVAL,
                       "sweep --collect: %d of %d runs are missing (%s%s); run the missing slices, or add --partial "
                       "to select from the finished runs only",
                       missing, n, list, missing > 5 ? ", ..." : "");
    if (missing) LOG_WARN("sweep --collect --partial: selecting from %d of %d runs (%d missing: %s%s)", done, n,
                          missing, list, missing > 5 ? ", ..." : "");
    return FR_OK;
}

/* --dry-run: the runs, a cost estimate per run and the total, from a short
 * calibration fit of the costliest run on one rank of this machine. The
 * estimate of a run: its planned training steps (restart schedule
 * included) x the calibrated step time, scaled by (K / K_cal)^2, plus the
 * calibration's evaluation time. Rank 0 alone (MPI_COMM_SELF). */
static fr_err dry_run(const fr_config *base, const fr_sweep_run *runs, int n, int size)
{
    int big = 0;
    for (int i = 1; i < n; ++i)
        if (runs[i].cost > runs[big].cost) big = i;
    fr_config *cal = NULL;
    TRY(FR_CALLOC(cal, 1));
    fr_sweep_run_config(base, &runs[big], cal);
    int E = cal->epochs;
    cal->epochs = E < 2 ? E : 2;
    cal->restarts = 1;
    fr_dataset ds;
    memset(&ds, 0, sizeof ds);
    unsigned char *split = NULL;
    fr_fit_result res;
    memset(&res, 0, sizeof res);
    LOG_INFO("sweep --dry-run: calibrating on run %s (%d epoch(s), 1 restart, one rank)", runs[big].id, cal->epochs);
    fr_log_level lvl = fr_log_get_level();
    fr_log_init(0, FR_LOG_WARN); /* the calibration fit's own lines would bury the estimate */
    fr_err rc = fr_fit_prepare(MPI_COMM_SELF, cal, &ds, &split);
    if (rc == FR_OK) rc = fr_train(MPI_COMM_SELF, cal, &ds, split, NULL, &res);
    fr_log_init(0, lvl);
    if (rc == FR_OK) {
        double steps_per_epoch = (double)res.steps / cal->epochs;
        double t_step = res.phases.s[FR_PH_TRAIN] / fmax(1.0, (double)res.steps);
        double t_fixed = res.phases.s[FR_PH_EVAL] + res.phases.s[FR_PH_INIT];
        double total = 0, lo = INFINITY, hi = 0;
        double plan = fr_train_plan_epochs(base); /* every run shares the epochs, restarts and schedule */
        int kmin = runs[0].K, kmax = runs[0].K;
        for (int i = 0; i < n; ++i) {
            double scale = (double)runs[i].K * runs[i].K / ((double)runs[big].K * runs[big].K);
            double s = (plan * steps_per_epoch * t_step + t_fixed) * scale;
            total += s;
            lo = fmin(lo, s);
            hi = fmax(hi, s);
            kmin = runs[i].K < kmin ? runs[i].K : kmin;
            kmax = runs[i].K > kmax ? runs[i].K : kmax;
        }
        printf("sweep --dry-run: %d runs (K %d..%d; %s, %d restart(s) of %d epochs, schedule %s)\n", n, kmin, kmax,
               "folds x seeds x partitions x betas", base->restarts, E, base->restart_schedule);
        printf("calibration: run %s, %.0f steps/epoch, %.3g ms per step, %.2g s evaluation and set-up, on one rank "
               "of this machine\n",
               runs[big].id, steps_per_epoch, 1e3 * t_step, t_fixed);
        printf("estimate per run (one rank): %.3g s .. %.3g s; total %.3g core-hours (%.3g h wall on %d rank(s) "
               "with one rank per fit)\n",
               lo, hi, total / 3600.0, total / 3600.0 / (size > 0 ? size : 1), size);
        printf("(an estimate: the selection's null and coupling read-outs and start-up are not included)\n");
        fflush(stdout);
    }
    fr_fit_result_free(&res);
    free(split);
    fr_dataset_free(&ds);
    free(cal);
    return rc;
}

/* ---- the command ------------------------------------------------------------------------- */
typedef struct {
    const char *config;
    char **sets; /* (argc) the --set values, pointing into argv; free() */
    int nset, slice_i, slice_n, collect, partial, dry_run, help;
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
        else if (!strcmp(argv[i], "--partial")) a->partial = 1;
        else if (!strcmp(argv[i], "--dry-run")) a->dry_run = 1;
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
    if (rc == FR_OK && a.dry_run) {
        rc = fr_error_agree(&world, rank == 0 ? dry_run(base, runs, n, size) : FR_OK);
        goto out;
    }
    fr_sweep_rule rule;
    fr_sweep_rule_from_config(base, &rule);
    char readout[256];
    fr_sweep_readout_text(&rule, readout, sizeof readout);
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
            lr = read_all_manifests(base->output_path, runs, n, recs, readout);
            if (lr == FR_OK) lr = collect_check(runs, recs, n, runs_dir, a.partial);
            if (lr == FR_OK) lr = fr_sweep_assemble(base, runs, recs, n, &rule, runs_dir, size);
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
        fr_err lr = read_all_manifests(base->output_path, runs, n, recs, readout);
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
        c.readout = readout;
        c.todo = c.nq;
        c.remote_open = n_teams - 1;
        c.t0 = fr_wtime();
        LOG_INFO("sweep: %d runs in the sweep%s, %d already done, %d to fit on %d team(s) of %d rank(s)", n,
                 a.slice_n > 1 ? " (this slice's share)" : "", skipped, c.nq, n_teams, rpf < size ? rpf : size);
        log_plan(base);
        /* the manifest exists from the start (done runs of earlier jobs included) */
        lr = fr_sweep_manifest_write(manifest, recs, n, readout);
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
                    /* rank 0 may be inside a step or writing a file: wait idle */
                    MPI_Request req;
                    CHECK_MPI(MPI_Send(&m, (int)sizeof m, MPI_BYTE, 0, TAG_REQ, world));
                    CHECK_MPI(MPI_Irecv(&idx, 1, MPI_INT, 0, TAG_WORK, world, &req));
                    TRY(fr_comm_wait_idle(&req, NULL));
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
        /* teams done early wait here for the last runs: idle, not spinning */
        int any = stopped;
        MPI_Request req;
        CHECK_MPI(MPI_Iallreduce(&stopped, &any, 1, MPI_INT, MPI_MAX, world, &req));
        TRY(fr_comm_wait_idle(&req, NULL));
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
            else lr = fr_sweep_assemble(base, runs, recs, n, &rule, runs_dir, size);
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
