/* trainer_result: the fit result from the loop's final state. The chosen
 * restart's parameters, best-held-out parameters, history and every
 * restart's objective move from the loop arrays into the result; then its
 * final metrics on the training and held-out trials, the latents of every
 * local bin and the read-outs against the data set's truth and behaviour.
 */
#include "trainer_internal.h"

#include <stdlib.h>
#include <string.h>

#include "facrnn/readout.h"
#include "facrnn/trainer.h"

fr_err fr_trainer_result(fr_trainer *t, const fr_loop_state *ls, fr_loop_arrays *la, int heldout,
                         fr_fit_result *out)
{
    const fr_config *cfg = t->cfg;
    const fr_dataset *ds = t->ds;
    out->model = t->model;
    out->epochs_done = cfg->epochs;
    out->objective = ls->sel_objective;
    out->restart_chosen = (int)ls->sel_restart;
    out->restarts_done = la->n_restarts;
    out->best_epoch = (int)ls->sel_best_epoch;
    out->steps = (long long)ls->steps_total;
    out->best_heldout_nll = ls->sel_best_score;
    out->objective_all = la->objective_all;
    la->objective_all = NULL;
    out->params = la->sel_params;
    la->sel_params = NULL;
    out->best_heldout_params = la->sel_best;
    la->sel_best = NULL;
    out->history = la->sel_history;
    la->sel_history = NULL;
    if (!strcmp(cfg->init, "pca") || !strcmp(cfg->init, "auto")) {
        out->pca_evals = la->pca_evals;
        la->pca_evals = NULL;
    }

    /* Final metrics, on the trainer's own sigma(x) cache and workspace. */
    fr_eval_ctx c;
    fr_err rc = fr_error_agree(&t->comm, fr_eval_ctx_init(&c, &t->model, out->params, ds, t->sx, t->ws, t->M + 1));
    /* fr_trainer_service between the pieces (and inside fr_eval_metrics,
     * between its PC and TC): a sweep coordinator on this rank answers the
     * other teams meanwhile. */
    if (rc == FR_OK) rc = fr_eval_metrics(t->comm, &c, t->split, 1, &out->train);
    fr_trainer_service();
    if (rc == FR_OK && heldout) rc = fr_eval_metrics(t->comm, &c, t->split, 0, &out->heldout);
    fr_trainer_service();
    if (rc == FR_OK && !heldout) fr_fit_metrics_nan(&out->heldout);
    if (rc == FR_OK) {
        rc = FR_CALLOC(out->latents, (t->rows ? t->rows : 1) * t->K);
        if (rc == FR_OK) rc = fr_eval_latents(&c, out->latents);
        rc = fr_error_agree(&t->comm, rc);
    }
    fr_eval_ctx_free(&c);
    fr_trainer_service();
    if (rc == FR_OK)
        rc = fr_readout_latent_metrics(t->comm, ds, t->split, &t->model, out->latents, &out->train, &out->heldout);
    if (rc == FR_OK)
        rc = fr_readout_connectivity_truth(ds, &t->model, out->params, &out->conn_have, &out->conn_r_W,
                                           out->conn_r_groups);
    return rc;
}
