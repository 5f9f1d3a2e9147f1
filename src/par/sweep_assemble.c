/* sweep_assemble: the end of a sweep on rank 0: <output.path> (H5Ocopy of
 * every finished run's group from <output.path>.runs/, /sweep/table,
 * /sweep/selection with the rule's evidence) and <output.path>.csv, each
 * replaced through the atomic helper. Split from sweep.c (the command, the
 * teams and the coordinator). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "facrnn/atomic.h"
#include "facrnn/h5util.h"
#include "facrnn/results.h"
#include "facrnn/sweep.h"
#include "facrnn/version.h"

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

/* The per-run number columns (sweep.h): getters over (run, record). */
#define REC_GET(fn, field) \
    static double fn(const fr_sweep_run *run, const fr_sweep_record *r) { (void)run; return (double)r->field; }
REC_GET(get_heldout_nll, heldout_nll)
REC_GET(get_heldout_pc, heldout_pc)
REC_GET(get_heldout_r2, heldout_r2)
REC_GET(get_group_latent_r2, group_latent_r2)
REC_GET(get_co_bps, co_bps)
REC_GET(get_co_r2, co_r2)
REC_GET(get_behavior_align_r2, behavior_align_r2)
REC_GET(get_behavior_align_all_r2, behavior_align_all_r2)
REC_GET(get_train_nll, train_nll)
REC_GET(get_pc_obs, pc_obs)
REC_GET(get_pc_null_mean, pc_null_mean)
REC_GET(get_pc_null_sd, pc_null_sd)
REC_GET(get_coupling, coupling)
REC_GET(get_predictability, predictability)
REC_GET(get_objective, objective)
REC_GET(get_epochs_done, epochs_done)
REC_GET(get_seconds, seconds)
#undef REC_GET

const fr_sweep_col fr_sweep_cols[FR_SWEEP_NCOLS] = {
    {"heldout_nll_per_bin", get_heldout_nll, 0, 1, "%.17g"},
    {"heldout_pc", get_heldout_pc, 0, 1, "%.17g"},
    {"heldout_r2", get_heldout_r2, 0, 1, "%.17g"},
    {"heldout_group_latent_r2", get_group_latent_r2, 0, 1, "%.17g"},
    {"heldout_co_bps", get_co_bps, 0, 1, "%.17g"},
    {"heldout_co_r2", get_co_r2, 0, 1, "%.17g"},
    {"heldout_behavior_align_r2", get_behavior_align_r2, 0, 1, "%.17g"},
    {"heldout_behavior_align_all_r2", get_behavior_align_all_r2, 0, 1, "%.17g"},
    {"train_nll_per_bin", get_train_nll, 0, 0, "%.17g"},
    {"heldout_pc_partition", get_pc_obs, 0, 0, "%.17g"},
    {"heldout_pc_null_mean", get_pc_null_mean, 0, 1, "%.17g"},
    {"heldout_pc_null_sd", get_pc_null_sd, 0, 0, "%.17g"},
    {"independence", fr_sweep_independence, 0, 1, "%.17g"},
    {"coupling", get_coupling, 0, 1, "%.17g"},
    {"predictability", get_predictability, 0, 1, "%.17g"},
    {"objective", get_objective, 0, 1, "%.17g"},
    {"epochs_done", get_epochs_done, 1, 1, "%.0f"},
    {"seconds", get_seconds, 0, 1, "%.3f"},
};

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
    for (int c = 0; c < FR_SWEEP_NCOLS && rc == FR_OK; ++c) {
        const fr_sweep_col *d = &fr_sweep_cols[c];
        if (d->is_count) {
            for (int i = 0; i < n; ++i) ep[i] = (long long)d->get(&runs[i], &recs[i]);
            rc = write_ll_col(g, d->name, n, ep);
        } else {
            for (int i = 0; i < n; ++i) col[i] = d->get(&runs[i], &recs[i]);
            rc = write_dbl_col(g, d->name, n, col);
        }
    }
    if (rc == FR_OK) rc = write_str_col(g, "reason", n, rs);
    if (rc == FR_OK)
        rc = fr_h5_attr_str(g, "layout", "parallel 1-D datasets, one row per run in canonical run-list order");
    free(ids), free(gt), free(st), free(rs), free(gbuf), free(K), free(seed), free(fold), free(ep), free(col);
    H5Gclose(g);
    return rc;
}

