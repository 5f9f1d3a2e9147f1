/* fuzz_dataset: libFuzzer harness for the input validator (src/io/dataset.c).
 *
 * The input describes an input file; the harness writes it with HDF5 into a
 * scratch file and opens it with fr_dataset_open exactly as `fit` does
 * (MPI-IO driver, one rank). The file is well-formed HDF5 whose *contents*
 * are hostile: any shape, rank, type, value, missing or extra part, and
 * attributes of any type and shape. That is facrnn's side of the contract.
 * (Raw bytes of a file image mostly exercise HDF5's own parser, which is
 * not memory-safe on corrupt metadata: see fuzz_h5image.c and
 * docs/reliability.md.)
 *
 * The validator must return an error code with a one-line message for a bad
 * file and never crash, hang or leak. A file it accepts must meet the
 * contract docs/formats.md ("Input") promises: offsets from 0, strictly
 * increasing, covering /data, trials of at least lags + 1 bins, finite
 * values (counts for poisson) and the checksum of fr_dataset_checksum_serial.
 *
 * Input layout (every byte optional; missing bytes read as 0):
 *   [0] options: bits 0-1 lags (0..3); bits 2-3 observation (0, 3: the
 *       file's attribute; 1: gaussian; 2: poisson); bits 4, 5, 6 read
 *       /inputs, /behavior, the ground truth
 *   [1] trials - 1 (mod 8)   [2] bins per trial - 1 (mod 8)   [3] N - 1 (mod 4)
 *   [4] optional parts present (bit i = part i of g_parts below beyond the
 *       two required ones) [5] root attributes present (observation,
 *       format_version, bin_size_s, groups on /truth/latents)
 *   then edits of 5 bytes each: op, target, a, b, v (see apply_edit).
 * With no edits this is a valid file: the seeds start from one.
 * MPI_Init once, in LLVMFuzzerInitialize: a single rank, run without mpiexec.
 */
#include <float.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <sanitizer/lsan_interface.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "facrnn/dataset.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the file description ------------------------------------------------- */

enum { T_F64, T_F32, T_I8, T_U8, T_I16, T_I32, T_I64, T_U64, T_STR, NTYPES };
enum { MAX_ELEMS = 1 << 14, MAX_EDITS = 64 };

typedef struct {
    const char *name;
    int present, type, rank;
    hsize_t dims[3];
    int nedit;
    long long edit_at[MAX_EDITS];
    double edit_val[MAX_EDITS];
} part;

/* Datasets of the input format; the first two are required. */
enum { P_DATA, P_OFFSETS, P_INPUTS, P_BEHAVIOR, P_LATENTS, P_CONDITION, P_A, P_B, P_C, P_D, NPARTS };
static const char *const g_names[NPARTS] = {"/data", "/trial_offsets", "/inputs", "/behavior", "/truth/latents",
                                            "/trial_condition", "/truth/A", "/truth/B", "/truth/c", "/truth/d"};

/* Attributes: observation, format_version, bin_size_s (root), groups
 * (/truth/latents). kind: 0 the right one; others wrong types or shapes. */
enum { A_OBS, A_VERSION, A_BIN, A_GROUPS, NATTRS };
typedef struct {
    int present, kind, n; /* n: elements of an array attribute */
    int ival[8];          /* groups values / string choice */
} attr;

typedef struct {
    part p[NPARTS];
    attr a[NATTRS];
    int T, B, N, K;
} file_desc;

/* Special values an edit can put anywhere. */
static double special(uint8_t v)
{
    static const double tab[] = {0, 1, -1, NAN, INFINITY, -INFINITY, 0.5, 1e308, -0.0, 9007199254740993.0,
                                 2147483647.0, 2147483648.0, 9.3e18, -9.3e18, DBL_MIN, 1e-300};
    if (v < sizeof tab / sizeof tab[0]) return tab[v];
    return (double)v - 128.0;
}

static long long elems(const part *p)
{
    long long n = 1;
    for (int d = 0; d < p->rank; ++d) n *= (long long)p->dims[d];
    return n;
}

