/* trainer_ckpt: the loop state of a fit as a checkpoint: named scalars for
 * the counters and running sums, named arrays for the parameters, the Adam
 * moments and the loop's arrays (see trainer_internal.h). */
#include "trainer_internal.h"

#include <stdlib.h>
#include <string.h>

#define CKPT_NARR 13

/* Names of the fr_loop_state fields, in order. */
#define LS_N 17
static const char *ls_names[LS_N] = {"restart", "epoch", "batch", "step", "best_score",
                                     "best_epoch", "acc_loss", "acc_nll", "acc_kl", "acc_pc",
                                     "acc_n", "sel_objective", "sel_restart", "sel_best_epoch", "steps_total",
                                     "sel_best_score", "race_round"};

_Static_assert(LS_N == FR_LOOP_NSCALAR, "one name per fr_loop_state field");

/* The scalars and arrays of a checkpoint; returns the number of arrays (the
 * race slots only under successive halving). */
static int ckpt_items(fr_trainer *t, fr_loop_state *ls, fr_loop_arrays *la, fr_ckpt_scalar *sc,
                      fr_ckpt_array *arr)
{
    double *vals = (double *)ls;
    for (int i = 0; i < LS_N; ++i) {
        sc[i].name = ls_names[i];
        sc[i].value = vals[i];
    }
    size_t nh = (size_t)t->cfg->epochs * FR_H_NCOL;
    fr_ckpt_array a[] = {{"params", t->params, t->np},
                         {"adam_m1", t->m1, t->np},
                         {"adam_m2", t->m2, t->np},
                         {"best_params", t->best, t->np},
                         {"history", la->history, nh},
                         {"sel_params", la->sel_params, t->np},
                         {"sel_history", la->sel_history, nh},
                         {"objective_all", la->objective_all, (size_t)la->n_restarts},
                         {"pca_evals", la->pca_evals, (size_t)t->N},
                         {"sel_best", la->sel_best, t->np},
                         {"race_slots", la->race_slots, (size_t)la->n_restarts * 4 * t->np},
                         {"race_history", la->race_hist, (size_t)la->n_restarts * nh},
                         {"race_scalars", la->race_scal, (size_t)la->n_restarts * FR_RS_N}};
    memcpy(arr, a, sizeof a);
    return la->race_slots ? CKPT_NARR : CKPT_NARR - 3;
}

fr_err fr_trainer_ckpt_save(fr_trainer *t, const char *path, const fr_ckpt_tag *tag, fr_loop_state *ls,
                            fr_loop_arrays *la)
{
    if (!path) return FR_OK;
    fr_ckpt_scalar sc[LS_N];
    fr_ckpt_array arr[CKPT_NARR];
    int narr = ckpt_items(t, ls, la, sc, arr);
    fr_err rc = FR_OK;
    if (t->rank == 0) rc = fr_ckpt_save(path, tag, LS_N, sc, narr, arr);
    return fr_error_agree(&t->comm, rc);
}

fr_err fr_trainer_ckpt_load(fr_trainer *t, const char *path, const fr_ckpt_tag *tag, fr_loop_state *ls,
                            fr_loop_arrays *la)
{
    fr_ckpt_scalar sc[LS_N];
    fr_ckpt_array arr[CKPT_NARR];
    int narr = ckpt_items(t, ls, la, sc, arr);
    TRY(fr_ckpt_load(t->comm, path, tag, LS_N, sc, narr, arr));
    double *vals = (double *)ls;
    for (int i = 0; i < LS_N; ++i) vals[i] = sc[i].value;
    return FR_OK;
}

fr_err fr_loop_arrays_alloc(fr_loop_arrays *la, const fr_trainer *t, int R)
{
    memset(la, 0, sizeof *la);
    la->n_restarts = R;
    size_t nh = (size_t)t->cfg->epochs * FR_H_NCOL;
    TRY(FR_CALLOC(la->history, nh));
    TRY(FR_CALLOC(la->sel_history, nh));
    TRY(FR_CALLOC(la->sel_params, t->np));
    TRY(FR_CALLOC(la->sel_best, t->np));
    TRY(FR_CALLOC(la->objective_all, R));
    TRY(FR_CALLOC(la->pca_evals, t->N));
    for (int i = 0; i < R; ++i) la->objective_all[i] = NAN;
    for (int j = 0; j < t->N; ++j) la->pca_evals[j] = NAN;
    if (!strcmp(t->cfg->restart_schedule, "halving")) {
        TRY(FR_CALLOC(la->race_slots, (size_t)R * 4 * t->np));
        TRY(FR_CALLOC(la->race_hist, (size_t)R * nh));
        TRY(FR_CALLOC(la->race_scal, (size_t)R * FR_RS_N));
        for (int r = 0; r < R; ++r) {
            double *s = la->race_scal + (size_t)r * FR_RS_N;
            s[FR_RS_BEST_SCORE] = INFINITY;
            s[FR_RS_BEST_EPOCH] = -1;
            s[FR_RS_OBJECTIVE] = NAN;
            s[FR_RS_ALIVE] = 1;
        }
    }
    return FR_OK;
}

void fr_loop_arrays_free(fr_loop_arrays *la)
{
    free(la->history);
    free(la->sel_history);
    free(la->sel_params);
    free(la->sel_best);
    free(la->objective_all);
    free(la->pca_evals);
    free(la->race_slots);
    free(la->race_hist);
    free(la->race_scal);
    memset(la, 0, sizeof *la);
}