static fr_err write_selection(hid_t sw, const fr_sweep_selection *sel, const fr_sweep_rule *rule,
                              const fr_sweep_confidence *conf)
{
    hid_t g = H5Gcreate2(sw, "selection", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return FR_FAIL(FR_EIO, "cannot create /sweep/selection");
    fr_err rc = fr_h5_attr_str(g, "rule", sel->rule);
    if (rc == FR_OK) rc = fr_h5_attr_str(g, "why", sel->why);
    if (rc == FR_OK) rc = fr_h5_attr_double(g, "se_rule", rule->se_mult);
    if (rc == FR_OK) rc = fr_h5_attr_double(g, "min_independence", rule->min_independence);
    if (rc == FR_OK) rc = fr_h5_attr_int(g, "null_samples", rule->null_samples);
    if (rc == FR_OK) rc = fr_h5_attr_double(g, "max_coupling", rule->max_coupling);
    char lags[256];
    fr_sweep_lags_text(rule, ", ", lags, sizeof lags);
    if (rc == FR_OK) rc = fr_h5_attr_str(g, "coupling_lags", lags);
    if (rc == FR_OK) rc = fr_h5_attr_double(g, "min_predictability", rule->min_predictability);
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
        if (rc == FR_OK) rc = fr_h5_attr_double(g, "predictability", c->pred_mean);
        if (rc == FR_OK) rc = fr_h5_attr_double(g, "predictability_se", c->pred_se);
        if (rc == FR_OK) rc = fr_h5_attr_str(g, "score_name", "held-out NLL per bin, mean +- SE over folds x seeds");
        if (rc == FR_OK) rc = fr_h5_attr_str(g, "confidence", conf->text);
        if (rc == FR_OK) rc = fr_h5_attr_int(g, "confidence_fits", conf->units);
        if (rc == FR_OK) rc = fr_h5_attr_int(g, "confidence_fits_agree", conf->units_agree);
        if (rc == FR_OK) rc = fr_h5_attr_int(g, "confidence_resamples", conf->boot_n);
        if (rc == FR_OK) rc = fr_h5_attr_int(g, "confidence_resamples_agree", conf->boot_agree);
        if (rc == FR_OK) rc = fr_h5_attr_str(g, "confidence_alternative", conf->alt);
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
    DCOL("predictability_mean", s[i].pred_mean)
    DCOL("predictability_se", s[i].pred_se)
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
    fprintf(f, "run_id,K,groups,beta,seed,fold,status");
    for (int c = 0; c < FR_SWEEP_NCOLS; ++c)
        if (fr_sweep_cols[c].csv) fprintf(f, ",%s", fr_sweep_cols[c].name);
    fprintf(f, "\n");
    for (int i = 0; i < n; ++i) {
        char gt[256];
        fr_groups_text(runs[i].G, runs[i].groups, gt, sizeof gt);
        const fr_sweep_record *r = &recs[i];
        fprintf(f, "%s,%d,%s,%.17g,%lld,%d,%s", runs[i].id, runs[i].K, gt, runs[i].beta, runs[i].seed, runs[i].fold,
                fr_sweep_status_name(r->status));
        for (int c = 0; c < FR_SWEEP_NCOLS; ++c) {
            if (!fr_sweep_cols[c].csv) continue;
            fputc(',', f);
            fprintf(f, fr_sweep_cols[c].csv_fmt, fr_sweep_cols[c].get(&runs[i], r));
        }
        fputc('\n', f);
    }
    return fr_atomic_commit(&a);
}

/* Mean of the finite co-smoothing scores (co_bps, or co_r2 when r2) of the
 * done runs of configuration s (K, partition, beta); NaN when none. */
static double co_mean(const fr_sweep_run *runs, const fr_sweep_record *recs, int n, const fr_sweep_score *s, int r2)
{
    double sum = 0;
    int m = 0;
    for (int i = 0; i < n; ++i) {
        const fr_sweep_run *u = &runs[i];
        if (recs[i].status != FR_RUN_DONE || u->K != s->K || u->G != s->G || u->beta != s->beta) continue;
        if (memcmp(u->groups, s->groups, sizeof(int) * (size_t)u->G) != 0) continue;
        double v = r2 ? recs[i].co_r2 : recs[i].co_bps;
        if (isfinite(v)) sum += v, ++m;
    }
    return m ? sum / m : NAN;
}

/* Build <output.path> (atomic.h) and the CSV from the per-run files and
 * records. Not collective: rank 0 only, serial HDF5. */
fr_err fr_sweep_assemble(const fr_config *base, const fr_sweep_run *runs, fr_sweep_record *recs, int n,
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
    fr_sweep_confidence conf;
    fr_err crc = fr_sweep_confidence_of(runs, recs, n, rule, &sel, (uint64_t)base->seed, &conf);
    if (crc != FR_OK) {
        fr_sweep_selection_free(&sel);
        return crc;
    }
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
    if (rc == FR_OK) rc = write_selection(sw, &sel, rule, &conf);
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
                     "coupling %.3f +- %.3f, predictability %.3f +- %.3f",
                     c->K, cg, c->beta, c->nll_mean, c->nll_se, c->ind_mean, c->ind_se, c->coup_mean, c->coup_se,
                     c->pred_mean, c->pred_se);
            LOG_INFO("confidence: %s", conf.text);
        }
        /* co-smoothing columns when the runs have held-out channels */
        int have_co = 0;
        for (int i = 0; i < n && !have_co; ++i) have_co = isfinite(recs[i].co_bps) || isfinite(recs[i].co_r2);
        LOG_INFO("  %-3s %-10s %-8s %-4s %-22s %-20s %-20s %-20s %s%s", "K", "groups", "beta", "runs",
                 "held-out nll/bin (SE)", "independence (SE)", "coupling (SE)", "predictability (SE)",
                 have_co ? "co_bps   co_r2    " : "", "");
        /* the ten best by NLL, then every multi-group row of the selected K
         * that the partition rule looked at (the chosen one included) */
        int Kc = sel.chosen >= 0 ? sel.ranked[sel.chosen].K : -1;
        for (int c = 0; c < sel.n; ++c) {
            const fr_sweep_score *t = &sel.ranked[c];
            if (c >= 10 && c != sel.chosen && !(t->K == Kc && t->G > 1 && t->beta > 0)) continue;
            const fr_sweep_score *s = &sel.ranked[c];
            char gt[256];
            fr_groups_text(s->G, s->groups, gt, sizeof gt);
            char co[64] = "";
            if (have_co)
                snprintf(co, sizeof co, "%-8.4f %-8.4f ", co_mean(runs, recs, n, s, 0), co_mean(runs, recs, n, s, 1));
            LOG_INFO("  %-3d %-10s %-8g %-4d %-10.6g (%-8.2g)   %-7.3f (%-7.2g)   %-7.3f (%-7.2g)   %-7.3f (%-7.2g)   %s%s%s",
                     s->K, gt, s->beta, s->n, s->nll_mean, s->nll_se, s->ind_mean, s->ind_se, s->coup_mean, s->coup_se,
                     s->pred_mean, s->pred_se, co, c == sel.chosen ? "<- selected" : "", s->supported ? " supported" : "");
        }
    }
    fr_sweep_selection_free(&sel);
    return rc;
}

/* Records from every manifest of this sweep (the single-job one and any
 * --slice ones), matched to the run list. Not collective. */