/* The value of element i before edits: a valid file's contents. */
static double base_value(const file_desc *f, int which, long long i)
{
    switch (which) {
    case P_OFFSETS: return (double)(i * f->B);
    case P_DATA: return (double)((i * 7) % 5);           /* counts, valid as poisson */
    case P_CONDITION: return (double)(i % 2);
    case P_LATENTS: return 0.25 * (double)(i % 9) - 1.0;
    default: return 0.125 * (double)((i * 3) % 11) - 0.5;
    }
}

static void describe_base(file_desc *f, const uint8_t *d, size_t n)
{
    memset(f, 0, sizeof *f);
    uint8_t h[6] = {0};
    memcpy(h, d, n < 6 ? n : 6);
    f->T = 1 + h[1] % 8;
    f->B = 1 + h[2] % 8;
    f->N = 1 + h[3] % 4;
    f->K = 3;
    const hsize_t R = (hsize_t)f->T * (hsize_t)f->B;
    for (int i = 0; i < NPARTS; ++i) {
        part *p = &f->p[i];
        p->name = g_names[i];
        p->present = i < 2 || ((h[4] >> (i - 2)) & 1);
        p->type = (i == P_OFFSETS || i == P_CONDITION) ? T_I64 : T_F64;
    }
    f->p[P_DATA].rank = 2, f->p[P_DATA].dims[0] = R, f->p[P_DATA].dims[1] = (hsize_t)f->N;
    f->p[P_OFFSETS].rank = 1, f->p[P_OFFSETS].dims[0] = (hsize_t)f->T + 1;
    f->p[P_INPUTS].rank = 2, f->p[P_INPUTS].dims[0] = R, f->p[P_INPUTS].dims[1] = 2;
    f->p[P_BEHAVIOR].rank = 2, f->p[P_BEHAVIOR].dims[0] = R, f->p[P_BEHAVIOR].dims[1] = 1;
    f->p[P_LATENTS].rank = 2, f->p[P_LATENTS].dims[0] = R, f->p[P_LATENTS].dims[1] = (hsize_t)f->K;
    f->p[P_CONDITION].rank = 1, f->p[P_CONDITION].dims[0] = (hsize_t)f->T;
    f->p[P_A].rank = 2, f->p[P_A].dims[0] = (hsize_t)f->N, f->p[P_A].dims[1] = (hsize_t)f->K;
    f->p[P_B].rank = 2, f->p[P_B].dims[0] = (hsize_t)f->K, f->p[P_B].dims[1] = (hsize_t)f->N;
    f->p[P_C].rank = 1, f->p[P_C].dims[0] = (hsize_t)f->N;
    f->p[P_D].rank = 1, f->p[P_D].dims[0] = (hsize_t)f->K;
    for (int i = 0; i < NATTRS; ++i) f->a[i].present = (h[5] >> i) & 1;
    f->a[A_GROUPS].n = 2, f->a[A_GROUPS].ival[0] = 2, f->a[A_GROUPS].ival[1] = 1;
    f->a[A_OBS].ival[0] = 1; /* "poisson" (the base data are counts) */
}

/* One edit: op, target, a, b, v. */
static void apply_edit(file_desc *f, const uint8_t *e)
{
    part *p = &f->p[e[1] % NPARTS];
    attr *at = &f->a[e[1] % NATTRS];
    switch (e[0] % 8) {
    case 0: /* set one element (index a*256 + b, wrapped) to a special value */
    case 1:
        if (p->nedit < MAX_EDITS) {
            long long n = elems(p);
            p->edit_at[p->nedit] = n > 0 ? ((long long)e[2] * 256 + e[3]) % n : 0;
            p->edit_val[p->nedit++] = special(e[4]);
        }
        break;
    case 2: p->type = e[4] % NTYPES; break;
    case 3: p->dims[e[2] % 3] = e[4]; break; /* 0..255 */
    case 4: p->rank = e[4] % 4; break;      /* 0 = scalar */
    case 5: p->present = !p->present; break;
    case 6: /* an attribute: presence, kind, length, one value */
        at->present = 1;
        at->kind = e[2] % 6;
        at->n = e[3] % 9;
        at->ival[e[3] % 8] = (int)e[4] - 16;
        break;
    case 7: /* shift offsets after index a by v - 128: keeps them increasing or not */
        if (p->nedit < MAX_EDITS) {
            long long n = elems(p);
            p->edit_at[p->nedit] = n > 0 ? e[2] % n : 0;
            p->edit_val[p->nedit++] = base_value(f, (int)(p - f->p), n > 0 ? e[2] % n : 0) + ((double)e[4] - 128.0);
        }
        break;
    }
}

