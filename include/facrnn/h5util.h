/* h5util: the HDF5 helpers of every module: checked calls and string
 * attributes. Not collective (plain attribute
 * reads on an open object). */
#ifndef FACRNN_H5UTIL_H
#define FACRNN_H5UTIL_H

#include <hdf5.h>

#include "facrnn/common.h"

/* Checked HDF5 call: negative return -> FR_EHDF5 with the call's text. */
fr_err fr_check_h5(long long rc, const char *what, const char *file, int line);
#define CHECK_H5(call) TRY(fr_check_h5((long long)(call), #call, __FILE__, __LINE__))

/* The string attribute `name` of `obj`, fixed or variable length, ASCII or
 * UTF-8 (h5py writes UTF-8; HDF5 does not convert between the two, so the
 * memory type takes the file type's character set). *out is malloc'd (free
 * it), or NULL when the attribute is absent. Errors name `where` and the
 * attribute. */
fr_err fr_h5_attr_read_str(hid_t obj, const char *name, const char *where, char **out);

/* The operating system's or MPI-IO's reason for the HDF5 call that just
 * failed, read from HDF5's error stack (e.g. "No space left on device"), as
 * ": <reason>" to append to a message, or "" when the stack names none.
 * Points to a static buffer. Not collective. */
const char *fr_h5_cause(void);

#endif
