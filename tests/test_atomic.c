/* Tests for atomic: commit publishes the whole new file, abort and every
 * failure leave the previous file as it was and no temp file behind. */
#include <hdf5.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "facrnn/atomic.h"
#include "testlib.h"

static void path_of(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", fr_test_tmpdir(), name);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

/* 1 when `path` holds exactly `text`. */
static int has_text(const char *path, const char *text)
{
    char buf[256] = "";
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return !strcmp(buf, text);
}

static int exists(const char *path) { return access(path, F_OK) == 0; }

static void test_commit_new_and_replace(void)
{
    char p[512];
    path_of(p, sizeof p, "a.txt");
    fr_atomic a;
    CU_ASSERT_EQUAL_FATAL(fr_atomic_fopen(&a, p), FR_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(a.tmp, "a.txt.tmp"));
    fprintf(a.f, "first\n");
    CU_ASSERT_FALSE(exists(p)); /* nothing is published before commit */
    CU_ASSERT_EQUAL(fr_atomic_commit(&a), FR_OK);
    CU_ASSERT(has_text(p, "first\n"));
    CU_ASSERT_FALSE(exists(a.tmp));
    CU_ASSERT_PTR_NULL(a.f);

    CU_ASSERT_EQUAL_FATAL(fr_atomic_fopen(&a, p), FR_OK);
    fprintf(a.f, "second\n");
    CU_ASSERT(has_text(p, "first\n")); /* the old file is intact while the new one is written */
    CU_ASSERT_EQUAL(fr_atomic_commit(&a), FR_OK);
    CU_ASSERT(has_text(p, "second\n"));
    CU_ASSERT_FALSE(exists(a.tmp));
}

static void test_abort_keeps_old_file(void)
{
    char p[512];
    path_of(p, sizeof p, "b.txt");
    write_text(p, "old\n");
    fr_atomic a;
    CU_ASSERT_EQUAL_FATAL(fr_atomic_fopen(&a, p), FR_OK);
    fprintf(a.f, "half-written");
    fflush(a.f);
    CU_ASSERT(exists(a.tmp));
    fr_atomic_abort(&a);
    CU_ASSERT(has_text(p, "old\n"));
    CU_ASSERT_FALSE(exists(a.tmp));
    CU_ASSERT_PTR_NULL(a.f);
}

/* A rename that fails (the target is a non-empty directory) reports the
 * rename, removes the temp file and leaves the target as it was. */
static void test_failing_rename(void)
{
    char d[512], inner[600];
    path_of(d, sizeof d, "dir-target");
    CU_ASSERT_EQUAL_FATAL(mkdir(d, 0700), 0);
    snprintf(inner, sizeof inner, "%s/keep.txt", d);
    write_text(inner, "keep\n");
    fr_atomic a;
    CU_ASSERT_EQUAL_FATAL(fr_atomic_fopen(&a, d), FR_OK);
    fprintf(a.f, "new\n");
    fr_error_clear();
    CU_ASSERT_EQUAL(fr_atomic_commit(&a), FR_EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(fr_error_msg(), "cannot rename"));
    CU_ASSERT_PTR_NOT_NULL(strstr(fr_error_msg(), "dir-target"));
    CU_ASSERT_FALSE(exists(a.tmp));
    struct stat st;
    CU_ASSERT(stat(d, &st) == 0 && S_ISDIR(st.st_mode));
    CU_ASSERT(has_text(inner, "keep\n"));
    unlink(inner);
    rmdir(d);
}

/* Commit without a temp file (the writer never produced one): the sync step
 * fails, the old file is intact. */
static void test_missing_temp_keeps_old_file(void)
{
    char p[512];
    path_of(p, sizeof p, "c.txt");
    write_text(p, "old\n");
    fr_atomic a;
    CU_ASSERT_EQUAL_FATAL(fr_atomic_begin(&a, p), FR_OK);
    CU_ASSERT_FALSE(exists(a.tmp)); /* begin creates nothing */
    CU_ASSERT_EQUAL(fr_atomic_commit(&a), FR_EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(fr_error_msg(), "c.txt.tmp"));
    CU_ASSERT(has_text(p, "old\n"));
    CU_ASSERT_FALSE(exists(a.tmp));
}

/* The HDF5 way: the library writes and closes a.tmp, then commit. */
static void test_hdf5_writer(void)
{
    char p[512];
    path_of(p, sizeof p, "d.h5");
    write_text(p, "not yet HDF5\n");
    fr_atomic a;
    CU_ASSERT_EQUAL_FATAL(fr_atomic_begin(&a, p), FR_OK);
    hid_t f = H5Fcreate(a.tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    hid_t g = H5Gcreate2(f, "written", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CU_ASSERT(g >= 0);
    H5Gclose(g);
    CU_ASSERT(H5Fclose(f) >= 0);
    CU_ASSERT(has_text(p, "not yet HDF5\n"));
    CU_ASSERT_EQUAL(fr_atomic_commit(&a), FR_OK);
    CU_ASSERT_FALSE(exists(a.tmp));
    f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    CU_ASSERT(H5Lexists(f, "written", H5P_DEFAULT) > 0);
    H5Fclose(f);
}

/* A name without a directory part syncs ".". */
static void test_relative_name(void)
{
    char cwd[1024];
    CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof cwd));
    CU_ASSERT_EQUAL_FATAL(chdir(fr_test_tmpdir()), 0);
    fr_atomic a;
    CU_ASSERT_EQUAL(fr_atomic_fopen(&a, "rel.txt"), FR_OK);
    if (a.f) fprintf(a.f, "rel\n");
    CU_ASSERT_EQUAL(fr_atomic_commit(&a), FR_OK);
    CU_ASSERT(has_text("rel.txt", "rel\n"));
    CU_ASSERT_FALSE(exists("rel.txt.tmp"));
    CU_ASSERT_EQUAL(chdir(cwd), 0);
}

static void test_bad_names(void)
{
    fr_atomic a;
    CU_ASSERT_EQUAL(fr_atomic_begin(&a, ""), FR_EINVAL);
    static char longp[FR_ATOMIC_PATH_MAX + 10];
    memset(longp, 'x', sizeof longp - 1);
    CU_ASSERT_EQUAL(fr_atomic_begin(&a, longp), FR_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(fr_error_msg(), "longer than"));
    /* a folder that does not exist is created (every output folder is) */
    char p[512];
    path_of(p, sizeof p, "no/such/dir/x.txt");
    CU_ASSERT_EQUAL(fr_atomic_fopen(&a, p), FR_OK);
    CU_ASSERT_PTR_NOT_NULL(a.f);
    if (a.f) fputs("x\n", a.f);
    CU_ASSERT_EQUAL(fr_atomic_commit(&a), FR_OK);
    CU_ASSERT(has_text(p, "x\n"));
    /* a folder that cannot be made (a file in the way): the error names it */
    char q[512];
    path_of(q, sizeof q, "plainfile");
    FILE *f = fopen(q, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fclose(f);
    path_of(q, sizeof q, "plainfile/sub/x.txt");
    CU_ASSERT_EQUAL(fr_atomic_fopen(&a, q), FR_EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(fr_error_msg(), "cannot create directory"));
    CU_ASSERT_PTR_NULL(a.f);
    fr_atomic_abort(&a); /* harmless after a failed begin */
    /* the folder exists but the temp file cannot be opened (a directory in
     * its place): fopen fails, the message names the temp file */
    path_of(q, sizeof q, "y.txt.tmp");
    CU_ASSERT_EQUAL(mkdir(q, 0700), 0);
    path_of(q, sizeof q, "y.txt");
    CU_ASSERT_EQUAL(fr_atomic_fopen(&a, q), FR_EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(fr_error_msg(), "y.txt.tmp"));
    CU_ASSERT_PTR_NULL(a.f);
    fr_atomic_abort(&a); /* harmless after a failed open */
}

static void reg(void)
{
    CU_pSuite s = CU_add_suite("atomic", NULL, NULL);
    CU_add_test(s, "commit new and replace", test_commit_new_and_replace);
    CU_add_test(s, "abort keeps old file", test_abort_keeps_old_file);
    CU_add_test(s, "failing rename", test_failing_rename);
    CU_add_test(s, "missing temp keeps old file", test_missing_temp_keeps_old_file);
    CU_add_test(s, "hdf5 writer", test_hdf5_writer);
    CU_add_test(s, "relative name", test_relative_name);
    CU_add_test(s, "bad names", test_bad_names);
}

int main(int argc, char **argv) { return fr_test_main(argc, argv, reg); }
