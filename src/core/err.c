/* err: the error record, the LAPACK checked-call wrapper, zeroed allocation,
 * the logger and timers shared by every module (see include/facrnn/common.h).
 * Part of the core library: no MPI, no HDF5. The MPI side of the error path
 * (agreement across ranks, the fatal exit) lives in io/comm.c. */
#include "facrnn/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char g_msg[FR_ERR_MSG_CAP];
static char g_where[FR_ERR_WHERE_CAP];
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
    /* Format into a copy first: callers prefix the previous message with
     * FR_FAIL(rc, "key: %s", fr_error_msg()), whose argument is g_msg. */
    char buf[sizeof g_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    memcpy(g_msg, buf, sizeof g_msg);
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

void fr_error_restore(const char *msg, const char *where)
{
    snprintf(g_msg, sizeof g_msg, "%s", msg);
    snprintf(g_where, sizeof g_where, "%s", where);
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

static double g_process_start = -1;

void fr_process_start_mark(void) { g_process_start = fr_wtime(); }

double fr_process_start(void)
{
    if (g_process_start < 0) fr_process_start_mark();
    return g_process_start;
}

void fr_timer_start(fr_timer *t) { t->t0 = fr_wtime(); }

void fr_timer_stop(fr_timer *t)
{
    t->total += fr_wtime() - t->t0;
    t->count++;
}
