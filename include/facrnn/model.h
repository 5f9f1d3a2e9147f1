/* model: the FacRNN of docs/model.md as pure C over a local minibatch.
 * No MPI, no file I/O. The trainer and the analyses call it.
 *
 * Conventions: row-major everywhere. Parameters, gradients and Adam moments
 * each live in ONE flat double buffer of length model->n_params, laid out as
 * [A | B | c | d | s | E | psi_logits] (s only for Gaussian, E only when
 * D > 0, psi logits only when psi is learned). fr_model_view gives named
 * pointers into any such buffer. The layout is versioned
 * (FR_LAYOUT_VERSION) because checkpoints store it.
 *
 * A training step over a global minibatch of M samples, of which this
 * process holds m (m == M in a single process), runs in three stages so the
 * distributed trainer can exchange the small (M, K) pieces in between:
 *   1. fr_model_encode:   h, mu, z for the local rows.
 *   2. fr_pc_rows:        PC contribution of some rows i against all j of
 *                         the gathered (M, K) mu and z; gradients w.r.t. the
 *                         rows' z_i and every mu_j.
 *   3. fr_model_backward: decoder, NLL, KL and gradients for the local rows,
 *                         adding the PC gradients arriving for their mu/z.
 * fr_model_loss_grad chains the three for a single process (tests, eval).
 */
#ifndef FACRNN_MODEL_H
#define FACRNN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "facrnn/common.h"

/* ln(2 pi); M_PI is not in strict C11. */
#define FR_LN_2PI 1.83787706640934548356065947281123527

#define FR_LAYOUT_VERSION 1
#define FR_MAX_GROUPS 64
#define FR_MAX_LAGS 32

typedef enum { FR_OBS_GAUSSIAN = 0, FR_OBS_POISSON = 1 } fr_obs;
typedef enum { FR_LINK_SOFTPLUS = 0, FR_LINK_EXP = 1 } fr_link;
typedef enum { FR_NL_TANH = 0, FR_NL_IDENTITY = 1 } fr_nonlin;

/* Floor on the Poisson rate, so ln(lambda) is finite (documented in docs/model.md). */
#define FR_POISSON_RATE_FLOOR 1e-8

typedef struct {
    int N;                            /* observed channels */
    int K;                            /* total latent rank */
    int D;                            /* input dimension, 0 = no inputs */
    int L;                            /* history lags >= 1 */
    int G;                            /* number of groups */
    int group_size[FR_MAX_GROUPS];    /* (G), sum = K */
    fr_obs obs;
    fr_link link;                     /* Poisson only */
    fr_nonlin nonlin;
    int psi_learned;                  /* 1: softmax of learned logits */
    double psi[FR_MAX_LAGS];          /* (L) fixed kernel when !psi_learned */
    double encoder_std;               /* > 0: override; <= 0: n_train^(-1/(K+4)) */
    double beta;                      /* PC weight, finite, >= 0 */
    long long n_train;                /* global number of training samples */
    int batch_size;                   /* M; M >= 2 required when G > 1 */
    int n_skip;                       /* co-smoothing: channels the encoder never reads */
    const int *skip;                  /* (n_skip) their indices, distinct, in [0, N); owned by the caller */
} fr_model_spec;

typedef struct {
    fr_model_spec spec;
    int group_off[FR_MAX_GROUPS + 1]; /* (G+1) first latent index of each group */
    double s_enc;                     /* resolved fixed encoder std */
    /* offsets of each view in the flat buffer; SIZE_MAX where absent */
    size_t off_A, off_B, off_c, off_d, off_s, off_E, off_psi;
    size_t n_params;
} fr_model;

/* Named views into one flat buffer (params, grads or Adam moments). */
typedef struct {
    double *A;   /* (N, K) decoder loadings */
    double *B;   /* (K, N) encoder */
    double *c;   /* (N) decoder bias */
    double *d;   /* (K) encoder bias */
    double *s;   /* (N) Gaussian log-std, NULL for Poisson */
    double *E;   /* (N, D) input weights, NULL if D == 0 */
    double *psi; /* (L) psi logits, NULL if psi is fixed */
} fr_view;

/* Validate `spec` and compute the layout. Rejects K = 0, sizes not summing
 * to K, L < 1, bad fixed psi, M < 2 with G > 1, non-finite beta, ...
 * with FR_EINVAL and a message. Not collective. */
fr_err fr_model_init(fr_model *m, const fr_model_spec *spec);
fr_view fr_model_view(const fr_model *m, double *flat);
/* A partition as text, "3+2+1" (the form of run ids, logs, tables and the
 * results' `groups` attribute). Not collective. */
void fr_groups_text(int G, const int *sizes /* (G) */, char *buf, size_t cap);
/* The default initialisation of docs/model.md (uniform like a linear layer), from
 * counter-based draws keyed by (seed, parameter id, index). */
void fr_model_init_params(const fr_model *m, double *flat /* (n_params) */, uint64_t seed);
/* The effective psi (L): softmax of the logits, or the fixed kernel. */
void fr_model_psi(const fr_model *m, const double *flat, double *psi /* (L) */);

/* A local minibatch: m rows, each a sample (trial k, time t >= L). Rows are
 * given by pointers into the caller's storage so nothing is copied twice. */
