/* readout: metrics that compare fitted latents and connectivity with what
 * the data set knows: ground-truth latents and parameters, and behaviour,
 * all of it read by the data set reader (fr_dataset), never by path.
 * Thin MPI layer over the pure maths of analysis.h: each rank summarises its
 * own rows as moments, one Allreduce combines them. Used by fit, sweep and
 * eval, so their numbers agree.
 */
#ifndef FACRNN_READOUT_H
#define FACRNN_READOUT_H

#include "facrnn/comm.h"

#include "facrnn/dataset.h"
#include "facrnn/model.h"
#include "facrnn/fit_result.h"

/* Fill group_latent_r2, component_latent_r2 (when /truth/latents was read)
 * and behavior_r2, behavior_align_r2 and behavior_align_all_r2 (when
 * /behavior was read; the affine maps are fitted on the training trials and
 * scored on the trials of each set; the alignment metrics cumulate each
 * trial's latents from bin L = m->spec.L on, fr_align_cumulate) of `train` and
 * `heldout` from the local latents (rows, K) (NaN rows are skipped). The
 * held-out entries stay NaN when no trial is held out. Collective. */
fr_err fr_readout_latent_metrics(MPI_Comm comm, const fr_dataset *ds, const unsigned char *split,
                                 const fr_model *m, const double *latents, fr_fit_metrics *train,
                                 fr_fit_metrics *heldout);

/* Connectivity recovery against the data set's /truth/A and /truth/B
 * (ds->truth): Pearson r of W, and of each fitted group's W_g with its
 * matched true group (Hungarian on the r matrix). r_groups (G) gets 0 for an
 * unmatched group. Returns *have = 0 when the truth is absent or has another
 * N. Not collective: every rank holds the truth and computes the same
 * numbers. */
fr_err fr_readout_connectivity_truth(const fr_dataset *ds, const fr_model *m, const double *params, int *have,
                                     double *r_W, double *r_groups);

#endif
