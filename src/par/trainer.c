/* trainer: the data-parallel fitting loop (see trainer.h).
 *
 * One step over a global minibatch of Mb samples:
 *   encode own rows -> Allgatherv (mu|z) -> PC rows of own samples ->
 *   Allreduce dL/dmu (Mb x K) -> backward own rows -> ONE Allreduce of the
 *   flat gradient (with loss sums and the stop flag riding in its tail) ->
 *   identical Adam step on every rank.
 */
#include "facrnn/trainer.h"

#include <cblas.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "facrnn/analysis.h"
#include "facrnn/checkpoint.h"
#include "facrnn/dist_linalg.h"
#include "facrnn/fit_input.h"
#include "facrnn/modes.h"
#include "facrnn/readout.h"
#include "facrnn/rng.h"

/* ---- signals ----------------------------------------------------------------- */
static volatile sig_atomic_t g_stop_signal;

static void on_stop_signal(int sig) { g_stop_signal = sig; }

void fr_trainer_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

int fr_trainer_stop_requested(void) { return g_stop_signal != 0; }

/* ---- between-steps hook (sweep coordinator) ------------------------------------ */
static void (*g_between_steps)(void *);
static void *g_between_steps_ctx;

void fr_trainer_set_between_steps(void (*fn)(void *ctx), void *ctx)
{
    g_between_steps = fn;
    g_between_steps_ctx = ctx;
}

/* ---- the trainer's state --------------------------------------------------------- */
typedef struct {
    MPI_Comm comm;
    int rank, size;
    const fr_config *cfg;
    const fr_dataset *ds;
    const unsigned char *split;
    fr_model model;
    fr_ws *ws;
    int N, K, D, L;
    long long rows;           /* local rows of data */
    double *sx;               /* (rows, N) cached sigma(x) (aliases ds->x for identity), or NULL:
                                 computed per step into sx_rows (data.sigma_cache_mb) */
    double *sx_rows;          /* (Mmax * L, N) this step's sigma(x_{t-l}) rows when sx is NULL */
    long long *sample_start;  /* (n_trials + 1) first global sample id of each trial */
    long long n_train;        /* global training samples */
    long long *train_ids;     /* (n_train) sorted global sample ids of training samples */
    long long *perm;          /* (n_train) this epoch's order */
    long long *sid_lo;        /* (size + 1) first global sample id owned by each rank */
    int M;                    /* nominal minibatch size */
    int n_batches;            /* per epoch */
    /* per-step buffers, sized for the largest minibatch (M + 1) */
    long long *batch;         /* (Mmax) sorted global sample ids */
    const double **xp, **sxp, **up; /* (Mmax), (Mmax*L), (Mmax) row pointers */
    double *eps;              /* (Mmax, K) */
    double *pack_loc, *pack_all; /* (Mmax, 2K) */
    double *mu_all, *z_all, *dmu_all, *dz_rows; /* (Mmax, K) */
    int *counts, *displs;     /* (size) */
    size_t np;                /* n_params */
    double *params, *grad, *m1, *m2, *best;
    fr_adam_cfg adam;
} trainer;

enum { TAIL_NLL, TAIL_KL, TAIL_PC, TAIL_STOP, TAIL_N };

static long long trial_of_sid(const trainer *t, long long sid)
{
    long long lo = 0, hi = t->ds->n_trials; /* sample_start[lo] <= sid < sample_start[hi] */
    while (hi - lo > 1) {
        long long mid = (lo + hi) / 2;
        if (t->sample_start[mid] <= sid) lo = mid;
        else hi = mid;
    }
    return lo;
}

/* Local data row of bin t of trial k. */
static inline long long local_row(const trainer *t, long long k, long long tt)
{
    return t->ds->offsets[k] + tt - t->ds->row_lo;
}

/* sigma(x) of one row, the same libm call as the cached copy, so the
 * per-step path gives bitwise the same numbers. */
static void sigma_row(fr_nonlin nl, const double *x /* (N) */, double *out /* (N) */, int N)
{
    if (nl == FR_NL_IDENTITY) memcpy(out, x, (size_t)N * sizeof(double));
    else
        for (int n = 0; n < N; ++n) out[n] = tanh(x[n]);
}

/* Pointer to sigma(x) of local row `row`: into the cache when there is one,
 * else computed into `scratch` (N). */
static const double *sigma_ptr(const fr_model *m, const fr_dataset *ds, const double *cache, long long row,
                               double *scratch)
{
    int N = m->spec.N;
    if (cache) return cache + row * N;
    sigma_row(m->spec.nonlin, ds->x + row * N, scratch, N);
    return scratch;
}

/* The whole-shard sigma(x) cache: ds->x itself for the identity, a tanh copy
 * when it fits in cache_mb MiB per rank, else NULL (per-step rows). */
static fr_err sigma_cache(const fr_model *m, const fr_dataset *ds, int cache_mb, double **sx)
{
    long long rows = ds->row_hi - ds->row_lo;
    int N = m->spec.N;
    *sx = NULL;
    if (m->spec.nonlin == FR_NL_IDENTITY) {
        *sx = ds->x;
        return FR_OK;
    }
    if ((double)rows * N * sizeof(double) > (double)cache_mb * 1048576.0) return FR_OK;
    TRY(FR_CALLOC(*sx, rows > 0 ? rows * N : 1));
    for (long long r = 0; r < rows; ++r) sigma_row(m->spec.nonlin, ds->x + r * N, *sx + r * N, N);
    return FR_OK;
}

