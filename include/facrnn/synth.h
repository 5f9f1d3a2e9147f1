/* synth: synthetic data sets with ground truth, written in the input format
 * (the generators and their settings: docs/synthetic.md). Generation
 * is a pure function of (generator, settings, seed) through the
 * counter-based RNG; nothing depends on the number of MPI ranks.
 */
#ifndef FACRNN_SYNTH_H
#define FACRNN_SYNTH_H

#include <stdint.h>

#include "facrnn/common.h"

#define FR_SYNTH_MAX_GROUPS 64

typedef enum {
    FR_SYNTH_LORENZ_THOMAS,
    FR_SYNTH_FACRNN,
    FR_SYNTH_ENTANGLED,
    FR_SYNTH_MULTIREGION,
    FR_SYNTH_SYSTEMS
} fr_synth_kind;

/* Dynamical families of the `systems` generator (core/synth_families.c). */
typedef enum {
    FR_FAM_VDP,     /* Van der Pol oscillator, 2-D limit cycle */
    FR_FAM_ROSSLER, /* Rossler, 3-D chaotic */
    FR_FAM_HOPF,    /* Hopf normal form with noise, 2-D */
    FR_FAM_RING,    /* ring attractor, angle diffuses, 2-D */
    FR_FAM_LINE,    /* line attractor integrating random input pulses, 1-D */
    FR_FAM_DAMPED,  /* noise-driven damped oscillator, 2-D */
    FR_FAM_L96,     /* Lorenz-96, D-D chaotic (one coupled system, D >= 4) */
    FR_FAM_NOISE,   /* latent factors white in time: no dynamics, D-D */
    FR_FAM_COUNT
} fr_synth_family;

/* What /truth says about the `systems` data (the /truth attribute `kind`). */
typedef enum {
    FR_TRUTH_INDEPENDENT, /* independent sub-systems: groups = their dimensions */
    FR_TRUTH_COUPLED,     /* a chain of driven sub-systems: one merged group */
    FR_TRUTH_SINGLE,      /* one system: one group */
    FR_TRUTH_NOISE        /* no dynamics: no sub-circuits; groups = [D] */
} fr_synth_truth_kind;

typedef struct {
    fr_synth_kind kind;
    char name[32];
    uint64_t seed;        /* seed */
    long long trials;     /* trials */
    long long bins;       /* bins per trial (all trials equal) */
    int N;                /* N channels */
    int G;                /* number of groups (areas for multiregion) */
    int groups[FR_SYNTH_MAX_GROUPS]; /* groups: sizes H_g */
    int poisson;          /* obs = gaussian (0) | poisson (1) */
    int lags;             /* lags L (psi uniform 1/L) */
    int D;                /* inputs: number of input channels */
    int burn;             /* burn: bins simulated and discarded before each trial */
    double noise;         /* noise: Gaussian observation noise std */
    double enc_noise;     /* enc_noise: std of z around mu (facrnn-type generators) */
    double coupling;      /* coupling: std of cross-group latent recurrence entries */
    double gain;          /* gain: |eigenvalues| of each J_g at the base point */
    double rate;          /* rate: Poisson base rate per bin */
    double leak;          /* leak: lorenz-thomas off-group loading relative std */
    double b;             /* b: Thomas damping */
    double dt;            /* dt: lorenz-thomas sampling step */
    double bin_size_s;    /* bin_size: written as the bin_size_s attribute */
    int n_sys;            /* systems: number of sub-systems (systems generator) */
    int sys[FR_SYNTH_MAX_GROUPS];     /* systems: fr_synth_family of each */
    int sys_dim[FR_SYNTH_MAX_GROUPS]; /* systems: latent dimension of each */
    double snr;           /* snr: per-channel signal variance / noise variance (systems) */
} fr_synth_spec;

/* Defaults for a generator by name ("lorenz-thomas", "facrnn", "entangled",
 * "multiregion"); FR_EUSAGE naming the generator if unknown. Not collective. */
fr_err fr_synth_spec_init(fr_synth_spec *s, const char *name);
/* Apply one "key=value" setting; FR_EUSAGE naming an unknown key or a bad
 * value. Not collective. */
fr_err fr_synth_spec_set(fr_synth_spec *s, const char *kv);
/* Check the settings together (group sizes against N, ...). Not collective. */
fr_err fr_synth_spec_check(const fr_synth_spec *s);

typedef struct {
    long long n_trials, total_bins;
    int N, K, D, L;
    long long *offsets;   /* (n_trials + 1) */
    double *x;            /* (total_bins, N) observations */
    double *u;            /* (total_bins, D) or NULL */
    double *latents;      /* (total_bins, K) true latents (see synth.c for each generator) */
    double *A;            /* (N, K) */
    double *B;            /* (K, N) or NULL (lorenz-thomas) */
    double *c;            /* (N) */
    double *d;            /* (K) or NULL */
    double *E;            /* (N, D) or NULL */
    double *psi;          /* (L) or NULL */
    int *channel_area;    /* (N) group/area that drives each channel, or NULL */
    int G;                /* true groups: the `groups` attribute of /truth/latents */
    int groups[FR_SYNTH_MAX_GROUPS];  /* (G), sums to K */
    const char *truth_kind; /* /truth attribute `kind` (systems generator) or NULL */
} fr_synth_data;

/* Name of a family ("vdp", ...), and the family called `name` (-1 if none). */
const char *fr_synth_family_name(int fam);
int fr_synth_family_find(const char *name);
/* Name of a truth kind ("independent", "coupled", "single", "noise"). */
const char *fr_synth_truth_kind_name(fr_synth_truth_kind k);
/* The truth of a `systems` spec: its kind and true groups (G, groups).
 * Not collective. */
fr_synth_truth_kind fr_synth_systems_truth(const fr_synth_spec *s, int *G, int *groups /* (FR_SYNTH_MAX_GROUPS) */);

/* Generate in memory. Not collective. */
fr_err fr_synth_generate(const fr_synth_spec *s, fr_synth_data *out);
/* Write the input format with /truth to `path` using serial HDF5, replacing
 * it atomically (atomic.h); call on one rank only. Not collective. */
fr_err fr_synth_write(const fr_synth_spec *s, const fr_synth_data *data, const char *path);
void fr_synth_free(fr_synth_data *data);

#endif
