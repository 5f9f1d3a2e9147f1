/* trainer: the data-parallel fitting loop around the pure model core.
 * Owns epochs, the global minibatch plan, the Allgatherv of (mu, z), the
 * small Allreduce of dL/dmu, the one Allreduce of the flat gradient, Adam,
 * held-out evaluation, signals, checkpoints and restarts. Knows nothing of
 * file layouts (results are written by the caller from fr_fit_result).
 *
 * Rank invariance: the minibatch plan is a pure function of (seed, epoch)
 * over global sample ids; a minibatch is processed in sorted sample-id
 * order, so each rank's samples form one contiguous block and every
 * per-row computation happens in the same order at any number of ranks; eps
 * is keyed by (seed, epoch, global sample id).
 */
#ifndef FACRNN_TRAINER_H
#define FACRNN_TRAINER_H

#include "facrnn/comm.h"

#include "facrnn/config.h"
#include "facrnn/dataset.h"
#include "facrnn/fit_result.h"
#include "facrnn/model.h"

/* Fit one configuration. Collective over comm (all ranks hold their shard of
 * `ds`; split is identical everywhere). Resumes from ckpt_path when it exists
 * and matches; writes checkpoints there (NULL: no checkpoints). Returns
 * FR_ESIGNAL after checkpointing when SIGTERM/SIGUSR1 arrived. */
/* Epochs of training a fit of cfg runs over all its restarts: R x E under
 * train.restart_schedule all, the successive-halving total (2.5 E for
 * R = 8) under halving. Not collective. */
double fr_train_plan_epochs(const fr_config *cfg);

fr_err fr_train(MPI_Comm comm, const fr_config *cfg, const fr_dataset *ds, const unsigned char *split,
                const char *ckpt_path, fr_fit_result *out);

/* Optional hook called once after every optimisation step, on every rank of
 * every fit (NULL: none). The sweep coordinator uses it to service its work
 * queue without a thread; it must not make collective calls. Not collective. */
void fr_trainer_set_between_steps(void (*fn)(void *ctx), void *ctx);
/* Call that hook now, when one is set. The trainer does so between the
 * stretches of work that are not steps (restart objectives, the final
 * metrics, latents and read-outs), and a caller may too (the sweep between
 * a run's read-outs and its output), so a coordinator on this rank keeps
 * answering while its own fit evaluates. Not collective. */
void fr_trainer_service(void);

/* Install SIGTERM/SIGUSR1 handlers that request a checkpoint-and-stop at the
 * next step boundary. Not collective. */
void fr_trainer_install_signals(void);
/* Nonzero once a stop signal arrived. */
int fr_trainer_stop_requested(void);

#endif