static void batch_bounds(const trainer *t, int b, long long *start, int *len)
{
    long long nb_full = t->n_train / t->M, rem = t->n_train % t->M;
    if (nb_full == 0) {
        *start = 0;
        *len = (int)t->n_train;
        return;
    }
    *start = (long long)b * t->M;
    *len = t->M;
    /* A remainder smaller than 2 joins the previous minibatch: PC needs M >= 2. */
    if (rem >= 2 && b == nb_full) *len = (int)rem;
    if (rem < 2 && b == nb_full - 1) *len = t->M + (int)rem;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* Epoch permutation: Fisher-Yates keyed by (seed, epoch, position). */
static void make_perm(trainer *t, uint64_t seed, int epoch)
{
    memcpy(t->perm, t->train_ids, (size_t)t->n_train * sizeof *t->perm);
    for (long long i = t->n_train - 1; i > 0; --i) {
        double u = fr_rng_uniform(seed, FR_STREAM_PERM, (uint32_t)epoch, (uint64_t)i);
        long long j = (long long)(u * (double)(i + 1));
        if (j > i) j = i;
        long long tmp = t->perm[i];
        t->perm[i] = t->perm[j];
        t->perm[j] = tmp;
    }
}

static fr_err trainer_setup(trainer *t, MPI_Comm comm, const fr_config *cfg, const fr_dataset *ds,
                            const unsigned char *split)
{
    memset(t, 0, sizeof *t);
    t->comm = comm;
    MPI_Comm_rank(comm, &t->rank);
    MPI_Comm_size(comm, &t->size);
    t->cfg = cfg;
    t->ds = ds;
    t->split = split;
    t->L = cfg->lags;
    long long nt = ds->n_trials;
    TRY(FR_CALLOC(t->sample_start, nt + 1));
    for (long long k = 0; k < nt; ++k) {
        long long T = ds->offsets[k + 1] - ds->offsets[k];
        t->sample_start[k + 1] = t->sample_start[k] + (T > t->L ? T - t->L : 0);
    }
    for (long long k = 0; k < nt; ++k)
        if (split[k]) t->n_train += t->sample_start[k + 1] - t->sample_start[k];
    if (t->n_train < 2)
        return FR_FAIL(FR_EINVAL, "only %lld training samples: need at least 2 (check cv.folds and trial lengths)",
                       t->n_train);
    TRY(FR_CALLOC(t->train_ids, t->n_train));
    TRY(FR_CALLOC(t->perm, t->n_train));
    long long n = 0;
    for (long long k = 0; k < nt; ++k)
        if (split[k])
            for (long long s = t->sample_start[k]; s < t->sample_start[k + 1]; ++s) t->train_ids[n++] = s;

    fr_model_spec spec;
    TRY(fr_fit_model_spec(cfg, ds, t->n_train, &spec));
    TRY(fr_model_init(&t->model, &spec));
    t->N = spec.N;
    t->K = spec.K;
    t->D = spec.D;
    t->M = spec.batch_size;
    long long nb_full = t->n_train / t->M, rem = t->n_train % t->M;
    t->n_batches = (int)(nb_full == 0 ? 1 : nb_full + (rem >= 2 ? 1 : 0));
    int Mmax = t->M + 1;
    TRY(fr_ws_create(&t->model, Mmax, Mmax, &t->ws));

    /* Which global sample ids each rank owns: its contiguous trial range. */
    TRY(FR_CALLOC(t->sid_lo, t->size + 1));
    long long mine = t->sample_start[ds->trial_lo];
    CHECK_MPI(MPI_Allgather(&mine, 1, MPI_LONG_LONG, t->sid_lo, 1, MPI_LONG_LONG, comm));
    t->sid_lo[t->size] = t->sample_start[nt];
    for (int r = t->size - 1; r >= 0; --r) /* ranks with no trials report their successor's start */
        if (t->sid_lo[r] > t->sid_lo[r + 1]) t->sid_lo[r] = t->sid_lo[r + 1];

    t->rows = ds->row_hi - ds->row_lo;
    TRY(sigma_cache(&t->model, ds, cfg->sigma_cache_mb, &t->sx));
    if (!t->sx) TRY(FR_CALLOC(t->sx_rows, (size_t)Mmax * t->L * t->N));
    TRY(FR_CALLOC(t->batch, Mmax));
    TRY(FR_CALLOC(t->xp, Mmax));
    TRY(FR_CALLOC(t->sxp, (size_t)Mmax * t->L));
    TRY(FR_CALLOC(t->up, Mmax));
    TRY(FR_CALLOC(t->eps, (size_t)Mmax * t->K));
    TRY(FR_CALLOC(t->pack_loc, (size_t)Mmax * 2 * t->K));
    TRY(FR_CALLOC(t->pack_all, (size_t)Mmax * 2 * t->K));
    TRY(FR_CALLOC(t->mu_all, (size_t)Mmax * t->K));
    TRY(FR_CALLOC(t->z_all, (size_t)Mmax * t->K));
    TRY(FR_CALLOC(t->dmu_all, (size_t)Mmax * t->K));
    TRY(FR_CALLOC(t->dz_rows, (size_t)Mmax * t->K));
    TRY(FR_CALLOC(t->counts, t->size));
    TRY(FR_CALLOC(t->displs, t->size));
    t->np = t->model.n_params;
    TRY(FR_CALLOC(t->params, t->np));
    TRY(FR_CALLOC(t->grad, t->np + TAIL_N));
    TRY(FR_CALLOC(t->m1, t->np));
    TRY(FR_CALLOC(t->m2, t->np));
    TRY(FR_CALLOC(t->best, t->np));
    t->adam.lr = cfg->lr;
    t->adam.beta1 = 0.9;
    t->adam.beta2 = 0.999;
    t->adam.eps = 1e-8;
    t->adam.weight_decay = cfg->weight_decay;
    t->adam.decoupled = !strcmp(cfg->optimizer, "adamw");
    return FR_OK;
}

static void trainer_free(trainer *t)
{
    if (t->sx && t->sx != t->ds->x) free(t->sx);
    fr_ws_free(t->ws);
    void *bufs[] = {t->sample_start, t->train_ids, t->perm, t->sid_lo, t->batch, (void *)t->xp, (void *)t->sxp,
                    (void *)t->up, t->sx_rows, t->eps, t->pack_loc, t->pack_all, t->mu_all, t->z_all, t->dmu_all,
                    t->dz_rows, t->counts, t->displs, t->params, t->grad, t->m1, t->m2, t->best};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; ++i) free(bufs[i]);
}

/* First index i in the sorted batch[0..len) with batch[i] >= sid. */
static int lower_bound(const long long *batch, int len, long long sid)
{
    int a = 0, b = len;
    while (a < b) {
        int mid = (a + b) / 2;
        if (batch[mid] < sid) a = mid + 1;
        else b = mid;
    }
    return a;
}

/* Point the local batch rows at this rank's samples of `batch[0..len)`,
 * which is sorted, so every rank's samples form one contiguous block. */
static void local_rows(trainer *t, int len, int *row0, int *m)
{
    for (int r = 0; r < t->size; ++r) {
        t->displs[r] = lower_bound(t->batch, len, t->sid_lo[r]);
        t->counts[r] = lower_bound(t->batch, len, t->sid_lo[r + 1]) - t->displs[r];
    }
    *row0 = t->displs[t->rank];
    *m = t->counts[t->rank];
}

static void point_rows(trainer *t, const long long *sids, int m, uint64_t seed, int epoch, int with_eps)
{
    for (int i = 0; i < m; ++i) {
        long long sid = sids[i];
        long long k = trial_of_sid(t, sid);
        long long tt = sid - t->sample_start[k] + t->L;
        long long row = local_row(t, k, tt);
        t->xp[i] = t->ds->x + row * t->N;
        for (int l = 1; l <= t->L; ++l) {
            size_t q = (size_t)i * t->L + l - 1;
            t->sxp[q] = sigma_ptr(&t->model, t->ds, t->sx, row - l, t->sx_rows ? t->sx_rows + q * t->N : NULL);
        }
        if (t->D) t->up[i] = t->ds->u + row * t->ds->D;
        if (with_eps)
            for (int j = 0; j < t->K; ++j)
                t->eps[(size_t)i * t->K + j] =
                    fr_rng_normal(seed, FR_STREAM_EPS, (uint32_t)epoch, (uint64_t)sid * (uint64_t)t->K + (uint64_t)j);
    }
}

/* One optimisation step on minibatch `batch[0..len)`. Returns the reduced
 * loss sums in tail[] (nll, kl, pc, stop). Collective. */
static fr_err train_step(trainer *t, int len, long step, uint64_t seed, int epoch, int update, double tail[TAIL_N])
{
    int row0, m;
    qsort(t->batch, (size_t)len, sizeof *t->batch, cmp_ll);
    local_rows(t, len, &row0, &m);
    point_rows(t, t->batch + row0, m, seed, epoch, 1);
    fr_batch b = {m, t->xp, t->sxp, t->D ? t->up : NULL, t->eps};
    int K = t->K;
    TRY(fr_model_encode(&t->model, t->params, &b, t->ws));
    const fr_model *mdl = &t->model;
    int use_pc = mdl->spec.G > 1;
    double pc_sum = 0;
    memset(t->dz_rows, 0, (size_t)(m > 0 ? m : 1) * K * sizeof(double));
    if (use_pc) {
        const double *mu = fr_ws_mu(t->ws), *z = fr_ws_z(t->ws);
        for (int i = 0; i < m; ++i) {
            memcpy(t->pack_loc + (size_t)i * 2 * K, mu + (size_t)i * K, K * sizeof(double));
            memcpy(t->pack_loc + (size_t)i * 2 * K + K, z + (size_t)i * K, K * sizeof(double));
        }
        int cnt2[256], dsp2[256];
        int *cnt = t->size <= 256 ? cnt2 : NULL, *dsp = t->size <= 256 ? dsp2 : NULL;
        if (!cnt) return FR_FAIL(FR_EINTERNAL, "more than 256 ranks in one fit team is not supported");
        for (int r = 0; r < t->size; ++r) {
            cnt[r] = t->counts[r] * 2 * K;
            dsp[r] = t->displs[r] * 2 * K;
        }
        CHECK_MPI(MPI_Allgatherv(t->pack_loc, m * 2 * K, MPI_DOUBLE, t->pack_all, cnt, dsp, MPI_DOUBLE, t->comm));
        for (int i = 0; i < len; ++i) {
            memcpy(t->mu_all + (size_t)i * K, t->pack_all + (size_t)i * 2 * K, K * sizeof(double));
            memcpy(t->z_all + (size_t)i * K, t->pack_all + (size_t)i * 2 * K + K, K * sizeof(double));
        }
        memset(t->dmu_all, 0, (size_t)len * K * sizeof(double));
        double scale = mdl->spec.beta / (double)len;
        TRY(fr_pc_rows(mdl, len, t->mu_all, t->z_all, row0, m, scale, &pc_sum, t->dz_rows, t->dmu_all, t->ws));
        /* Every rank's PC rows touch every mu_j: sum the (len, K) pieces. */
        if (t->size > 1 && scale != 0.0)
            CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, t->dmu_all, len * K, MPI_DOUBLE, MPI_SUM, t->comm));
    }
    memset(t->grad, 0, (t->np + TAIL_N) * sizeof(double));
    fr_terms terms = {0, 0, 0};
    TRY(fr_model_backward(mdl, t->params, &b, t->ws, 1.0 / len, use_pc ? t->dmu_all + (size_t)row0 * K : NULL,
                          use_pc ? t->dz_rows : NULL, t->grad, &terms));
    double *tl = t->grad + t->np;
    tl[TAIL_NLL] = terms.nll;
    tl[TAIL_KL] = terms.kl;
    tl[TAIL_PC] = pc_sum;
    tl[TAIL_STOP] = g_stop_signal ? 1.0 : 0.0;
    /* THE gradient reduction: parameters, loss sums and the stop flag. */
    if (t->size > 1)
        CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, t->grad, (int)(t->np + TAIL_N), MPI_DOUBLE, MPI_SUM, t->comm));
    memcpy(tail, tl, TAIL_N * sizeof(double));
    double loss = (tl[TAIL_NLL] + tl[TAIL_KL]) / len + mdl->spec.beta * tl[TAIL_PC] / len;
    if (!isfinite(loss)) return FR_FAIL(FR_ENUMERIC, "loss is %g at epoch %d, step %ld", loss, epoch, step);
    if (update) fr_adam_step(&t->adam, step, t->np, t->params, t->grad, t->m1, t->m2);
    return FR_OK;
}

