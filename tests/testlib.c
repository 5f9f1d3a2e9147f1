/* testlib: CUnit under MPI (see testlib.h). */
#include "testlib.h"

#include <CUnit/Basic.h>
#include <dirent.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "facrnn/common.h"

int fr_test_close(double a, double b, double rtol, double atol)
{
    double d = fabs(a - b), m = fmax(fabs(a), fabs(b));
    if (d <= atol || d <= rtol * m) return 1;
    fprintf(stderr, "  not close: %.17g vs %.17g (diff %.3g, rel %.3g)\n", a, b, d, m > 0 ? d / m : d);
    return 0;
}

static char g_tmpdir[256];

const char *fr_test_tmpdir(void)
{
    char *dir = g_tmpdir;
    if (dir[0]) return dir;
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 0) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof g_tmpdir, "%s/facrnn-test-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
    }
    MPI_Bcast(dir, (int)sizeof g_tmpdir, MPI_CHAR, 0, MPI_COMM_WORLD);
    return dir;
}

/* Remove `path` and everything below it (no symlinks followed). Returns the
 * number of entries that could not be removed. */
static int remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) return 1;
    int bad = 0;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (!d) return 1;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char sub[1024];
            if ((size_t)snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) >= sizeof sub) {
                ++bad;
                continue;
            }
            bad += remove_tree(sub);
        }
        closedir(d);
        if (rmdir(path) != 0) ++bad;
    } else if (unlink(path) != 0) {
        ++bad;
    }
    return bad;
}

int fr_test_main(int argc, char **argv, void (*reg)(void))
{
    MPI_Init(&argc, &argv);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    fr_log_init(rank, getenv("FACRNN_TEST_VERBOSE") ? FR_LOG_DEBUG : FR_LOG_WARN);
    if (CU_initialize_registry() != CUE_SUCCESS) MPI_Abort(MPI_COMM_WORLD, 1);
    reg();
    CU_basic_set_mode(rank == 0 ? CU_BRM_VERBOSE : CU_BRM_SILENT);
    CU_basic_run_tests();
    unsigned local = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned ran = CU_get_number_of_tests_run();
    unsigned total = 0;
    MPI_Allreduce(&local, &total, 1, MPI_UNSIGNED, MPI_SUM, MPI_COMM_WORLD);
    if (local) fprintf(stderr, "rank %d: %u failure(s)\n", rank, local);
    if (rank == 0) printf("%s: %u tests run, failures summed over ranks: %u\n", argv[0], ran, total);
    /* Every rank is past its tests (the Allreduce above), so the scratch
     * directory can go. FACRNN_TEST_KEEP=1 keeps it for debugging. */
    if (rank == 0 && g_tmpdir[0] && !getenv("FACRNN_TEST_KEEP") && remove_tree(g_tmpdir) != 0) {
        fprintf(stderr, "%s: could not remove the scratch directory %s\n", argv[0], g_tmpdir);
        total += 1;
    }
    CU_cleanup_registry();
    MPI_Finalize();
    return total ? 1 : (ran ? 0 : 1);
}
