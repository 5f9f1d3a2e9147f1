/* standardize: the per-channel affine transform between the data as stored
 * and the numbers the model sees (config key data.standardize, docs/model.md
 * "Scale of the data"). Under z-scoring, x_model = (x - mean) / std with
 * mean and std of each channel over the training trials only; under off the
 * transform is the identity. Pure maths over local rows, no MPI or files:
 * the collective reduction of the sums is fr_fit_standardize (fit_input.h),
 * storage is the results writer's and fitted-run reader's.
 */
#ifndef FACRNN_STANDARDIZE_H
#define FACRNN_STANDARDIZE_H

#include "facrnn/common.h"

typedef enum { FR_STD_OFF = 0, FR_STD_ZSCORE = 1 } fr_std_mode;

/* Entries with |x| above this saturate tanh (tanh(5) = 0.99991): data whose
 * median |x| exceeds it are refused under data.standardize: off. */
#define FR_STD_SATURATE 5.0
/* data.standardize auto z-scores only when some channel is off tanh's
 * scale over the training trials: |mean| > FR_STD_AUTO_MEAN or std outside
 * [FR_STD_AUTO_SD_LO, FR_STD_AUTO_SD_HI]. */
#define FR_STD_AUTO_MEAN 3.0
#define FR_STD_AUTO_SD_LO 0.2
#define FR_STD_AUTO_SD_HI 5.0

typedef struct {
    fr_std_mode mode;
    int N;
    double *mean; /* (N) training mean (0 under off) */
    double *std;  /* (N) training std, population (1 under off, and for a flat channel) */
    int n_flat;   /* channels whose std was 0 (or lost in rounding): centred only */
} fr_standardize;

/* Length of the accumulator of fr_std_accumulate for N channels. */
#define FR_STD_ACC_LEN(N) (2 + 3 * (size_t)(N))

/* Add rows (rows, N) of x to acc (FR_STD_ACC_LEN(N)), laid out
 * [rows, observed entries with |x| > FR_STD_SATURATE, sum x (N), sum x^2
 * (N), observed entries (N)], so the accumulators of all ranks reduce with
 * one MPI_SUM. obs (rows, N): 1 = observed, 0 = missing (left out), or
 * NULL: every entry observed. Not collective. */
void fr_std_accumulate(int N, long long rows, const double *x /* (rows, N) */, const unsigned char *obs,
                       double *acc);

/* Allocate st and set it from reduced sums acc (mode FR_STD_ZSCORE), or to
 * the identity (mode FR_STD_OFF, acc unused). A channel whose std is 0 or
 * below 1e-9 of its mean's magnitude (no spread left after rounding) keeps
 * std 1 and is counted in n_flat; a channel with no observed entry keeps
 * mean 0 and std 1 (not counted: fr_fit_unobserved reports it). Not
 * collective. */
fr_err fr_std_init(fr_standardize *st, fr_std_mode mode, int N, const double *acc);

/* The same transform with the stored mean and std (N each; NULL for off).
 * Not collective. */
fr_err fr_std_from_arrays(fr_standardize *st, fr_std_mode mode, int N, const double *mean, const double *std);

/* x (rows, N) in place: (x - mean) / std, i.e. into the model's units;
 * entries with obs = 0 (obs (rows, N), or NULL: none) become 0, the
 * missing-value fill (docs/model.md, "Missing values"). */
void fr_std_apply(const fr_standardize *st, long long rows, double *x, const unsigned char *obs);
/* x (rows, N) in place: x * std + mean, i.e. back to the data's units. */
void fr_std_invert(const fr_standardize *st, long long rows, double *x);

/* "zscore" or "off" (the results attribute). */
const char *fr_std_mode_name(fr_std_mode m);

void fr_std_free(fr_standardize *st);

#endif