/* ---- evaluation ------------------------------------------------------------------ */
#define FR_EVAL_MAX_POINTS 1000 /* points for the evaluation PC/TC estimator */
#define FR_EVAL_NMC 10

typedef struct {
    const fr_model *m;
    const double *params;
    const fr_dataset *ds;
    const double *sx; /* (rows, N) sigma(x) cache, or NULL: rows computed per chunk into sx_rows */
    fr_ws *ws;
    int cap;          /* rows per chunk (ws capacity) */
    const double **xp, **sxp, **up;
    double *sx_rows;  /* (cap * L, N) when sx is NULL */
    double *mu, *eta, *nll; /* (cap, K), (cap, N), (cap) */
} eval_ctx;

static fr_err eval_ctx_init(eval_ctx *c, const fr_model *m, const double *params, const fr_dataset *ds,
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
    TRY(FR_CALLOC(c->mu, (size_t)cap * m->spec.K));
    TRY(FR_CALLOC(c->eta, (size_t)cap * m->spec.N));
    TRY(FR_CALLOC(c->nll, cap));
    return FR_OK;
}

static void eval_ctx_free(eval_ctx *c)
{
    free((void *)c->xp);
    free((void *)c->sxp);
    free(c->sx_rows);
    free((void *)c->up);
    free(c->mu);
    free(c->eta);
    free(c->nll);
}

/* Predict local rows [r0, r0 + n) (all with t >= L inside one trial). */
static fr_err eval_chunk(eval_ctx *c, long long r0, int n)
{
    int N = c->m->spec.N, L = c->m->spec.L, D = c->m->spec.D;
    for (int i = 0; i < n; ++i) {
        long long row = r0 + i;
        c->xp[i] = c->ds->x + row * N;
        for (int l = 1; l <= L; ++l) {
            size_t q = (size_t)i * L + l - 1;
            c->sxp[q] = sigma_ptr(c->m, c->ds, c->sx, row - l, c->sx_rows ? c->sx_rows + q * N : NULL);
        }
        if (D) c->up[i] = c->ds->u + row * c->ds->D;
    }
    fr_batch b = {n, c->xp, c->sxp, D ? c->up : NULL, NULL};
    return fr_model_predict(c->m, c->params, &b, c->ws, c->mu, c->eta, c->nll);
}

/* Means for every local bin (NaN in each trial's first L context bins). */
static fr_err compute_latents(eval_ctx *c, double *lat /* (rows, K) */)
{
    const fr_dataset *ds = c->ds;
    int K = c->m->spec.K, L = c->m->spec.L;
    for (long long k = ds->trial_lo; k < ds->trial_hi; ++k) {
        long long a = ds->offsets[k] - ds->row_lo, e = ds->offsets[k + 1] - ds->row_lo;
        for (long long r = a; r < a + L && r < e; ++r)
            for (int j = 0; j < K; ++j) lat[r * K + j] = NAN;
        for (long long r = a + L; r < e; r += c->cap) {
            int n = (int)(e - r < c->cap ? e - r : c->cap);
            TRY(eval_chunk(c, r, n));
            memcpy(lat + r * K, c->mu, (size_t)n * K * sizeof(double));
        }
    }
    return FR_OK;
}

static fr_err evaluate_impl(MPI_Comm comm, eval_ctx *c, const unsigned char *split, int which, fr_fit_metrics *out)
{
    const fr_dataset *ds = c->ds;
    const fr_model *m = c->m;
    int N = m->spec.N, K = m->spec.K, L = m->spec.L;
    int poisson = m->spec.obs == FR_OBS_POISSON;
    /* acc layout: [nll, count, spikes, nll_const] + per channel [sum, sumsq, sse, train_sum] */
    size_t na = 4 + 4 * (size_t)N;
    double *acc;
    TRY(FR_CALLOC(acc, na));
    double *ch = acc + 4;
    /* training-set mean per channel (the constant-rate baseline for bits/spike) */
    long long ntr = 0;
    for (long long k = ds->trial_lo; k < ds->trial_hi; ++k) {
        if (!split[k]) continue;
        for (long long r = ds->offsets[k] - ds->row_lo + L; r < ds->offsets[k + 1] - ds->row_lo; ++r) {
            for (int n = 0; n < N; ++n) ch[4 * n + 3] += ds->x[r * N + n];
            ++ntr;
        }
    }
    double ntr_d = (double)ntr;
    CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, &ntr_d, 1, MPI_DOUBLE, MPI_SUM, comm));
    for (int n = 0; n < N; ++n) {
        double s = ch[4 * n + 3];
        CHECK_MPI(MPI_Allreduce(&s, &ch[4 * n + 3], 1, MPI_DOUBLE, MPI_SUM, comm));
    }
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
    double *sel;
    TRY(FR_CALLOC(sel, (size_t)(FR_EVAL_MAX_POINTS + 1) * K));
    int nsel = 0;
    long long idx = before;
    fr_err rc = FR_OK;
    for (long long k = ds->trial_lo; k < ds->trial_hi && rc == FR_OK; ++k) {
        if ((split[k] != 0) != (which != 0)) continue;
        long long a = ds->offsets[k] - ds->row_lo + L, e = ds->offsets[k + 1] - ds->row_lo;
        for (long long r = a; r < e && rc == FR_OK; r += c->cap) {
            int n = (int)(e - r < c->cap ? e - r : c->cap);
            rc = eval_chunk(c, r, n);
            for (int i = 0; i < n && rc == FR_OK; ++i, ++idx) {
                const double *x = ds->x + (r + i) * N, *eta = c->eta + (size_t)i * N;
                acc[0] += c->nll[i];
                acc[1] += 1;
                for (int j = 0; j < N; ++j) {
                    double mean = fr_model_mean(m, eta[j]);
                    ch[4 * j] += x[j];
                    ch[4 * j + 1] += x[j] * x[j];
                    ch[4 * j + 2] += (x[j] - mean) * (x[j] - mean);
                    if (poisson) {
                        double rate = fmax(ch[4 * j + 3] / fmax(ntr_d, 1), FR_POISSON_RATE_FLOOR);
                        acc[2] += x[j];
                        acc[3] += rate - x[j] * log(rate) + lgamma(x[j] + 1);
                    }
                }
                if (idx % stride == 0 && nsel <= FR_EVAL_MAX_POINTS)
                    memcpy(sel + (size_t)nsel++ * K, c->mu + (size_t)i * K, K * sizeof(double));
            }
        }
    }
    if (rc == FR_OK) rc = fr_error_agree(&comm, rc);
    else fr_fatal(rc); /* a local model failure mid-evaluation: the others are not waiting on us yet */
    if (rc == FR_OK) {
        /* per-channel sums except the training means, which are already global */
        double *red;
        rc = FR_CALLOC(red, na);
        if (rc == FR_OK) {
            MPI_Allreduce(acc, red, (int)na, MPI_DOUBLE, MPI_SUM, comm);
            memset(out, 0, sizeof *out);
            out->n_samples = (long long)red[1];
            out->nll_per_bin = red[1] > 0 ? red[0] / red[1] : NAN;
            double r2 = 0;
            int used = 0;
            for (int j = 0; j < N; ++j) {
                double s = red[4 + 4 * j], ss = red[4 + 4 * j + 1], sse = red[4 + 4 * j + 2];
                double sst = ss - s * s / fmax(red[1], 1);
                if (sst > 1e-12 * fmax(ss, 1e-300)) {
                    r2 += 1.0 - sse / sst;
                    ++used;
                }
            }
            out->r2 = used ? r2 / used : NAN;
            out->bits_per_spike = poisson && red[2] > 0 ? (red[3] - red[0]) / (red[2] * log(2.0)) : NAN;
            free(red);
        }
    }
    /* PC / TC on the subsampled means, gathered to every rank. */
    if (rc == FR_OK) {
        int size;
        MPI_Comm_size(comm, &size);
        int *cnts = NULL, *dsps = NULL;
        double *all = NULL;
        int mine = nsel * K;
        if ((rc = FR_CALLOC(cnts, size)) == FR_OK && (rc = FR_CALLOC(dsps, size)) == FR_OK) {
            MPI_Allgather(&mine, 1, MPI_INT, cnts, 1, MPI_INT, comm);
            int tot = 0;
            for (int r = 0; r < size; ++r) {
                dsps[r] = tot;
                tot += cnts[r];
            }
            if ((rc = FR_CALLOC(all, tot)) == FR_OK) {
                MPI_Allgatherv(sel, mine, MPI_DOUBLE, all, cnts, dsps, MPI_DOUBLE, comm);
                int npts = tot / (K ? K : 1);
                out->pc = out->tc = NAN;
                if (npts >= 2) {
                    int ones[FR_MAX_GROUPS];
                    for (int j = 0; j < K && j < FR_MAX_GROUPS; ++j) ones[j] = 1;
                    rc = fr_pc_eval(K, m->spec.G, m->spec.group_size, npts, all, m->s_enc, FR_EVAL_NMC,
                                    FR_EVAL_MAX_POINTS, 12345, &out->pc);
                    if (rc == FR_OK && K <= FR_MAX_GROUPS)
                        rc = fr_pc_eval(K, K, ones, npts, all, m->s_enc, FR_EVAL_NMC, FR_EVAL_MAX_POINTS, 12345,
                                        &out->tc);
                }
            }
        }
        free(cnts);
        free(dsps);
        free(all);
    }
    out->group_latent_r2 = out->component_latent_r2 = out->behavior_r2 = NAN;
    free(acc);
    free(sel);
    return rc;
}

