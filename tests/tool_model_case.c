/* tool_model_case: evaluate one model equivalence case with the C model core.
 *
 * Reads a case file written by tests/reference/make_case.py (the layout is
 * documented there: options as root attributes, /params, /x, /sx, /u, /eps),
 * builds fr_model_spec and fr_batch as model.h asks, and writes
 *   /c/terms (3) [nll, kl, pc sums], /c/loss (1), /c/grad (P)      fast path
 *   /c_ref/terms, /c_ref/loss, /c_ref/grad                           reference path
 * (fr_model_loss_grad and fr_model_loss_grad_ref, with m = M). The file is
 * opened read-write with the default (serial) access properties, so no MPI
 * launcher is needed. Exit status 0 on success, 1 with one line on stderr on
 * failure.
 *
 * Usage: tool_model_case CASE.h5
 */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "facrnn/h5util.h"
#include "facrnn/common.h"
#include "facrnn/model.h"

/* Scalar attribute `name` of the root, converted to `mtype` into `out`. */
static fr_err read_attr(hid_t file, const char *name, hid_t mtype, void *out, hsize_t expect_len)
{
    if (H5Aexists(file, name) <= 0) return FR_FAIL(FR_EINVAL, "case file: missing root attribute '%s'", name);
    hid_t a = H5Aopen(file, name, H5P_DEFAULT);
    CHECK_H5(a);
    hid_t sp = H5Aget_space(a);
    CHECK_H5(sp);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    CHECK_H5(H5Sclose(sp));
    if (n != (hssize_t)expect_len) {
        H5Aclose(a);
        return FR_FAIL(FR_EINVAL, "case file: attribute '%s' has %lld values, expected %llu", name,
                       (long long)n, (unsigned long long)expect_len);
    }
    CHECK_H5(H5Aread(a, mtype, out));
    CHECK_H5(H5Aclose(a));
    return FR_OK;
}

/* Whole dataset `name` as doubles; its element count must be `expect`. */
static fr_err read_doubles(hid_t file, const char *name, size_t expect, double *out /* (expect) */)
{
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0) return FR_FAIL(FR_EINVAL, "case file: missing dataset '%s'", name);
    hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
    CHECK_H5(ds);
    hid_t sp = H5Dget_space(ds);
    CHECK_H5(sp);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    CHECK_H5(H5Sclose(sp));
    if (n != (hssize_t)expect) {
        H5Dclose(ds);
        return FR_FAIL(FR_EINVAL, "case file: dataset '%s' has %lld values, expected %zu", name, (long long)n,
                       expect);
    }
    CHECK_H5(H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out));
    CHECK_H5(H5Dclose(ds));
    return FR_OK;
}

/* Write a 1-D double dataset `name` (n), replacing an existing one. */
static fr_err write_doubles(hid_t file, const char *name, size_t n, const double *v /* (n) */)
{
    if (H5Lexists(file, name, H5P_DEFAULT) > 0) CHECK_H5(H5Ldelete(file, name, H5P_DEFAULT));
    hsize_t dim = (hsize_t)n;
    hid_t sp = H5Screate_simple(1, &dim, NULL);
    CHECK_H5(sp);
    hid_t ds = H5Dcreate2(file, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK_H5(ds);
    CHECK_H5(H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v));
    CHECK_H5(H5Dclose(ds));
    CHECK_H5(H5Sclose(sp));
    return FR_OK;
}

