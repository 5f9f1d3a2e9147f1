/* h5util: small HDF5 helpers shared by the input reader, the results
 * reader, the sweep assembler and `info`. Not collective (plain attribute
 * reads on an open object). */
#ifndef FACRNN_H5UTIL_H
#define FACRNN_H5UTIL_H

#include <hdf5.h>

#include "facrnn/common.h"

/* The string attribute `name` of `obj`, fixed or variable length, ASCII or
 * UTF-8 (h5py writes UTF-8; HDF5 does not convert between the two, so the
 * memory type takes the file type's character set). *out is malloc'd (free
 * it), or NULL when the attribute is absent. Errors name `where` and the
 * attribute. */
fr_err fr_h5_attr_read_str(hid_t obj, const char *name, const char *where, char **out);

#endif