/* Evaluation outside the training loop (fit's final metrics use the
 * trainer's own buffers): an evaluation context and its workspace. */
typedef struct {
    eval_ctx c;
    fr_ws *ws;
} standalone_ctx;

static fr_err standalone_open(standalone_ctx *s, const fr_model *m, const double *params, const fr_dataset *ds)
{
    memset(s, 0, sizeof *s);
    /* sigma(x) rows are computed per chunk (NULL): no whole-shard copy. */
    const double *sx = m->spec.nonlin == FR_NL_IDENTITY ? ds->x : NULL;
    const int cap = 256;
    TRY(fr_ws_create(m, cap, cap, &s->ws));
    return eval_ctx_init(&s->c, m, params, ds, sx, s->ws, cap);
}

static void standalone_close(standalone_ctx *s)
{
    eval_ctx_free(&s->c);
    fr_ws_free(s->ws);
}

fr_err fr_trainer_evaluate(MPI_Comm comm, const fr_model *m, const double *params, const fr_dataset *ds,
                           const unsigned char *split, int which, fr_fit_metrics *out)
{
    standalone_ctx s;
    fr_err rc = fr_error_agree(&comm, standalone_open(&s, m, params, ds));
    if (rc == FR_OK) rc = evaluate_impl(comm, &s.c, split, which, out);
    standalone_close(&s);
    return rc;
}

/* ---- latents for any data set (used by eval) ---------------------------------- */
fr_err fr_trainer_latents(MPI_Comm comm, const fr_model *m, const double *params, const fr_dataset *ds,
                          double *latents)
{
    standalone_ctx s;
    fr_err rc = standalone_open(&s, m, params, ds);
    if (rc == FR_OK) rc = compute_latents(&s.c, latents);
    standalone_close(&s);
    return fr_error_agree(&comm, rc);
}

/* ---- initialisation ---------------------------------------------------------- */
/* Solve the symmetric positive (K, K) system S X^T = B^T in place of rhs
 * rows: rhs (nr, K) <- rhs S^{-1}, by Cholesky. Tiny K, so plain loops. */
static fr_err chol_solve_rows(int K, double *S /* (K, K), destroyed */, int nr, double *rhs /* (nr, K) */)
{
    for (int j = 0; j < K; ++j) {
        double dj = S[j * K + j];
        for (int p = 0; p < j; ++p) dj -= S[j * K + p] * S[j * K + p];
        if (!(dj > 0)) return FR_FAIL(FR_ENUMERIC, "PCA initialisation: latent covariance is singular");
        S[j * K + j] = sqrt(dj);
        for (int i = j + 1; i < K; ++i) {
            double v = S[i * K + j];
            for (int p = 0; p < j; ++p) v -= S[i * K + p] * S[j * K + p];
            S[i * K + j] = v / S[j * K + j];
        }
    }
    for (int r = 0; r < nr; ++r) {
        double *y = rhs + (size_t)r * K;
        for (int i = 0; i < K; ++i) { /* forward: L w = y */
            double v = y[i];
            for (int p = 0; p < i; ++p) v -= S[i * K + p] * y[p];
            y[i] = v / S[i * K + i];
        }
        for (int i = K - 1; i >= 0; --i) { /* backward: L^T x = w */
            double v = y[i];
            for (int p = i + 1; p < K; ++p) v -= S[p * K + i] * y[p];
            y[i] = v / S[i * K + i];
        }
    }
    return FR_OK;
}

/* Mode basis for partitioned models (README "Initialisation"). PCA's basis
 * of the latent subspace is arbitrary, so it mixes independent sub-systems
 * across groups. Their linear dynamics mu_{t+1} ~ F mu_t + f do not: each
 * independent sub-system is an invariant subspace of F, so F's real
 * eigenbasis (1-D modes for real eigenvalues, 2-D [Re v, Im v] for complex
 * pairs) separates them. This moves those modes into the groups with a
 * same-function change of latent basis: new mu = P (mu - mean), P = the
 * mode coordinates permuted into groups and scaled to unit variance.
 * Everything comes from one Allreduce of moments over training bins, so each
 * rank does the same K x K algebra and the result does not depend on the
 * rank count beyond summation order. A numerical failure (singular or
 * defective dynamics, NaN) logs one line and keeps the PCA basis.
 * Collective over t->comm. */
