/* h5util: HDF5 helpers shared by several modules (see h5util.h). */
#include "facrnn/h5util.h"

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
    fr_err rc = FR_OK;
    if (H5Tget_class(ty) != H5T_STRING) {
        rc = FR_FAIL(FR_EINVAL, "%s: attribute %s is not a string", where, name);
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
