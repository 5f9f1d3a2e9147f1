/* Collective behaviour of fr_config_load: only rank 0 reads the file, every
 * rank ends with the identical struct, and a bad config returns the same
 * code and message on every rank. */
#include <stdio.h>
#include <string.h>

#include "facrnn/config.h"
#include "testlib.h"

static fr_config g_cfg, g_ref;

static int rank_of(void)
{
    int r;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

/* Rank 0 writes the file; everyone gets the same path (a fresh buffer per
 * slot, 0..7). Collective. */
static const char *write_cfg(const char *name, const char *text)
{
    static char paths[8][512];
    static int next;
    char *path = paths[next++ % 8];
    snprintf(path, sizeof paths[0], "%s/%s", fr_test_tmpdir(), name);
    if (rank_of() == 0) {
        FILE *f = fopen(path, "w");
        if (f) {
            fputs(text, f);
            fclose(f);
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    return path;
}

/* 1 if every rank holds the same bytes as rank 0. Collective. */
static int same_everywhere(const void *p, size_t n)
{
    static char buf[sizeof(fr_config)];
    if (n > sizeof buf) return 0;
    memcpy(buf, p, n);
    MPI_Bcast(buf, (int)n, MPI_BYTE, 0, MPI_COMM_WORLD);
    int mine = memcmp(buf, p, n) == 0, all = 0;
    MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
    return all;
}

static void test_identical_struct(void)
{
    const char *path = write_cfg("good.yaml", "data: {path: lt.h5}\n"
                                              "model: {rank: 6, groups: [3, 3], lags: 2, psi: [0.75, 0.25]}\n"
                                              "train: {lr: 2e-3, seed: 17}\n"
                                              "sweep: {ranks: [4, 6, 8], partitions: all, max_groups: 3}\n");
    char *sets[] = {"train.beta=2", "cv.folds=3"};
    memset(&g_cfg, 0x77, sizeof g_cfg); /* garbage everywhere before the load */
    fr_err rc = fr_config_load(MPI_COMM_WORLD, path, 2, sets, 1, &g_cfg);
    CU_ASSERT_EQUAL_FATAL(rc, FR_OK);
    CU_ASSERT(same_everywhere(&g_cfg, sizeof g_cfg));
    CU_ASSERT_STRING_EQUAL(g_cfg.data_path, "lt.h5");
    CU_ASSERT_EQUAL(g_cfg.n_groups, 2);
    CU_ASSERT_EQUAL(g_cfg.psi[0], 0.75);
    CU_ASSERT_EQUAL(g_cfg.beta, 2.0);
    CU_ASSERT_EQUAL(g_cfg.folds, 3);
    CU_ASSERT_EQUAL(g_cfg.seed, 17);
    CU_ASSERT_EQUAL(g_cfg.n_sweep_ranks, 3);
    CU_ASSERT_EQUAL(g_cfg.sweep_partitions_all, 1);
    /* The same as a serial parse of the same text on any rank. */
    CU_ASSERT_EQUAL(fr_config_from_yaml_text("data: {path: lt.h5}\n"
                                             "model: {rank: 6, groups: [3, 3], lags: 2, psi: [0.75, 0.25]}\n"
                                             "train: {lr: 2e-3, seed: 17, beta: 2}\n"
                                             "cv: {folds: 3}\n"
                                             "sweep: {ranks: [4, 6, 8], partitions: all, max_groups: 3}\n",
                                             &g_ref),
                    FR_OK);
    CU_ASSERT_EQUAL(memcmp(&g_cfg, &g_ref, sizeof g_cfg), 0);
    CU_ASSERT_EQUAL(fr_config_fit_hash(&g_cfg), fr_config_fit_hash(&g_ref));
}

/* Every rank returns the same code and message; check both, for a bad file,
 * a bad override, a cross-key error and a missing file. */
static void test_same_error_everywhere(void)
{
    static char bad_set_text[] = "model.groups=[3,2]";
    const char *p1 = write_cfg("bad1.yaml", "train:\n  lr: 1e-3\n  lrr: 2\n");
    const char *p2 = write_cfg("bad2.yaml", "cv: {folds: 2, fold: 2}\n");
    const char *p3 = write_cfg("bad3.yaml", "model: [\n");
    struct {
        const char *path;
        char *set;
        const char *phrase;
    } cases[] = {
        {p1, NULL, "unknown key 'train.lrr' (line 3)"},
        {NULL, bad_set_text, "model.groups sums to 5 but model.rank is 6"},
        {p2, NULL, "cv.fold = 2 must be below cv.folds = 2"},
        {p3, NULL, "malformed YAML"},
        {"/no/such/facrnn.yaml", NULL, "cannot open '/no/such/facrnn.yaml'"},
    };
    for (int i = 0; i < 5; ++i) {
        fr_error_clear();
        char *sets[] = {cases[i].set};
        fr_err rc = fr_config_load(MPI_COMM_WORLD, cases[i].path, cases[i].set ? 1 : 0, sets, 0, &g_cfg);
        CU_ASSERT_EQUAL(rc, FR_EINVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(fr_error_msg(), cases[i].phrase));
        static char msg[1024];
        memset(msg, 0, sizeof msg);
        snprintf(msg, sizeof msg, "%s", fr_error_msg());
        CU_ASSERT(same_everywhere(msg, sizeof msg));
        int code = (int)rc;
        CU_ASSERT(same_everywhere(&code, sizeof code));
    }
    /* After a failure, the communicator is still usable for a good load. */
    CU_ASSERT_EQUAL(fr_config_load(MPI_COMM_WORLD, NULL, 0, NULL, 0, &g_cfg), FR_OK);
    CU_ASSERT(same_everywhere(&g_cfg, sizeof g_cfg));
}

/* Works on a sub-communicator too (sweep teams load inside their team). */
static void test_subcomm(void)
{
    MPI_Comm half;
    MPI_Comm_split(MPI_COMM_WORLD, rank_of() % 2, rank_of(), &half);
    char set0[] = "model.rank=4", set1[] = "model.rank=8";
    char *sets[] = {rank_of() % 2 ? set1 : set0};
    CU_ASSERT_EQUAL(fr_config_load(half, NULL, 1, sets, 0, &g_cfg), FR_OK);
    CU_ASSERT_EQUAL(g_cfg.rank, rank_of() % 2 ? 8 : 4);
    CU_ASSERT_EQUAL(g_cfg.groups[0], g_cfg.rank);
    MPI_Comm_free(&half);
}

static void reg(void)
{
    CU_pSuite s = CU_add_suite("config (collective)", NULL, NULL);
    CU_add_test(s, "identical struct on every rank", test_identical_struct);
    CU_add_test(s, "same error on every rank", test_same_error_everywhere);
    CU_add_test(s, "sub-communicator", test_subcomm);
}

int main(int argc, char **argv) { return fr_test_main(argc, argv, reg); }
