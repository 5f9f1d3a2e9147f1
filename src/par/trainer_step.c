/* trainer_step: the trainer's state, the minibatch plan and one
 * data-parallel optimisation step (see trainer.h, trainer_internal.h).
 *
 * One step over a global minibatch of Mb samples:
 *   encode own rows -> Allgatherv (mu|z) -> PC rows of own samples ->
 *   Allreduce dL/dmu (Mb x K) -> backward own rows -> ONE Allreduce of the
 *   flat gradient (with loss sums and the stop flag riding in its tail) ->
 *   identical Adam step on every rank.
 * At one rank there is nothing to exchange and the step makes no MPI call.
 */
#include "trainer_internal.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "facrnn/fit_input.h"
#include "facrnn/rng.h"
#include "facrnn/trainer.h"

static long long trial_of_sid(const fr_trainer *t, long long sid)
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
static inline long long local_row(const fr_trainer *t, long long k, long long tt)
{
    return t->ds->offsets[k] + tt - t->ds->row_lo;
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
    for (long long r = 0; r < rows; ++r) fr_sigma_row(m->spec.nonlin, ds->x + r * N, *sx + r * N, N);
    return FR_OK;
}

void fr_trainer_batch_bounds(const fr_trainer *t, int b, long long *start, int *len)
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

/* Sort a (n) ascending in place. The ids of a minibatch are in random
 * order, so a comparison sort mispredicts about every other branch (qsort
 * with its callback took ~27k instructions per 128 ids, a Shell sort still
 * ~4 us): an LSD radix sort on 8-bit digits of id - min needs no
 * comparisons. Stack scratch up to RADIX_MAX ids; Shell sort (Ciura's
 * gaps) above. The result is the sorted order however it is reached. */
#define RADIX_MAX 1024
static void sort_ll(long long *a, int n)
{
    if (n < 2) return;
    if (n > RADIX_MAX) {
        static const int gaps[] = {701, 301, 132, 57, 23, 10, 4, 1};
        for (size_t g = 0; g < sizeof gaps / sizeof gaps[0]; ++g) {
            int gap = gaps[g];
            for (int i = gap; i < n; ++i) {
                long long v = a[i];
                int j = i;
                for (; j >= gap && a[j - gap] > v; j -= gap) a[j] = a[j - gap];
                a[j] = v;
            }
        }
        return;
    }
    long long tmp[RADIX_MAX], lo = a[0], hi = a[0];
    for (int i = 1; i < n; ++i) lo = a[i] < lo ? a[i] : lo, hi = a[i] > hi ? a[i] : hi;
    unsigned long long range = (unsigned long long)(hi - lo);
    long long *src = a, *dst = tmp;
    for (int shift = 0; shift < 64 && (range >> shift) != 0; shift += 8) {
        int count[257] = {0};
        for (int i = 0; i < n; ++i) ++count[(((unsigned long long)(src[i] - lo) >> shift) & 255) + 1];
        for (int d = 0; d < 256; ++d) count[d + 1] += count[d];
        for (int i = 0; i < n; ++i) dst[count[((unsigned long long)(src[i] - lo) >> shift) & 255]++] = src[i];
        long long *t = src;
        src = dst, dst = t;
    }
    if (src != a) memcpy(a, src, sizeof(long long) * (size_t)n);
}

/* Epoch permutation: Fisher-Yates keyed by (seed, epoch, position). */
void fr_trainer_make_perm(fr_trainer *t, uint64_t seed, int epoch)
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