typedef struct {
    int m;
    const double *const *x;   /* (m) pointers to x_t rows, each (N) */
    const double *const *sx;  /* (m*L) sx[i*L + l-1] -> sigma(x_{t-l}), each (N) */
    const double *const *u;   /* (m) pointers to u_t rows (D), or NULL if D == 0 */
    const double *eps;        /* (m, K) standard normal noise for z */
    /* Missing values (/mask): (m) pointers to mask rows (N), 1 = observed,
     * 0 = missing; a missing x_t entry is left out of the NLL and every
     * gradient (its value is never read). NULL: every entry observed. The
     * history is the caller's: a missing x_{t-l} must arrive in sx as
     * sigma(0) = 0 (docs/model.md, "Missing values"). */
    const unsigned char *const *obs;
} fr_batch;

/* Per-call scratch, allocated once for at most m_max local rows and a
 * global minibatch of at most M_max; nothing is allocated in the step loop. */
typedef struct fr_ws fr_ws;
fr_err fr_ws_create(const fr_model *m, int m_max, int M_max, fr_ws **ws);
void fr_ws_free(fr_ws *ws);
double *fr_ws_mu(fr_ws *ws);   /* (m, K) after fr_model_encode */
double *fr_ws_z(fr_ws *ws);    /* (m, K) after fr_model_encode */

/* Loss terms as SUMS over the rows processed (not divided by M). */
typedef struct {
    double nll; /* sum_i NLL_i */
    double kl;  /* sum_i KL_i */
    double pc;  /* sum over rows i of [ln q(z_i) - sum_g ln q(z_ig)] */
} fr_terms;

/* Stage 1: h, mu = B h + d, z = mu + s_enc * eps for the local rows. */
fr_err fr_model_encode(const fr_model *m, const double *params, const fr_batch *b, fr_ws *ws);

/* Stage 2: PC rows. mu_all, z_all (M, K) are the whole global minibatch;
 * rows [row0, row0 + nrows) are this caller's. Returns in *pc_sum the sum of
 * the per-row PC terms, and ADDS scale * d(that sum)/dz to dz_rows
 * (nrows, K) and scale * d/dmu to dmu_all (M, K). The trainer passes
 * scale = beta / M. Numerically safe (log-sum-exp with max subtraction). */
fr_err fr_pc_rows(const fr_model *m, int M, const double *mu_all, const double *z_all, int row0, int nrows,
                  double scale, double *pc_sum, double *dz_rows, double *dmu_all, fr_ws *ws);
/* Slow, direct reference of fr_pc_rows (same contract), for tests. */
fr_err fr_pc_rows_ref(const fr_model *m, int M, const double *mu_all, const double *z_all, int row0, int nrows,
                      double scale, double *pc_sum, double *dz_rows, double *dmu_all);

/* Stage 3: decoder, NLL and KL for the local rows (after stage 1), and
 * gradients of  inv_M * sum_i (NLL_i + KL_i)  plus the incoming PC
 * gradients dmu_extra / dz_extra (m, K) (either may be NULL), ADDED into
 * grad (n_params). terms->nll and terms->kl receive the local sums. */
fr_err fr_model_backward(const fr_model *m, const double *params, const fr_batch *b, fr_ws *ws, double inv_M,
                         const double *dmu_extra, const double *dz_extra, double *grad, fr_terms *terms);

/* Single process: loss = mean(NLL + KL) + beta * PC over the m = M rows of
 * b, gradient ADDED into grad. Returns the loss. */
fr_err fr_model_loss_grad(const fr_model *m, const double *params, const fr_batch *b, fr_ws *ws, double *grad,
                          fr_terms *terms, double *loss);

/* Reference (naive loops, no BLAS) versions of encode/decode for tests. */
fr_err fr_model_loss_grad_ref(const fr_model *m, const double *params, const fr_batch *b, double *grad,
                              fr_terms *terms, double *loss);

/* ---- evaluation (no gradients) --------------------------------------------- */
/* One-step prediction with z = mu: writes mu (m, K) and eta (m, N) (either
 * may be NULL), and the per-row NLL of x under eta into nll_rows (m) if
 * non-NULL (summed over the row's observed entries when b->obs is set). */
fr_err fr_model_predict(const fr_model *m, const double *params, const fr_batch *b, fr_ws *ws, double *mu,
                        double *eta, double *nll_rows);

/* Mean of the observation model for a linear predictor eta (identity for
 * Gaussian, the link for Poisson). */
double fr_model_mean(const fr_model *m, double eta);

/* Evaluation PC/TC estimator: equal-weight KDE over n points (self term
 * included), n_mc samples per point from `seed`, subsampled to at most
 * max_points. groups (G) sizes summing to K; G = K gives TC. */
fr_err fr_pc_eval(int K, int G, const int *group_size, int n, const double *mu /* (n, K) */, double s_enc,
                  int n_mc, int max_points, uint64_t seed, double *pc);

/* ---- optimiser ------------------------------------------------------------- */
typedef struct {
    double lr, beta1, beta2, eps;
    double weight_decay; /* L2 added to the gradient (adam) or decoupled (adamw) */
    int decoupled;       /* 1 = AdamW */
} fr_adam_cfg;

/* One Adam(W) step over flat buffers, step = 1, 2, ... (bias correction as
 * in PyTorch). Not collective: every rank calls it with the same summed
 * gradient and so stays identical. */
void fr_adam_step(const fr_adam_cfg *cfg, long step, size_t n, double *params, const double *grad, double *m1,
                  double *m2);

#endif
