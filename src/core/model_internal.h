/* model_internal: the workspace layout and helpers shared by model.c,
 * model_ref.c and pc.c. Not part of the public API. */
#ifndef FACRNN_MODEL_INTERNAL_H
#define FACRNN_MODEL_INTERNAL_H

#include "facrnn/model.h"

struct fr_ws {
    int m_max, M_max;
    double psi[FR_MAX_LAGS]; /* (L) effective kernel of the last encode */
    double *H;               /* (m_max, N) gathered histories h_i */
    double *mu, *z;          /* (m_max, K) */
    double *eta, *deta;      /* (m_max, N) linear predictor and inv_M * dNLL/deta */
    double *U;               /* (m_max, D) gathered inputs */
    double *dz, *dmu;        /* (m_max, K) */
    double *dH;              /* (m_max, N) */
    double *pc_a;            /* (G + 1, M_max) per-column log terms of one PC row */
    int *kgroup;             /* (K) group of each latent dimension */
    double *pc_dz, *pc_dmu;  /* (M_max, K) PC gradients in fr_model_loss_grad */
    double *pc_muT, *pc_dmuT; /* (K, M_max) means and their gradients, transposed */
    double *pc_w, *pc_wl;    /* (M_max) KDE weights of one PC row and their logs */
    double *obs_w;           /* (2, N) Gaussian inverse variances exp(-2 s), per-channel NLL sums */
};

/* ln(1 + e^x), overflow safe. */
double fr_softplus(double x);
/* NLL of one entry x_n under eta_n (channel n; s is the log-std view or
 * NULL for Poisson); writes dNLL/deta and dNLL/ds_n where non-NULL. */
double fr_obs_nll(const fr_model *m, const double *s, int n, double x, double eta, double *deta, double *ds);
/* ln(x!) = lgamma(x + 1), from a table for small integer x. Not collective. */
double fr_ln_factorial(double x);

/* e^x by a polynomial with fused multiply-adds (relative error below
 * 1e-15), x clamped to [-700, 700]. The PC kernel's exponential. */
double fr_exp_poly(double x);

/* The PC kernel's versions (pc.c): AVX2 + FMA intrinsics, plain C with
 * fused multiply-adds (the same bits), plain C with separate roundings. */
enum { FR_PC_AUTO = -1, FR_PC_C_MULADD = 0, FR_PC_C_FMA = 1, FR_PC_AVX2 = 2 };
/* Make fr_pc_rows and fr_pc_eval use version `which` (FR_PC_AUTO, the
 * default: the fastest this CPU runs). Returns the version now in use, or
 * -1, changing nothing, when this build or CPU cannot run `which`. For
 * tests; not thread safe. */
int fr_pc_kernel(int which);

#endif
