/* trainer_eval: evaluation of a parameter vector on a data set's trials:
 * the metrics of a set of trials (the trainer's held-out tracking, the fit's
 * final metrics, `facrnn eval`) and the latents of every bin (see
 * evaluate.h, trainer_internal.h). Each rank predicts its own rows in
 * chunks; the sums are reduced across ranks.
 */
#include "trainer_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "facrnn/evaluate.h"
#include "facrnn/trainer.h"

#define FR_EVAL_MAX_POINTS 1000 /* points for the evaluation PC/TC estimator */
#define FR_EVAL_NMC 10

fr_err fr_eval_ctx_init(fr_eval_ctx *c, const fr_model *m, const double *params, const fr_dataset *ds,
                        const double *sx, fr_ws *ws, int cap)
{
    memset(c, 0, sizeof *c);
    c->m = m;
    c->params = params;
    c->ds = ds;
    c->sx = sx;
    c->ws = ws;
    c->cap = cap;
    int L = m->spec.L;
    TRY(FR_CALLOC(c->xp, cap));
    TRY(FR_CALLOC(c->sxp, (size_t)cap * L));
    if (!sx) TRY(FR_CALLOC(c->sx_rows, (size_t)cap * L * m->spec.N));
    TRY(FR_CALLOC(c->up, cap));
    if (ds->mask) TRY(FR_CALLOC(c->op, cap));
    TRY(FR_CALLOC(c->mu, (size_t)cap * m->spec.K));
    TRY(FR_CALLOC(c->eta, (size_t)cap * m->spec.N));
    TRY(FR_CALLOC(c->nll, cap));
    return FR_OK;
}

void fr_eval_ctx_free(fr_eval_ctx *c)
{
    free((void *)c->xp);
    free((void *)c->sxp);
    free(c->sx_rows);
    free((void *)c->up);
    free((void *)c->op);
    free(c->mu);
    free(c->eta);
    free(c->nll);
    free(c->rate);
}

/* Predict local rows [r0, r0 + n) (all with t >= L inside one trial). */
fr_err fr_eval_chunk(fr_eval_ctx *c, long long r0, int n)
{
    int N = c->m->spec.N, L = c->m->spec.L, D = c->m->spec.D;
    for (int i = 0; i < n; ++i) {
        long long row = r0 + i;
        c->xp[i] = c->ds->x + row * N;
        for (int l = 1; l <= L; ++l) {
            size_t q = (size_t)i * L + l - 1;
            c->sxp[q] = fr_sigma_ptr(c->m, c->ds, c->sx, row - l, c->sx_rows ? c->sx_rows + q * N : NULL);
        }
        if (D) c->up[i] = c->ds->u + row * c->ds->D;
        if (c->op) c->op[i] = c->ds->mask + row * N;
    }
    fr_batch b = {n, c->xp, c->sxp, D ? c->up : NULL, NULL, c->op};
    return fr_model_predict(c->m, c->params, &b, c->ws, c->mu, c->eta, c->nll);
}

/* Means for every local bin (NaN in each trial's first L context bins). */
fr_err fr_eval_latents(fr_eval_ctx *c, double *lat /* (rows, K) */)
{
    const fr_dataset *ds = c->ds;
    int K = c->m->spec.K, L = c->m->spec.L;
    for (long long k = ds->trial_lo; k < ds->trial_hi; ++k) {
        long long a = ds->offsets[k] - ds->row_lo, e = ds->offsets[k + 1] - ds->row_lo;
        for (long long r = a; r < a + L && r < e; ++r)
            for (int j = 0; j < K; ++j) lat[r * K + j] = NAN;
        for (long long r = a + L; r < e; r += c->cap) {
            int n = (int)(e - r < c->cap ? e - r : c->cap);
            TRY(fr_eval_chunk(c, r, n));
            memcpy(lat + r * K, c->mu, (size_t)n * K * sizeof(double));
        }
    }
    return FR_OK;
}

/* Poisson bits/spike compares with a constant rate per channel: the mean
 * of the training bins (t >= L; with missing values over the channel's
 * observed entries), floored. c->rate, c->log_rate (N) <- those
 * rates and their logs for `split`: local sums in row order, one reduction.
 * A constant of the data and the split, so a context computes it once (the
 * final evaluation asks for it twice: training and held-out trials).
 * Collective over comm. */
