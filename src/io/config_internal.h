/* config_internal: the option table's types, shared by config.c (the
 * table, parsing, validation) and config_echo.c (YAML echo, fit hash,
 * --help). Not part of the public API. */
#ifndef FACRNN_CONFIG_INTERNAL_H
#define FACRNN_CONFIG_INTERNAL_H

#include <stddef.h>

#include "facrnn/config.h"

typedef enum {
    OT_INT,     /* int */
    OT_INT64,   /* long long */
    OT_DOUBLE,  /* double */
    OT_BOOL,    /* int 0/1 */
    OT_ENUM,    /* char[cap], one of `choices` */
    OT_PATH,    /* char[cap], any string */
    OT_INTLIST, /* int[cap] + int count */
    OT_DBLLIST, /* double[cap] + int count */
    OT_I64LIST, /* long long[cap] + int count */
    OT_PSI,     /* double list + count, or "learned" (flag) */
    OT_PARTS,   /* "all" (flag) or a list of int lists, stored [G, h1..hG] */
    OT_ENCSTD   /* "auto" (stored as 0) or a positive double */
} opt_type;

enum {
    OF_GT = 1,       /* value must be strictly above min */
    OF_NONEMPTY = 2, /* list: null means "not set"; an explicit [] is an error */
    OF_NOHASH = 4,   /* left out of fr_config_fit_hash: does not change the trajectory */
    OF_HASH_SET = 8  /* in fr_config_fit_hash only when not at its default: an option added after
                      * results existed, whose default is the old behaviour, so their checkpoints
                      * still resume and their results files still take new runs */
};

typedef struct {
    const char *key;
    opt_type type;
    size_t off;      /* the value (first element for lists) */
    size_t off_n;    /* list length */
    size_t off_flag; /* psi_learned, sweep_partitions_all */
    size_t cap;      /* bytes for strings, max entries for lists */
    const char *def; /* default as YAML flow text */
    double min, max; /* range of the value, or of every list element */
    int flags;
    const char *choices; /* OT_ENUM: '|'-separated allowed values ("" may be one) */
    const char *help;
} opt;

/* The option table (config.c), in the order of to_yaml, --help and the fit
 * hash. */
extern const opt *const fr_cfg_opts;
extern const int fr_cfg_nopts;
/* The YAML sections, in order. */
extern const char *const *const fr_cfg_sections;
extern const int fr_cfg_nsections;

#endif
