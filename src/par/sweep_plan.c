/* sweep_plan: the pure half of the sweep module (see sweep.h): integer
 * partitions, the canonical run list and its ids, queue order and slices,
 * the manifest text format, the held-out independence null and the
 * selection rule. No MPI here, so all of it is unit-tested directly.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "facrnn/atomic.h"
#include "facrnn/model.h"
#include "facrnn/rng.h"
#include "facrnn/sweep.h"

/* ---- integer partitions ---------------------------------------------------- */
typedef struct {
    int max_groups, min_size, cap, n;
    int (*parts)[FR_CFG_MAX_GROUPS + 1];
    int cur[FR_CFG_MAX_GROUPS];
    fr_err rc;
} part_gen;

/* Extend cur[0..depth) with parts <= maxpart that sum to `rest`. */
static void part_rec(part_gen *g, int K, int rest, int maxpart, int depth)
{
    if (g->rc != FR_OK) return;
    if (rest == 0) {
        if (g->n >= g->cap) {
            g->rc = FR_FAIL(FR_EINVAL,
                            "sweep.partitions: `all` gives more than %d partitions of K = %d; bound it with "
                            "sweep.max_groups or sweep.min_group_size",
                            g->cap, K);
            return;
        }
        if (g->parts) {
            g->parts[g->n][0] = depth;
            for (int i = 0; i < depth; ++i) g->parts[g->n][i + 1] = g->cur[i];
        }
        g->n++;
        return;
    }
    if (g->max_groups > 0 && depth >= g->max_groups) return;
    if (depth >= FR_CFG_MAX_GROUPS) {
        g->rc = FR_FAIL(FR_EINVAL, "sweep.partitions: a partition of K = %d has more than %d groups; set "
                                   "sweep.max_groups",
                        K, FR_CFG_MAX_GROUPS);
        return;
    }
    for (int h = rest < maxpart ? rest : maxpart; h >= g->min_size; --h) {
        g->cur[depth] = h;
        part_rec(g, K, rest - h, h, depth + 1);
    }
}

fr_err fr_sweep_partitions(int K, int max_groups, int min_size, int (*parts)[FR_CFG_MAX_GROUPS + 1], int cap,
                           int *n)
{
    *n = 0;
    if (K < 1) return FR_FAIL(FR_EINVAL, "sweep.ranks: K = %d must be >= 1", K);
    part_gen g = {max_groups, min_size < 1 ? 1 : min_size, cap, 0, parts, {0}, FR_OK};
    part_rec(&g, K, K, K, 0);
    *n = g.n;
    return g.rc;
}


/* ---- run list ----------------------------------------------------------------- */
void fr_sweep_run_config(const fr_config *base, const fr_sweep_run *run, fr_config *out)
{
    *out = *base;
    out->rank = run->K;
    out->n_groups = run->G;
    memset(out->groups, 0, sizeof out->groups);
    for (int g = 0; g < run->G; ++g) out->groups[g] = run->groups[g];
    out->beta = run->beta;
    out->seed = run->seed;
    out->fold = run->fold;
}