static fr_err training_rates(MPI_Comm comm, fr_eval_ctx *c, const unsigned char *split)
{
    const fr_dataset *ds = c->ds;
    int N = ds->N, L = c->m->spec.L;
    if (c->rate && c->rate_split == split) return FR_OK;
    double *base = NULL; /* [training samples, the channels' sums (N), with a mask their observed entries (N)] */
    const unsigned char *mask = ds->mask;
    int nb = 1 + (mask ? 2 : 1) * N;
    fr_err rc = FR_CALLOC(base, nb);
    if (rc == FR_OK && !c->rate) rc = FR_CALLOC(c->rate, 2 * (size_t)N);
    TRY(fr_error_agree(&comm, rc));
    long long ntr = 0;
    for (long long k = ds->trial_lo; k < ds->trial_hi; ++k) {
        if (!split[k]) continue;
        for (long long r = ds->offsets[k] - ds->row_lo + L; r < ds->offsets[k + 1] - ds->row_lo; ++r) {
            for (int n = 0; n < N; ++n) base[1 + n] += ds->x[r * N + n]; /* missing entries hold 0 */
            if (mask)
                for (int n = 0; n < N; ++n) base[1 + N + n] += mask[r * N + n];
            ++ntr;
        }
    }
    base[0] = (double)ntr;
    rc = fr_check_mpi(MPI_Allreduce(MPI_IN_PLACE, base, nb, MPI_DOUBLE, MPI_SUM, comm),
                      "MPI_Allreduce(training rate sums)", __FILE__, __LINE__);
    if (rc == FR_OK) {
        c->log_rate = c->rate + N;
        for (int j = 0; j < N; ++j) {
            c->rate[j] = fmax(base[1 + j] / fmax(mask ? base[1 + N + j] : base[0], 1), FR_POISSON_RATE_FLOOR);
            c->log_rate[j] = log(c->rate[j]);
        }
        c->rate_split = split;
    }
    free(base);
    return rc;
}

/* PC and TC of the evaluation estimator on the subsampled means sel
 * (nsel, K) of every rank, gathered in rank order. Collective over comm. */
static fr_err gathered_pc(MPI_Comm comm, const fr_model *m, int nsel, const double *sel, fr_fit_metrics *out)
{
    int K = m->spec.K, size;
    MPI_Comm_size(comm, &size);
    int *cnts = NULL, *dsps = NULL;
    double *all = NULL;
    int mine = nsel * K;
    out->pc = out->tc = NAN;
    fr_err rc = FR_CALLOC(cnts, size);
    if (rc == FR_OK) rc = FR_CALLOC(dsps, size);
    if (rc == FR_OK)
        rc = fr_check_mpi(MPI_Allgather(&mine, 1, MPI_INT, cnts, 1, MPI_INT, comm), "MPI_Allgather(PC points)",
                          __FILE__, __LINE__);
    int tot = 0;
    for (int r = 0; r < size && rc == FR_OK; ++r) {
        dsps[r] = tot;
        tot += cnts[r];
    }
    if (rc == FR_OK) rc = FR_CALLOC(all, tot);
    if (rc == FR_OK)
        rc = fr_check_mpi(MPI_Allgatherv(sel, mine, MPI_DOUBLE, all, cnts, dsps, MPI_DOUBLE, comm),
                          "MPI_Allgatherv(PC points)", __FILE__, __LINE__);
    int npts = tot / (K ? K : 1);
    if (rc == FR_OK && npts >= 2) {
        int ones[FR_MAX_GROUPS];
        for (int j = 0; j < K && j < FR_MAX_GROUPS; ++j) ones[j] = 1;
        rc = fr_pc_eval(K, m->spec.G, m->spec.group_size, npts, all, m->s_enc, FR_EVAL_NMC, FR_EVAL_MAX_POINTS,
                        12345, &out->pc);
        fr_trainer_service(); /* each estimate is a long call: let a sweep coordinator answer between them */
        /* TC needs one group per latent: the PC kernel holds at most FR_MAX_GROUPS */
        if (rc == FR_OK && K <= FR_MAX_GROUPS)
            rc = fr_pc_eval(K, K, ones, npts, all, m->s_enc, FR_EVAL_NMC, FR_EVAL_MAX_POINTS, 12345, &out->tc);
    }
    free(cnts);
    free(dsps);
    free(all);
    return rc;
}

/* The sums of the `which` trials' bins, reduced once. full = 0: only the
 * NLL and the count (everything else stays NaN); full = 1: every metric
 * but the read-outs. Collective over comm. */