static fr_err ensure_group(hid_t file, const char *name)
{
    if (H5Lexists(file, name, H5P_DEFAULT) > 0) return FR_OK;
    hid_t g = H5Gcreate2(file, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK_H5(g);
    CHECK_H5(H5Gclose(g));
    return FR_OK;
}

/* Everything the tool holds for one case. */
typedef struct {
    fr_model_spec spec;
    fr_model model;
    int M;
    double *params;      /* (P) */
    double *x;           /* (M, N) */
    double *sx;          /* (M, L, N) */
    double *u;           /* (M, D) or NULL */
    double *eps;         /* (M, K) */
    const double **xrow; /* (M) */
    const double **sxrow; /* (M*L) */
    const double **urow; /* (M) or NULL */
    double *grad;        /* (P) */
} case_t;

static fr_err read_spec(hid_t f, fr_model_spec *s, int *M)
{
    memset(s, 0, sizeof *s);
    int obs = 0, link = 0, nonlin = 0;
    TRY(read_attr(f, "N", H5T_NATIVE_INT, &s->N, 1));
    TRY(read_attr(f, "K", H5T_NATIVE_INT, &s->K, 1));
    TRY(read_attr(f, "D", H5T_NATIVE_INT, &s->D, 1));
    TRY(read_attr(f, "L", H5T_NATIVE_INT, &s->L, 1));
    TRY(read_attr(f, "G", H5T_NATIVE_INT, &s->G, 1));
    TRY(read_attr(f, "M", H5T_NATIVE_INT, M, 1));
    if (s->N < 1 || s->K < 1 || s->D < 0 || s->L < 1 || s->L > FR_MAX_LAGS || s->G < 1 || s->G > FR_MAX_GROUPS ||
        *M < 1)
        return FR_FAIL(FR_EINVAL, "case file: sizes out of range (N=%d K=%d D=%d L=%d G=%d M=%d)", s->N, s->K, s->D,
                       s->L, s->G, *M);
    TRY(read_attr(f, "groups", H5T_NATIVE_INT, s->group_size, (hsize_t)s->G));
    TRY(read_attr(f, "obs", H5T_NATIVE_INT, &obs, 1));
    TRY(read_attr(f, "link", H5T_NATIVE_INT, &link, 1));
    TRY(read_attr(f, "nonlin", H5T_NATIVE_INT, &nonlin, 1));
    if (obs < 0 || obs > 1 || link < 0 || link > 1 || nonlin < 0 || nonlin > 1)
        return FR_FAIL(FR_EINVAL, "case file: bad enum code (obs=%d link=%d nonlin=%d)", obs, link, nonlin);
    s->obs = (fr_obs)obs;
    s->link = (fr_link)link;
    s->nonlin = (fr_nonlin)nonlin;
    TRY(read_attr(f, "psi_learned", H5T_NATIVE_INT, &s->psi_learned, 1));
    TRY(read_attr(f, "psi", H5T_NATIVE_DOUBLE, s->psi, (hsize_t)s->L));
    TRY(read_attr(f, "encoder_std", H5T_NATIVE_DOUBLE, &s->encoder_std, 1));
    TRY(read_attr(f, "beta", H5T_NATIVE_DOUBLE, &s->beta, 1));
    TRY(read_attr(f, "n_train", H5T_NATIVE_LLONG, &s->n_train, 1));
    s->batch_size = *M;
    return FR_OK;
}

static fr_err load_case(hid_t f, case_t *c)
{
    TRY(read_spec(f, &c->spec, &c->M));
    TRY(fr_model_init(&c->model, &c->spec));
    const fr_model_spec *s = &c->spec;
    size_t M = (size_t)c->M, N = (size_t)s->N, K = (size_t)s->K, D = (size_t)s->D, L = (size_t)s->L;
    TRY(FR_CALLOC(c->params, c->model.n_params));
    TRY(FR_CALLOC(c->grad, c->model.n_params));
    TRY(FR_CALLOC(c->x, M * N));
    TRY(FR_CALLOC(c->sx, M * L * N));
    TRY(FR_CALLOC(c->eps, M * K));
    TRY(FR_CALLOC(c->xrow, M));
    TRY(FR_CALLOC(c->sxrow, M * L));
    TRY(read_doubles(f, "params", c->model.n_params, c->params));
    TRY(read_doubles(f, "x", M * N, c->x));
    TRY(read_doubles(f, "sx", M * L * N, c->sx));
    TRY(read_doubles(f, "eps", M * K, c->eps));
    if (D > 0) {
        TRY(FR_CALLOC(c->u, M * D));
        TRY(FR_CALLOC(c->urow, M));
        TRY(read_doubles(f, "u", M * D, c->u));
    }
    for (size_t i = 0; i < M; i++) {
        c->xrow[i] = c->x + i * N;
        for (size_t l = 0; l < L; l++) c->sxrow[i * L + l] = c->sx + (i * L + l) * N;
        if (D > 0) c->urow[i] = c->u + i * D;
    }
    return FR_OK;
}

static void free_case(case_t *c)
{
    free(c->params);
    free(c->grad);
    free(c->x);
    free(c->sx);
    free(c->u);
    free(c->eps);
    free(c->xrow);
    free(c->sxrow);
    free(c->urow);
}

/* Evaluate the fast and the reference C paths and write /c and /c_ref. */
static fr_err run_case(hid_t f, case_t *c)
{
    fr_batch b = {.m = c->M, .x = c->xrow, .sx = c->sxrow, .u = c->urow, .eps = c->eps};
    size_t P = c->model.n_params;
    fr_terms t;
    double loss = 0.0;
    double terms[3]; /* (3) nll, kl, pc */

    fr_ws *ws = NULL;
    TRY(fr_ws_create(&c->model, c->M, c->M, &ws));
    memset(c->grad, 0, P * sizeof *c->grad);
    memset(&t, 0, sizeof t);
    fr_err rc = fr_model_loss_grad(&c->model, c->params, &b, ws, c->grad, &t, &loss);
    fr_ws_free(ws);
    TRY(rc);
    terms[0] = t.nll;
    terms[1] = t.kl;
    terms[2] = t.pc;
    TRY(ensure_group(f, "c"));
    TRY(write_doubles(f, "c/terms", 3, terms));
    TRY(write_doubles(f, "c/loss", 1, &loss));
    TRY(write_doubles(f, "c/grad", P, c->grad));

    memset(c->grad, 0, P * sizeof *c->grad);
    memset(&t, 0, sizeof t);
    loss = 0.0;
    TRY(fr_model_loss_grad_ref(&c->model, c->params, &b, c->grad, &t, &loss));
    terms[0] = t.nll;
    terms[1] = t.kl;
    terms[2] = t.pc;
    TRY(ensure_group(f, "c_ref"));
    TRY(write_doubles(f, "c_ref/terms", 3, terms));
    TRY(write_doubles(f, "c_ref/loss", 1, &loss));
    TRY(write_doubles(f, "c_ref/grad", P, c->grad));
    return FR_OK;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CASE.h5\n", argv[0]);
        return 2;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* errors are reported through fr_err */
    hid_t f = H5Fopen(argv[1], H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) {
        fprintf(stderr, "tool_model_case: cannot open case file '%s'\n", argv[1]);
        return 1;
    }
    case_t c;
    memset(&c, 0, sizeof c);
    fr_err rc = load_case(f, &c);
    if (rc == FR_OK) rc = run_case(f, &c);
    free_case(&c);
    if (H5Fclose(f) < 0 && rc == FR_OK) rc = FR_FAIL(FR_EHDF5, "closing case file '%s'", argv[1]);
    if (rc != FR_OK) {
        fprintf(stderr, "tool_model_case: %s: %s\n", argv[1], fr_error_msg());
        return 1;
    }
    return 0;
}