static fr_err init_modes(trainer *t)
{
    const fr_dataset *ds = t->ds;
    int N = t->N, K = t->K, L = t->L, G = t->model.spec.G;
    fr_moments pair, lat; /* pair: v = [mu_t, mu_{t+1}] (2K); lat: v = mu_t (K), every latent bin */
    memset(&pair, 0, sizeof pair);
    memset(&lat, 0, sizeof lat);
    eval_ctx c;
    memset(&c, 0, sizeof c);
    int cap = t->M + 1;
    double *prev = NULL, *flat = NULL, *W = NULL, *F = NULL, *T = NULL, *P = NULL, *Pinv = NULL, *mean = NULL;
    int *msize = NULL, *cgroup = NULL, *xi = NULL, *yi = NULL;
    fr_err rc = fr_moments_init(&pair, 2 * K);
    if (rc == FR_OK) rc = fr_moments_init(&lat, K);
    if (rc == FR_OK) rc = FR_CALLOC(prev, (size_t)cap * K);
    if (rc == FR_OK) rc = FR_CALLOC(flat, pair.len + lat.len);
    if (rc == FR_OK) rc = eval_ctx_init(&c, &t->model, t->params, ds, t->sx, t->ws, cap);
    /* Local sums. Trials are whole on each rank, so every consecutive pair
     * of latent bins is local. prev row i holds the mean before chunk row i;
     * a NaN row (a trial's first latent bin) is skipped by the moments. */
    for (long long k = ds->trial_lo; k < ds->trial_hi && rc == FR_OK; ++k) {
        if (!t->split[k]) continue;
        long long a = ds->offsets[k] - ds->row_lo + L, e = ds->offsets[k + 1] - ds->row_lo;
        for (int p = 0; p < K; ++p) prev[p] = NAN;
        for (long long r = a; r < e && rc == FR_OK; r += cap) {
            int cnt = (int)(e - r < cap ? e - r : cap);
            rc = eval_chunk(&c, r, cnt);
            if (rc != FR_OK) break;
            memcpy(prev + K, c.mu, (size_t)(cnt - 1) * K * sizeof(double));
            rc = fr_moments_add(&pair, cnt, K, prev, K, c.mu);
            if (rc == FR_OK) rc = fr_moments_add(&lat, cnt, K, c.mu, 0, NULL);
            memcpy(prev, c.mu + (size_t)(cnt - 1) * K, (size_t)K * sizeof(double));
        }
    }
    eval_ctx_free(&c);
    rc = fr_error_agree(&t->comm, rc);
    if (rc != FR_OK) goto done;
    memcpy(flat, pair.buf, pair.len * sizeof(double));
    memcpy(flat + pair.len, lat.buf, lat.len * sizeof(double));
    rc = fr_check_mpi(MPI_Allreduce(MPI_IN_PLACE, flat, (int)(pair.len + lat.len), MPI_DOUBLE, MPI_SUM, t->comm),
                      "MPI_Allreduce(mode moments)", __FILE__, __LINE__);
    if (rc != FR_OK) goto done;
    memcpy(pair.buf, flat, pair.len * sizeof(double));
    memcpy(lat.buf, flat + pair.len, lat.len * sizeof(double));

    /* From here on every rank holds the same moments and does the same
     * small algebra. Numerical failures fall back to the PCA basis. */
    rc = FR_CALLOC(W, (size_t)K * K);
    if (rc == FR_OK) rc = FR_CALLOC(F, (size_t)K * K);
    if (rc == FR_OK) rc = FR_CALLOC(T, (size_t)K * K);
    if (rc == FR_OK) rc = FR_CALLOC(P, (size_t)K * K);
    if (rc == FR_OK) rc = FR_CALLOC(Pinv, (size_t)K * K);
    if (rc == FR_OK) rc = FR_CALLOC(mean, 2 * (size_t)K); /* (K) mean, then (K) intercept f */
    if (rc == FR_OK) rc = FR_CALLOC(msize, K);
    if (rc == FR_OK) rc = FR_CALLOC(cgroup, K);
    if (rc == FR_OK) rc = FR_CALLOC(xi, K);
    if (rc == FR_OK) rc = FR_CALLOC(yi, K);
    if (rc != FR_OK) goto done;
    for (int p = 0; p < K; ++p) {
        xi[p] = p;
        yi[p] = K + p;
    }
    fr_err nrc = *pair.n >= 2 * K + 1 ? FR_OK
                                      : FR_FAIL(FR_ENUMERIC, "%.0f consecutive training pairs for %d latents",
                                                *pair.n, K);
    /* mu_{t+1} ~ W^T mu_t + f, i.e. F = W^T */
    if (nrc == FR_OK) nrc = fr_affine_fit_moments(&pair, K, xi, K, yi, FR_AN_TINY_RIDGE, W, mean + K);
    for (int p = 0; p < K; ++p)
        for (int q = 0; q < K; ++q) F[p * K + q] = W[q * K + p];
    int n_modes = 0, n_split = 0;
    if (nrc == FR_OK) nrc = fr_modes_basis(K, F, T, msize, &n_modes);
    if (nrc == FR_OK) nrc = fr_modes_assign(n_modes, msize, G, t->model.spec.group_size, cgroup, &n_split);
    /* P: mode coordinate i goes to the next free coordinate of its group,
     * scaled to unit variance over training bins (var = T_i Cov(mu) T_i^T). */
    double n = *lat.n;
    for (int p = 0; p < K; ++p) mean[p] = lat.s[p] / n;
    int fill[FR_MAX_GROUPS] = {0};
    for (int i = 0; i < K && nrc == FR_OK; ++i) {
        int g = cgroup[i];
        int row = t->model.group_off[g] + fill[g]++;
        const double *ti = T + (size_t)i * K;
        double var = 0;
        for (int p = 0; p < K; ++p)
            for (int q = 0; q < K; ++q) var += ti[p] * ti[q] * (lat.S[p * K + q] / n - mean[p] * mean[q]);
        if (!(var > 0) || !isfinite(var)) {
            nrc = FR_FAIL(FR_ENUMERIC, "mode %d has variance %g", i, var);
            break;
        }
        for (int p = 0; p < K; ++p) P[(size_t)row * K + p] = ti[p] / sqrt(var);
    }
    if (nrc == FR_OK) nrc = fr_modes_inverse(K, P, Pinv);
    for (size_t i = 0; i < (size_t)K * K && nrc == FR_OK; ++i)
        if (!isfinite(P[i]) || !isfinite(Pinv[i])) nrc = FR_FAIL(FR_ENUMERIC, "mode basis is not finite");
    if (nrc != FR_OK) {
        LOG_INFO("PCA initialisation: no mode basis (%s); keeping the PCA basis", fr_error_msg());
        fr_error_clear();
        goto done;
    }
    fr_view v = fr_model_view(&t->model, t->params);
    rc = fr_modes_change_basis(N, K, P, Pinv, mean, v.B, v.d, v.A, v.c);
    if (rc != FR_OK) goto done;
    char desc[256];
    int o = 0;
    for (int i = 0, q = 0; q < n_modes && o < (int)sizeof desc - 16; i += msize[q], ++q)
        o += snprintf(desc + o, sizeof desc - (size_t)o, "%s%d->%d", q ? " " : "", msize[q], cgroup[i]);
    LOG_INFO("PCA initialisation: latent basis from the dynamics' real eigenbasis, modes (size->group) %s%s", desc,
             n_split ? ", complex pair(s) split to fill the groups" : "");
done:
    fr_moments_free(&pair);
    fr_moments_free(&lat);
    free(prev);
    free(flat);
    free(W);
    free(F);
    free(T);
    free(P);
    free(Pinv);
    free(mean);
    free(msize);
    free(cgroup);
    free(xi);
    free(yi);
    return rc;
}

/* PCA initialisation (README "Initialisation"): B whitens the top-K
 * principal components of sigma(x) on training bins, d centres them; A, c are
 * the least-squares map from those latents to the next bin (through the
 * inverse link for Poisson); Gaussian log-stds start at the residual std.
 * With G >= 2 groups, restart 0 then moves to the mode basis of the
 * latents' linear dynamics (init_modes). Restart r > 0 instead rotates the
 * PCA basis by a random orthogonal matrix, so restarts explore different
 * assignments of the subspace to groups.
 * Collective over t->comm. */