/* ---- writing it -------------------------------------------------------------- */

static hid_t file_type(int t)
{
    hid_t s;
    switch (t) {
    case T_F32: return H5Tcopy(H5T_IEEE_F32LE);
    case T_I8: return H5Tcopy(H5T_STD_I8LE);
    case T_U8: return H5Tcopy(H5T_STD_U8LE);
    case T_I16: return H5Tcopy(H5T_STD_I16LE);
    case T_I32: return H5Tcopy(H5T_STD_I32LE);
    case T_I64: return H5Tcopy(H5T_STD_I64LE);
    case T_U64: return H5Tcopy(H5T_STD_U64LE);
    case T_STR:
        s = H5Tcopy(H5T_C_S1);
        H5Tset_size(s, 4);
        return s;
    default: return H5Tcopy(H5T_IEEE_F64LE);
    }
}

/* 0 on success; a part too large to describe is left out (-1). */
static int write_part(hid_t file, const file_desc *f, int which)
{
    const part *p = &f->p[which];
    long long n = elems(p);
    if (n > MAX_ELEMS) return -1;
    hid_t sp = p->rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(p->rank, p->dims, NULL);
    hid_t ft = file_type(p->type);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t d = H5Dcreate2(file, p->name, ft, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    int rc = d < 0 ? -1 : 0;
    if (rc == 0 && n > 0) {
        if (p->type == T_STR) {
            char *buf = calloc((size_t)n, 4);
            if (buf) memset(buf, '7', (size_t)n * 4);
            if (buf && H5Dwrite(d, ft, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) rc = -1;
            free(buf);
        } else {
            double *buf = malloc((size_t)n * sizeof *buf);
            if (!buf) abort();
            for (long long i = 0; i < n; ++i) buf[i] = base_value(f, which, i);
            for (int k = 0; k < p->nedit; ++k)
                if (p->edit_at[k] < n) buf[p->edit_at[k]] = p->edit_val[k];
            /* Doubles into integer types: HDF5 converts (and clips). */
            if (H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) rc = -1;
            free(buf);
        }
    }
    if (rc == 0 && which == P_LATENTS && f->a[A_GROUPS].present) {
        const attr *at = &f->a[A_GROUPS];
        /* kind 0, 1: int array of n (n = 0: an empty dataspace); 2: 2-D;
         * 3: doubles; 4: a string; 5: scalar */
        hsize_t dims[2] = {(hsize_t)at->n, 2};
        hid_t as = at->kind == 5 ? H5Screate(H5S_SCALAR)
                   : at->n == 0  ? H5Screate(H5S_NULL)
                                 : H5Screate_simple(at->kind == 2 ? 2 : 1, dims, NULL);
        hid_t at_t = at->kind == 3 ? H5Tcopy(H5T_IEEE_F64LE) : at->kind == 4 ? file_type(T_STR) : H5Tcopy(H5T_STD_I32LE);
        hid_t a = H5Acreate2(d, "groups", at_t, as, H5P_DEFAULT, H5P_DEFAULT);
        int vals[16] = {0};
        for (int i = 0; i < 16; ++i) vals[i] = at->ival[i % 8];
        if (a >= 0 && at->kind != 4) H5Awrite(a, H5T_NATIVE_INT, vals);
        if (a >= 0) H5Aclose(a);
        H5Tclose(at_t);
        H5Sclose(as);
    }
    if (d >= 0) H5Dclose(d);
    H5Pclose(lcpl);
    H5Tclose(ft);
    H5Sclose(sp);
    return rc;
}

/* Root attributes; kind 0 is the right type and shape, the others are not:
 * 1 an array of n, 2 a variable-length string, 3 a number where a string is
 * expected (or the reverse), 4 an empty dataspace, 5 a long string. */
static void write_root_attr(hid_t file, const attr *at, const char *name, int is_string)
{
    static const char *const obs[] = {"gaussian", "poisson", "", "binomial", "poissonX", "gauss"};
    const char *sv = obs[(unsigned)at->ival[0] % 6];
    char longs[300];
    memset(longs, 'p', sizeof longs - 1);
    longs[sizeof longs - 1] = '\0';
    if (at->kind == 5) sv = longs;
    int str = at->kind == 3 ? !is_string : is_string;
    hsize_t n = (hsize_t)(at->n ? at->n : 1);
    hid_t sp = at->kind == 1 ? H5Screate_simple(1, &n, NULL) : at->kind == 4 ? H5Screate(H5S_NULL) : H5Screate(H5S_SCALAR);
    hid_t t;
    if (str && at->kind == 2) {
        t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5T_VARIABLE);
    } else if (str) {
        t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, strlen(sv) + 1);
    } else {
        t = H5Tcopy(H5T_IEEE_F64LE);
    }
    hid_t a = H5Acreate2(file, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0 && at->kind != 4) {
        if (str && at->kind == 2) {
            const char *vs[8];
            for (int i = 0; i < 8; ++i) vs[i] = sv;
            H5Awrite(a, t, vs);
        } else if (str) {
            char *buf = calloc((size_t)n, strlen(sv) + 1);
            if (!buf) abort();
            for (hsize_t i = 0; i < n; ++i) memcpy(buf + i * (strlen(sv) + 1), sv, strlen(sv) + 1);
            H5Awrite(a, t, buf);
            free(buf);
        } else {
            double v[8];
            for (int i = 0; i < 8; ++i) v[i] = special((uint8_t)(at->ival[i] + 16));
            if (!strcmp(name, "format_version") && at->kind == 0) v[0] = at->ival[0] > 0 ? 2 : 1;
            H5Awrite(a, H5T_NATIVE_DOUBLE, v);
        }
    }
    if (a >= 0) H5Aclose(a);
    H5Tclose(t);
    H5Sclose(sp);
}

