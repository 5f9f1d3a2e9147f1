/* synth_internal: what core/synth.c (settings, the RNN-process and
 * lorenz-thomas generators) and core/synth_families.c (the `systems`
 * generator) share. Not a public header. */
#ifndef FACRNN_SYNTH_INTERNAL_H
#define FACRNN_SYNTH_INTERNAL_H

#include "facrnn/synth.h"

/* RNG tags (the `a` counter word) of the `systems` generator within
 * FR_STREAM_SYNTH; synth.c's own tags are below 20. */
enum {
    FR_SYNTH_TAG_SYS_IC = 20,    /* initial state: id = trial * K + latent */
    FR_SYNTH_TAG_SYS_PARAM = 21, /* per-system parameters: id = system * 16 + parameter */
    FR_SYNTH_TAG_SYS_W = 22,     /* process noise: id = ((trial * S + step) * sub + substep) * K + latent */
    FR_SYNTH_TAG_SYS_PULSE = 23, /* line-attractor input pulses: id = (trial * S + step) * K + latent */
    FR_SYNTH_TAG_SYS_A = 24,     /* loadings: id = channel * K + latent */
    FR_SYNTH_TAG_SYS_C = 25,     /* offsets: id = channel */
    FR_SYNTH_TAG_SYS_OBS = 26    /* observation noise / counts: id = row * N + channel */
};

/* Allocate the arrays every generator fills (offsets, x, latents, A, c)
 * for K latents; zeroes the rest of *o. Not collective. */
fr_err fr_synth_alloc_common(const fr_synth_spec *s, int K, fr_synth_data *o);
/* Parse a `systems` value ("[vdp,rossler]", "vdp+l96:6", ...) into s->n_sys,
 * s->sys, s->sys_dim; FR_EUSAGE naming the value. Not collective. */
fr_err fr_synth_parse_systems(const char *v, fr_synth_spec *s);
/* Check a `systems` spec (noise alone, N against the systems). Not collective. */
fr_err fr_synth_systems_check(const fr_synth_spec *s);
/* The `systems` generator (docs/synthetic.md). Not collective. */
fr_err fr_synth_gen_systems(const fr_synth_spec *s, fr_synth_data *o);

#endif