static fr_err init_pca(trainer *t, uint64_t seed, int restart, double *evals_out)
{
    const fr_dataset *ds = t->ds;
    int N = t->N, K = t->K, L = t->L;
    if (K > N) return FR_FAIL(FR_EINVAL, "model.init: pca needs model.rank (%d) <= channels (%d)", K, N);
    long long nloc = 0;
    for (long long k = ds->trial_lo; k < ds->trial_hi; ++k)
        if (t->split[k]) nloc += ds->offsets[k + 1] - ds->offsets[k];
    double *X = NULL, *mean = NULL, *evals = NULL, *evecs = NULL;
    TRY(FR_CALLOC(X, (nloc ? nloc : 1) * N));
    TRY(FR_CALLOC(mean, N));
    TRY(FR_CALLOC(evals, N));
    TRY(FR_CALLOC(evecs, (size_t)N * K));
    long long n = 0;
    for (long long k = ds->trial_lo; k < ds->trial_hi; ++k) {
        if (!t->split[k]) continue;
        long long a = ds->offsets[k] - ds->row_lo, e = ds->offsets[k + 1] - ds->row_lo;
        for (long long r = a; r < e; ++r, ++n) {
            if (t->sx) memcpy(X + n * N, t->sx + r * N, (size_t)N * sizeof(double));
            else sigma_row(t->model.spec.nonlin, ds->x + r * N, X + n * N, N);
        }
    }
    fr_err rc = fr_dl_pca(t->comm, N, nloc, X, K, mean, evals, evecs);
    free(X);
    if (rc != FR_OK) {
        free(mean); free(evals); free(evecs);
        return rc;
    }
    if (evals_out) memcpy(evals_out, evals, (size_t)N * sizeof(double));
    fr_view v = fr_model_view(&t->model, t->params);
    for (int k = 0; k < K; ++k) {
        double sc = 1.0 / sqrt(fmax(evals[k], 1e-12));
        double dk = 0;
        for (int j = 0; j < N; ++j) {
            v.B[(size_t)k * N + j] = evecs[(size_t)j * K + k] * sc;
            dk -= v.B[(size_t)k * N + j] * mean[j];
        }
        v.d[k] = dk;
    }
    free(mean); free(evals); free(evecs);
    memset(v.A, 0, (size_t)N * K * sizeof(double));
    memset(v.c, 0, (size_t)N * sizeof(double));
    if (v.E) memset(v.E, 0, (size_t)N * t->D * sizeof(double));

    /* Moments of (latent mean, target) over training samples. */
    int poisson = t->model.spec.obs == FR_OBS_POISSON;
    size_t nm = 1 + K + N + (size_t)N * K + (size_t)K * K + N;
    double *mo;
    TRY(FR_CALLOC(mo, nm));
    double *Smu = mo + 1, *Sy = Smu + K, *Syz = Sy + N, *Szz = Syz + (size_t)N * K, *Syy = Szz + (size_t)K * K;
    eval_ctx c;
    memset(&c, 0, sizeof c);
    int cap = t->M + 1;
    rc = eval_ctx_init(&c, &t->model, t->params, ds, t->sx, t->ws, cap);
    double *y = NULL;
    if (rc == FR_OK) rc = FR_CALLOC(y, N);
    for (long long k = ds->trial_lo; k < ds->trial_hi && rc == FR_OK; ++k) {
        if (!t->split[k]) continue;
        long long a = ds->offsets[k] - ds->row_lo + L, e = ds->offsets[k + 1] - ds->row_lo;
        for (long long r = a; r < e && rc == FR_OK; r += cap) {
            int cnt = (int)(e - r < cap ? e - r : cap);
            rc = eval_chunk(&c, r, cnt);
            for (int i = 0; i < cnt && rc == FR_OK; ++i) {
                const double *x = ds->x + (r + i) * N, *mu = c.mu + (size_t)i * K;
                for (int j = 0; j < N; ++j) {
                    double xv = x[j];
                    if (poisson) /* inverse link of a smoothed count */
                        y[j] = t->model.spec.link == FR_LINK_EXP ? log(xv + 0.1) : log(expm1(xv + 0.1));
                    else
                        y[j] = xv;
                }
                mo[0] += 1;
                for (int p = 0; p < K; ++p) Smu[p] += mu[p];
                for (int j = 0; j < N; ++j) {
                    Sy[j] += y[j];
                    Syy[j] += y[j] * y[j];
                }
                cblas_dger(CblasRowMajor, N, K, 1.0, y, 1, mu, 1, Syz, K);
                cblas_dger(CblasRowMajor, K, K, 1.0, mu, 1, mu, 1, Szz, K);
            }
        }
    }
    eval_ctx_free(&c);
    free(y);
    if (rc != FR_OK) fr_fatal(rc);
    CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, mo, (int)nm, MPI_DOUBLE, MPI_SUM, t->comm));
    double cnt = mo[0];
    /* centre */
    for (int p = 0; p < K; ++p)
        for (int q = 0; q < K; ++q) Szz[p * K + q] = Szz[p * K + q] / cnt - Smu[p] * Smu[q] / (cnt * cnt);
    for (int j = 0; j < N; ++j)
        for (int p = 0; p < K; ++p) Syz[(size_t)j * K + p] = Syz[(size_t)j * K + p] / cnt - Sy[j] * Smu[p] / (cnt * cnt);
    for (int p = 0; p < K; ++p) Szz[p * K + p] += 1e-9; /* guard against an exactly flat component */
    double *Scopy;
    TRY(FR_CALLOC(Scopy, (size_t)K * K));
    memcpy(v.A, Syz, (size_t)N * K * sizeof(double));
    memcpy(Scopy, Szz, (size_t)K * K * sizeof(double));
    rc = chol_solve_rows(K, Scopy, N, v.A); /* A = Cov(y, mu) Cov(mu)^-1 */
    free(Scopy);
    if (rc != FR_OK) {
        free(mo);
        return rc;
    }
    for (int j = 0; j < N; ++j) {
        double cj = Sy[j] / cnt, expl = 0;
        for (int p = 0; p < K; ++p) {
            cj -= v.A[(size_t)j * K + p] * Smu[p] / cnt;
            expl += v.A[(size_t)j * K + p] * Syz[(size_t)j * K + p];
        }
        v.c[j] = cj;
        if (v.s) {
            double var = Syy[j] / cnt - (Sy[j] / cnt) * (Sy[j] / cnt) - expl;
            v.s[j] = 0.5 * log(fmax(var, 1e-6));
        }
    }
    free(mo);
    if (restart == 0 && t->model.spec.G >= 2) TRY(init_modes(t));
    if (restart > 0) {
        double *R, *tmp;
        TRY(FR_CALLOC(R, (size_t)K * K));
        TRY(FR_CALLOC(tmp, (size_t)N * K));
        fr_rng_orthogonal(K, seed, FR_STREAM_INIT, 1000, R);
        /* B <- R B, d <- R d, A <- A R^T: the same function, rotated latents */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, K, N, K, 1.0, R, K, v.B, N, 0.0, tmp, N);
        memcpy(v.B, tmp, (size_t)K * N * sizeof(double));
        double dd[FR_MAX_GROUPS * 4];
        for (int p = 0; p < K; ++p) {
            dd[p] = 0;
            for (int q = 0; q < K; ++q) dd[p] += R[p * K + q] * v.d[q];
        }
        memcpy(v.d, dd, (size_t)K * sizeof(double));
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, K, K, 1.0, v.A, K, R, K, 0.0, tmp, K);
        memcpy(v.A, tmp, (size_t)N * K * sizeof(double));
        free(R);
        free(tmp);
    }
    return FR_OK;
}

/* Start from the generating parameters of a synthetic file (/truth/A, B, c,
 * d, read with the data set): the reference point for "did the optimiser
 * find the optimum?". */
static fr_err init_truth(trainer *t)
{
    const fr_truth_params *tp = &t->ds->truth;
    if (!tp->A || !tp->B || !tp->c || !tp->d)
        return FR_FAIL(FR_EINVAL, "model.init: truth needs /truth/A, /truth/B, /truth/c and /truth/d in %s",
                       t->ds->path);
    if (tp->N != t->N || tp->K != t->K)
        return FR_FAIL(FR_EINVAL, "model.init: truth has N = %d, K = %d but the model has N = %d, K = %d", tp->N,
                       tp->K, t->N, t->K);
    fr_view v = fr_model_view(&t->model, t->params);
    memcpy(v.A, tp->A, (size_t)t->N * t->K * sizeof(double));
    memcpy(v.B, tp->B, (size_t)t->K * t->N * sizeof(double));
    memcpy(v.c, tp->c, (size_t)t->N * sizeof(double));
    memcpy(v.d, tp->d, (size_t)t->K * sizeof(double));
    return FR_OK;
}

/* Learning rate at fraction `frac` in [0, 1) of a restart's steps. The
 * cosine schedule ends at lr/20, so the final parameters settle instead of
 * bouncing at the peak rate (the fit reports its final parameters). */
static double lr_at(const fr_config *cfg, double frac)
{
    if (strcmp(cfg->lr_schedule, "cosine")) return cfg->lr;
    const double floor = 0.05;
    return cfg->lr * (floor + (1.0 - floor) * 0.5 * (1.0 + cos(3.14159265358979323846 * frac)));
}

/* The training objective of the current parameters: the loss of the model
 * spec averaged over one pass of the training set with a FIXED set of
 * minibatches and noise (FR_OBJECTIVE_PASSES passes keyed by
 * FR_OBJECTIVE_EPOCH, independent of the training seed) and no update. Deterministic and rank-invariant, so
 * restarts, and fits started elsewhere (e.g. from the truth), compare
 * without the minibatch noise of the running loss. Collective. */
#define FR_OBJECTIVE_EPOCH 0x7fffffff
#define FR_OBJECTIVE_SEED 0x0b1ec71fULL
#define FR_OBJECTIVE_PASSES 8 /* the minibatch PC estimate is noisy: average passes */
static fr_err training_objective(trainer *t, double *obj)
{
    double sum = 0;
    for (int pass = 0; pass < FR_OBJECTIVE_PASSES; ++pass) {
        make_perm(t, FR_OBJECTIVE_SEED, FR_OBJECTIVE_EPOCH - pass);
        for (int b = 0; b < t->n_batches; ++b) {
            long long start;
            int len;
            batch_bounds(t, b, &start, &len);
            memcpy(t->batch, t->perm + start, (size_t)len * sizeof *t->batch);
            double tail[TAIL_N];
            TRY(train_step(t, len, 0, FR_OBJECTIVE_SEED, FR_OBJECTIVE_EPOCH - pass, 0, tail));
            sum += (tail[TAIL_NLL] + tail[TAIL_KL] + t->model.spec.beta * tail[TAIL_PC]) / len;
        }
    }
    *obj = sum / ((double)FR_OBJECTIVE_PASSES * t->n_batches);
    return FR_OK;
}