fr_err fr_trainer_setup(fr_trainer *t, MPI_Comm comm, const fr_config *cfg, const fr_dataset *ds,
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
    if (t->ds->mask) TRY(FR_CALLOC(t->op, Mmax));
    TRY(FR_CALLOC(t->eps, (size_t)Mmax * t->K));
    TRY(FR_CALLOC(t->pack_loc, (size_t)Mmax * 2 * t->K));
    TRY(FR_CALLOC(t->pack_all, (size_t)Mmax * 2 * t->K));
    TRY(FR_CALLOC(t->mu_all, (size_t)Mmax * t->K));
    TRY(FR_CALLOC(t->z_all, (size_t)Mmax * t->K));
    TRY(FR_CALLOC(t->dmu_all, (size_t)Mmax * t->K));
    TRY(FR_CALLOC(t->dz_rows, (size_t)Mmax * t->K));
    TRY(FR_CALLOC(t->counts, t->size));
    TRY(FR_CALLOC(t->pack_counts, t->size));
    TRY(FR_CALLOC(t->pack_displs, t->size));
    TRY(FR_CALLOC(t->displs, t->size));
    if (cfg->rollout_steps > 1) {
        TRY(fr_ms_ws_create(&t->model, cfg->rollout_steps, &t->ms_ws));
        TRY(FR_CALLOC(t->mxp, Mmax));
        TRY(FR_CALLOC(t->mup, Mmax));
        TRY(FR_CALLOC(t->mt, Mmax));
        TRY(FR_CALLOC(t->mT, Mmax));
    }
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

void fr_trainer_free(fr_trainer *t)
{
    if (t->sx && t->sx != t->ds->x) free(t->sx);
    fr_ws_free(t->ws);
    fr_ms_ws_free(t->ms_ws);
    void *bufs[] = {t->sample_start, t->train_ids, t->perm, t->sid_lo, t->batch, (void *)t->xp, (void *)t->sxp,
                    (void *)t->up, (void *)t->op, t->sx_rows, t->eps, t->pack_loc, t->pack_all, t->mu_all, t->z_all, t->dmu_all,
                    t->dz_rows, t->counts, t->displs, t->pack_counts, t->pack_displs, t->params, t->grad, t->m1,
                    t->m2, t->best, (void *)t->mxp, (void *)t->mup, t->mt, t->mT};
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
static void local_rows(fr_trainer *t, int len, int *row0, int *m)
{
    for (int r = 0; r < t->size; ++r) {
        t->displs[r] = lower_bound(t->batch, len, t->sid_lo[r]);
        t->counts[r] = lower_bound(t->batch, len, t->sid_lo[r + 1]) - t->displs[r];
    }
    *row0 = t->displs[t->rank];
    *m = t->counts[t->rank];
}

/* Touch the n doubles at p ahead of use (a hint; no effect on results). */
static inline void prefetch_row(const double *p, int n)
{
#if defined(__GNUC__)
    for (int q = 0; q < n; q += 8) __builtin_prefetch(p + q);
    __builtin_prefetch(p + n - 1);
#else
    (void)p, (void)n;
#endif
}

/* The rows of the minibatch are scattered over the shard: their data and
 * sigma(x) rows are prefetched while the noise eps is drawn (tens of us),
 * so the encoder and the NLL do not wait on memory. */
static void point_rows(fr_trainer *t, const long long *sids, int m, uint64_t seed, int epoch, int with_eps)
{
    for (int i = 0; i < m; ++i) {
        long long sid = sids[i];
        long long k = trial_of_sid(t, sid);
        long long tt = sid - t->sample_start[k] + t->L;
        long long row = local_row(t, k, tt);
        t->xp[i] = t->ds->x + row * t->N;
        prefetch_row(t->xp[i], t->N);
        for (int l = 1; l <= t->L; ++l) {
            size_t q = (size_t)i * t->L + l - 1;
            t->sxp[q] = fr_sigma_ptr(&t->model, t->ds, t->sx, row - l, t->sx_rows ? t->sx_rows + q * t->N : NULL);
            prefetch_row(t->sxp[q], t->N);
        }
        if (t->D) t->up[i] = t->ds->u + row * t->ds->D;
        if (t->op) t->op[i] = t->ds->mask + row * t->N;
        if (t->ms_ws) { /* the rollout reads the sample's whole trial, local since trials are whole */
            long long row0 = local_row(t, k, 0);
            t->mxp[i] = t->ds->x + row0 * t->N;
            t->mup[i] = t->D ? t->ds->u + row0 * t->ds->D : NULL;
            t->mt[i] = tt;
            t->mT[i] = t->ds->offsets[k + 1] - t->ds->offsets[k];
        }
    }
    if (with_eps)
        for (int i = 0; i < m; ++i)
            for (int j = 0; j < t->K; ++j)
                t->eps[(size_t)i * t->K + j] = fr_rng_normal(seed, FR_STREAM_EPS, (uint32_t)epoch,
                                                             (uint64_t)sids[i] * (uint64_t)t->K + (uint64_t)j);
}

/* One optimisation step on minibatch `batch[0..len)`. Returns the reduced
 * loss sums in tail[] (nll, kl, pc, stop). Collective. */
fr_err fr_trainer_step(fr_trainer *t, int len, long step, uint64_t seed, int epoch, int update,
                       double tail[TAIL_N])
{
    int row0, m;
    sort_ll(t->batch, len);
    local_rows(t, len, &row0, &m);
    point_rows(t, t->batch + row0, m, seed, epoch, 1);
    fr_batch b = {m, t->xp, t->sxp, t->D ? t->up : NULL, t->eps, t->op};
    int K = t->K;
    TRY(fr_model_encode(&t->model, t->params, &b, t->ws));
    const fr_model *mdl = &t->model;
    int use_pc = mdl->spec.G > 1;
    double pc_sum = 0;
    memset(t->dz_rows, 0, (size_t)(m > 0 ? m : 1) * K * sizeof(double));
    if (use_pc) {
        /* At one rank the local rows are the minibatch: the gather would
         * only copy them, so the PC kernel reads the encoder's buffers. */
        const double *mu = fr_ws_mu(t->ws), *z = fr_ws_z(t->ws), *mu_all = mu, *z_all = z;
        assert(t->size > 1 || (row0 == 0 && m == len));
        if (t->size > 1) {
            for (int i = 0; i < m; ++i) {
                memcpy(t->pack_loc + (size_t)i * 2 * K, mu + (size_t)i * K, K * sizeof(double));
                memcpy(t->pack_loc + (size_t)i * 2 * K + K, z + (size_t)i * K, K * sizeof(double));
            }
            for (int r = 0; r < t->size; ++r) {
                t->pack_counts[r] = t->counts[r] * 2 * K;
                t->pack_displs[r] = t->displs[r] * 2 * K;
            }
            CHECK_MPI(MPI_Allgatherv(t->pack_loc, m * 2 * K, MPI_DOUBLE, t->pack_all, t->pack_counts,
                                     t->pack_displs, MPI_DOUBLE, t->comm));
            for (int i = 0; i < len; ++i) {
                memcpy(t->mu_all + (size_t)i * K, t->pack_all + (size_t)i * 2 * K, K * sizeof(double));
                memcpy(t->z_all + (size_t)i * K, t->pack_all + (size_t)i * 2 * K + K, K * sizeof(double));
            }
            mu_all = t->mu_all, z_all = t->z_all;
        }
        memset(t->dmu_all, 0, (size_t)len * K * sizeof(double));
        double scale = mdl->spec.beta / (double)len;
        TRY(fr_pc_rows(mdl, len, mu_all, z_all, row0, m, scale, &pc_sum, t->dz_rows, t->dmu_all, t->ws));
        /* Every rank's PC rows touch every mu_j: sum the (len, K) pieces. */
        if (t->size > 1 && scale != 0.0)
            CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, t->dmu_all, len * K, MPI_DOUBLE, MPI_SUM, t->comm));
    }
    memset(t->grad, 0, (t->np + TAIL_N) * sizeof(double));
    fr_terms terms = {0, 0, 0};
    TRY(fr_model_backward(mdl, t->params, &b, t->ws, 1.0 / len, use_pc ? t->dmu_all + (size_t)row0 * K : NULL,
                          use_pc ? t->dz_rows : NULL, t->grad, &terms));
    double *tl = t->grad + t->np;
    if (t->ms_ws) {
        /* The rollout term of this rank's samples; the loss only for the
         * objective (update = 0), which needs no gradient. */
        fr_ms_opts o = {t->cfg->rollout_steps, t->cfg->rollout_weight, t->ms_alpha};
        fr_ms_batch mb = {m, t->mxp, t->D ? t->mup : NULL, t->mt, t->mT};
        TRY(fr_ms_loss_grad(mdl, t->params, &o, &mb, o.weight / len, t->ms_ws, update ? t->grad : NULL,
                            &tl[TAIL_MS]));
    }
    tl[TAIL_NLL] = terms.nll;
    tl[TAIL_KL] = terms.kl;
    tl[TAIL_PC] = pc_sum;
    tl[TAIL_STOP] = fr_trainer_stop_requested() ? 1.0 : 0.0;
    /* THE gradient reduction: parameters, loss sums and the stop flag (and
     * the rollout term's sum when it is on). */
    int n_tail = t->ms_ws ? TAIL_N : TAIL_MS;
    if (t->size > 1)
        CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, t->grad, (int)(t->np + n_tail), MPI_DOUBLE, MPI_SUM, t->comm));
    memcpy(tail, tl, TAIL_N * sizeof(double));
    double loss = fr_trainer_tail_loss(t, tl, len);
    if (!isfinite(loss)) return FR_FAIL(FR_ENUMERIC, "loss is %g at epoch %d, step %ld", loss, epoch, step);
    if (update) fr_adam_step(&t->adam, step, t->np, t->params, t->grad, t->m1, t->m2);
    return FR_OK;
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
fr_err fr_trainer_objective(fr_trainer *t, double *obj)
{
    double sum = 0;
    /* The rollout term enters free-running (alpha = 0), as simulate runs
     * the model, whatever the schedule's alpha: the loop sets alpha again
     * before its next step. */
    t->ms_alpha = 0.0;
    for (int pass = 0; pass < FR_OBJECTIVE_PASSES; ++pass) {
        fr_trainer_make_perm(t, FR_OBJECTIVE_SEED, FR_OBJECTIVE_EPOCH - pass);
        for (int b = 0; b < t->n_batches; ++b) {
            long long start;
            int len;
            fr_trainer_batch_bounds(t, b, &start, &len);
            memcpy(t->batch, t->perm + start, (size_t)len * sizeof *t->batch);
            double tail[TAIL_N];
            TRY(fr_trainer_step(t, len, 0, FR_OBJECTIVE_SEED, FR_OBJECTIVE_EPOCH - pass, 0, tail));
            sum += fr_trainer_tail_loss(t, tail, len);
        }
    }
    *obj = sum / ((double)FR_OBJECTIVE_PASSES * t->n_batches);
    return FR_OK;
}
