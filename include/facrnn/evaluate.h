/* evaluate: the metrics and the latents of a fitted parameter vector on a
 * data set, each rank predicting its own trials' rows. The trainer tracks
 * held-out NLL and computes the fit's final metrics with the same code, so
 * `facrnn eval` on the training data reproduces what fit stored.
 */
#ifndef FACRNN_EVALUATE_H
#define FACRNN_EVALUATE_H

#include "facrnn/comm.h"

#include "facrnn/dataset.h"
#include "facrnn/fit_result.h"
#include "facrnn/model.h"

/* Metrics of `params` on the training (which = 1) or held-out (which = 0)
 * trials of split (n_trials); the read-out entries (latent and behaviour
 * R^2) are left NaN for fr_readout_latent_metrics. Collective over comm. */
fr_err fr_evaluate(MPI_Comm comm, const fr_model *m, const double *params, const fr_dataset *ds,
                   const unsigned char *split, int which, fr_fit_metrics *out);

/* Encoder means mu (z = mu) for every local bin of `ds`: latents
 * (ds->row_hi - ds->row_lo, K), NaN in each trial's first L context bins;
 * the same numbers fit writes to /runs/<id>/latents. Collective over comm
 * (errors are agreed). */
fr_err fr_evaluate_latents(MPI_Comm comm, const fr_model *m, const double *params, const fr_dataset *ds,
                           double *latents);

#endif