/* The partitions of K the sweep visits, as rows [G, h1..hG]. */
static fr_err partitions_for(const fr_config *b, int K, int (*parts)[FR_CFG_MAX_GROUPS + 1], int cap, int *np)
{
    *np = 0;
    if (b->sweep_partitions_all) return fr_sweep_partitions(K, b->sweep_max_groups, b->sweep_min_group_size, parts, cap, np);
    if (b->n_sweep_partitions > 0) {
        for (int p = 0; p < b->n_sweep_partitions; ++p) {
            const int *row = b->sweep_partitions[p];
            int s = 0;
            for (int g = 1; g <= row[0]; ++g) s += row[g];
            if (s != K) continue;
            if (*np >= cap) return FR_FAIL(FR_EINVAL, "sweep.partitions: too many partitions of K = %d", K);
            memcpy(parts[(*np)++], row, sizeof parts[0]);
        }
        return FR_OK;
    }
    /* Unset: model.groups where it sums to K, else the plain lrRNN [K]. */
    int s = 0;
    for (int g = 0; g < b->n_groups; ++g) s += b->groups[g];
    memset(parts[0], 0, sizeof parts[0]);
    if (b->n_groups > 0 && s == K) {
        parts[0][0] = b->n_groups;
        for (int g = 0; g < b->n_groups; ++g) parts[0][g + 1] = b->groups[g];
    } else {
        parts[0][0] = 1;
        parts[0][1] = K;
    }
    *np = 1;
    return FR_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Whether the sweep fits a partition with G groups of some K at betas[bi]
 * (docs/selection.md, "Which runs a sweep fits"); has_one: the sweep has
 * the one-group partition [K] at that K.
 *  - One group: the PC term is 0 for one group, so beta changes nothing
 *    (the fit is the same at every beta): fitted once, at the smallest
 *    beta (its first listing).
 *  - Several groups at beta = 0: the same model as one group from another
 *    initial basis, and never a selection candidate: fitted only with
 *    sweep.fit_unpenalised_partitions, or at a K without the one-group
 *    partition, where they are the unpenalised fits the choice of K reads. */
static int is_planned(const fr_config *b, const double *betas, int nb, int bi, int G, int has_one)
{
    if (G == 1) {
        int lo = 0;
        for (int i = 1; i < nb; ++i)
            if (betas[i] < betas[lo]) lo = i;
        return bi == lo;
    }
    return betas[bi] > 0 || b->sweep_fit_unpenalised || !has_one;
}

/* 1 when the partitions rows (np) include the one-group partition. */
static int has_one_group(int (*parts)[FR_CFG_MAX_GROUPS + 1], int np)
{
    for (int p = 0; p < np; ++p)
        if (parts[p][0] == 1) return 1;
    return 0;
}

fr_err fr_sweep_expand(const fr_config *b, fr_sweep_run **runs_out, int *n_out)
{
    *runs_out = NULL;
    *n_out = 0;
    const int *ks = b->n_sweep_ranks ? b->sweep_ranks : &b->rank;
    int nk = b->n_sweep_ranks ? b->n_sweep_ranks : 1;
    const double *betas = b->n_sweep_betas ? b->sweep_betas : &b->beta;
    int nb = b->n_sweep_betas ? b->n_sweep_betas : 1;
    const long long *seeds = b->n_sweep_seeds ? b->sweep_seeds : &b->seed;
    int ns = b->n_sweep_seeds ? b->n_sweep_seeds : 1;
    int F = b->folds;
    if (nk < 1 || nb < 1 || ns < 1 || F < 1) return FR_FAIL(FR_EINVAL, "sweep: empty ranks, betas, seeds or folds");
    for (int i = 0; i < nk; ++i) {
        if (ks[i] < 1) return FR_FAIL(FR_EINVAL, "sweep.ranks[%d] = %d must be >= 1", i, ks[i]);
        for (int j = 0; j < i; ++j)
            if (ks[j] == ks[i]) return FR_FAIL(FR_EINVAL, "sweep.ranks[%d] = %d repeats sweep.ranks[%d]", i, ks[i], j);
    }
    /* checked here, not through duplicate run ids: one-group runs are
     * planned at one beta only, so a repeat would pass unnoticed there */
    for (int i = 0; i < nb; ++i)
        for (int j = 0; j < i; ++j)
            if (betas[j] == betas[i])
                return FR_FAIL(FR_EINVAL, "sweep.betas[%d] = %g repeats sweep.betas[%d]", i, betas[i], j);
    for (int p = 0; p < b->n_sweep_partitions && !b->sweep_partitions_all; ++p) {
        const int *row = b->sweep_partitions[p];
        int s = 0, ok = 0;
        for (int g = 1; g <= row[0]; ++g) {
            if (row[g] < 1) return FR_FAIL(FR_EINVAL, "sweep.partitions[%d][%d] = %d must be >= 1", p, g - 1, row[g]);
            s += row[g];
        }
        for (int i = 0; i < nk; ++i) ok |= ks[i] == s;
        if (!ok) return FR_FAIL(FR_EINVAL, "sweep.partitions[%d] sums to %d, which is not a K of the sweep", p, s);
    }
    int (*parts)[FR_CFG_MAX_GROUPS + 1] = NULL;
    const int cap = 4096;
    fr_err rc = FR_CALLOC(parts, cap);
    if (rc != FR_OK) return rc;
    /* count first, so the list is allocated once */
    long long total = 0;
    for (int i = 0; i < nk && rc == FR_OK; ++i) {
        int np = 0;
        rc = partitions_for(b, ks[i], parts, cap, &np);
        if (rc == FR_OK && np == 0)
            rc = FR_FAIL(FR_EINVAL, "sweep: K = %d (sweep.ranks[%d]) has no partition to fit (check sweep.partitions, "
                                    "sweep.max_groups, sweep.min_group_size)",
                         ks[i], i);
        int one = has_one_group(parts, np);
        for (int p = 0; p < np && rc == FR_OK; ++p)
            for (int bi = 0; bi < nb; ++bi)
                if (is_planned(b, betas, nb, bi, parts[p][0], one)) total += (long long)ns * F;
    }
    if (rc == FR_OK && total > FR_SWEEP_MAX_RUNS)
        rc = FR_FAIL(FR_EINVAL, "sweep: %lld runs exceed the limit of %d", total, FR_SWEEP_MAX_RUNS);
    fr_sweep_run *runs = NULL;
    if (rc == FR_OK) rc = FR_CALLOC(runs, total > 0 ? total : 1);
    int n = 0;
    fr_config *tmp = NULL;
    if (rc == FR_OK) rc = FR_CALLOC(tmp, 1);
    for (int i = 0; i < nk && rc == FR_OK; ++i) {
        int np = 0;
        rc = partitions_for(b, ks[i], parts, cap, &np);
        int one = has_one_group(parts, np);
        for (int p = 0; p < np && rc == FR_OK; ++p)
            for (int bi = 0; bi < nb && rc == FR_OK; ++bi) {
                if (!is_planned(b, betas, nb, bi, parts[p][0], one)) continue;
                for (int si = 0; si < ns && rc == FR_OK; ++si)
                    for (int f = 0; f < F && rc == FR_OK; ++f) {
                        fr_sweep_run *r = &runs[n];
                        r->index = n;
                        r->K = ks[i];
                        r->G = parts[p][0];
                        for (int g = 0; g < r->G; ++g) r->groups[g] = parts[p][g + 1];
                        r->beta = betas[bi];
                        r->seed = seeds[si];
                        r->fold = f;
                        int R = b->restarts < 1 ? 1 : b->restarts;
                        r->cost = (double)r->K * r->K * (b->epochs > 0 ? b->epochs : 1) * R;
                        fr_sweep_run_config(b, r, tmp);
                        /* one byte more than an id may hold shows a cut one:
                         * cut ids could collide, so refuse rather than cut */
                        char id[FR_SWEEP_ID_MAX + 1];
                        fr_run_id(tmp, id, sizeof id);
                        if (strlen(id) >= FR_SWEEP_ID_MAX) {
                            rc = FR_FAIL(FR_EINVAL,
                                         "sweep: the run id of K = %d with %d groups (%.40s...) is longer than %d "
                                         "characters; use fewer groups (sweep.max_groups) or fewer partitions",
                                         r->K, r->G, id, FR_SWEEP_ID_MAX - 1);
                            continue;
                        }
                        memcpy(r->id, id, strlen(id) + 1);
                        ++n;
                    }
            }
    }
    free(tmp);
    free(parts);
    /* Run ids name files and result groups: they must be unique. */
    char **ids = NULL;
    if (rc == FR_OK) rc = FR_CALLOC(ids, n > 0 ? n : 1);
    if (rc == FR_OK) {
        for (int i = 0; i < n; ++i) ids[i] = runs[i].id;
        qsort(ids, (size_t)n, sizeof *ids, cmp_str);
        for (int i = 1; i < n; ++i)
            if (!strcmp(ids[i], ids[i - 1])) {
                rc = FR_FAIL(FR_EINVAL, "sweep: run %s appears twice (repeated beta, seed or partition)", ids[i]);
                break;
            }
    }
    free(ids);
    if (rc != FR_OK) {
        free(runs);
        return rc;
    }
    *runs_out = runs;
    *n_out = n;
    return FR_OK;
}

static const fr_sweep_run *g_sort_runs;
static int cmp_cost(const void *a, const void *b)
{
    const fr_sweep_run *x = &g_sort_runs[*(const int *)a], *y = &g_sort_runs[*(const int *)b];
    if (x->cost != y->cost) return x->cost > y->cost ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

void fr_sweep_queue_order(const fr_sweep_run *runs, int n, int *order)
{
    for (int i = 0; i < n; ++i) order[i] = i;
    g_sort_runs = runs;
    qsort(order, (size_t)n, sizeof *order, cmp_cost);
    g_sort_runs = NULL;
}

int fr_sweep_in_slice(int index, int slice_i, int slice_n)
{
    return slice_n <= 1 || index % slice_n == slice_i;
}

/* ---- manifest --------------------------------------------------------------------- */
const char *fr_sweep_status_name(int status)
{
    return status == FR_RUN_DONE ? "done" : status == FR_RUN_FAILED ? "failed" : "pending";
}

/* v2 added the training objective and the dynamical coupling (before the
 * reason), v3 the co-smoothing scores co_bps and co_r2 (after them), v4 the
 * behaviour alignment scores (after those), v5 the predictability (after
 * those); v1 to v4 files are still read, with the fields they lack NaN. */
#define MANIFEST_HEADER_V1 "# facrnn sweep manifest v1"
#define MANIFEST_HEADER_V2 "# facrnn sweep manifest v2"
#define MANIFEST_HEADER_V3 "# facrnn sweep manifest v3"
#define MANIFEST_HEADER_V4 "# facrnn sweep manifest v4"
#define MANIFEST_HEADER "# facrnn sweep manifest v5"

void fr_sweep_lags_text(const fr_sweep_rule *rule, const char *sep, char *buf, size_t cap)
{
    int len = 0;
    if (cap) buf[0] = 0;
    for (int l = 0; l < rule->n_coupling_lags && len >= 0 && (size_t)len < cap; ++l)
        len += snprintf(buf + len, cap - (size_t)len, "%s%d", l ? sep : "", rule->coupling_lags[l]);
}

void fr_sweep_readout_text(const fr_sweep_rule *rule, char *buf, size_t cap)
{
    char lags[256];
    fr_sweep_lags_text(rule, ",", lags, sizeof lags);
    snprintf(buf, cap, "null_samples=%d null_max_points=%d null_nmc=%d coupling_lags=%s", rule->null_samples,
             rule->null_max_points, rule->null_nmc, lags);
}

#define READOUT_PREFIX "# readout: "

fr_err fr_sweep_manifest_write(const char *path, const fr_sweep_record *recs, int n, const char *readout)
{
    fr_atomic a;
    TRY(fr_atomic_fopen(&a, path));
    FILE *f = a.f;
    fprintf(f, "%s\n" READOUT_PREFIX "%s\n# id\tstatus\theldout_nll\theldout_r2\theldout_pc\tgroup_latent_r2\ttrain_nll\tpc_obs\t"
               "pc_null_mean\tpc_null_sd\tepochs_done\tseconds\tobjective\tcoupling\tco_bps\tco_r2\t"
               "behavior_align_r2\tbehavior_align_all_r2\tpredictability\treason\n",
            MANIFEST_HEADER, readout);
    for (int i = 0; i < n; ++i) {
        const fr_sweep_record *r = &recs[i];
        if (r->status == FR_RUN_PENDING) continue;
        char reason[FR_SWEEP_REASON_MAX];
        snprintf(reason, sizeof reason, "%s", r->reason);
        for (char *c = reason; *c; ++c)
            if (*c == '\t' || *c == '\n' || *c == '\r') *c = ' ';
        fprintf(f, "%s\t%s\t%.17g\t%.17g\t%.17g\t%.17g\t%.17g\t%.17g\t%.17g\t%.17g\t%d\t%.17g\t%.17g\t%.17g\t%.17g\t%.17g\t%.17g\t%.17g\t%.17g\t%s\n",
                r->id, fr_sweep_status_name(r->status), r->heldout_nll, r->heldout_r2, r->heldout_pc,
                r->group_latent_r2, r->train_nll, r->pc_obs, r->pc_null_mean, r->pc_null_sd, r->epochs_done,
                r->seconds, r->objective, r->coupling, r->co_bps, r->co_r2,
                r->behavior_align_r2, r->behavior_align_all_r2, r->predictability, reason);
    }
    return fr_atomic_commit(&a);
}

fr_err fr_sweep_manifest_read(const char *path, fr_sweep_record **recs_out, int *n_out, char *readout, size_t ro_cap)
{
    *recs_out = NULL;
    *n_out = 0;
    if (readout && ro_cap) readout[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return errno == ENOENT ? FR_OK : FR_FAIL(FR_EIO, "sweep manifest: cannot read %s: %s", path, strerror(errno));
    int cap = 64, n = 0;
    fr_sweep_record *recs = NULL;
    fr_err rc = FR_CALLOC(recs, cap);
    char line[4096];
    long lineno = 0;
    int version = 5;
    while (rc == FR_OK && fgets(line, sizeof line, f)) {
        ++lineno;
        if (lineno == 1) {
            if (!strncmp(line, MANIFEST_HEADER_V1, strlen(MANIFEST_HEADER_V1))) version = 1;
            else if (!strncmp(line, MANIFEST_HEADER_V2, strlen(MANIFEST_HEADER_V2))) version = 2;
            else if (!strncmp(line, MANIFEST_HEADER_V3, strlen(MANIFEST_HEADER_V3))) version = 3;
            else if (!strncmp(line, MANIFEST_HEADER_V4, strlen(MANIFEST_HEADER_V4))) version = 4;
            else if (strncmp(line, MANIFEST_HEADER, strlen(MANIFEST_HEADER)) != 0) {
                rc = FR_FAIL(FR_EINVAL, "sweep manifest %s: line 1 is not '%s'", path, MANIFEST_HEADER);
                break;
            }
        }
        if (!strncmp(line, READOUT_PREFIX, strlen(READOUT_PREFIX)) && readout && ro_cap) {
            snprintf(readout, ro_cap, "%s", line + strlen(READOUT_PREFIX));
            readout[strcspn(readout, "\n")] = 0;
        }
        if (line[0] == '#' || line[0] == '\n') continue;
        line[strcspn(line, "\n")] = 0;
        if (n == cap) {
            fr_sweep_record *nr = realloc(recs, (size_t)cap * 2 * sizeof *recs);
            if (!nr) {
                rc = FR_FAIL(FR_ENOMEM, "sweep manifest: out of memory");
                break;
            }
            recs = nr;
            cap *= 2;
        }
        fr_sweep_record *r = &recs[n];
        memset(r, 0, sizeof *r);
        /* v1: 12 numeric fields + reason; v2: 14 + reason; v3: 16 + reason; v4: 18 + reason; v5: 19 + reason */
        int nnum = version == 1 ? 12 : version == 2 ? 14 : version == 3 ? 16 : version == 4 ? 18 : 19;
        char *fields[20];
        int nf = 0;
        char *p = line;
        while (nf < nnum + 1) {
            fields[nf++] = p;
            char *t = strchr(p, '\t');
            if (!t) break;
            *t = 0;
            p = t + 1;
        }
        if (nf < nnum) {
            rc = FR_FAIL(FR_EINVAL, "sweep manifest %s: line %ld has %d fields, expected %d", path, lineno, nf, nnum + 1);
            break;
        }
        if (strlen(fields[0]) >= sizeof r->id) {
            rc = FR_FAIL(FR_EINVAL, "sweep manifest %s: line %ld: run id too long", path, lineno);
            break;
        }
        memcpy(r->id, fields[0], strlen(fields[0]) + 1);
        r->status = !strcmp(fields[1], "done") ? FR_RUN_DONE : !strcmp(fields[1], "failed") ? FR_RUN_FAILED : -1;
        if (r->status < 0) {
            rc = FR_FAIL(FR_EINVAL, "sweep manifest %s: line %ld: unknown status '%s'", path, lineno, fields[1]);
            break;
        }
        double *dst[] = {&r->heldout_nll, &r->heldout_r2, &r->heldout_pc, &r->group_latent_r2,
                         &r->train_nll,   &r->pc_obs,     &r->pc_null_mean, &r->pc_null_sd};
        for (int k = 0; k < 8; ++k) *dst[k] = strtod(fields[2 + k], NULL);
        r->epochs_done = atoi(fields[10]);
        r->seconds = strtod(fields[11], NULL);
        r->objective = version == 1 ? NAN : strtod(fields[12], NULL);
        r->coupling = version == 1 ? NAN : strtod(fields[13], NULL);
        r->co_bps = version < 3 ? NAN : strtod(fields[14], NULL);
        r->co_r2 = version < 3 ? NAN : strtod(fields[15], NULL);
        r->behavior_align_r2 = version < 4 ? NAN : strtod(fields[16], NULL);
        r->behavior_align_all_r2 = version < 4 ? NAN : strtod(fields[17], NULL);
        r->predictability = version < 5 ? NAN : strtod(fields[18], NULL);
        if (nf > nnum) snprintf(r->reason, sizeof r->reason, "%s", fields[nnum]);
        ++n;
    }
    fclose(f);
    if (rc != FR_OK) {
        free(recs);
        return rc;
    }
    *recs_out = recs;
    *n_out = n;
    return FR_OK;
}

void fr_sweep_records_match(const fr_sweep_run *runs, int n, const fr_sweep_record *recs, int nrec,
                            fr_sweep_record *out)
{
    for (int i = 0; i < n; ++i) {
        memset(&out[i], 0, sizeof out[i]);
        snprintf(out[i].id, sizeof out[i].id, "%s", runs[i].id);
        out[i].status = FR_RUN_PENDING;
        for (int j = 0; j < nrec; ++j) {
            if (strcmp(recs[j].id, runs[i].id)) continue;
            /* later records replace earlier ones, but never undo a done run */
            if (out[i].status != FR_RUN_DONE || recs[j].status == FR_RUN_DONE) out[i] = recs[j];
        }
    }
}

/* ---- independence null -------------------------------------------------------- */
void fr_sweep_rule_defaults(fr_sweep_rule *rule)
{
    rule->se_mult = 1.0;
    rule->min_independence = 0.25;
    rule->null_samples = 8;
    rule->null_max_points = 256;
    rule->null_nmc = 4;
    rule->max_coupling = 0.2;
    rule->n_coupling_lags = 2;
    rule->coupling_lags[0] = 1;
    rule->coupling_lags[1] = 4;

    rule->min_predictability = 0.2;
    rule->bootstrap = 200;
}

void fr_sweep_rule_from_config(const fr_config *cfg, fr_sweep_rule *rule)
{
    rule->se_mult = cfg->sweep_se_rule;
    rule->min_independence = cfg->sweep_min_independence;
    rule->null_samples = cfg->sweep_null_samples;
    rule->null_max_points = cfg->sweep_null_max_points;
    rule->null_nmc = cfg->sweep_null_nmc;
    rule->max_coupling = cfg->sweep_max_coupling;
    rule->n_coupling_lags = cfg->n_sweep_coupling_lags;
    memcpy(rule->coupling_lags, cfg->sweep_coupling_lags, sizeof rule->coupling_lags);
    rule->min_predictability = cfg->sweep_min_predictability;
    rule->bootstrap = cfg->sweep_bootstrap;
}

fr_err fr_sweep_pc_null(int K, int G, const int *groups, int n, const double *mu, double s_enc,
                        const fr_sweep_rule *rule, uint64_t seed, double *pc_obs, double *null_mean, double *null_sd)
{
    *pc_obs = *null_mean = *null_sd = NAN;
    if (n < 2 || G < 2) {
        if (G < 2) *pc_obs = 0;
        return FR_OK;
    }
    TRY(fr_pc_eval(K, G, groups, n, mu, s_enc, rule->null_nmc, rule->null_max_points, seed, pc_obs));
    int S = rule->null_samples;
    if (S < 1) return FR_OK;
    double *Q = NULL, *rot = NULL;
    fr_err rc = FR_CALLOC(Q, (size_t)K * K);
    if (rc == FR_OK) rc = FR_CALLOC(rot, (size_t)n * K);
    double s1 = 0, s2 = 0;
    for (int s = 0; s < S && rc == FR_OK; ++s) {
        fr_rng_orthogonal(K, seed, FR_STREAM_EVAL, (uint32_t)(1000 + s), Q);
        for (int i = 0; i < n; ++i)
            for (int a = 0; a < K; ++a) {
                double v = 0;
                for (int k = 0; k < K; ++k) v += mu[(size_t)i * K + k] * Q[(size_t)a * K + k];
                rot[(size_t)i * K + a] = v;
            }
        double pc = NAN;
        rc = fr_pc_eval(K, G, groups, n, rot, s_enc, rule->null_nmc, rule->null_max_points, seed, &pc);
        s1 += pc;
        s2 += pc * pc;
    }
    if (rc == FR_OK) {
        *null_mean = s1 / S;
        *null_sd = S > 1 ? sqrt(fmax(0, (s2 - s1 * s1 / S) / (S - 1))) : 0;
    }
    free(Q);
    free(rot);
    return rc;
}

double fr_sweep_independence(const fr_sweep_run *run, const fr_sweep_record *rec)
{
    if (run->G < 2 || !isfinite(rec->pc_obs) || !isfinite(rec->pc_null_mean) || rec->pc_null_mean <= 0) return NAN;
    return (rec->pc_null_mean - rec->pc_obs) / rec->pc_null_mean;
}

/* ---- selection ------------------------------------------------------------------- */
static int same_config(const fr_sweep_run *a, const fr_sweep_score *s)
{
    if (a->K != s->K || a->G != s->G || a->beta != s->beta) return 0;
    for (int g = 0; g < a->G; ++g)
        if (a->groups[g] != s->groups[g]) return 0;
    return 1;
}

/* mean and standard error of the finite values among v (n) */
static void mean_se(const double *v, int n, double *mean, double *se)
{
    double s1 = 0, s2 = 0;
    int m = 0;
    for (int i = 0; i < n; ++i)
        if (isfinite(v[i])) {
            s1 += v[i];
            s2 += v[i] * v[i];
            ++m;
        }
    *mean = m ? s1 / m : NAN;
    *se = m > 1 ? sqrt(fmax(0, (s2 - s1 * s1 / m) / (m - 1)) / m) : (m ? 0 : NAN);
}

static int cmp_score(const void *a, const void *b)
{
    const fr_sweep_score *x = a, *y = b;
    if (x->nll_mean != y->nll_mean) return x->nll_mean < y->nll_mean ? -1 : 1;
    return 0; /* qsort is not stable: ties are broken by the canonical slot below */
}

/* Objective used to pick a fold's representative seed: NaN (an old
 * manifest) never beats a number. */
static double obj_key(double o) { return isfinite(o) ? o : INFINITY; }

fr_err fr_sweep_select(const fr_sweep_run *runs, const fr_sweep_record *recs, int n, const fr_sweep_rule *rule,
                       fr_sweep_selection *sel)
{
    memset(sel, 0, sizeof *sel);
    sel->chosen = sel->best = -1;
    char lags[256];
    fr_sweep_lags_text(rule, ", ", lags, sizeof lags);
    snprintf(sel->rule, sizeof sel->rule,
             "K: for each K the configuration (partition, beta) with the lowest mean held-out NLL per bin over "
             "folds x seeds; choose the smallest K whose best mean is within %g standard error(s) of the overall "
             "best. Partition at that K: the evidence of a penalised (beta > 0) multi-group configuration comes "
             "from its best fit per fold (the seed with the lowest training objective). It is supported when its "
             "groups are independent both at equal times (held-out independence score 1 - PC(fitted partition) / "
             "mean PC over %d random rotations, mean - SE over folds >= %g) and over time (held-out dynamical "
             "coupling, how much the other groups' present latents improve the prediction of a group's next "
             "latent %s bins ahead over its own, max over groups and horizons, mean + SE over folds <= %g) and "
             "every group has dynamics of its own (predictability, the held-out R^2 of a group's next latent "
             "from its own present, worst group, mean - SE over folds >= %g). Choose the supported "
             "partition with the most groups (ties: lowest mean held-out NLL); if none is supported, G = 1 (the "
             "lrRNN).",
             rule->se_mult, rule->null_samples, rule->min_independence, lags, rule->max_coupling,
             rule->min_predictability);
    fr_sweep_score *sc = NULL;
    double *nll = NULL, *ind = NULL, *pc = NULL, *cp = NULL, *pr = NULL;
    int *slot = NULL, *rep = NULL;
    TRY(FR_CALLOC(sc, n > 0 ? n : 1));
    fr_err rc = FR_CALLOC(nll, n > 0 ? n : 1);
    if (rc == FR_OK) rc = FR_CALLOC(ind, n > 0 ? n : 1);
    if (rc == FR_OK) rc = FR_CALLOC(pc, n > 0 ? n : 1);
    if (rc == FR_OK) rc = FR_CALLOC(cp, n > 0 ? n : 1);
    if (rc == FR_OK) rc = FR_CALLOC(pr, n > 0 ? n : 1);
    if (rc == FR_OK) rc = FR_CALLOC(slot, n > 0 ? n : 1);
    if (rc == FR_OK) rc = FR_CALLOC(rep, n > 0 ? n : 1);
    if (rc != FR_OK) goto out;
    /* configurations in canonical order of first appearance */
    int nc = 0;
    for (int i = 0; i < n; ++i) {
        if (recs[i].status != FR_RUN_DONE || !isfinite(recs[i].heldout_nll)) continue;
        int c = 0;
        while (c < nc && !same_config(&runs[i], &sc[c])) ++c;
        if (c == nc) {
            sc[c].K = runs[i].K;
            sc[c].G = runs[i].G;
            memcpy(sc[c].groups, runs[i].groups, sizeof sc[c].groups);
            sc[c].beta = runs[i].beta;
            ++nc;
        }
    }
    for (int c = 0; c < nc; ++c) {
        int m = 0, nrep = 0;
        for (int i = 0; i < n; ++i) {
            if (recs[i].status != FR_RUN_DONE || !isfinite(recs[i].heldout_nll) || !same_config(&runs[i], &sc[c]))
                continue;
            nll[m] = recs[i].heldout_nll;
            pc[m] = recs[i].heldout_pc;
            ++m;
            /* each fold's representative: the lowest training objective
             * (seeds are independent optimisations of the same model) */
            int f = 0;
            while (f < nrep && runs[rep[f]].fold != runs[i].fold) ++f;
            if (f == nrep) rep[nrep++] = i;
            else if (obj_key(recs[i].objective) < obj_key(recs[rep[f]].objective)) rep[f] = i;
        }
        for (int f = 0; f < nrep; ++f) {
            ind[f] = fr_sweep_independence(&runs[rep[f]], &recs[rep[f]]);
            cp[f] = sc[c].G >= 2 ? recs[rep[f]].coupling : NAN;
            pr[f] = sc[c].G >= 2 ? recs[rep[f]].predictability : NAN;
        }
        sc[c].n = m;
        sc[c].n_folds = nrep;
        mean_se(nll, m, &sc[c].nll_mean, &sc[c].nll_se);
        mean_se(ind, nrep, &sc[c].ind_mean, &sc[c].ind_se);
        mean_se(cp, nrep, &sc[c].coup_mean, &sc[c].coup_se);
        mean_se(pr, nrep, &sc[c].pred_mean, &sc[c].pred_se);
        double dummy;
        mean_se(pc, m, &sc[c].pc_mean, &dummy);
        sc[c].supported = sc[c].G >= 2 && sc[c].beta > 0 && isfinite(sc[c].ind_mean) &&
                          sc[c].ind_mean - sc[c].ind_se >= rule->min_independence && isfinite(sc[c].coup_mean) &&
                          sc[c].coup_mean + sc[c].coup_se <= rule->max_coupling &&
                          /* a manifest older than the predictability has none: no test */
                          (!isfinite(sc[c].pred_mean) || sc[c].pred_mean - sc[c].pred_se >= rule->min_predictability);
    }
    sel->n = nc;
    sel->ranked = sc;
    sc = NULL;
    if (nc == 0) {
        snprintf(sel->why, sizeof sel->why, "no run finished");
        goto out;
    }
    fr_sweep_score *s = sel->ranked;
    /* overall best, then the smallest K within the SE band */
    int best = 0;
    for (int c = 1; c < nc; ++c)
        if (s[c].nll_mean < s[best].nll_mean) best = c;
    double thr = s[best].nll_mean + rule->se_mult * s[best].nll_se;
    int Ksel = s[best].K;
    for (int c = 0; c < nc; ++c)
        if (s[c].nll_mean <= thr && s[c].K < Ksel) Ksel = s[c].K;
    int bestK = -1;
    for (int c = 0; c < nc; ++c)
        if (s[c].K == Ksel && (bestK < 0 || s[c].nll_mean < s[bestK].nll_mean)) bestK = c;
    for (int c = 0; c < nc; ++c)
        if (s[c].K == Ksel && s[c].nll_mean <= s[bestK].nll_mean + rule->se_mult * s[bestK].nll_se) s[c].in_band = 1;
    /* Partition at K. With beta = 0 the penalty is off and every partition
     * of K is the same model as G = 1 (the fits differ only through the
     * initial basis), so only penalised multi-group fits are candidates. Their held-out likelihood does not rank them: the
     * penalty's price varies with the number of groups for reasons that
     * have nothing to do with the data (the minibatch PC estimator is
     * biased), and it costs even the true partition several nats per bin
     * at beta = 20. Equal-time independence alone does not either: the
     * penalty forces it on every partition. What the penalty does not
     * force is independence over time: groups that are really separate
     * sub-circuits do not predict each other's next state, and a forced
     * split of a coupled system does. Among the partitions that pass both
     * tests the one with the most groups is the most detailed answer the
     * data support. */
    int chosen = -1, one = -1, cand = -1;
    for (int c = 0; c < nc; ++c) {
        if (s[c].K != Ksel) continue;
        if (s[c].G == 1 && (one < 0 || s[c].nll_mean < s[one].nll_mean)) one = c;
        if (s[c].G >= 2 && s[c].beta > 0 && (cand < 0 || s[c].coup_mean < s[cand].coup_mean || !isfinite(s[cand].coup_mean)))
            cand = c; /* the least coupled candidate, for the message when none is supported */
        if (!s[c].supported) continue;
        if (chosen < 0 || s[c].G > s[chosen].G || (s[c].G == s[chosen].G && s[c].nll_mean < s[chosen].nll_mean))
            chosen = c;
    }
    char gt[256];
    if (chosen >= 0) {
        fr_groups_text(s[chosen].G, s[chosen].groups, gt, sizeof gt);
        snprintf(sel->why, sizeof sel->why,
                 "K = %d (best K %d, NLL %.6g +- %.2g); partition %s (beta %g) is the supported partition with the "
                 "most groups: independence %.3f +- %.3f, coupling %.3f +- %.3f over %d folds (NLL %.6g +- %.2g)",
                 Ksel, s[best].K, s[best].nll_mean, s[best].nll_se, gt, s[chosen].beta, s[chosen].ind_mean,
                 s[chosen].ind_se, s[chosen].coup_mean, s[chosen].coup_se, s[chosen].n_folds, s[chosen].nll_mean,
                 s[chosen].nll_se);
    } else if (one >= 0) {
        chosen = one;
        if (cand >= 0) fr_groups_text(s[cand].G, s[cand].groups, gt, sizeof gt);
        if (cand >= 0)
            snprintf(sel->why, sizeof sel->why,
                     "K = %d (best K %d, NLL %.6g +- %.2g); no penalised partition at K is supported (least coupled: "
                     "%s, coupling %.3f +- %.3f, independence %.3f +- %.3f), so G = 1",
                     Ksel, s[best].K, s[best].nll_mean, s[best].nll_se, gt, s[cand].coup_mean, s[cand].coup_se,
                     s[cand].ind_mean, s[cand].ind_se);
        else
            snprintf(sel->why, sizeof sel->why,
                     "K = %d (best K %d, NLL %.6g +- %.2g); no penalised multi-group partition at K, so G = 1", Ksel,
                     s[best].K, s[best].nll_mean, s[best].nll_se);
    } else {
        chosen = bestK;
        snprintf(sel->why, sizeof sel->why,
                 "K = %d (best K %d, NLL %.6g +- %.2g); no partition supported and G = 1 not swept: best NLL at K", Ksel,
                 s[best].K, s[best].nll_mean, s[best].nll_se);
    }
    /* rank by mean NLL (ties: canonical order), keeping track of chosen/best */
    for (int c = 0; c < nc; ++c) slot[c] = c;
    s[chosen].n = -s[chosen].n - 1; /* mark through the sort */
    double mark_best = s[best].nll_mean;
    /* stable: sort by (nll_mean, canonical slot) using insertion sort (nc is small) */
    for (int c = 1; c < nc; ++c) {
        fr_sweep_score t = s[c];
        int ts = slot[c], j = c - 1;
        while (j >= 0 && (cmp_score(&s[j], &t) > 0 || (cmp_score(&s[j], &t) == 0 && slot[j] > ts))) {
            s[j + 1] = s[j];
            slot[j + 1] = slot[j];
            --j;
        }
        s[j + 1] = t;
        slot[j + 1] = ts;
    }
    for (int c = 0; c < nc; ++c) {
        if (s[c].n < 0) {
            s[c].n = -s[c].n - 1;
            sel->chosen = c;
        }
        if (sel->best < 0 && s[c].nll_mean == mark_best) sel->best = c;
    }
out:
    free(sc);
    free(pr);
    free(nll);
    free(ind);
    free(pc);
    free(cp);
    free(slot);
    free(rep);
    return rc;
}

void fr_sweep_selection_free(fr_sweep_selection *sel)
{
    free(sel->ranked);
    memset(sel, 0, sizeof *sel);
}

/* ---- the selection's confidence ------------------------------------------------- */
/* "K=6 3+3": the answer of a selection ("" when nothing was chosen). */
static void answer_text(const fr_sweep_selection *sel, char *buf, size_t n)
{
    buf[0] = 0;
    if (sel->chosen < 0) return;
    const fr_sweep_score *c = &sel->ranked[sel->chosen];
    char gt[256];
    fr_groups_text(c->G, c->groups, gt, sizeof gt);
    snprintf(buf, n, "K=%d %.100s", c->K, gt);
}

/* Tally of the other answers among the resamples. */
typedef struct {
    char text[FR_ANSWER_MAX];
    int count;
} answer_tally;

static void tally_add(answer_tally *t, int *nt, int cap, const char *a)
{
    for (int i = 0; i < *nt; ++i)
        if (!strcmp(t[i].text, a)) {
            ++t[i].count;
            return;
        }
    if (*nt < cap) {
        snprintf(t[*nt].text, sizeof t[*nt].text, "%s", a);
        t[(*nt)++].count = 1;
    }
}

/* The answer of the rule applied to sub (m runs). */
static fr_err answer_of(const fr_sweep_run *runs, const fr_sweep_record *recs, int m, const fr_sweep_rule *rule,
                        char *buf, size_t n)
{
    fr_sweep_selection s;
    TRY(fr_sweep_select(runs, recs, m, rule, &s));
    answer_text(&s, buf, n);
    fr_sweep_selection_free(&s);
    return FR_OK;
}

fr_err fr_sweep_confidence_of(const fr_sweep_run *runs, const fr_sweep_record *recs, int n, const fr_sweep_rule *rule,
                              const fr_sweep_selection *sel, uint64_t seed, fr_sweep_confidence *out)
{
    memset(out, 0, sizeof *out);
    char want[FR_ANSWER_MAX], got[FR_ANSWER_MAX];
    answer_text(sel, want, sizeof want);
    if (!want[0] || n <= 0) {
        snprintf(out->text, sizeof out->text, "no answer, no confidence");
        return FR_OK;
    }
    /* Done runs only, and the distinct folds and (fold, seed) pairs. */
    fr_sweep_run *sr = NULL;
    fr_sweep_record *sc = NULL;
    int *done = NULL, *folds = NULL, nd = 0, nf = 0;
    enum { TALLY_CAP = 64 };
    answer_tally tally[TALLY_CAP];
    int nt = 0;
    fr_err rc = FR_CALLOC(sr, n);
    if (rc == FR_OK) rc = FR_CALLOC(sc, n);
    if (rc == FR_OK) rc = FR_CALLOC(done, n);
    if (rc == FR_OK) rc = FR_CALLOC(folds, n);
    if (rc != FR_OK) goto out;
    for (int i = 0; i < n; ++i) {
        if (recs[i].status != FR_RUN_DONE || !isfinite(recs[i].heldout_nll)) continue;
        done[nd++] = i;
        int f = 0;
        while (f < nf && folds[f] != runs[i].fold) ++f;
        if (f == nf) folds[nf++] = runs[i].fold;
    }
    /* each (fold, seed) fit alone */
    for (int a = 0; a < nd && rc == FR_OK; ++a) {
        const fr_sweep_run *ra = &runs[done[a]];
        int first = 1;
        for (int b = 0; b < a && first; ++b)
            if (runs[done[b]].fold == ra->fold && runs[done[b]].seed == ra->seed) first = 0;
        if (!first) continue;
        int m = 0;
        for (int b = 0; b < nd; ++b)
            if (runs[done[b]].fold == ra->fold && runs[done[b]].seed == ra->seed) {
                sr[m] = runs[done[b]];
                sc[m++] = recs[done[b]];
            }
        rc = answer_of(sr, sc, m, rule, got, sizeof got);
        out->units += 1;
        out->units_agree += rc == FR_OK && !strcmp(got, want);
    }
    /* resamples of the folds: draw j of resample b takes every done run of
     * fold folds[u], relabelled as fold j, so a fold drawn twice counts as
     * two folds in the standard errors */
    fr_sweep_run *br = NULL;
    fr_sweep_record *bc = NULL;
    if (rc == FR_OK && rule->bootstrap > 0 && nf >= 2) {
        rc = FR_CALLOC(br, (size_t)nd * nf);
        if (rc == FR_OK) rc = FR_CALLOC(bc, (size_t)nd * nf);
        for (int b = 0; b < rule->bootstrap && rc == FR_OK; ++b) {
            int m = 0;
            for (int j = 0; j < nf; ++j) {
                int u = (int)(fr_rng_uniform(seed, FR_STREAM_BOOT, (uint32_t)b, (uint64_t)j) * nf);
                if (u >= nf) u = nf - 1;
                for (int a = 0; a < nd; ++a)
                    if (runs[done[a]].fold == folds[u]) {
                        br[m] = runs[done[a]];
                        br[m].fold = j;
                        bc[m++] = recs[done[a]];
                    }
            }
            rc = answer_of(br, bc, m, rule, got, sizeof got);
            if (rc != FR_OK) break;
            out->boot_n += 1;
            if (!strcmp(got, want)) out->boot_agree += 1;
            else tally_add(tally, &nt, TALLY_CAP, got[0] ? got : "none");
        }
    }
    free(br);
    free(bc);
    for (int i = 0; i < nt; ++i)
        if (tally[i].count > out->alt_count) {
            out->alt_count = tally[i].count;
            memcpy(out->alt, tally[i].text, sizeof out->alt);
        }
    if (rc == FR_OK) {
        int k = snprintf(out->text, sizeof out->text, "%s chosen by %d of %d fold x seed fits alone", want,
                         out->units_agree, out->units);
        if (out->boot_n > 0 && k > 0 && (size_t)k < sizeof out->text)
            k += snprintf(out->text + k, sizeof out->text - (size_t)k, " and in %d of %d resamples of the %d folds",
                          out->boot_agree, out->boot_n, nf);
        if (out->alt_count > 0 && k > 0 && (size_t)k < sizeof out->text)
            snprintf(out->text + k, sizeof out->text - (size_t)k, " (otherwise mostly %s: %d)", out->alt,
                     out->alt_count);
    }
out:
    free(sr);
    free(sc);
    free(done);
    free(folds);
    return rc;
}
