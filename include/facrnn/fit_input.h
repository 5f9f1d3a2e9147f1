/* fit_input: what one fit takes from its configuration and its data: the
 * read options of the data set, the data set with its cross-validation
 * split, and the model spec. Shared by fit, sweep and the fitted-run reader
 * (eval, simulate), so a run is rebuilt exactly as it was fitted.
 */
#ifndef FACRNN_FIT_INPUT_H
#define FACRNN_FIT_INPUT_H

#include "facrnn/comm.h"

#include "facrnn/config.h"
#include "facrnn/dataset.h"
#include "facrnn/model.h"
#include "facrnn/standardize.h"

/* Read options of the data set of a fit with config cfg (lags, observation,
 * inputs; behaviour and ground truth are always read). Not collective. */
void fr_fit_read_opts(const fr_config *cfg, fr_read_opts *ro);

/* Load the data set (validated, with its ground truth) and the
 * cross-validation split of cfg's fold; allocates *split (n_trials).
 * Resolves the co-smoothing channels into cfg: an empty
 * data.heldout_channels (the default) takes the file's /heldout_channels,
 * a non-empty one overrides it; the log says which applied, and the run's
 * stored config holds the list, so eval and simulate rebuild the same
 * model whatever file they read. Collective over comm. */
fr_err fr_fit_prepare(MPI_Comm comm, fr_config *cfg, fr_dataset *ds, unsigned char **split);

/* The model spec of a fit: config + data + training-set size n_train (the
 * minibatch is at most n_train). Not collective. */
fr_err fr_fit_model_spec(const fr_config *cfg, const fr_dataset *ds, long long n_train, fr_model_spec *spec);

/* The scale transform of a fit (data.standardize, standardize.h) from the
 * training trials of ds (split[k] = 1) only, so held-out trials do not leak
 * into it: auto is zscore for Gaussian data and off for Poisson counts (and
 * for model.init: truth, whose parameters are in the file's units). Each
 * rank sums its own training rows; one MPI_SUM of the packed sums gives
 * every rank the same transform at any rank count (to rounding). Under off
 * with Gaussian data and tanh, data whose median |x| exceeds
 * FR_STD_SATURATE are refused with a message naming the fix. Allocates st
 * (fr_std_free). Collective over comm. */
fr_err fr_fit_standardize(MPI_Comm comm, const fr_config *cfg, const fr_dataset *ds, const unsigned char *split,
                          fr_standardize *st);

/* Missing values: the channels with no observed entry of /mask on the
 * training trials (split[k] = 1), ascending, into *list (allocated, free()
 * it; NULL when none) and their number into *n, with one WARN line naming
 * them (the fit goes on: such a channel's decoder row only sees its prior
 * and initialisation). *n = 0 without a mask. One MPI_SUM of the per-channel
 * counts. Collective over comm. */
fr_err fr_fit_unobserved(MPI_Comm comm, const fr_dataset *ds, const unsigned char *split, int *n, int **list);

#endif