static char g_path[512];

/* 0 if written; -1 if the description cannot be written (not a finding). */
static int write_file(const file_desc *f)
{
    hid_t file = H5Fcreate(g_path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (file < 0) return -1;
    int rc = 0;
    for (int i = 0; i < NPARTS && rc == 0; ++i)
        if (f->p[i].present) rc = write_part(file, f, i);
    if (rc == 0) {
        if (f->a[A_OBS].present) write_root_attr(file, &f->a[A_OBS], "observation", 1);
        if (f->a[A_VERSION].present) write_root_attr(file, &f->a[A_VERSION], "format_version", 0);
        if (f->a[A_BIN].present) write_root_attr(file, &f->a[A_BIN], "bin_size_s", 0);
    }
    if (H5Fclose(file) < 0) rc = -1;
    return rc;
}

/* ---- the harness ------------------------------------------------------------- */

static void cleanup(void)
{
    unlink(g_path);
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) {
        __lsan_disable(); /* Open MPI's finalize drops a few strings */
        MPI_Finalize();
        __lsan_enable();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *dir = getenv("FACRNN_FUZZ_TMP");
    if (!dir || !dir[0]) dir = getenv("TMPDIR");
    if (!dir || !dir[0]) dir = "/tmp";
    snprintf(g_path, sizeof g_path, "%s/fuzz_dataset.%ld.h5", dir, (long)getpid());
    /* Open MPI keeps allocations from MPI_Init, and from the first MPI-IO
     * open (its I/O components load then), until MPI_Finalize, without a
     * pointer LeakSanitizer can see. Make them here, with leak tracking off,
     * so a leak reported while fuzzing is one an input caused. */
    __lsan_disable();
    MPI_Init(argc, argv);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL);
    hid_t f = H5Fcreate(g_path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (f < 0) {
        fprintf(stderr, "fuzz_dataset: cannot create the scratch file %s\n", g_path);
        abort();
    }
    H5Fclose(f);
    H5Pclose(fapl);
    __lsan_enable();
    if (!getenv("FACRNN_FUZZ_VERBOSE")) H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* the harness's own refused writes are quiet */
    atexit(cleanup);
    return 0;
}

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_dataset: %s\n", what);
    abort();
}

