/* atomic: temp file, fsync, rename, fsync the directory (see atomic.h).
 * Every file that must survive a crash is replaced through these four
 * functions, so the protocol is written once. */
#include "facrnn/atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

fr_err fr_mkdir_p(const char *dir)
{
    char buf[1024];
    if (!dir || !*dir) return FR_OK;
    if (strlen(dir) >= sizeof buf) return FR_FAIL(FR_EINVAL, "directory path too long: %s", dir);
    strcpy(buf, dir);
    for (char *p = buf + 1; *p; ++p) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0775) != 0 && errno != EEXIST)
            return FR_FAIL(FR_EIO, "cannot create directory %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0775) != 0 && errno != EEXIST)
        return FR_FAIL(FR_EIO, "cannot create directory %s: %s", buf, strerror(errno));
    return FR_OK;
}

fr_err fr_mkdir_parent(const char *path)
{
    char dir[FR_ATOMIC_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path ? path : "");
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return FR_OK; /* the current directory, or "/" */
    *slash = '\0';
    return fr_mkdir_p(dir);
}

fr_err fr_atomic_begin(fr_atomic *a, const char *path)
{
    memset(a, 0, sizeof *a);
    if (!path || !*path) return FR_FAIL(FR_EINVAL, "atomic write: empty file name");
    size_t n = strlen(path);
    if (n >= sizeof a->path) return FR_FAIL(FR_EINVAL, "atomic write: file name longer than %d bytes: %.80s...",
                                            FR_ATOMIC_PATH_MAX - 1, path);
    memcpy(a->path, path, n + 1);
    snprintf(a->tmp, sizeof a->tmp, "%s.tmp", path);
    /* every command treats a missing output folder the same way: create it */
    return fr_mkdir_parent(path);
}

fr_err fr_atomic_fopen(fr_atomic *a, const char *path)
{
    TRY(fr_atomic_begin(a, path));
    a->f = fopen(a->tmp, "w");
    if (!a->f) return FR_FAIL(FR_EIO, "cannot create %s: %s", a->tmp, strerror(errno));
    return FR_OK;
}

/* fsync the directory holding `path`, so the rename itself is durable. File
 * systems that cannot sync a directory say EINVAL (or EBADF, EROFS); there
 * is nothing more to do on those. */
static int sync_dir(const char *path)
{
    char dir[FR_ATOMIC_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = '\0'; /* "/name" lives in "/" */
    else *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0 && (e == EINVAL || e == EBADF || e == EROFS)) rc = 0;
    errno = e;
    return rc;
}

fr_err fr_atomic_commit(fr_atomic *a)
{
    const char *step = NULL;
    int e = 0;
    if (a->f) {
        /* fflush + fsync before fclose: the stream's buffered bytes reach the
         * kernel, then the disk; a full disk shows up here, not later. */
        int bad = fflush(a->f) != 0 || ferror(a->f) || fsync(fileno(a->f)) != 0;
        if (bad) e = errno;
        if (fclose(a->f) != 0 && !bad) bad = 1, e = errno;
        a->f = NULL;
        if (bad) step = "write";
    } else {
        /* written by another library (HDF5) and closed: reopen to fsync */
        int fd = open(a->tmp, O_RDONLY);
        if (fd < 0 || fsync(fd) != 0) step = "sync", e = errno;
        if (fd >= 0) close(fd);
    }
    if (!step && rename(a->tmp, a->path) != 0) step = "rename", e = errno;
    if (step) {
        unlink(a->tmp);
        if (!strcmp(step, "rename"))
            return FR_FAIL(FR_EIO, "cannot rename %s to %s: %s (the previous %s is unchanged)", a->tmp, a->path,
                           strerror(e), a->path);
        return FR_FAIL(FR_EIO, "cannot %s %s: %s (the previous %s is unchanged)", step, a->tmp,
                       e ? strerror(e) : "I/O error", a->path);
    }
    if (sync_dir(a->path) != 0)
        return FR_FAIL(FR_EIO, "%s is written, but its directory could not be synced: %s", a->path, strerror(errno));
    return FR_OK;
}

void fr_atomic_abort(fr_atomic *a)
{
    if (a->f) fclose(a->f);
    a->f = NULL;
    if (a->tmp[0]) unlink(a->tmp);
}
