/* outlock: the advisory lock on an output (see outlock.h). The lock file is
 * removed on release only while this process holds it exclusively, and a
 * taker checks after locking that the name still refers to the file it
 * locked (else a releaser removed it in between, and it tries again), so a
 * removed lock file never lets two runs in. */
#include "facrnn/outlock.h"

#include "facrnn/atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "facrnn/comm.h"

/* "pid P on host H" from a lock file, or "" when it says nothing. */
static void read_holder(int fd, char *buf, size_t cap)
{
    char raw[256];
    ssize_t n = pread(fd, raw, sizeof raw - 1, 0);
    buf[0] = '\0';
    if (n <= 0) return;
    raw[n] = '\0';
    long pid = 0;
    char host[200];
    if (sscanf(raw, "%ld %199s", &pid, host) == 2) snprintf(buf, cap, " (pid %ld on host %s)", pid, host);
}

/* Lock `path` with op (LOCK_EX or LOCK_SH) without blocking into *fd. */
static fr_err lock_one(const char *path, int op, const char *output, int *fd_out)
{
    *fd_out = -1;
    for (int attempt = 0; attempt < 100; ++attempt) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            return FR_FAIL(FR_EINVAL, "output.path: cannot create lock file %s: %s (directory missing or not writable)",
                           path, strerror(errno));
        if (flock(fd, op | LOCK_NB) != 0) {
            int e = errno;
            if (e == EWOULDBLOCK) {
                char holder[256];
                read_holder(fd, holder, sizeof holder);
                close(fd);
                return FR_FAIL(FR_EIO,
                               "output.path: %s is in use by another facrnn run%s holding %s; wait for it to "
                               "finish or choose another output.path",
                               output, holder, path);
            }
            close(fd);
            if (e == ENOLCK || e == EOPNOTSUPP || e == ENOSYS) {
                LOG_WARN("output.path: the file system of %s does not support locks (%s): a concurrent run on the "
                         "same output would not be detected",
                         path, strerror(e));
                return FR_OK;
            }
            return FR_FAIL(FR_EIO, "output.path: cannot lock %s: %s", path, strerror(e));
        }
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
            if (op == LOCK_EX) {
                /* who holds it, for the message the next taker prints */
                char who[256], host[128] = "unknown";
                gethostname(host, sizeof host - 1);
                host[sizeof host - 1] = '\0';
                int n = snprintf(who, sizeof who, "%ld %s\n", (long)getpid(), host);
                if (ftruncate(fd, 0) != 0 || pwrite(fd, who, (size_t)n, 0) != n) { /* the message only */
                }
            }
            *fd_out = fd;
            return FR_OK;
        }
        close(fd); /* removed or replaced by a releaser after we opened it: again */
    }
    return FR_FAIL(FR_EIO, "output.path: cannot lock %s: it keeps being replaced", path);
}

static void release_one(fr_outlock *l, int i)
{
    if (l->fd[i] < 0) return;
    /* Remove the file only while nobody else holds it. A shared holder asks
     * for the exclusive lock first (if another slice still runs, it keeps
     * the file). */
    if (l->exclusive[i] || flock(l->fd[i], LOCK_EX | LOCK_NB) == 0) unlink(l->path[i]);
    close(l->fd[i]);
    l->fd[i] = -1;
}

void fr_outlock_release(fr_outlock *l)
{
    if (!l->path[0][0]) return; /* zeroed: never taken */
    release_one(l, 1);
    release_one(l, 0);
}

fr_err fr_outlock_take(MPI_Comm comm, const char *output, const char *slice, fr_outlock *l)
{
    int rank;
    memset(l, 0, sizeof *l);
    l->fd[0] = l->fd[1] = -1;
    CHECK_MPI(MPI_Comm_rank(comm, &rank));
    fr_err rc = FR_OK;
    if (rank == 0) {
        snprintf(l->path[0], sizeof l->path[0], "%s.lock", output);
        l->exclusive[0] = slice == NULL;
        rc = fr_mkdir_parent(output); /* the output's folder, as every writer creates it */
        if (rc == FR_OK) rc = lock_one(l->path[0], l->exclusive[0] ? LOCK_EX : LOCK_SH, output, &l->fd[0]);
        if (rc == FR_OK && slice) {
            char what[FR_OUTLOCK_PATH_MAX];
            snprintf(what, sizeof what, "%s (%s)", output, slice);
            snprintf(l->path[1], sizeof l->path[1], "%s.%s.lock", output, slice);
            l->exclusive[1] = 1;
            rc = lock_one(l->path[1], LOCK_EX, what, &l->fd[1]);
        }
        if (rc != FR_OK) fr_outlock_release(l);
    }
    return fr_error_agree(&comm, rc);
}