/* ---- the loop ------------------------------------------------------------------ */
#define FR_MAX_RESTARTS 64

typedef struct {
    double restart, epoch, batch, step, best_score, best_epoch;
    double acc_loss, acc_nll, acc_kl, acc_pc, acc_n;
    double sel_objective, sel_restart, sel_best_epoch, steps_total, sel_best_score;
} loop_state;

#define LS_N 16
static const char *ls_names[LS_N] = {"restart", "epoch", "batch", "step", "best_score",
                                     "best_epoch", "acc_loss", "acc_nll", "acc_kl", "acc_pc",
                                     "acc_n", "sel_objective", "sel_restart", "sel_best_epoch", "steps_total",
                                     "sel_best_score"};

typedef struct {
    double *history, *sel_params, *sel_history, *objective_all; /* (E*NCOL), (np), (E*NCOL), (MAX_RESTARTS) */
    double *pca_evals;                                          /* (N), NaN unless model.init is pca */
    double *sel_best;                                           /* (np) best-held-out params of the chosen restart */
} loop_arrays;

static void ckpt_items(trainer *t, loop_state *ls, loop_arrays *la, fr_ckpt_scalar *sc, fr_ckpt_array *arr)
{
    double *vals = (double *)ls;
    for (int i = 0; i < LS_N; ++i) {
        sc[i].name = ls_names[i];
        sc[i].value = vals[i];
    }
    size_t nh = (size_t)t->cfg->epochs * FR_H_NCOL;
    fr_ckpt_array a[] = {{"params", t->params, t->np},       {"adam_m1", t->m1, t->np},
                         {"adam_m2", t->m2, t->np},          {"best_params", t->best, t->np},
                         {"history", la->history, nh},       {"sel_params", la->sel_params, t->np},
                         {"sel_history", la->sel_history, nh}, {"objective_all", la->objective_all, FR_MAX_RESTARTS},
                         {"pca_evals", la->pca_evals, (size_t)t->N},
                         {"sel_best", la->sel_best, t->np}};
    memcpy(arr, a, sizeof a);
}
#define CKPT_NARR 10

static fr_err save_ckpt(trainer *t, const char *path, const fr_ckpt_tag *tag, loop_state *ls, loop_arrays *la)
{
    if (!path) return FR_OK;
    fr_ckpt_scalar sc[LS_N];
    fr_ckpt_array arr[CKPT_NARR];
    ckpt_items(t, ls, la, sc, arr);
    fr_err rc = FR_OK;
    if (t->rank == 0) rc = fr_ckpt_save(path, tag, LS_N, sc, CKPT_NARR, arr);
    return fr_error_agree(&t->comm, rc);
}

static fr_err load_ckpt(trainer *t, const char *path, const fr_ckpt_tag *tag, loop_state *ls, loop_arrays *la)
{
    fr_ckpt_scalar sc[LS_N];
    fr_ckpt_array arr[CKPT_NARR];
    ckpt_items(t, ls, la, sc, arr);
    TRY(fr_ckpt_load(t->comm, path, tag, LS_N, sc, CKPT_NARR, arr));
    double *vals = (double *)ls;
    for (int i = 0; i < LS_N; ++i) vals[i] = sc[i].value;
    return FR_OK;
}

static void fmt_eta(double s, char *buf, size_t n)
{
    if (!isfinite(s) || s < 0) s = 0;
    snprintf(buf, n, "%dh%02dm%02ds", (int)(s / 3600), (int)fmod(s / 60, 60), (int)fmod(s, 60));
}