/* The promises of an accepted file, checked on one rank (the whole file). */
static void check_accepted(const fr_dataset *ds, const fr_read_opts *o, int poisson)
{
    if (ds->n_trials < 1 || ds->N < 1) fail("accepted: no trials or no channels");
    if (ds->offsets[0] != 0 || ds->offsets[ds->n_trials] != ds->total_bins) fail("accepted: offsets do not cover /data");
    for (long long k = 0; k < ds->n_trials; ++k)
        if (ds->offsets[k + 1] - ds->offsets[k] < o->lags + 1) fail("accepted: a trial shorter than lags + 1");
    if (ds->trial_lo != 0 || ds->trial_hi != ds->n_trials || ds->row_lo != 0 || ds->row_hi != ds->total_bins)
        fail("accepted: one rank does not own every trial");
    for (long long i = 0; i < ds->total_bins * ds->N; ++i) {
        double v = ds->x[i];
        if (!isfinite(v)) fail("accepted: non-finite /data");
        if (poisson && (v < 0 || v != floor(v))) fail("accepted: poisson /data that is not a count");
    }
    for (long long i = 0; ds->u && i < ds->total_bins * ds->D; ++i)
        if (!isfinite(ds->u[i])) fail("accepted: non-finite /inputs");
    for (long long i = 0; ds->behavior && i < ds->total_bins * ds->P; ++i)
        if (!isfinite(ds->behavior[i])) fail("accepted: non-finite /behavior");
    if (ds->checksum != fr_dataset_checksum_serial(ds->n_trials, ds->offsets, ds->N, ds->x))
        fail("accepted: checksum differs from fr_dataset_checksum_serial");
    if (o->read_truth && ds->truth_G) {
        int s = 0;
        for (int g = 0; g < ds->truth_G; ++g) s += ds->truth_groups[g];
        if (s != ds->truth_K) fail("accepted: truth groups do not sum to the width of /truth/latents");
    }
}

static file_desc g_f;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t b = size ? data[0] : 0;
    const int obs = (b >> 2) & 3;
    fr_read_opts o = {.lags = b & 3, .poisson = obs == 1 ? 0 : obs == 2 ? 1 : -1, .read_inputs = (b >> 4) & 1,
                      .read_behavior = (b >> 5) & 1, .read_truth = (b >> 6) & 1};
    describe_base(&g_f, data, size);
    for (size_t at = 6; at + 5 <= size; at += 5) apply_edit(&g_f, data + at);
    if (write_file(&g_f) != 0) return 0;

    fr_dataset ds;
    fr_error_clear();
    fr_err rc = fr_dataset_open(MPI_COMM_WORLD, g_path, &o, &ds);
    if (getenv("FACRNN_FUZZ_VERBOSE")) /* replaying one input: say what the validator did */
        fprintf(stderr, "fuzz_dataset: %s%s\n", rc == FR_OK ? "accepted" : "refused: ", rc == FR_OK ? "" : fr_error_msg());
    if (rc != FR_OK) {
        const char *msg = fr_error_msg();
        if (!msg[0]) fail("error code without a message");
        if (strchr(msg, '\n')) fail("error message spans several lines");
        if (rc != FR_EINVAL) {
            /* Every file here is readable HDF5: a refusal is about its
             * contents, so it is invalid input (exit 2), not an I/O failure. */
            fprintf(stderr, "fuzz_dataset: code %d for: %s\n", (int)rc, msg);
            fail("a bad input file refused with a code other than FR_EINVAL");
        }
        return 0;
    }
    check_accepted(&ds, &o, o.poisson == 1 || (o.poisson == -1 && !strcmp(ds.observation, "poisson")));
    fr_dataset_free(&ds);
    return 0;
}
