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
#include "facrnn/readout.h"
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

fr_err fr_train(MPI_Comm comm, const fr_config *cfg, const fr_dataset *ds, const unsigned char *split,
                const char *ckpt_path, fr_fit_result *out)
{
    memset(out, 0, sizeof *out);
    fr_trainer t;
    fr_err rc = fr_trainer_setup(&t, comm, cfg, ds, split);
    rc = fr_error_agree(&comm, rc);
    if (rc != FR_OK) {
        fr_trainer_free(&t);
        return rc;
    }
    int E = cfg->epochs, R = cfg->restarts < 1 ? 1 : cfg->restarts;
    if (R > FR_MAX_RESTARTS) R = FR_MAX_RESTARTS;
    int heldout = 0;
    for (long long k = 0; k < ds->n_trials; ++k) heldout |= !split[k];
    size_t nh = (size_t)E * FR_H_NCOL;
    fr_loop_state ls;
    memset(&ls, 0, sizeof ls);
    fr_loop_arrays la;
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
        rc = fr_trainer_ckpt_load(&t, ckpt_path, &tag, &ls, &la);
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
                rc = fr_trainer_init_pca(&t, seed, r, la.pca_evals);
                if (rc != FR_OK) goto done;
            } else if (!strcmp(cfg->init, "truth")) {
                rc = fr_trainer_init_truth(&t);
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
            fr_trainer_make_perm(&t, seed, ep);
            for (int b = (int)ls.batch; b < t.n_batches; ++b) {
                long long start;
                int len;
                fr_trainer_batch_bounds(&t, b, &start, &len);
                memcpy(t.batch, t.perm + start, (size_t)len * sizeof *t.batch);
                double tail[TAIL_N];
                ls.step += 1;
                ls.steps_total += 1;
                ++steps_this_run;
                t.adam.lr = lr_at(cfg, (double)(ls.step - 1) / ((double)E * t.n_batches));
                fr_timer_start(&step_time);
                rc = fr_trainer_step(&t, len, (long)ls.step, seed, ep, 1, tail);
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
                    rc = fr_trainer_ckpt_save(&t, ckpt_path, &tag, &ls, &la);
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
                fr_eval_ctx c;
                rc = fr_eval_ctx_init(&c, &t.model, t.params, ds, t.sx, t.ws, t.M + 1);
                if (rc == FR_OK) rc = fr_eval_metrics(comm, &c, split, 0, &hm);
                fr_eval_ctx_free(&c);
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
                rc = fr_trainer_ckpt_save(&t, ckpt_path, &tag, &ls, &la);
                if (rc != FR_OK) goto done;
            }
        }
        double obj;
        rc = fr_trainer_objective(&t, &obj);
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
    rc = fr_trainer_ckpt_save(&t, ckpt_path, &tag, &ls, &la);
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
        fr_eval_ctx c;
        rc = fr_eval_ctx_init(&c, &t.model, out->params, ds, t.sx, t.ws, t.M + 1);
        if (rc == FR_OK) rc = fr_eval_metrics(comm, &c, split, 1, &out->train);
        if (rc == FR_OK && heldout) rc = fr_eval_metrics(comm, &c, split, 0, &out->heldout);
        if (rc == FR_OK && !heldout) {
            fr_fit_metrics_nan(&out->heldout);
        }
        if (rc == FR_OK) rc = FR_CALLOC(out->latents, (t.rows ? t.rows : 1) * t.K);
        if (rc == FR_OK) rc = fr_eval_latents(&c, out->latents);
        fr_eval_ctx_free(&c);
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
    fr_trainer_free(&t);
    return rc;
}