fr_err fr_train(MPI_Comm comm, const fr_config *cfg, const fr_dataset *ds, const unsigned char *split,
                const char *ckpt_path, fr_fit_result *out)
{
    memset(out, 0, sizeof *out);
    trainer t;
    fr_err rc = trainer_setup(&t, comm, cfg, ds, split);
    rc = fr_error_agree(&comm, rc);
    if (rc != FR_OK) {
        trainer_free(&t);
        return rc;
    }
    int E = cfg->epochs, R = cfg->restarts < 1 ? 1 : cfg->restarts;
    if (R > FR_MAX_RESTARTS) R = FR_MAX_RESTARTS;
    int heldout = 0;
    for (long long k = 0; k < ds->n_trials; ++k) heldout |= !split[k];
    size_t nh = (size_t)E * FR_H_NCOL;
    loop_state ls;
    memset(&ls, 0, sizeof ls);
    loop_arrays la;
    TRY(FR_CALLOC(la.history, nh));
    TRY(FR_CALLOC(la.sel_history, nh));
    TRY(FR_CALLOC(la.sel_params, t.np));
    TRY(FR_CALLOC(la.sel_best, t.np));
    TRY(FR_CALLOC(la.objective_all, FR_MAX_RESTARTS));
    TRY(FR_CALLOC(la.pca_evals, t.N));
    for (int i = 0; i < FR_MAX_RESTARTS; ++i) la.objective_all[i] = NAN;
    for (int j = 0; j < t.N; ++j) la.pca_evals[j] = NAN;
    int use_pca = !strcmp(cfg->init, "pca"), use_auto = !strcmp(cfg->init, "auto");
    ls.sel_objective = INFINITY;
    ls.sel_restart = -1;
    fr_ckpt_tag tag = {fr_config_fit_hash(cfg), ds->checksum, FR_LAYOUT_VERSION};
    int resumed = 0;
    if (ckpt_path && fr_ckpt_exists(comm, ckpt_path)) {
        rc = load_ckpt(&t, ckpt_path, &tag, &ls, &la);
        if (rc != FR_OK) goto done;
        resumed = 1;
        LOG_INFO("resuming from checkpoint %s: restart %d, epoch %d, batch %d, step %ld", ckpt_path,
                 (int)ls.restart, (int)ls.epoch, (int)ls.batch, (long)ls.step);
    }
    LOG_INFO("fit: N=%d K=%d groups=%d L=%d n_train=%lld samples, M=%d, %d steps/epoch, %d epochs, %d restart(s), "
             "s_enc=%.4g, %d rank(s)",
             t.N, t.K, t.model.spec.G, t.L, t.n_train, t.M, t.n_batches, E, R, t.model.s_enc, t.size);
    double t0 = fr_wtime();
    long steps_this_run = 0;
    fr_timer step_time = {0, 0, 0}; /* time in training steps only: the logged steps/s */
    /* Only the restart the checkpoint was written in continues; ls.restart
     * moves on as restarts finish, so it cannot answer that question later. */
    for (int r = (int)ls.restart; r < R; ++r) {
        uint64_t seed = r == 0 ? (uint64_t)cfg->seed : fr_rng_derive((uint64_t)cfg->seed, FR_STREAM_RESTART, (uint64_t)r);
        /* Only the restart the checkpoint was taken in continues; every
         * later one starts afresh. */
        int fresh = !resumed;
        resumed = 0;
        if (fresh) {
            fr_model_init_params(&t.model, t.params, seed);
            /* auto: restart 0 starts from PCA, the others from the uniform
             * rule with their own seeds. On block-structured data PCA lands on
             * the optimum; on mixed chaotic systems (lorenz-thomas) the plain
             * PCA basis tends to a local optimum with mixed groups, which the
             * mode basis for G >= 2 (init_modes) mostly repairs, and uniform
             * starts add independent tries. The training objective picks the
             * winner. */
            if (use_pca || (use_auto && r == 0)) {
                rc = init_pca(&t, seed, r, la.pca_evals);
                if (rc != FR_OK) goto done;
            } else if (!strcmp(cfg->init, "truth")) {
                rc = init_truth(&t);
                if (rc != FR_OK) goto done;
            }
            memset(t.m1, 0, t.np * sizeof(double));
            memset(t.m2, 0, t.np * sizeof(double));
            memcpy(t.best, t.params, t.np * sizeof(double));
            for (size_t i = 0; i < nh; ++i) la.history[i] = NAN;
            ls.restart = r;
            ls.epoch = ls.batch = ls.step = 0;
            ls.best_score = INFINITY;
            ls.best_epoch = -1;
            ls.acc_loss = ls.acc_nll = ls.acc_kl = ls.acc_pc = ls.acc_n = 0;
        }
        for (int ep = (int)ls.epoch; ep < E; ++ep) {
            make_perm(&t, seed, ep);
            for (int b = (int)ls.batch; b < t.n_batches; ++b) {
                long long start;
                int len;
                batch_bounds(&t, b, &start, &len);
                memcpy(t.batch, t.perm + start, (size_t)len * sizeof *t.batch);
                double tail[TAIL_N];
                ls.step += 1;
                ls.steps_total += 1;
                ++steps_this_run;
                t.adam.lr = lr_at(cfg, (double)(ls.step - 1) / ((double)E * t.n_batches));
                fr_timer_start(&step_time);
                rc = train_step(&t, len, (long)ls.step, seed, ep, 1, tail);
                fr_timer_stop(&step_time);
                if (rc == FR_ENUMERIC && ckpt_path && fr_ckpt_exists(comm, ckpt_path))
                    LOG_ERROR("non-finite loss (restart %d, epoch %d); the last good checkpoint %s is kept", r, ep,
                              ckpt_path);
                if (rc != FR_OK) goto done;
                if (g_between_steps) g_between_steps(g_between_steps_ctx);
                ls.acc_nll += tail[TAIL_NLL] / len;
                ls.acc_kl += tail[TAIL_KL] / len;
                ls.acc_pc += tail[TAIL_PC] / len;
                ls.acc_loss += (tail[TAIL_NLL] + tail[TAIL_KL] + t.model.spec.beta * tail[TAIL_PC]) / len;
                ls.acc_n += 1;
                ls.batch = b + 1;
                if (tail[TAIL_STOP] > 0) {
                    ls.epoch = ep;
                    rc = save_ckpt(&t, ckpt_path, &tag, &ls, &la);
                    if (rc == FR_OK)
                        rc = FR_FAIL(FR_ESIGNAL,
                                     "stopped on a signal at step %ld; checkpoint written to %s: rerun the same "
                                     "command to resume",
                                     (long)ls.step, ckpt_path ? ckpt_path : "(no checkpoint dir)");
                    goto done;
                }
            }
            double *h = la.history + (size_t)ep * FR_H_NCOL;
            h[FR_H_EPOCH] = ep + 1;
            h[FR_H_LOSS] = ls.acc_loss / ls.acc_n;
            h[FR_H_NLL] = ls.acc_nll / ls.acc_n;
            h[FR_H_KL] = ls.acc_kl / ls.acc_n;
            h[FR_H_PC] = ls.acc_pc / ls.acc_n;
            h[FR_H_HELDOUT_NLL] = NAN;
            ls.acc_loss = ls.acc_nll = ls.acc_kl = ls.acc_pc = ls.acc_n = 0;
            ls.batch = 0;
            ls.epoch = ep + 1;
            int last = ep == E - 1;
            if (heldout && (last || (cfg->eval_every > 0 && (ep + 1) % cfg->eval_every == 0))) {
                fr_fit_metrics hm;
                eval_ctx c;
                rc = eval_ctx_init(&c, &t.model, t.params, ds, t.sx, t.ws, t.M + 1);
                if (rc == FR_OK) rc = evaluate_impl(comm, &c, split, 0, &hm);
                eval_ctx_free(&c);
                if (rc != FR_OK) goto done;
                h[FR_H_HELDOUT_NLL] = hm.nll_per_bin;
                if (hm.nll_per_bin < ls.best_score) {
                    ls.best_score = hm.nll_per_bin;
                    ls.best_epoch = ep + 1;
                    memcpy(t.best, t.params, t.np * sizeof(double));
                }
            }
            if (!heldout) {
                memcpy(t.best, t.params, t.np * sizeof(double));
                ls.best_epoch = ep + 1;
            }
            if (last || (cfg->log_every > 0 && (ep + 1) % cfg->log_every == 0)) {
                /* steps/s of the training steps alone (evaluation, checkpoints and
                 * the restart objective excluded); the ETA uses the wall rate. */
                double el = fr_wtime() - t0;
                double sps = steps_this_run / fmax(step_time.total, 1e-9);
                double wall_sps = steps_this_run / fmax(el, 1e-9);
                double remaining =
                    ((double)(R - r - 1) * E * t.n_batches + (double)(E - ep - 1) * t.n_batches) / wall_sps;
                char eta[32], hbuf[32] = "-";
                fmt_eta(remaining, eta, sizeof eta);
                if (isfinite(h[FR_H_HELDOUT_NLL])) snprintf(hbuf, sizeof hbuf, "%.6g", h[FR_H_HELDOUT_NLL]);
                LOG_INFO("restart %d/%d epoch %4d/%d  loss %.5g  nll %.5g  kl %.4g  pc %.4g  held-out nll/bin %s  "
                         "%.0f steps/s  ETA %s",
                         r + 1, R, ep + 1, E, h[FR_H_LOSS], h[FR_H_NLL], h[FR_H_KL], h[FR_H_PC], hbuf, sps, eta);
            }
            if (ckpt_path && cfg->checkpoint_every > 0 && (ep + 1) % cfg->checkpoint_every == 0 && !last) {
                rc = save_ckpt(&t, ckpt_path, &tag, &ls, &la);
                if (rc != FR_OK) goto done;
            }
        }
        double obj;
        rc = training_objective(&t, &obj);
        if (rc != FR_OK) goto done;
        la.objective_all[r] = obj;
        if (obj < ls.sel_objective || ls.sel_restart < 0) {
            ls.sel_objective = obj;
            ls.sel_restart = r;
            ls.sel_best_epoch = ls.best_epoch;
            ls.sel_best_score = ls.best_score;
            /* The fit's parameters are the final ones: held-out NLL alone
             * ignores the independence term, so choosing by it would undo
             * the PC penalty. The best-held-out-NLL parameters are kept too. */
            memcpy(la.sel_params, t.params, t.np * sizeof(double));
            memcpy(la.sel_best, t.best, t.np * sizeof(double));
            memcpy(la.sel_history, la.history, nh * sizeof(double));
        }
        if (R > 1) LOG_INFO("restart %d/%d: training objective %.6g (best so far: restart %d)", r + 1, R, obj,
                            (int)ls.sel_restart + 1);
        ls.restart = r + 1;
        ls.epoch = ls.batch = 0;
    }
    /* A final checkpoint marks the fit complete: rerunning only re-evaluates. */
    rc = save_ckpt(&t, ckpt_path, &tag, &ls, &la);
    if (rc != FR_OK) goto done;

    /* ---- results --------------------------------------------------------------- */
    out->model = t.model;
    out->epochs_done = E;
    out->objective = ls.sel_objective;
    out->restart_chosen = (int)ls.sel_restart;
    out->restarts_done = R;
    out->best_epoch = (int)ls.sel_best_epoch;
    out->steps = (long long)ls.steps_total;
    out->objective_all = la.objective_all;
    la.objective_all = NULL;
    out->params = la.sel_params;
    la.sel_params = NULL;
    out->best_heldout_params = la.sel_best;
    la.sel_best = NULL;
    out->best_heldout_nll = ls.sel_best_score;
    out->history = la.sel_history;
    la.sel_history = NULL;
    if (use_pca || use_auto) {
        out->pca_evals = la.pca_evals;
        la.pca_evals = NULL;
    }
    {
        eval_ctx c;
        rc = eval_ctx_init(&c, &t.model, out->params, ds, t.sx, t.ws, t.M + 1);
        if (rc == FR_OK) rc = evaluate_impl(comm, &c, split, 1, &out->train);
        if (rc == FR_OK && heldout) rc = evaluate_impl(comm, &c, split, 0, &out->heldout);
        if (rc == FR_OK && !heldout) {
            fr_fit_metrics_nan(&out->heldout);
        }
        if (rc == FR_OK) rc = FR_CALLOC(out->latents, (t.rows ? t.rows : 1) * t.K);
        if (rc == FR_OK) rc = compute_latents(&c, out->latents);
        eval_ctx_free(&c);
        if (rc == FR_OK)
            rc = fr_readout_latent_metrics(comm, ds, split, &t.model, out->latents, &out->train, &out->heldout);
        if (rc == FR_OK)
            rc = fr_readout_connectivity_truth(ds, &t.model, out->params, &out->conn_have, &out->conn_r_W,
                                               out->conn_r_groups);
    }
    out->seconds = fr_wtime() - t0;
done:
    free(la.pca_evals);
    free(la.history);
    free(la.sel_history);
    free(la.sel_params);
    free(la.sel_best);
    free(la.objective_all);
    trainer_free(&t);
    return rc;
}
