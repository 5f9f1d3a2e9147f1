/* outlock: one run at a time per output. Two fits or sweeps pointed at the
 * same output.path would interleave their writes to the same results file,
 * checkpoints and manifest, so the second one is refused before it does any
 * work. Rank 0 takes an advisory flock(2) on "<output>.lock" and holds it
 * until the command ends. The kernel drops the lock when the process exits
 * for any reason (normal exit, MPI_Abort, SIGKILL), so a lock file left
 * behind by a killed run never blocks a rerun; a clean release removes it.
 *
 * Slices of one sweep (`sweep --slice I/N`, a Slurm array) run concurrently
 * by design and write disjoint runs: each takes "<output>.lock" shared and
 * its own "<output>.sliceIofN.lock" exclusive, so slices coexist, a slice started
 * twice is refused, and a fit, a whole sweep or --collect (exclusive on
 * "<output>.lock") is refused while any slice runs, and the other way round.
 *
 * On a file system without locks (flock fails with ENOLCK or EOPNOTSUPP,
 * e.g. Lustre mounted without -o flock) the run goes ahead with a warning. */
#ifndef FACRNN_OUTLOCK_H
#define FACRNN_OUTLOCK_H

#include <mpi.h>

#include "facrnn/common.h"

#define FR_OUTLOCK_PATH_MAX 1200 /* FR_CFG_PATH_MAX + ".sliceIofN.lock" */

typedef struct {
    int fd[2];                          /* [0] "<output>.lock", [1] the slice's lock; -1 when not held */
    int exclusive[2];                   /* whether fd[i] holds LOCK_EX (else LOCK_SH) */
    char path[2][FR_OUTLOCK_PATH_MAX];  /* the lock files */
} fr_outlock;

/* Rank 0 locks `output` (exclusive when `slice` is NULL; shared plus an
 * exclusive lock on "<output>.<slice>.lock" otherwise, slice = "sliceIofN"). If another
 * run holds it, every rank returns FR_EIO with one line naming the output,
 * the lock file and the holder's pid and host. Collective over comm. */
fr_err fr_outlock_take(MPI_Comm comm, const char *output, const char *slice, fr_outlock *l);

/* Release what fr_outlock_take took and remove lock files nobody else holds.
 * Safe on a zeroed, failed or already released lock. Not collective. */
void fr_outlock_release(fr_outlock *l);

#endif
