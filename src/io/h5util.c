/* h5util: HDF5 helpers shared by several modules (see h5util.h). */
#include "facrnn/h5util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

fr_err fr_h5_attr_read_str(hid_t obj, const char *name, const char *where, char **out)
{
    *out = NULL;
    if (H5Aexists(obj, name) <= 0) return FR_OK;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return FR_FAIL(FR_EIO, "%s: cannot open attribute %s", where, name);
    hid_t ty = H5Aget_type(a);
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_cset(mt, H5Tget_cset(ty));
    /* One string: H5Aread fills every element of the attribute's dataspace,
     * so an array of strings would overrun the one-string buffer below. */
    hid_t sp = H5Aget_space(a);
    hssize_t npoints = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    if (sp >= 0) H5Sclose(sp);
    fr_err rc = FR_OK;
    if (H5Tget_class(ty) != H5T_STRING) {
        rc = FR_FAIL(FR_EINVAL, "%s: attribute %s is not a string", where, name);
    } else if (npoints != 1) {
        rc = FR_FAIL(FR_EINVAL, "%s: attribute %s holds %lld strings, expected one", where, name, (long long)npoints);
    } else if (H5Tis_variable_str(ty) > 0) {
        char *s = NULL; /* the read yields a pointer to HDF5-owned characters */
        H5Tset_size(mt, H5T_VARIABLE);
        if (H5Aread(a, mt, &s) < 0) rc = FR_FAIL(FR_EIO, "%s: cannot read attribute %s", where, name);
        else rc = FR_CALLOC(*out, (s ? strlen(s) : 0) + 1);
        if (rc == FR_OK && s) strcpy(*out, s);
        if (s) H5free_memory(s);
    } else {
        size_t sz = H5Tget_size(ty);
        H5Tset_size(mt, sz + 1);
        rc = FR_CALLOC(*out, sz + 1);
        if (rc == FR_OK && H5Aread(a, mt, *out) < 0) rc = FR_FAIL(FR_EIO, "%s: cannot read attribute %s", where, name);
    }
    if (rc != FR_OK) {
        free(*out);
        *out = NULL;
    }
    H5Tclose(mt);
    H5Tclose(ty);
    H5Aclose(a);
    return rc;
}

fr_err fr_check_h5(long long rc, const char *what, const char *file, int line)
{
    if (rc >= 0) return FR_OK;
    return fr_error_set(FR_EHDF5, file, line, "HDF5 call failed: %s", what);
}

/* H5Ewalk callback: keep the reason of the deepest entry that has one. The
 * POSIX drivers write "errno = N, error message = '...'"; the MPI-IO driver
 * pushes MPI's error string ("MPI_ERR_...: ..."). */
static herr_t cause_walk(unsigned n, const H5E_error2_t *e, void *out)
{
    (void)n;
    const char *d = e->desc ? e->desc : "";
    const char *m = strstr(d, "error message = '");
    char *buf = out;
    if (m) {
        m += strlen("error message = '");
        const char *end = strchr(m, '\'');
        int len = end ? (int)(end - m) : (int)strlen(m);
        snprintf(buf, 256, ": %.*s", len, m);
    } else if ((m = strstr(d, "MPI_ERR_"))) {
        snprintf(buf, 256, ": %s", m);
    }
    return 0;
}

const char *fr_h5_cause(void)
{
    int e = errno; /* as the failed call left it, before the walk */
    static char buf[256];
    buf[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, cause_walk, buf);
    /* The MPI-IO driver reports a short write as "file write failed"
     * without a reason; the POSIX write beneath it left errno set. Only
     * errors a write can get are trusted, so a stale errno is not blamed. */
    if (!buf[0] && (e == ENOSPC || e == EDQUOT || e == EFBIG || e == EIO || e == EROFS))
        snprintf(buf, sizeof buf, ": %s", strerror(e));
    return buf;
}
