/* trainer: the data-parallel fitting loop (see trainer.h): restarts, epochs
 * of distributed steps, held-out tracking, the training objective that
 * picks the restart, checkpoints, signals and the log. The step, the
 * evaluation, the initialisation, the checkpoint packing and the result
 * assembly live beside it (trainer_internal.h lists them).
 */
#include "facrnn/trainer.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "facrnn/checkpoint.h"
#include "facrnn/fit_input.h"
#include "facrnn/rng.h"
#include "trainer_internal.h"

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

void fr_trainer_service(void)
{
    if (g_between_steps) g_between_steps(g_between_steps_ctx);
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

static void fmt_eta(double s, char *buf, size_t n)
{
    if (!isfinite(s) || s < 0) s = 0;
    snprintf(buf, n, "%dh%02dm%02ds", (int)(s / 3600), (int)fmod(s / 60, 60), (int)fmod(s, 60));
}

/* ---- the loop ------------------------------------------------------------------ */

/* Everything the loop carries between its stages: the trainer, the
 * checkpointed loop state and arrays, and the timing of the log line. */
typedef struct {
    fr_trainer t;
    fr_loop_state ls;
    fr_loop_arrays la;
    const char *ckpt_path;    /* NULL: no checkpoints */
    fr_ckpt_tag tag;
    int E, R;                 /* epochs per restart, restarts */
    int heldout;              /* 1 when some trial is held out */
    int resumed;              /* the current restart continues a checkpoint */
    double plan_steps;        /* steps of the whole schedule, for the ETA */
    double t0;                /* start of training (after set-up) */
    long steps_this_run;
    fr_timer step_time;       /* time in training steps only: the logged steps/s */
    fr_phases clk;            /* wall time by phase (fit_result.h) */
    fr_eval_ctx hctx;         /* the held-out NLL of t.params, through the trainer's sigma(x) cache and
                                 workspace; made once per fit */
} fit_loop;

/* Set up the trainer and the loop arrays, and resume from the checkpoint at
 * ckpt_path when there is one. Collective. */
static fr_err loop_open(fit_loop *f, MPI_Comm comm, const fr_config *cfg, const fr_dataset *ds,
                        const unsigned char *split, const char *ckpt_path)
{
    memset(f, 0, sizeof *f);
    fr_phases_start(&f->clk, FR_PH_INIT, fr_wtime());
    fr_trainer *t = &f->t;
    TRY(fr_error_agree(&comm, fr_trainer_setup(t, comm, cfg, ds, split)));
    f->ckpt_path = ckpt_path;
    f->E = cfg->epochs;
    f->R = cfg->restarts < 1 ? 1 : cfg->restarts; /* the option table bounds it; the arrays are sized from it */
    for (long long k = 0; k < ds->n_trials; ++k) f->heldout |= !split[k];
    TRY(fr_error_agree(&comm, fr_loop_arrays_alloc(&f->la, t, f->R)));
    if (f->heldout)
        TRY(fr_error_agree(&comm, fr_eval_ctx_init(&f->hctx, &t->model, t->params, ds, t->sx, t->ws, t->M + 1)));
    f->ls.sel_objective = INFINITY;
    f->ls.sel_restart = -1;
    f->tag = (fr_ckpt_tag){fr_config_fit_hash(cfg), ds->checksum, FR_LAYOUT_VERSION};
    if (ckpt_path && fr_ckpt_exists(comm, ckpt_path)) {
        TRY(fr_trainer_ckpt_load(t, ckpt_path, &f->tag, &f->ls, &f->la));
        f->resumed = 1;
        LOG_INFO("resuming from checkpoint %s: restart %d, epoch %d, batch %d, step %ld", ckpt_path,
                 (int)f->ls.restart, (int)f->ls.epoch, (int)f->ls.batch, (long)f->ls.step);
    }
    LOG_INFO("fit: N=%d K=%d groups=%d L=%d n_train=%lld samples, M=%d, %d steps/epoch, %d epochs, %d restart(s), "
             "s_enc=%.4g, %d rank(s)",
             t->N, t->K, t->model.spec.G, t->L, t->n_train, t->M, t->n_batches, f->E, f->R, t->model.s_enc, t->size);
    f->t0 = fr_wtime();
    return FR_OK;
}

static void loop_close(fit_loop *f)
{
    fr_eval_ctx_free(&f->hctx);
    fr_loop_arrays_free(&f->la);
    fr_trainer_free(&f->t);
}

/* The seed of restart r: the configured one for restart 0. */
static uint64_t restart_seed(const fr_config *cfg, int r)
{
    return r == 0 ? (uint64_t)cfg->seed : fr_rng_derive((uint64_t)cfg->seed, FR_STREAM_RESTART, (uint64_t)r);
}

/* A fresh restart r: initial parameters (model.init), zero Adam moments, an
 * empty history and zero counters. Collective (PCA). */
static fr_err restart_begin(fit_loop *f, int r, uint64_t seed)
{
    fr_trainer *t = &f->t;
    fr_loop_state *ls = &f->ls;
    const char *init = t->cfg->init;
    fr_model_init_params(&t->model, t->params, seed);
    /* auto: restart 0 starts from PCA, the others from the uniform rule with
     * their own seeds. On block-structured data PCA lands on the optimum; on
     * mixed chaotic systems (lorenz-thomas) the plain PCA basis tends to a
     * local optimum with mixed groups, which the mode basis for G >= 2
     * (trainer_init.c) mostly repairs, and uniform starts add independent
     * tries. The training objective picks the winner. */
    if (!strcmp(init, "pca") || (!strcmp(init, "auto") && r == 0))
        TRY(fr_trainer_init_pca(t, seed, r, f->la.pca_evals));
    else if (!strcmp(init, "truth"))
        TRY(fr_trainer_init_truth(t));
    memset(t->m1, 0, t->np * sizeof(double));
    memset(t->m2, 0, t->np * sizeof(double));
    memcpy(t->best, t->params, t->np * sizeof(double));
    for (size_t i = 0; i < (size_t)f->E * FR_H_NCOL; ++i) f->la.history[i] = NAN;
    ls->restart = r;
    ls->epoch = ls->batch = ls->step = 0;
    ls->best_score = INFINITY;
    ls->best_epoch = -1;
    ls->acc_loss = ls->acc_nll = ls->acc_kl = ls->acc_pc = ls->acc_n = 0;
    return FR_OK;
}

/* The minibatches of epoch ep from ls.batch on (a resumed epoch continues
 * where it stopped). A stop signal writes a checkpoint and returns
 * FR_ESIGNAL. Collective. */
static fr_err run_epoch(fit_loop *f, int r, int ep, uint64_t seed)
{
    fr_trainer *t = &f->t;
    fr_loop_state *ls = &f->ls;
    fr_trainer_make_perm(t, seed, ep);
    for (int b = (int)ls->batch; b < t->n_batches; ++b) {
        long long start;
        int len;
        fr_trainer_batch_bounds(t, b, &start, &len);
        memcpy(t->batch, t->perm + start, (size_t)len * sizeof *t->batch);
        double tail[TAIL_N];
        ls->step += 1;
        ls->steps_total += 1;
        ++f->steps_this_run;
        double frac = (double)(ls->step - 1) / ((double)f->E * t->n_batches);
        t->adam.lr = lr_at(t->cfg, frac);
        t->ms_alpha = fr_ms_alpha(t->cfg->rollout_anneal, frac); /* from the step counter: a resume is bitwise */
        fr_timer_start(&f->step_time);
        fr_err rc = fr_trainer_step(t, len, (long)ls->step, seed, ep, 1, tail);
        fr_timer_stop(&f->step_time);
        if (rc == FR_ENUMERIC && f->ckpt_path && fr_ckpt_exists(t->comm, f->ckpt_path))
            LOG_ERROR("non-finite loss (restart %d, epoch %d); the last good checkpoint %s is kept", r, ep,
                      f->ckpt_path);
        TRY(rc);
        if (g_between_steps) g_between_steps(g_between_steps_ctx);
        ls->acc_nll += tail[TAIL_NLL] / len;
        ls->acc_kl += tail[TAIL_KL] / len;
        ls->acc_pc += tail[TAIL_PC] / len;
        ls->acc_loss += fr_trainer_tail_loss(t, tail, len);
        ls->acc_n += 1;
        ls->batch = b + 1;
        if (tail[TAIL_STOP] > 0) {
            ls->epoch = ep;
            fr_phases_enter(&f->clk, FR_PH_OUTPUT);
            TRY(fr_trainer_ckpt_save(t, f->ckpt_path, &f->tag, ls, &f->la));
            return FR_FAIL(FR_ESIGNAL,
                           "stopped on a signal at step %ld; checkpoint written to %s: rerun the same command to "
                           "resume",
                           (long)ls->step, f->ckpt_path ? f->ckpt_path : "(no checkpoint dir)");
        }
    }
    return FR_OK;
}

/* The end of epoch ep: its history row; on the evaluation cadence the
 * held-out NLL, keeping the parameters where it is best (every epoch's
 * parameters without held-out trials); the log line; the periodic
 * checkpoint. Collective. */
static fr_err end_epoch(fit_loop *f, int r, int ep)
{
    fr_trainer *t = &f->t;
    fr_loop_state *ls = &f->ls;
    const fr_config *cfg = t->cfg;
    double *h = f->la.history + (size_t)ep * FR_H_NCOL;
    h[FR_H_EPOCH] = ep + 1;
    h[FR_H_LOSS] = ls->acc_loss / ls->acc_n;
    h[FR_H_NLL] = ls->acc_nll / ls->acc_n;
    h[FR_H_KL] = ls->acc_kl / ls->acc_n;
    h[FR_H_PC] = ls->acc_pc / ls->acc_n;
    h[FR_H_HELDOUT_NLL] = NAN;
    ls->acc_loss = ls->acc_nll = ls->acc_kl = ls->acc_pc = ls->acc_n = 0;
    ls->batch = 0;
    ls->epoch = ep + 1;
    int last = ep == f->E - 1;
    if (f->heldout && (last || (cfg->eval_every > 0 && (ep + 1) % cfg->eval_every == 0))) {
        /* Only the held-out NLL: the history and the best-held-out
         * parameters use nothing else. The full metrics (PC and TC
         * among them) are computed once, of the final parameters. */
        double nll;
        fr_phases_enter(&f->clk, FR_PH_EVAL);
        TRY(fr_eval_nll(t->comm, &f->hctx, t->split, 0, &nll));
        fr_phases_enter(&f->clk, FR_PH_TRAIN);
        h[FR_H_HELDOUT_NLL] = nll;
        if (nll < ls->best_score) {
            ls->best_score = nll;
            ls->best_epoch = ep + 1;
            memcpy(t->best, t->params, t->np * sizeof(double));
        }
    }
    if (!f->heldout) {
        memcpy(t->best, t->params, t->np * sizeof(double));
        ls->best_epoch = ep + 1;
    }
    if (last || (cfg->log_every > 0 && (ep + 1) % cfg->log_every == 0)) {
        /* steps/s of the training steps alone (evaluation, checkpoints and
         * the restart objective excluded); the ETA uses the wall rate. */
        double el = fr_wtime() - f->t0;
        double sps = f->steps_this_run / fmax(f->step_time.total, 1e-9);
        double wall_sps = f->steps_this_run / fmax(el, 1e-9);
        double remaining = (f->plan_steps - ls->steps_total) / wall_sps;
        char eta[32], hbuf[32] = "-";
        fmt_eta(remaining, eta, sizeof eta);
        if (isfinite(h[FR_H_HELDOUT_NLL])) snprintf(hbuf, sizeof hbuf, "%.6g", h[FR_H_HELDOUT_NLL]);
        LOG_INFO("restart %d/%d epoch %4d/%d  loss %.5g  nll %.5g  kl %.4g  pc %.4g  held-out nll/bin %s  "
                 "%.0f steps/s  ETA %s",
                 r + 1, f->R, ep + 1, f->E, h[FR_H_LOSS], h[FR_H_NLL], h[FR_H_KL], h[FR_H_PC], hbuf, sps, eta);
    }
    if (f->ckpt_path && cfg->checkpoint_every > 0 && (ep + 1) % cfg->checkpoint_every == 0 && !last) {
        fr_phases_enter(&f->clk, FR_PH_OUTPUT);
        TRY(fr_trainer_ckpt_save(t, f->ckpt_path, &f->tag, ls, &f->la));
        fr_phases_enter(&f->clk, FR_PH_TRAIN);
    }
    return FR_OK;
}

/* The training objective of the current parameters, with the sweep's
 * coordinator served around it. Collective. */
static fr_err restart_objective(fit_loop *f, double *obj)
{
    fr_trainer_service();
    TRY(fr_trainer_objective(&f->t, obj));
    fr_trainer_service();
    return FR_OK;
}

/* Restart r, finished with training objective obj: the restart with the
 * lowest one so far becomes the fit's choice. Not collective. */
static void choose_restart(fit_loop *f, int r, double obj)
{
    fr_trainer *t = &f->t;
    fr_loop_state *ls = &f->ls;
    f->la.objective_all[r] = obj;
    if (obj < ls->sel_objective || ls->sel_restart < 0) {
        ls->sel_objective = obj;
        ls->sel_restart = r;
        ls->sel_best_epoch = ls->best_epoch;
        ls->sel_best_score = ls->best_score;
        /* The fit's parameters are the final ones: held-out NLL alone
         * ignores the independence term, so choosing by it would undo the
         * PC penalty. The best-held-out-NLL parameters are kept too. */
        memcpy(f->la.sel_params, t->params, t->np * sizeof(double));
        memcpy(f->la.sel_best, t->best, t->np * sizeof(double));
        memcpy(f->la.sel_history, f->la.history, (size_t)f->E * FR_H_NCOL * sizeof(double));
    }
    if (f->R > 1)
        LOG_INFO("restart %d/%d: training objective %.6g (best so far: restart %d)", r + 1, f->R, obj,
                 (int)ls->sel_restart + 1);
}

/* Train restart r from the loop state's epoch up to epoch `target`.
 * Collective. */
static fr_err train_to(fit_loop *f, int r, int target, uint64_t seed)
{
    for (int ep = (int)f->ls.epoch; ep < target; ++ep) {
        fr_phases_enter(&f->clk, FR_PH_TRAIN);
        TRY(run_epoch(f, r, ep, seed));
        TRY(end_epoch(f, r, ep));
    }
    return FR_OK;
}

/* train.restart_schedule all: every restart trains all E epochs, one after
 * the other. Collective. */
static fr_err schedule_all(fit_loop *f)
{
    for (int r = (int)f->ls.restart; r < f->R; ++r) {
        uint64_t seed = restart_seed(f->t.cfg, r);
        /* Only the restart the checkpoint was taken in continues; every
         * later one starts afresh. */
        if (!f->resumed) {
            fr_phases_enter(&f->clk, FR_PH_INIT);
            TRY(restart_begin(f, r, seed));
        }
        f->resumed = 0;
        TRY(train_to(f, r, f->E, seed));
        double obj;
        TRY(restart_objective(f, &obj));
        choose_restart(f, r, obj);
        f->ls.restart = r + 1;
        f->ls.epoch = f->ls.batch = 0;
    }
    return FR_OK;
}

/* ---- successive halving (train.restart_schedule halving) ------------------------
 * Round j of nr trains every restart still in the race up to epoch
 * target(j) = E / 2^(nr - 1 - j); then the better half by training
 * objective (ties: the lower index) stays in. R = 8 trains 8 restarts to
 * E/8, 4 to E/4, 2 to E/2 and 1 to E: 2.5 E epochs instead of 8 E. Between
 * rounds each restart's state waits in its slot (la.race_*), which the
 * checkpoint carries, so a resume inside a round is bitwise. Each restart
 * keeps its own seed, step counter and learning-rate schedule over all E
 * epochs, so the one that reaches E trained exactly as under "all". */
static int race_rounds(int R)
{
    int n = 1;
    for (; R > 1; R = (R + 1) / 2) ++n;
    return n;
}

static int race_target(int E, int nr, int j)
{
    int sh = nr - 1 - j;
    int e = sh >= 31 ? 0 : E >> sh;
    return e < 1 ? 1 : e;
}

/* Steps of the whole halving schedule (the ETA's denominator). */
static double race_plan_steps(int R, int E, int n_batches);

double fr_train_plan_epochs(const fr_config *cfg)
{
    int R = cfg->restarts < 1 ? 1 : cfg->restarts;
    if (strcmp(cfg->restart_schedule, "halving")) return (double)R * cfg->epochs;
    return race_plan_steps(R, cfg->epochs, 1);
}

static double race_plan_steps(int R, int E, int n_batches)
{
    int nr = race_rounds(R), alive = R, prev = 0;
    double ep = 0;
    for (int j = 0; j < nr; ++j) {
        int tg = race_target(E, nr, j);
        ep += (double)alive * (tg - prev);
        prev = tg;
        alive = (alive + 1) / 2;
    }
    return ep * n_batches;
}

/* Restart r's state to its slot (store = 1) or back (store = 0). */
static void race_slot(fit_loop *f, int r, int store)
{
    fr_trainer *t = &f->t;
    fr_loop_state *ls = &f->ls;
    size_t np = t->np, nh = (size_t)f->E * FR_H_NCOL;
    double *slot = f->la.race_slots + (size_t)r * 4 * np, *hist = f->la.race_hist + (size_t)r * nh;
    double *sc = f->la.race_scal + (size_t)r * FR_RS_N;
    double *live[4] = {t->params, t->m1, t->m2, t->best};
    for (int i = 0; i < 4; ++i) {
        if (store) memcpy(slot + i * np, live[i], np * sizeof(double));
        else memcpy(live[i], slot + i * np, np * sizeof(double));
    }
    if (store) {
        memcpy(hist, f->la.history, nh * sizeof(double));
        sc[FR_RS_EPOCH] = ls->epoch;
        sc[FR_RS_STEP] = ls->step;
        sc[FR_RS_BEST_SCORE] = ls->best_score;
        sc[FR_RS_BEST_EPOCH] = ls->best_epoch;
    } else {
        memcpy(f->la.history, hist, nh * sizeof(double));
        ls->restart = r;
        ls->epoch = sc[FR_RS_EPOCH];
        ls->step = sc[FR_RS_STEP];
        ls->best_score = sc[FR_RS_BEST_SCORE];
        ls->best_epoch = sc[FR_RS_BEST_EPOCH];
        ls->batch = 0;
        ls->acc_loss = ls->acc_nll = ls->acc_kl = ls->acc_pc = ls->acc_n = 0;
    }
}

/* The end of a round: the better half (rounded up) of the restarts still
 * in the race stays in. Not collective (every rank holds the same
 * objectives). */
static void race_cut(fit_loop *f, int round)
{
    int R = f->R, alive = 0;
    double *sc = f->la.race_scal;
    for (int r = 0; r < R; ++r) alive += sc[(size_t)r * FR_RS_N + FR_RS_ALIVE] != 0;
    int keep = (alive + 1) / 2;
    /* Rank of each live restart: how many live ones beat it. */
    for (int r = 0; r < R; ++r) {
        double *a = sc + (size_t)r * FR_RS_N;
        if (!a[FR_RS_ALIVE]) continue;
        double oa = isnan(a[FR_RS_OBJECTIVE]) ? INFINITY : a[FR_RS_OBJECTIVE];
        int better = 0;
        for (int q = 0; q < R; ++q) {
            const double *b = sc + (size_t)q * FR_RS_N;
            if (q == r || !b[FR_RS_ALIVE]) continue;
            double ob = isnan(b[FR_RS_OBJECTIVE]) ? INFINITY : b[FR_RS_OBJECTIVE];
            better += ob < oa || (ob == oa && q < r);
        }
        a[FR_RS_ALIVE] = better < keep ? 2 : -1; /* 2 in, -1 out: both still live while the rest are ranked */
    }
    char kept[256] = "";
    size_t n = 0;
    for (int r = 0; r < R; ++r) {
        double *a = sc + (size_t)r * FR_RS_N;
        if (a[FR_RS_ALIVE] == 2 && n + 12 < sizeof kept)
            n += (size_t)snprintf(kept + n, sizeof kept - n, "%s%d", n ? "," : "", r + 1);
        a[FR_RS_ALIVE] = a[FR_RS_ALIVE] == 2;
    }
    LOG_INFO("successive halving: round %d kept restart(s) %s of %d", round + 1, kept, alive);
}

static fr_err schedule_halving(fit_loop *f)
{
    fr_loop_state *ls = &f->ls;
    int nr = race_rounds(f->R);
    for (int j = (int)ls->race_round; j < nr; ++j) {
        int target = race_target(f->E, nr, j);
        for (int r = 0; r < f->R; ++r) {
            double *sc = f->la.race_scal + (size_t)r * FR_RS_N;
            if (!sc[FR_RS_ALIVE] || sc[FR_RS_EPOCH] >= target) continue;
            uint64_t seed = restart_seed(f->t.cfg, r);
            if (f->resumed) {
                /* The checkpoint was taken inside this restart's round:
                 * the live state is its own. */
                f->resumed = 0;
            } else if (sc[FR_RS_EPOCH] == 0) {
                fr_phases_enter(&f->clk, FR_PH_INIT);
                TRY(restart_begin(f, r, seed));
            } else {
                race_slot(f, r, 0);
            }
            TRY(train_to(f, r, target, seed));
            double obj;
            TRY(restart_objective(f, &obj));
            sc[FR_RS_OBJECTIVE] = obj;
            f->la.objective_all[r] = obj;
            race_slot(f, r, 1);
            if (target == f->E) choose_restart(f, r, obj);
            else
                LOG_INFO("restart %d/%d: training objective %.6g at epoch %d (round %d of %d)", r + 1, f->R, obj,
                         target, j + 1, nr);
        }
        if (j < nr - 1) race_cut(f, j);
        ls->race_round = j + 1;
    }
    ls->restart = f->R;
    ls->epoch = ls->batch = 0;
    return FR_OK;
}

fr_err fr_train(MPI_Comm comm, const fr_config *cfg, const fr_dataset *ds, const unsigned char *split,
                const char *ckpt_path, fr_fit_result *out)
{
    memset(out, 0, sizeof *out);
    /* The model sees the data in the units of data.standardize: a z-scored
     * copy of this rank's rows when the transform is not the identity (the
     * caller's data set stays as read: a sweep fits several folds on it). */
    fr_dataset view = *ds;
    double *xs = NULL;
    if (ds->in_model_units) {
        const fr_standardize *st = ds->in_model_units;
        TRY(fr_std_from_arrays(&out->standardize, st->mode, st->N, st->mean, st->std));
    } else {
        TRY(fr_fit_standardize(comm, cfg, ds, split, &out->standardize));
    }
    TRY(fr_fit_unobserved(comm, ds, split, &out->n_unobserved, &out->unobserved));
    if (!ds->in_model_units && out->standardize.mode != FR_STD_OFF) {
        long long rows = ds->row_hi - ds->row_lo;
        /* the others are already in the set-up's collectives */
        if (FR_CALLOC(xs, (rows ? rows : 1) * ds->N) != FR_OK) fr_fatal(FR_ENOMEM);
        memcpy(xs, ds->x, (size_t)rows * ds->N * sizeof(double));
        fr_std_apply(&out->standardize, rows, xs, ds->mask);
        view.x = xs;
        LOG_INFO("data.standardize: %s, z-scored with each channel's mean and std over the training trials",
                 cfg->standardize);
    }
    ds = &view;
    fit_loop f;
    fr_err rc = loop_open(&f, comm, cfg, ds, split, ckpt_path);
    int halving = !strcmp(cfg->restart_schedule, "halving");
    f.plan_steps = halving ? race_plan_steps(f.R, f.E, f.t.n_batches) : (double)f.R * f.E * f.t.n_batches;
    if (rc == FR_OK) rc = halving ? schedule_halving(&f) : schedule_all(&f);
    /* A final checkpoint marks the fit complete: rerunning only re-evaluates. */
    fr_phases_enter(&f.clk, FR_PH_OUTPUT);
    if (rc == FR_OK) rc = fr_trainer_ckpt_save(&f.t, ckpt_path, &f.tag, &f.ls, &f.la);
    fr_phases_enter(&f.clk, FR_PH_EVAL);
    if (rc == FR_OK) rc = fr_trainer_result(&f.t, &f.ls, &f.la, f.heldout, out);
    if (rc == FR_OK) out->seconds = fr_wtime() - f.t0;
    fr_phases_enter(&f.clk, f.clk.cur);
    out->phases = f.clk;
    loop_close(&f);
    free(xs);
    return rc;
}