static fr_err eval_sums(MPI_Comm comm, fr_eval_ctx *c, const unsigned char *split, int which, int full,
                        fr_fit_metrics *out)
{
    const fr_dataset *ds = c->ds;
    const fr_model *m = c->m;
    int N = m->spec.N, K = m->spec.K, L = m->spec.L;
    int poisson = full && m->spec.obs == FR_OBS_POISSON;
    fr_fit_metrics_nan(out);
    /* Every sum of the evaluated bins in one buffer, reduced once:
     * [nll, count, spikes, baseline nll] + per channel [sum, sumsq, sse,
     * Poisson sum of lambda - x ln lambda]; without `full` only the first
     * two. With missing values (/mask) every sum is over observed entries
     * and the observed entries per channel (N) follow (the last N). */
    const unsigned char *mask = ds->mask;
    size_t na = (full ? 4 + 4 * (size_t)N : 2) + (mask ? (size_t)N : 0);
    double *acc = NULL, *sel = NULL;
    fr_err rc = FR_CALLOC(acc, na);
    if (rc == FR_OK && full) rc = FR_CALLOC(sel, (size_t)(FR_EVAL_MAX_POINTS + 1) * K);
    rc = fr_error_agree(&comm, rc);
    if (rc == FR_OK && poisson) rc = training_rates(comm, c, split);
    if (rc != FR_OK) goto done;
    double *ch = full ? acc + 4 : NULL, *seen = mask ? acc + na - N : NULL;
    /* Global count of evaluated samples, and a deterministic subsample of
     * their means for the PC/TC estimator (every stride-th sample). */
    long long n_which = 0;
    for (long long k = 0; k < ds->n_trials; ++k)
        if ((split[k] != 0) == (which != 0)) {
            long long T = ds->offsets[k + 1] - ds->offsets[k];
            n_which += T > L ? T - L : 0;
        }
    long long stride = n_which > FR_EVAL_MAX_POINTS ? (n_which + FR_EVAL_MAX_POINTS - 1) / FR_EVAL_MAX_POINTS : 1;
    long long before = 0; /* evaluated samples in trials before this rank's */
    for (long long k = 0; k < ds->trial_lo; ++k)
        if ((split[k] != 0) == (which != 0)) {
            long long T = ds->offsets[k + 1] - ds->offsets[k];
            before += T > L ? T - L : 0;
        }
    int nsel = 0;
    long long idx = before;
    for (long long k = ds->trial_lo; k < ds->trial_hi && rc == FR_OK; ++k) {
        if ((split[k] != 0) != (which != 0)) continue;
        long long a = ds->offsets[k] - ds->row_lo + L, e = ds->offsets[k + 1] - ds->row_lo;
        for (long long r = a; r < e && rc == FR_OK; r += c->cap) {
            int n = (int)(e - r < c->cap ? e - r : c->cap);
            rc = fr_eval_chunk(c, r, n);
            for (int i = 0; i < n && rc == FR_OK; ++i, ++idx) {
                acc[0] += c->nll[i]; /* over the row's observed entries */
                acc[1] += 1;
                const unsigned char *o = mask ? mask + (r + i) * N : NULL;
                if (o)
                    for (int j = 0; j < N; ++j) seen[j] += o[j];
                if (!full) continue;
                const double *x = ds->x + (r + i) * N, *eta = c->eta + (size_t)i * N;
                for (int j = 0; j < N; ++j) {
                    if (o && !o[j]) continue;
                    double mean = fr_model_mean(m, eta[j]);
                    ch[4 * j] += x[j];
                    ch[4 * j + 1] += x[j] * x[j];
                    ch[4 * j + 2] += (x[j] - mean) * (x[j] - mean);
                    if (poisson) {
                        double lam = fmax(mean, FR_POISSON_RATE_FLOOR);
                        ch[4 * j + 3] += lam - x[j] * log(lam);
                        acc[2] += x[j];
                        acc[3] += c->rate[j] - x[j] * c->log_rate[j] + lgamma(x[j] + 1);
                    }
                }
                if (idx % stride == 0 && nsel <= FR_EVAL_MAX_POINTS)
                    memcpy(sel + (size_t)nsel++ * K, c->mu + (size_t)i * K, K * sizeof(double));
            }
        }
    }
    if (rc != FR_OK) fr_fatal(rc); /* a local model failure mid-evaluation: the others are not waiting on us yet */
    rc = fr_check_mpi(MPI_Allreduce(MPI_IN_PLACE, acc, (int)na, MPI_DOUBLE, MPI_SUM, comm),
                      "MPI_Allreduce(evaluation sums)", __FILE__, __LINE__);
    if (rc != FR_OK) goto done;
    out->n_samples = (long long)acc[1];
    out->nll_per_bin = acc[1] > 0 ? acc[0] / acc[1] : NAN;
    if (mask) {
        /* per bin of N channels from the observed entries: the mean NLL of
         * an observed entry times N (the same number without missing ones) */
        double obs_all = 0;
        for (int j = 0; j < N; ++j) obs_all += seen[j];
        out->nll_per_bin = obs_all > 0 ? acc[0] / obs_all * N : NAN;
    }
    if (!full) goto done;
    double r2 = 0;
    int used = 0;
    double co_r2 = 0, co_model = 0, co_null = 0, co_spikes = 0;
    int co_used = 0;
    for (int j = 0; j < N; ++j) {
        double s = ch[4 * j], ss = ch[4 * j + 1], sse = ch[4 * j + 2];
        double nj = mask ? seen[j] : acc[1]; /* the channel's evaluated entries */
        double sst = ss - s * s / fmax(nj, 1);
        int held = 0;
        for (int q = 0; q < m->spec.n_skip; ++q) held |= m->spec.skip[q] == j;
        if (sst > 1e-12 * fmax(ss, 1e-300)) {
            r2 += 1.0 - sse / sst;
            ++used;
            if (held) co_r2 += 1.0 - sse / sst, ++co_used;
        }
        if (held && poisson) {
            /* NLB's co-bps: against each held-out channel's mean rate over
             * the evaluated bins (ln x! cancels between the two) */
            double rbar = fmax(s / fmax(nj, 1), FR_POISSON_RATE_FLOOR);
            co_model += ch[4 * j + 3];
            co_null += nj * rbar - s * log(rbar);
            co_spikes += s;
        }
    }
    out->r2 = used ? r2 / used : NAN;
    if (m->spec.n_skip > 0) {
        out->co_r2 = co_used ? co_r2 / co_used : NAN;
        out->co_bps = poisson && co_spikes > 0 ? (co_null - co_model) / (co_spikes * log(2.0)) : NAN;
    }
    out->bits_per_spike = poisson && acc[2] > 0 ? (acc[3] - acc[0]) / (acc[2] * log(2.0)) : NAN;
    rc = gathered_pc(comm, m, nsel, sel, out);
done:
    free(acc);
    free(sel);
    return rc;
}

