/* common: error codes and propagation, the checked LAPACK call, the
 * rank-aware logger, wall-clock timers. Core: no MPI, no HDF5.
 *
 * Error convention (every module follows it): a function that can fail
 * returns fr_err. On failure it records one human-readable line with
 * FR_FAIL(...) (which also notes the source file:line), and callers pass the
 * code up with TRY(...). Only the top level (main) decides how to die:
 * errors every rank agrees on end with a clean MPI_Finalize and an exit
 * code; an error seen by a single rank goes through fr_fatal -> MPI_Abort so
 * no rank is left hanging in a collective. `assert` is for internal
 * invariants only, never for input.
 */
#ifndef FACRNN_COMMON_H
#define FACRNN_COMMON_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    FR_OK = 0,
    FR_EINVAL = 1,   /* invalid input: file contents, config, arguments */
    FR_EUSAGE = 2,   /* command-line usage */
    FR_EIO = 3,      /* file system or HDF5 I/O failure */
    FR_ENOMEM = 4,
    FR_EMPI = 5,
    FR_EHDF5 = 6,
    FR_ELAPACK = 7,
    FR_ENUMERIC = 8, /* NaN/Inf during training, divergence */
    FR_ESIGNAL = 9,  /* stopped on SIGTERM/SIGUSR1 after a checkpoint */
    FR_EINTERNAL = 10
} fr_err;

/* Process exit codes (documented in docs/formats.md, "Exit codes"). */
enum {
    FR_EXIT_OK = 0,
    FR_EXIT_RUNTIME = 1,   /* runtime failure: I/O, numerics, MPI */
    FR_EXIT_INVALID = 2,   /* usage or invalid input (file, config) */
    FR_EXIT_REQUEUE = 75   /* checkpointed on a signal: please requeue (EX_TEMPFAIL) */
};

/* Map an error code to the process exit code above. Not collective. */
int fr_exit_code(fr_err e);

/* Record the one-line message for the current error (printf format).
 * Returns `code` so it can be used in a return statement. Not collective. */
fr_err fr_error_set(fr_err code, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The last recorded message ("" if none) and its origin. Not collective. */
enum { FR_ERR_MSG_CAP = 1024, FR_ERR_WHERE_CAP = 256 };
const char *fr_error_msg(void);
const char *fr_error_where(void);
void fr_error_clear(void);
/* Replace the record with a message received from another rank. Not collective. */
void fr_error_restore(const char *msg, const char *where);

#define FR_FAIL(code, ...) fr_error_set((code), __FILE__, __LINE__, __VA_ARGS__)

/* Propagate a failure from a callee. */
#define TRY(expr)                                  \
    do {                                           \
        fr_err fr_try_rc_ = (expr);                \
        if (fr_try_rc_ != FR_OK) return fr_try_rc_; \
    } while (0)

/* Same, but jump to a cleanup label, storing the code in `rc`. */
#define TRY_GOTO(rc, expr, label)  \
    do {                           \
        (rc) = (expr);             \
        if ((rc) != FR_OK) goto label; \
    } while (0)

/* Checked LAPACK call: records what failed and returns an fr_err. (The MPI
 * and HDF5 twins, CHECK_MPI and CHECK_H5, are in comm.h and h5util.h: the
 * core library sees neither.) */
fr_err fr_check_lapack(int info, const char *what, const char *file, int line);
#define CHECK_LAPACK(info, what) TRY(fr_check_lapack((info), (what), __FILE__, __LINE__))

/* Allocation that records FR_ENOMEM on failure; zero-initialised. */
fr_err fr_calloc(void *pptr, size_t n, size_t size);
#define FR_CALLOC(ptr, n) fr_calloc(&(ptr), (size_t)(n), sizeof(*(ptr)))

/* ---- logger --------------------------------------------------------------
 * Rank 0 prints INFO and WARN; every rank prints ERROR. --verbose adds DEBUG
 * on all ranks (prefixed with the rank); --quiet leaves only WARN and ERROR. */
typedef enum { FR_LOG_ERROR = 0, FR_LOG_WARN = 1, FR_LOG_INFO = 2, FR_LOG_DEBUG = 3 } fr_log_level;
void fr_log_init(int rank, fr_log_level level);
fr_log_level fr_log_get_level(void);
void fr_log(fr_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define LOG_ERROR(...) fr_log(FR_LOG_ERROR, __VA_ARGS__)
#define LOG_WARN(...) fr_log(FR_LOG_WARN, __VA_ARGS__)
#define LOG_INFO(...) fr_log(FR_LOG_INFO, __VA_ARGS__)
#define LOG_DEBUG(...) fr_log(FR_LOG_DEBUG, __VA_ARGS__)

/* ---- timers -------------------------------------------------------------- */
double fr_wtime(void); /* monotonic seconds */
/* The fr_wtime() of the process's start: main() marks it first thing
 * (before MPI_Init); without a mark the first fr_process_start() call
 * does. Not collective. */
void fr_process_start_mark(void);
double fr_process_start(void);
typedef struct {
    double total; /* accumulated seconds */
    double t0;    /* start of the running interval */
    long count;   /* number of completed intervals */
} fr_timer;
void fr_timer_start(fr_timer *t);
void fr_timer_stop(fr_timer *t);

#endif
