/* atomic: the one way a file that must survive is replaced (checkpoints,
 * results, the sweep manifest, results file and CSV, eval and synth output).
 * The new contents go to "<path>.tmp" in the same directory; commit flushes
 * and fsyncs the temp file, renames it over <path> and fsyncs the directory,
 * so after a crash at any moment <path> is either the old file or the whole
 * new one, and a commit that returned FR_OK survives a power loss. On any
 * failure (commit or abort) the temp file is removed and <path> is left as it
 * was; the one exception is a failing fsync of the directory after the
 * rename, when <path> already holds the new file (the message says so).
 *
 * Two ways to write the temp file:
 *   stdio:  fr_atomic_fopen(&a, path) -> fprintf(a.f, ...) -> fr_atomic_commit(&a)
 *   other writers (HDF5, possibly parallel): fr_atomic_begin(&a, path) ->
 *           create and close a.tmp -> fr_atomic_commit(&a) on one rank.
 * Call fr_atomic_abort(&a) instead of commit when writing failed.
 *
 * The temp name is a pure function of the path, so every rank of a parallel
 * writer derives the same one, and a stale temp file left by a crash is
 * simply overwritten by the next attempt.
 *
 * None of these functions is collective. */
#ifndef FACRNN_ATOMIC_H
#define FACRNN_ATOMIC_H

#include <stdio.h>

#include "facrnn/common.h"

#define FR_ATOMIC_PATH_MAX 4096

typedef struct {
    char path[FR_ATOMIC_PATH_MAX];    /* the file being replaced */
    char tmp[FR_ATOMIC_PATH_MAX + 8]; /* "<path>.tmp": same directory, so the rename is atomic */
    FILE *f;                          /* the temp file's stream after fr_atomic_fopen, else NULL */
} fr_atomic;

/* mkdir -p: dir and its missing parents (mode 0775); an existing one is
 * fine. The message names the folder that could not be made. */
fr_err fr_mkdir_p(const char *dir);
/* fr_mkdir_p of the folder holding the file `path` (nothing for a bare name). */
fr_err fr_mkdir_parent(const char *path);

/* Name the temp file of `path` in a->tmp and create the folder it goes in
 * when missing (every output's folder is created the same way); creates no
 * file. */
fr_err fr_atomic_begin(fr_atomic *a, const char *path);

/* fr_atomic_begin, then open a->tmp for writing as a->f. */
fr_err fr_atomic_fopen(fr_atomic *a, const char *path);

/* Publish a->tmp as a->path: close a->f if open (a write error that stdio
 * held back is caught here), fsync the temp file, rename it over a->path,
 * fsync the directory. On failure the temp file is removed and a->path is
 * untouched; the message names the file and the failing step. */
fr_err fr_atomic_commit(fr_atomic *a);

/* Give up: close a->f if open and remove a->tmp. a->path is untouched. */
void fr_atomic_abort(fr_atomic *a);

#endif
