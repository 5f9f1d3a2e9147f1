/* rng: Philox4x32-10 counter-based generator (Salmon et al., SC'11).
 * Pure functions of (seed, stream, a, b); no state, so any rank can draw any
 * number without communication. */
#include "facrnn/rng.h"

#include <math.h>
#include <stddef.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t *hi)
{
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

void fr_philox(uint64_t seed, uint32_t stream, uint32_t a, uint64_t b, uint32_t out[4])
{
    uint32_t c0 = stream, c1 = a, c2 = (uint32_t)b, c3 = (uint32_t)(b >> 32);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; ++r) {
        uint32_t hi0, hi1;
        uint32_t lo0 = mulhilo(PHILOX_M0, c0, &hi0);
        uint32_t lo1 = mulhilo(PHILOX_M1, c2, &hi1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

uint64_t fr_rng_u64(uint64_t seed, uint32_t stream, uint32_t a, uint64_t b)
{
    uint32_t o[4];
    fr_philox(seed, stream, a, b, o);
    return ((uint64_t)o[0] << 32) | o[1];
}

/* 53 random bits mapped to (0, 1): never exactly 0, so log() is safe. */
static inline double u53(uint32_t hi, uint32_t lo)
{
    uint64_t x = (((uint64_t)hi << 32) | lo) >> 11;
    return ((double)x + 0.5) * (1.0 / 9007199254740992.0);
}

double fr_rng_uniform(uint64_t seed, uint32_t stream, uint32_t a, uint64_t b)
{
    uint32_t o[4];
    fr_philox(seed, stream, a, b, o);
    return u53(o[0], o[1]);
}

double fr_rng_normal(uint64_t seed, uint32_t stream, uint32_t a, uint64_t b)
{
    uint32_t o[4];
    fr_philox(seed, stream, a, b, o);
    double u1 = u53(o[0], o[1]), u2 = u53(o[2], o[3]);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2);
}

uint64_t fr_rng_derive(uint64_t seed, uint32_t stream, uint64_t id)
{
    return fr_rng_u64(seed, stream, 0xFFFFFFFFu, id);
}

void fr_rng_orthogonal(int K, uint64_t seed, uint32_t stream, uint32_t a, double *Q)
{
    for (int i = 0; i < K * K; ++i) Q[i] = fr_rng_normal(seed, stream, a, (uint64_t)i);
    for (int i = 0; i < K; ++i) {
        double *qi = Q + (size_t)i * K;
        for (int j = 0; j < i; ++j) {
            const double *qj = Q + (size_t)j * K;
            double dot = 0;
            for (int k = 0; k < K; ++k) dot += qi[k] * qj[k];
            for (int k = 0; k < K; ++k) qi[k] -= dot * qj[k];
        }
        double nrm = 0;
        for (int k = 0; k < K; ++k) nrm += qi[k] * qi[k];
        nrm = sqrt(nrm);
        for (int k = 0; k < K; ++k) qi[k] /= nrm;
    }
}

double fr_rng_poisson(double lambda, uint64_t seed, uint32_t stream, uint32_t a, uint64_t b)
{
    if (!(lambda > 0)) return 0.0;
    if (lambda > FR_RNG_POISSON_NORMAL_ABOVE) {
        double v = floor(lambda + sqrt(lambda) * fr_rng_normal(seed, stream, a, b) + 0.5);
        return v > 0 ? v : 0.0;
    }
    double u = fr_rng_uniform(seed, stream, a, b);
    double p = exp(-lambda), cdf = p;
    double k = 0;
    while (u > cdf && k < 10.0 * lambda + 100.0) {
        k += 1;
        p *= lambda / k;
        cdf += p;
        if (p == 0) break; /* rounding: the tail holds no more mass we can add */
    }
    return k;
}
