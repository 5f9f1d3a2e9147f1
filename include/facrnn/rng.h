/* rng: counter-based random numbers (Philox4x32-10).
 *
 * Every random number in facrnn is a pure function of (seed, stream, a, b),
 * where (a, b) are *global* ids (parameter index, epoch, global sample id,
 * trial id, ...). Nothing is keyed by MPI rank, so results do not depend on
 * how many ranks share the work, and a resumed run draws the same numbers.
 */
#ifndef FACRNN_RNG_H
#define FACRNN_RNG_H

#include <stdint.h>

/* Streams: one per purpose, so adding draws in one place never shifts another. */
enum {
    FR_STREAM_INIT = 1,     /* parameter initialisation: a = param id, b = index */
    FR_STREAM_PERM = 2,     /* epoch permutation: a = epoch, b = position */
    FR_STREAM_EPS = 3,      /* reparameterisation noise: a = step, b = sample*K + k */
    FR_STREAM_SPLIT = 4,    /* cross-validation folds */
    FR_STREAM_SYNTH = 5,    /* synthetic data sets */
    FR_STREAM_EVAL = 6,     /* evaluation PC estimator, subsampling */
    FR_STREAM_SIM = 7,      /* rollouts in sampled mode */
    FR_STREAM_RESTART = 8,  /* restart seeds */
    FR_STREAM_BOOT = 9      /* selection confidence: a = resample, b = draw */
};

/* Four 32-bit outputs of Philox4x32-10 for key `seed`, counter (stream, a, b). */
void fr_philox(uint64_t seed, uint32_t stream, uint32_t a, uint64_t b, uint32_t out[4]);
uint64_t fr_rng_u64(uint64_t seed, uint32_t stream, uint32_t a, uint64_t b);
/* Uniform in the open interval (0, 1). */
double fr_rng_uniform(uint64_t seed, uint32_t stream, uint32_t a, uint64_t b);
/* Standard normal (Box-Muller on one Philox block). */
double fr_rng_normal(uint64_t seed, uint32_t stream, uint32_t a, uint64_t b);
/* Poisson draw with mean lambda, a pure function of the key: inversion of
 * the CDF with one uniform, or the rounded normal approximation (one normal
 * of the same key) above FR_RNG_POISSON_NORMAL_ABOVE, where inversion would
 * underflow. lambda <= 0 or NaN gives 0. The synthetic generators and the
 * rollouts both draw counts here. */
#define FR_RNG_POISSON_NORMAL_ABOVE 500.0
double fr_rng_poisson(double lambda, uint64_t seed, uint32_t stream, uint32_t a, uint64_t b);
/* Derive a child seed, e.g. restart r of seed s. */
uint64_t fr_rng_derive(uint64_t seed, uint32_t stream, uint64_t id);

/* Random orthogonal (K, K), row-major: modified Gram-Schmidt of Gaussian
 * draws keyed by (seed, stream, a, index). Not collective. */
void fr_rng_orthogonal(int K, uint64_t seed, uint32_t stream, uint32_t a, double *Q /* (K, K) */);

#endif
