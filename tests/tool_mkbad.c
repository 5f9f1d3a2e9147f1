/* tool_mkbad: write one input file that breaks exactly one rule of the
 * input format (or a valid one), for the validation shell test.
 *   tool_mkbad CASE OUT.h5
 * The base file has 9 trials x 10 bins, N = 4, integer-valued float64 data
 * (valid as Poisson counts), /inputs (D = 2), /behavior (P = 1) and
 * /truth/latents (K = 3, groups [2, 1]); each case changes one thing. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NT = 9, TB = 10, R = NT * TB, N = 4 };

static void put(hid_t f, const char *name, hid_t ft, hid_t mt, int rank, const hsize_t *dims, const void *buf)
{
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(f, name, ft, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0 || H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        fprintf(stderr, "tool_mkbad: cannot write %s\n", name);
        exit(1);
    }
    H5Dclose(d);
    H5Sclose(sp);
}

static void str_attr(hid_t f, const char *name, const char *v)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(v) + 1);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, v);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: tool_mkbad CASE OUT.h5\n");
        return 2;
    }
    const char *c = argv[1];
    static double x[R * N], u[R * 2], b[R], z[R * 3];
    long long off[NT + 1];
    for (int k = 0; k <= NT; ++k) off[k] = (long long)k * TB;
    for (int r = 0; r < R; ++r) {
        for (int n = 0; n < N; ++n) x[r * N + n] = (double)((r * N + n) % 5);
        u[r * 2] = 0.1 * r;
        u[r * 2 + 1] = -0.1 * r;
        b[r] = 0.5 * r;
        for (int j = 0; j < 3; ++j) z[r * 3 + j] = r - j;
    }
    int groups[2] = {2, 1};
    int ngroups = 2;
    long long rows = R, ncols = N, urows = R;
    int data_rank = 2, write_data = 1, write_off = 1;
    const char *obs = "gaussian";
    int obs_n = 1; /* strings in the observation attribute */
    int truth_a_str = 0; /* write /truth/A (N, 3) as strings */
    int n_off = NT + 1, off_size = 8; /* entries and bytes per entry of /trial_offsets */

    if (!strcmp(c, "results")) {
        /* A minimal results-shaped file for `facrnn info`: /runs/<id>/params/A
         * with attributes, and a /sweep/table of 3 rows. */
        hid_t f = H5Fcreate(argv[2], H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        if (f < 0) return 1;
        str_attr(f, "config", "model:\n  rank: 3\n");
        hid_t g1 = H5Gcreate2(f, "/runs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        hid_t g2 = H5Gcreate2(f, "/runs/r0", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        hid_t g3 = H5Gcreate2(f, "/runs/r0/params", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        hid_t g4 = H5Gcreate2(f, "/sweep", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        str_attr(g2, "status", "done");
        hsize_t dA[2] = {N, 3}, dt = 3;
        put(f, "/runs/r0/params/A", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, dA, z);
        put(f, "/sweep/table", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, &dt, b);
        H5Gclose(g4);
        H5Gclose(g3);
        H5Gclose(g2);
        H5Gclose(g1);
        H5Fclose(f);
        return 0;
    } else if (!strcmp(c, "good")) {
    } else if (!strcmp(c, "good_poisson")) obs = "poisson";
    else if (!strcmp(c, "nodata")) write_data = 0;
    else if (!strcmp(c, "nooffsets")) write_off = 0;
    else if (!strcmp(c, "data_rank1")) data_rank = 1;
    else if (!strcmp(c, "inputs_rows")) urows = R - 3;
    else if (!strcmp(c, "offsets_nonmono")) off[4] = off[3];
    else if (!strcmp(c, "offsets_start")) off[0] = 2;
    else if (!strcmp(c, "offsets_end")) off[NT] = R - 5;
    else if (!strcmp(c, "nan_data")) x[13 * N + 2] = NAN;
    else if (!strcmp(c, "inf_inputs")) u[7 * 2 + 1] = INFINITY;
    else if (!strcmp(c, "nan_behavior")) b[22] = NAN;
    else if (!strcmp(c, "negcount")) {
        obs = "poisson";
        x[4 * N + 1] = -1;
    } else if (!strcmp(c, "noninteger")) {
        obs = "poisson";
        x[6 * N + 3] = 0.5;
    } else if (!strcmp(c, "short_trial")) {
        /* trial 5 gets 1 bin, trial 6 the rest */
        off[6] = off[5] + 1;
    } else if (!strcmp(c, "n0")) ncols = 0;
    else if (!strcmp(c, "groups_sum")) groups[1] = 2;
    else if (!strcmp(c, "obs_array")) obs_n = 3; /* found by tests/fuzz: overran the one-string buffer */
    else if (!strcmp(c, "truth_a_string")) truth_a_str = 1; /* found by tests/fuzz: refused as an I/O error */
    /* found by tests/fuzz (fuzz_h5image): both made the reader allocate and fill by the declared size */
    else if (!strcmp(c, "offsets_many")) n_off = R + 2; /* more trials than rows */
    else if (!strcmp(c, "offsets_wide")) off_size = 32; /* 32-byte integers */
    else if (!strcmp(c, "nan_rank2")) {
        /* At 3 ranks the plan gives trials 6..8 (rows 60..89) to rank 2. */
        x[75 * N + 1] = NAN;
        x[85 * N + 0] = NAN;
    } else if (!strcmp(c, "nan_two_ranks")) {
        /* NaNs in rank 2's shard and, later in file order of checks, in
         * rank 1's: the first (row 45) must be reported. */
        x[75 * N + 1] = NAN;
        x[45 * N + 3] = NAN;
    } else {
        fprintf(stderr, "tool_mkbad: unknown case '%s'\n", c);
        return 2;
    }

    hid_t f = H5Fcreate(argv[2], H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return 1;
    if (write_data) {
        hsize_t dx[2] = {(hsize_t)rows, (hsize_t)ncols};
        hsize_t d1 = (hsize_t)rows;
        if (data_rank == 1) put(f, "/data", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, &d1, x);
        else put(f, "/data", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, dx, x);
    }
    if (write_off) {
        hsize_t d = (hsize_t)n_off;
        long long many[R + 2];
        for (int k = 0; k < R + 2; ++k) many[k] = k;
        hid_t t = H5Tcopy(H5T_STD_I64LE);
        H5Tset_size(t, (size_t)off_size);
        put(f, "/trial_offsets", t, H5T_NATIVE_LLONG, 1, &d, n_off > NT + 1 ? many : off);
        H5Tclose(t);
    }
    hsize_t du[2] = {(hsize_t)urows, 2}, db[2] = {R, 1}, dz[2] = {R, 3};
    put(f, "/inputs", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, du, u);
    put(f, "/behavior", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, db, b);
    hid_t g = H5Gcreate2(f, "/truth", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(g);
    put(f, "/truth/latents", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, dz, z);
    if (truth_a_str) {
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, 4);
        hsize_t dA[2] = {N, 3};
        char sbuf[N * 3 * 4];
        memset(sbuf, '1', sizeof sbuf);
        put(f, "/truth/A", t, t, 2, dA, sbuf);
        H5Tclose(t);
    }
    hid_t d = H5Dopen2(f, "/truth/latents", H5P_DEFAULT);
    hsize_t ng = (hsize_t)ngroups;
    hid_t sp = H5Screate_simple(1, &ng, NULL);
    hid_t a = H5Acreate2(d, "groups", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT, groups);
    H5Aclose(a);
    H5Sclose(sp);
    H5Dclose(d);
    if (obs_n == 1) {
        str_attr(f, "observation", obs);
    } else {
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, strlen(obs) + 1);
        hsize_t n = (hsize_t)obs_n;
        hid_t asp = H5Screate_simple(1, &n, NULL);
        hid_t at = H5Acreate2(f, "observation", t, asp, H5P_DEFAULT, H5P_DEFAULT);
        char buf[64] = {0};
        for (int i = 0; i < obs_n; ++i) memcpy(buf + i * (strlen(obs) + 1), obs, strlen(obs) + 1);
        H5Awrite(at, t, buf);
        H5Aclose(at);
        H5Sclose(asp);
        H5Tclose(t);
    }
    str_attr(f, "description", "tool_mkbad test file");
    H5Fclose(f);
    return 0;
}
