/* fuzz_h5image: libFuzzer harness for raw HDF5 file images through the input
 * validator. Input: one options byte, then the bytes of a file; they are
 * written to a scratch file and opened with fr_dataset_open as `fit` opens
 * its input (MPI-IO driver, one rank).
 *
 * Unlike fuzz_dataset (well-formed HDF5, hostile contents), most of what
 * this reaches is HDF5's own parser of file metadata, and HDF5 1.10 is not
 * memory-safe on corrupt metadata (docs/reliability.md lists what it found
 * within minutes). So it is not part of CI: run it by hand,
 *   tests/fuzz/run.sh 600 fuzz_h5image
 * and read a report by the frames: a fault inside libhdf5 is HDF5's; one in
 * facrnn's code, or a refusal without a message, is ours.
 *
 * Options byte: bits 0-1 lags (0..3); bits 2-3 observation (0, 3: the
 * file's attribute; 1: gaussian; 2: poisson); bits 4, 5, 6 read /inputs,
 * /behavior, the ground truth. Seeds: make_h5image_seeds.py.
 * MPI_Init once, in LLVMFuzzerInitialize: a single rank, run without mpiexec.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <hdf5.h>
#include <sanitizer/lsan_interface.h>

#include "facrnn/dataset.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_path[512];

static void cleanup(void)
{
    unlink(g_path);
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) {
        __lsan_disable(); /* Open MPI's finalize drops a few strings (see below) */
        MPI_Finalize();
        __lsan_enable();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *dir = getenv("FACRNN_FUZZ_TMP");
    if (!dir || !dir[0]) dir = getenv("TMPDIR");
    if (!dir || !dir[0]) dir = "/tmp";
    snprintf(g_path, sizeof g_path, "%s/fuzz_h5image.%ld.h5", dir, (long)getpid());
    /* Open MPI keeps allocations from MPI_Init, and from the first MPI-IO
     * open (its I/O components load then), until MPI_Finalize without a
     * pointer LeakSanitizer can see. Make them here, with leak tracking
     * off, so a leak reported while fuzzing is one an input caused. */
    __lsan_disable();
    MPI_Init(argc, argv);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL);
    hid_t f = H5Fcreate(g_path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (f < 0) {
        fprintf(stderr, "fuzz_h5image: cannot create the scratch file %s\n", g_path);
        abort();
    }
    H5Fclose(f);
    H5Pclose(fapl);
    __lsan_enable();
    atexit(cleanup);
    return 0;
}

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_h5image: accepted file breaks the contract: %s\n", what);
    abort();
}

/* The promises of an accepted file, checked on one rank (the whole file). */
static void check_accepted(const fr_dataset *ds, const fr_read_opts *o, int poisson)
{
    if (ds->n_trials < 1 || ds->N < 1) fail("no trials or no channels");
    if (ds->offsets[0] != 0 || ds->offsets[ds->n_trials] != ds->total_bins) fail("offsets do not cover /data");
    for (long long k = 0; k < ds->n_trials; ++k)
        if (ds->offsets[k + 1] - ds->offsets[k] < o->lags + 1) fail("a trial shorter than lags + 1");
    if (ds->trial_lo != 0 || ds->trial_hi != ds->n_trials || ds->row_lo != 0 || ds->row_hi != ds->total_bins)
        fail("one rank does not own every trial");
    for (long long i = 0; i < ds->total_bins * ds->N; ++i) {
        double v = ds->x[i];
        if (!isfinite(v)) fail("non-finite /data");
        if (poisson && (v < 0 || v != floor(v))) fail("poisson /data that is not a count");
    }
    for (long long i = 0; ds->u && i < ds->total_bins * ds->D; ++i)
        if (!isfinite(ds->u[i])) fail("non-finite /inputs");
    if (ds->checksum != fr_dataset_checksum_serial(ds->n_trials, ds->offsets, ds->N, ds->x))
        fail("checksum differs from fr_dataset_checksum_serial");
    if (o->read_truth && ds->truth_G) {
        int s = 0;
        for (int g = 0; g < ds->truth_G; ++g) s += ds->truth_groups[g];
        if (s != ds->truth_K) fail("truth groups do not sum to the width of /truth/latents");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const uint8_t b = data[0];
    const int obs = (b >> 2) & 3;
    fr_read_opts o = {.lags = b & 3, .poisson = obs == 1 ? 0 : obs == 2 ? 1 : -1, .read_inputs = (b >> 4) & 1,
                      .read_behavior = (b >> 5) & 1, .read_truth = (b >> 6) & 1};
    FILE *f = fopen(g_path, "wb");
    if (!f) {
        perror(g_path);
        abort(); /* the harness's own scratch file, not a finding */
    }
    if (size > 1 && fwrite(data + 1, 1, size - 1, f) != size - 1) abort();
    if (fclose(f) != 0) abort();

    fr_dataset ds;
    fr_error_clear();
    fr_err rc = fr_dataset_open(MPI_COMM_WORLD, g_path, &o, &ds);
    if (rc != FR_OK) {
        const char *msg = fr_error_msg();
        if (!msg[0]) fail("error code without a message");
        if (strchr(msg, '\n')) fail("error message spans several lines");
        return 0;
    }
    check_accepted(&ds, &o, o.poisson == 1 || (o.poisson == -1 && !strcmp(ds.observation, "poisson")));
    fr_dataset_free(&ds);
    return 0;
}
