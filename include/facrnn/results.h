/* results: the output contract of docs/formats.md in parallel HDF5.
 * A fit writes "<path>.tmp" collectively and rank 0 publishes it with the
 * atomic helper (atomic.h: fsync, rename, fsync the directory) only after a
 * clean close, so an existing results file is never corrupted and an
 * interrupted or failed run never leaves an unreadable one. Knows nothing of training
 * logic: it writes what fr_fit_result holds.
 *
 * Layout (docs/formats.md, "Results"): root attributes format_version, version,
 * git_revision, n_ranks, config (YAML), input_path, input_checksum;
 * /runs/<run_id>/{params/..., latents, split, history/..., metrics (attributes),
 * connectivity/..., pca_eigenvalues}.
 */
#ifndef FACRNN_RESULTS_H
#define FACRNN_RESULTS_H

#include <hdf5.h>
#include "facrnn/atomic.h"
#include "facrnn/comm.h"

#include "facrnn/config.h"
#include "facrnn/dataset.h"
#include "facrnn/fit_result.h"

#define FR_RESULTS_FORMAT_VERSION 1

typedef struct {
    MPI_Comm comm;
    int rank;
    hid_t file;
    int atomic;
    fr_atomic out; /* out.path: the results file; out.tmp: what HDF5 writes when atomic */
    int keep_other_runs; /* atomic only: on close, copy the runs of an existing out.path that this file
                            does not hold into it before it replaces out.path (a fit adds its run) */
} fr_results;

/* A fit may add its run to an existing results file at `path` only when
 * that file is a fit results file of the same data (input_checksum, 16 hex
 * digits): refuses (one line, before any training) a file that is not a
 * facrnn results file, a sweep's results file, or runs of other data.
 * When the file holds a run named run_id of another configuration (its
 * config_hash differs from config_hash: the id names K, groups, beta, seed
 * and fold, not every key), run_id (cap bytes) gets the suffix
 * "_<8 hex digits of config_hash>" so neither is lost. Nothing to check
 * when path does not exist. Collective (rank 0 reads; the id is shared). */
fr_err fr_results_check_merge(MPI_Comm comm, const char *path, const char *input_checksum, uint64_t config_hash,
                              char *run_id, size_t cap);

/* Fail early (before any training) if `path` cannot be written. Collective. */
fr_err fr_results_check_writable(MPI_Comm comm, const char *path);

/* Create a results file. atomic = 1: write "<path>.tmp", publish it on
 * close. Collective over comm. */
fr_err fr_results_create(MPI_Comm comm, const char *path, int atomic, fr_results *r);
/* Root attributes. Collective. */
fr_err fr_results_write_root(fr_results *r, const fr_config *cfg, const fr_dataset *ds);
/* The root attributes of every results file (a fit's and a sweep's), written
 * in one place: format_version, version, git_revision, n_ranks, config
 * (resolved YAML), input_path, input_checksum, program. Collective over the
 * file's communicator. */
fr_err fr_results_root_attrs(hid_t file, const fr_config *cfg, int n_ranks, const char *input_path,
                             const char *input_checksum, const char *program);
/* One run's group. Collective (each rank writes its own trials' latent rows). */
fr_err fr_results_write_run(fr_results *r, const char *run_id, const fr_config *cfg, const fr_dataset *ds,
                            const unsigned char *split, const fr_fit_result *res, const char *status);
/* Dataset `name` (total_bins, ncols) under loc, each rank writing its own
 * rows [row_lo, row_hi) of `rows` (may be NULL on a rank without rows).
 * Collective (dataset creation); the transfer itself is independent. */
fr_err fr_results_write_rows(hid_t loc, const char *name, const fr_dataset *ds, int ncols, const double *rows);

/* Close (and publish when atomic). Call it only when every write succeeded
 * on every rank. Collective. */
fr_err fr_results_close(fr_results *r);
/* Give up after a failed write (the ranks agreed on the error): when atomic,
 * the temp file is removed and an existing results file stays as it was.
 * If the file is still open, the ranks' HDF5 states may differ (one rank's
 * write failed), so no collective close is attempted: rank 0 prints the
 * agreed message and ends the job with exit 1 (fr_fatal), and this function
 * does not return. Collective. */
void fr_results_abort(fr_results *r);

/* Small attribute helpers shared with the sweep writer. Collective (every
 * rank passes identical values). */
fr_err fr_h5_attr_double(hid_t loc, const char *name, double v);
fr_err fr_h5_attr_int(hid_t loc, const char *name, long long v);
fr_err fr_h5_attr_str(hid_t loc, const char *name, const char *s);
/* A replicated small dataset written by rank 0 inside a collective call. */
fr_err fr_h5_write_small(hid_t loc, const char *name, hid_t memtype, int rank, int ndims, const hsize_t *dims,
                         const void *data);

#endif