fr_err fr_eval_metrics(MPI_Comm comm, fr_eval_ctx *c, const unsigned char *split, int which, fr_fit_metrics *out)
{
    return eval_sums(comm, c, split, which, 1, out);
}

fr_err fr_eval_nll(MPI_Comm comm, fr_eval_ctx *c, const unsigned char *split, int which, double *nll_per_bin)
{
    fr_fit_metrics m;
    fr_err rc = eval_sums(comm, c, split, which, 0, &m);
    *nll_per_bin = m.nll_per_bin;
    return rc;
}

/* Evaluation outside the training loop (fit's final metrics use the
 * trainer's own buffers): an evaluation context and its workspace. */
typedef struct {
    fr_eval_ctx c;
    fr_ws *ws;
} standalone_ctx;

static fr_err standalone_open(standalone_ctx *s, const fr_model *m, const double *params, const fr_dataset *ds)
{
    memset(s, 0, sizeof *s);
    /* sigma(x) rows are computed per chunk (NULL): no whole-shard copy. */
    const double *sx = m->spec.nonlin == FR_NL_IDENTITY ? ds->x : NULL;
    const int cap = 256;
    TRY(fr_ws_create(m, cap, cap, &s->ws));
    return fr_eval_ctx_init(&s->c, m, params, ds, sx, s->ws, cap);
}

static void standalone_close(standalone_ctx *s)
{
    fr_eval_ctx_free(&s->c);
    fr_ws_free(s->ws);
}

fr_err fr_evaluate(MPI_Comm comm, const fr_model *m, const double *params, const fr_dataset *ds,
                   const unsigned char *split, int which, fr_fit_metrics *out)
{
    standalone_ctx s;
    fr_err rc = fr_error_agree(&comm, standalone_open(&s, m, params, ds));
    if (rc == FR_OK) rc = fr_eval_metrics(comm, &s.c, split, which, out);
    standalone_close(&s);
    return rc;
}

fr_err fr_evaluate_latents(MPI_Comm comm, const fr_model *m, const double *params, const fr_dataset *ds,
                           double *latents)
{
    standalone_ctx s;
    fr_err rc = standalone_open(&s, m, params, ds);
    if (rc == FR_OK) rc = fr_eval_latents(&s.c, latents);
    standalone_close(&s);
    return fr_error_agree(&comm, rc);
}
