/* checkpoint: versioned, atomic training checkpoints. A checkpoint is one
 * small HDF5 file holding named flat double arrays (parameters, Adam
 * moments, best parameters, history) and int64/double scalars (step, epoch,
 * restart, RNG position), tagged with the format version, the parameter
 * layout version, the config hash and the input checksum. It is replaced
 * atomically (atomic.h: temp file, fsync, rename, fsync the directory), so a
 * crash at any moment leaves either the previous checkpoint or the new one,
 * never a torn file. Knows nothing of
 * training logic.
 */
#ifndef FACRNN_CHECKPOINT_H
#define FACRNN_CHECKPOINT_H

#include "facrnn/comm.h"
#include <stddef.h>
#include <stdint.h>

#include "facrnn/atomic.h" /* fr_mkdir_p */
#include "facrnn/common.h"

#define FR_CKPT_FORMAT_VERSION 1
#define FR_CKPT_MAX_ITEMS 32

typedef struct {
    const char *name;
    double *data; /* (n) */
    size_t n;
} fr_ckpt_array;

typedef struct {
    const char *name;
    double value; /* int64 counters are stored exactly as doubles (< 2^53) */
} fr_ckpt_scalar;

typedef struct {
    uint64_t config_hash;
    uint64_t data_checksum;
    int layout_version;
} fr_ckpt_tag;

/* Write atomically. NOT collective: call on one rank (the trainer's rank 0,
 * whose state is identical to every other rank's). */
fr_err fr_ckpt_save(const char *path, const fr_ckpt_tag *tag, int nscalar, const fr_ckpt_scalar *sc, int narray,
                    const fr_ckpt_array *arr);

/* Does a checkpoint exist at path? Collective over comm (rank 0 looks,
 * broadcasts). */
int fr_ckpt_exists(MPI_Comm comm, const char *path);

/* Read into the caller's arrays (sizes must match) and scalars (values
 * filled by name). Refuses, with a message naming the file, a checkpoint of
 * another format/layout version, config hash or data checksum, or with
 * arrays of another size. Collective over comm: rank 0 reads, then
 * broadcasts the status and the contents. */
fr_err fr_ckpt_load(MPI_Comm comm, const char *path, const fr_ckpt_tag *expect, int nscalar, fr_ckpt_scalar *sc,
                    int narray, fr_ckpt_array *arr);


/* fr_mkdir_p(dir), then prove a file can be created in it (a read-only or
 * foreign directory is refused before training, not at the first
 * checkpoint): FR_EINVAL naming output.checkpoint_dir. Not collective. */
fr_err fr_ckpt_dir_ready(const char *dir);

#endif
