/* common: the error record, checked-call wrappers, fatal exit, logger and
 * timers shared by every module (see include/facrnn/common.h). */
#include "facrnn/common.h"

#include <hdf5.h>
#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char g_msg[1024];
static char g_where[256];
static int g_rank;
static fr_log_level g_level = FR_LOG_INFO;

int fr_exit_code(fr_err e)
{
    switch (e) {
    case FR_OK: return FR_EXIT_OK;
    case FR_EINVAL:
    case FR_EUSAGE: return FR_EXIT_INVALID;
    case FR_ESIGNAL: return FR_EXIT_REQUEUE;
    default: return FR_EXIT_RUNTIME;
    }
}

fr_err fr_error_set(fr_err code, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    /* Keep the message on one line whatever the callee formatted. */
    for (char *p = g_msg; *p; ++p)
        if (*p == '\n' || *p == '\r') *p = ' ';
    const char *base = strstr(file, "src/");
    snprintf(g_where, sizeof g_where, "%s:%d", base ? base : file, line);
    return code;
}

const char *fr_error_msg(void) { return g_msg; }
const char *fr_error_where(void) { return g_where; }
void fr_error_clear(void) { g_msg[0] = g_where[0] = '\0'; }

fr_err fr_check_mpi(int rc, const char *what, const char *file, int line)
{
    if (rc == MPI_SUCCESS) return FR_OK;
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, s, &len);
    return fr_error_set(FR_EMPI, file, line, "MPI call failed: %s: %s", what, s);
}

fr_err fr_check_h5(long long rc, const char *what, const char *file, int line)
{
    if (rc >= 0) return FR_OK;
    return fr_error_set(FR_EHDF5, file, line, "HDF5 call failed: %s", what);
}

fr_err fr_check_lapack(int info, const char *what, const char *file, int line)
{
    if (info == 0) return FR_OK;
    return fr_error_set(FR_ELAPACK, file, line, "%s failed with info = %d", what, info);
}

fr_err fr_calloc(void *pptr, size_t n, size_t size)
{
    void **p = (void **)pptr;
    *p = calloc(n ? n : 1, size ? size : 1);
    if (!*p) return FR_FAIL(FR_ENOMEM, "out of memory allocating %zu x %zu bytes", n, size);
    return FR_OK;
}

_Noreturn void fr_fatal(fr_err e)
{
    int rank = 0, inited = 0;
    MPI_Initialized(&inited);
    if (inited) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    fprintf(stderr, "facrnn: error (rank %d): %s [%s]\n", rank,
            g_msg[0] ? g_msg : "unknown error", g_where);
    fflush(stderr);
    if (inited) MPI_Abort(MPI_COMM_WORLD, fr_exit_code(e));
    abort(); /* only reached without MPI: there is no other rank to hang */
}

/* ---- logger --------------------------------------------------------------- */
void fr_log_init(int rank, fr_log_level level)
{
    g_rank = rank;
    g_level = level;
}

fr_log_level fr_log_get_level(void) { return g_level; }

void fr_log(fr_log_level level, const char *fmt, ...)
{
    if (level > g_level) return;
    /* Rank 0 speaks for the job; other ranks only report errors, or
     * everything in debug mode. */
    if (g_rank != 0 && level != FR_LOG_ERROR && g_level < FR_LOG_DEBUG) return;
    static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    FILE *out = level <= FR_LOG_WARN ? stderr : stdout;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (g_level >= FR_LOG_DEBUG)
        fprintf(out, "[%s.%03ldZ %-5s r%d] %s\n", stamp, ts.tv_nsec / 1000000, names[level], g_rank, line);
    else
        fprintf(out, "[%s.%03ldZ %-5s] %s\n", stamp, ts.tv_nsec / 1000000, names[level], line);
    fflush(out);
}

/* ---- timers --------------------------------------------------------------- */
double fr_wtime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void fr_timer_start(fr_timer *t) { t->t0 = fr_wtime(); }

void fr_timer_stop(fr_timer *t)
{
    t->total += fr_wtime() - t->t0;
    t->count++;
}

/* ---- collective agreement on errors ---------------------------------------- */
fr_err fr_error_agree(const void *commp, fr_err local)
{
    MPI_Comm comm = *(const MPI_Comm *)commp;
    int size, rank;
    MPI_Comm_size(comm, &size);
    MPI_Comm_rank(comm, &rank);
    int pair[2] = {(int)local, local != FR_OK ? rank : size};
    int worst = 0, first = 0;
    /* Two reductions: the worst code, and the first failing rank. */
    if (MPI_Allreduce(&pair[0], &worst, 1, MPI_INT, MPI_MAX, comm) != MPI_SUCCESS ||
        MPI_Allreduce(&pair[1], &first, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS) {
        FR_FAIL(FR_EMPI, "MPI_Allreduce failed while agreeing on an error");
        fr_fatal(FR_EMPI);
    }
    if (worst == FR_OK) return FR_OK;
    char buf[sizeof g_msg + sizeof g_where];
    if (rank == first) {
        memcpy(buf, g_msg, sizeof g_msg);
        memcpy(buf + sizeof g_msg, g_where, sizeof g_where);
    }
    MPI_Bcast(buf, (int)sizeof buf, MPI_CHAR, first, comm);
    memcpy(g_msg, buf, sizeof g_msg);
    memcpy(g_where, buf + sizeof g_msg, sizeof g_where);
    return (fr_err)worst;
}
