/* test_sweep: the pure sweep logic: integer partitions, run-list expansion
 * and ids, queue order and slices, the manifest round trip, the
 * independence null, and the selection rule on hand-made tables. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "facrnn/rng.h"
#include "facrnn/sweep.h"
#include "testlib.h"

static int parts_buf[4096][FR_CFG_MAX_GROUPS + 1];

static void test_partition_counts(void)
{
    /* p(n) for n = 1..10: 1 2 3 5 7 11 15 22 30 42 */
    static const int p[] = {0, 1, 2, 3, 5, 7, 11, 15, 22, 30, 42};
    for (int K = 1; K <= 10; ++K) {
        int n = -1;
        CU_ASSERT_EQUAL(fr_sweep_partitions(K, 0, 1, parts_buf, 4096, &n), FR_OK);
        CU_ASSERT_EQUAL(n, p[K]);
    }
    int n;
    /* K = 6, at most 3 groups, each >= 2: [6] [4,2] [3,3] [2,2,2] */
    CU_ASSERT_EQUAL(fr_sweep_partitions(6, 3, 2, parts_buf, 4096, &n), FR_OK);
    CU_ASSERT_EQUAL(n, 4);
    static const int want[4][4] = {{1, 6, 0, 0}, {2, 4, 2, 0}, {2, 3, 3, 0}, {3, 2, 2, 2}};
    for (int i = 0; i < 4 && i < n; ++i)
        for (int j = 0; j <= want[i][0]; ++j) CU_ASSERT_EQUAL(parts_buf[i][j], want[i][j]);
    /* K = 6 with at most 2 groups: [6] [5,1] [4,2] [3,3] */
    CU_ASSERT_EQUAL(fr_sweep_partitions(6, 2, 1, parts_buf, 4096, &n), FR_OK);
    CU_ASSERT_EQUAL(n, 4);
    /* every part non-increasing and summing to K, in K = 8 unbounded */
    CU_ASSERT_EQUAL(fr_sweep_partitions(8, 0, 1, parts_buf, 4096, &n), FR_OK);
    CU_ASSERT_EQUAL(n, 22);
    for (int i = 0; i < n; ++i) {
        int s = 0;
        for (int g = 1; g <= parts_buf[i][0]; ++g) {
            s += parts_buf[i][g];
            if (g > 1) CU_ASSERT(parts_buf[i][g] <= parts_buf[i][g - 1]);
        }
        CU_ASSERT_EQUAL(s, 8);
    }
    /* counting only, and the cap */
    CU_ASSERT_EQUAL(fr_sweep_partitions(10, 0, 1, NULL, 4096, &n), FR_OK);
    CU_ASSERT_EQUAL(n, 42);
    CU_ASSERT_EQUAL(fr_sweep_partitions(10, 0, 1, NULL, 41, &n), FR_EINVAL);
    CU_ASSERT(strstr(fr_error_msg(), "sweep.max_groups") != NULL);
    /* min size larger than K: none */
    CU_ASSERT_EQUAL(fr_sweep_partitions(3, 0, 4, parts_buf, 4096, &n), FR_OK);
    CU_ASSERT_EQUAL(n, 0);
}

static void base_config(fr_config *c)
{
    fr_config_defaults(c);
    snprintf(c->data_path, sizeof c->data_path, "d.h5");
    c->n_sweep_ranks = 2;
    c->sweep_ranks[0] = 4;
    c->sweep_ranks[1] = 6;
    c->sweep_partitions_all = 1;
    c->sweep_max_groups = 3;
    c->sweep_min_group_size = 2;
    c->n_sweep_betas = 2;
    c->sweep_betas[0] = 0;
    c->sweep_betas[1] = 20;
    c->n_sweep_seeds = 2;
    c->sweep_seeds[0] = 0;
    c->sweep_seeds[1] = 7;
    c->folds = 3;
    c->epochs = 10;
    c->restarts = 1;
}

static void test_run_list(void)
{
    fr_config *c = calloc(1, sizeof *c);
    base_config(c);
    fr_sweep_run *runs = NULL, *again = NULL;
    int n = 0, n2 = 0;
    CU_ASSERT_EQUAL_FATAL(fr_sweep_expand(c, &runs, &n), FR_OK);
    /* K=4: [4] [2,2]; K=6: [6] [4,2] [3,3] [2,2,2]: the one-group partitions
     * at beta 0 only (beta does not change them), the 4 multi-group ones at
     * beta 20 only (at beta 0 they are the one-group model) -> 6 (partition,
     * beta) pairs x 2 seeds x 3 folds */
    CU_ASSERT_EQUAL(n, 6 * 2 * 3);
    CU_ASSERT_EQUAL_FATAL(fr_sweep_expand(c, &again, &n2), FR_OK);
    CU_ASSERT_EQUAL(n, n2);
    for (int i = 0; i < n; ++i) {
        CU_ASSERT_STRING_EQUAL(runs[i].id, again[i].id);
        CU_ASSERT_EQUAL(runs[i].index, i);
        for (int j = 0; j < i; ++j) CU_ASSERT(strcmp(runs[i].id, runs[j].id) != 0);
    }
    /* canonical order: K, partition, beta, seed, fold (fold fastest) */
    CU_ASSERT_STRING_EQUAL(runs[0].id, "K4_g4_b0_s0_f0");
    CU_ASSERT_STRING_EQUAL(runs[1].id, "K4_g4_b0_s0_f1");
    CU_ASSERT_STRING_EQUAL(runs[3].id, "K4_g4_b0_s7_f0");
    CU_ASSERT_STRING_EQUAL(runs[6].id, "K4_g2+2_b20_s0_f0");
    CU_ASSERT_STRING_EQUAL(runs[12].id, "K6_g6_b0_s0_f0");
    CU_ASSERT_STRING_EQUAL(runs[n - 1].id, "K6_g2+2+2_b20_s7_f2");
    for (int i = 0; i < n; ++i) {
        CU_ASSERT(runs[i].G == 1 ? runs[i].beta == 0 : runs[i].beta == 20);
    }
    /* the run config sets exactly the swept fields */
    fr_config *rc = calloc(1, sizeof *rc);
    fr_sweep_run_config(c, &runs[n - 1], rc);
    CU_ASSERT_EQUAL(rc->rank, 6);
    CU_ASSERT_EQUAL(rc->n_groups, 3);
    CU_ASSERT_EQUAL(rc->groups[2], 2);
    CU_ASSERT_EQUAL(rc->beta, 20);
    CU_ASSERT_EQUAL(rc->seed, 7);
    CU_ASSERT_EQUAL(rc->fold, 2);
    CU_ASSERT_EQUAL(rc->epochs, c->epochs);
    /* queue: longest (K = 6) first, ties in canonical order */
    int *order = calloc((size_t)n, sizeof *order);
    fr_sweep_queue_order(runs, n, order);
    CU_ASSERT_EQUAL(runs[order[0]].K, 6);
    CU_ASSERT_EQUAL(runs[order[n - 1]].K, 4);
    for (int i = 1; i < n; ++i)
        CU_ASSERT(runs[order[i - 1]].cost > runs[order[i]].cost ||
                  (runs[order[i - 1]].cost == runs[order[i]].cost && order[i - 1] < order[i]));
    /* slices cover every run exactly once */
    for (int i = 0; i < n; ++i) {
        int hits = 0;
        for (int s = 0; s < 5; ++s) hits += fr_sweep_in_slice(i, s, 5);
        CU_ASSERT_EQUAL(hits, 1);
    }
    free(order);
    free(runs);
    free(again);

    /* explicit partitions are used for the K they sum to */
    base_config(c);
    c->sweep_partitions_all = 0;
    c->n_sweep_partitions = 3;
    int p0[] = {2, 3, 3}, p1[] = {1, 4}, p2[] = {2, 2, 2};
    memcpy(c->sweep_partitions[0], p0, sizeof p0);
    memcpy(c->sweep_partitions[1], p1, sizeof p1);
    memcpy(c->sweep_partitions[2], p2, sizeof p2);
    CU_ASSERT_EQUAL(fr_sweep_expand(c, &runs, &n), FR_OK);
    /* K = 4: [4] at beta 0, [2,2] at beta 20; K = 6 has no one-group
     * partition, so [3,3] is fitted at beta 0 too (its only unpenalised
     * fits, which the choice of K reads) */
    CU_ASSERT_EQUAL(n, 4 * 2 * 3);
    CU_ASSERT_EQUAL(runs[0].K, 4); /* K order follows sweep.ranks */
    CU_ASSERT_STRING_EQUAL(runs[0].id, "K4_g4_b0_s0_f0");
    CU_ASSERT_STRING_EQUAL(runs[6].id, "K4_g2+2_b20_s0_f0");
    CU_ASSERT_STRING_EQUAL(runs[12].id, "K6_g3+3_b0_s0_f0");
    CU_ASSERT_STRING_EQUAL(runs[18].id, "K6_g3+3_b20_s0_f0");
    free(runs);

    /* bad sweeps are rejected before any work */
    c->n_sweep_partitions = 1; /* only [3,3]: K = 4 has no partition */
    CU_ASSERT_EQUAL(fr_sweep_expand(c, &runs, &n), FR_EINVAL);
    CU_ASSERT(strstr(fr_error_msg(), "K = 4") != NULL);
    int big[] = {2, 5, 3};
    memcpy(c->sweep_partitions[0], big, sizeof big);
    CU_ASSERT_EQUAL(fr_sweep_expand(c, &runs, &n), FR_EINVAL);
    CU_ASSERT(strstr(fr_error_msg(), "sweep.partitions[0]") != NULL);
    base_config(c);
    c->sweep_seeds[1] = 0; /* repeated seed -> duplicate run ids */
    CU_ASSERT_EQUAL(fr_sweep_expand(c, &runs, &n), FR_EINVAL);
    CU_ASSERT(strstr(fr_error_msg(), "twice") != NULL);
    base_config(c);
    c->sweep_ranks[1] = 4;
    CU_ASSERT_EQUAL(fr_sweep_expand(c, &runs, &n), FR_EINVAL);
    base_config(c);
    c->sweep_betas[1] = 0; /* repeated beta: refused, although [K] is planned at one beta */
    CU_ASSERT_EQUAL(fr_sweep_expand(c, &runs, &n), FR_EINVAL);
    CU_ASSERT(strstr(fr_error_msg(), "sweep.betas[1]") != NULL);
    base_config(c);
    c->sweep_min_group_size = 5; /* K = 4 has no partition */
    CU_ASSERT_EQUAL(fr_sweep_expand(c, &runs, &n), FR_EINVAL);
    /* run ids are never cut (cut ids could collide): 50 groups of 2 fit,
     * 60 groups of 2 make an id too long for FR_SWEEP_ID_MAX and are refused */
    for (int G = 50; G <= 60; G += 10) {
        base_config(c);
        c->n_sweep_ranks = 1;
        c->sweep_ranks[0] = 2 * G;
        c->sweep_partitions_all = 0;
        c->n_sweep_partitions = 1;
        c->sweep_partitions[0][0] = G;
        for (int g = 1; g <= G; ++g) c->sweep_partitions[0][g] = 2;
        runs = NULL;
        fr_err e = fr_sweep_expand(c, &runs, &n);
        if (G == 50) {
            CU_ASSERT_EQUAL(e, FR_OK);
            CU_ASSERT(e != FR_OK || (n > 0 && strlen(runs[n - 1].id) < FR_SWEEP_ID_MAX &&
                                     strstr(runs[n - 1].id, "_b20_s7_f2") != NULL));
        } else {
            CU_ASSERT_EQUAL(e, FR_EINVAL);
            CU_ASSERT(strstr(fr_error_msg(), "run id") != NULL && strstr(fr_error_msg(), "60 groups") != NULL);
            CU_ASSERT_PTR_NULL(runs);
        }
        free(runs);
    }
    free(rc);
    free(c);
}

/* Which (partition, beta) cells a sweep fits: sweep.fit_unpenalised_partitions
 * adds the beta = 0 multi-group runs; the one-group partition is planned
 * once, at the smallest beta however the betas are listed; a run keeps the
 * id it had when the whole grid was planned (resume from older manifests). */
static void test_run_list_cells(void)
{
    fr_config *c = calloc(1, sizeof *c);
    fr_sweep_run *runs = NULL;
    int n = 0;
    base_config(c);
    c->sweep_fit_unpenalised = 1;
    CU_ASSERT_EQUAL_FATAL(fr_sweep_expand(c, &runs, &n), FR_OK);
    /* K=4: [4]@0, [2,2]@0,20; K=6: [6]@0, 3 multi-group x 2 betas -> 10 cells x 2 seeds x 3 folds */
    CU_ASSERT_EQUAL(n, 10 * 2 * 3);
    int zero_multi = 0, one = 0;
    for (int i = 0; i < n; ++i) {
        zero_multi += runs[i].G >= 2 && runs[i].beta == 0;
        one += runs[i].G == 1;
        if (runs[i].G == 1) CU_ASSERT_EQUAL(runs[i].beta, 0);
    }
    CU_ASSERT_EQUAL(zero_multi, 4 * 2 * 3);
    CU_ASSERT_EQUAL(one, 2 * 2 * 3);
    CU_ASSERT_STRING_EQUAL(runs[6].id, "K4_g2+2_b0_s0_f0");
    CU_ASSERT_STRING_EQUAL(runs[12].id, "K4_g2+2_b20_s0_f0");
    free(runs);

    /* betas listed high to low, without 0: [K] at the smallest, 2; every
     * multi-group partition at both */
    base_config(c);
    c->n_sweep_betas = 3;
    c->sweep_betas[0] = 20, c->sweep_betas[1] = 2, c->sweep_betas[2] = 5;
    CU_ASSERT_EQUAL_FATAL(fr_sweep_expand(c, &runs, &n), FR_OK);
    CU_ASSERT_EQUAL(n, (2 + 4 * 3) * 2 * 3);
    CU_ASSERT_STRING_EQUAL(runs[0].id, "K4_g4_b2_s0_f0");
    for (int i = 0; i < n; ++i)
        if (runs[i].G == 1) CU_ASSERT_EQUAL(runs[i].beta, 2);
    free(runs);

    /* one beta: nothing left out; beta 0 alone: only the one-group runs
     * (with the option: every partition) */
    base_config(c);
    c->n_sweep_betas = 1;
    c->sweep_betas[0] = 20;
    CU_ASSERT_EQUAL_FATAL(fr_sweep_expand(c, &runs, &n), FR_OK);
    CU_ASSERT_EQUAL(n, 6 * 2 * 3);
    free(runs);
    c->sweep_betas[0] = 0;
    CU_ASSERT_EQUAL_FATAL(fr_sweep_expand(c, &runs, &n), FR_OK);
    CU_ASSERT_EQUAL(n, 2 * 2 * 3);
    free(runs);
    c->sweep_fit_unpenalised = 1;
    CU_ASSERT_EQUAL_FATAL(fr_sweep_expand(c, &runs, &n), FR_OK);
    CU_ASSERT_EQUAL(n, 6 * 2 * 3);
    free(runs);
    free(c);
}

static void test_manifest_roundtrip(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/m.manifest", fr_test_tmpdir());
    fr_sweep_record r[3];
    memset(r, 0, sizeof r);
    snprintf(r[0].id, sizeof r[0].id, "K6_g3+3_b20_s0_f0");
    r[0].status = FR_RUN_DONE;
    r[0].heldout_nll = 1.0 / 3.0;
    r[0].heldout_r2 = 0.8123456789012345;
    r[0].heldout_pc = NAN;
    r[0].group_latent_r2 = -1e-300;
    r[0].train_nll = 12345.678901234567;
    r[0].pc_obs = 0.1;
    r[0].pc_null_mean = 0.7;
    r[0].pc_null_sd = 0.05;
    r[0].epochs_done = 300;
    r[0].seconds = 12.5;
    r[0].objective = -11.25;
    r[0].coupling = 0.0123456789;
    r[0].co_bps = 0.125;
    r[0].co_r2 = NAN;
    r[0].behavior_align_r2 = 0.7123456789012345;
    r[0].behavior_align_all_r2 = -2.5e-7;
    snprintf(r[1].id, sizeof r[1].id, "K6_g6_b20_s0_f0");
    r[1].status = FR_RUN_FAILED;
    snprintf(r[1].reason, sizeof r[1].reason, "loss is nan at epoch 3,\tstep 7\nsecond line");
    r[1].heldout_nll = NAN;
    snprintf(r[2].id, sizeof r[2].id, "pending");
    r[2].status = FR_RUN_PENDING;
    r[0].predictability = 0.4321;
    fr_sweep_rule rule;
    fr_sweep_rule_defaults(&rule);
    rule.n_coupling_lags = 2, rule.coupling_lags[1] = 4;
    char ro[256], ro_back[256];
    fr_sweep_readout_text(&rule, ro, sizeof ro);
    CU_ASSERT_STRING_EQUAL(ro, "null_samples=8 null_max_points=256 null_nmc=4 coupling_lags=1,4");
    CU_ASSERT_EQUAL_FATAL(fr_sweep_manifest_write(path, r, 3, ro), FR_OK);
    fr_sweep_record *back = NULL;
    int n = 0;
    CU_ASSERT_EQUAL_FATAL(fr_sweep_manifest_read(path, &back, &n, ro_back, sizeof ro_back), FR_OK);
    CU_ASSERT_STRING_EQUAL(ro_back, ro);
    CU_ASSERT(back[0].predictability == r[0].predictability);
    CU_ASSERT_EQUAL_FATAL(n, 2); /* pending runs are not written */
    CU_ASSERT_STRING_EQUAL(back[0].id, r[0].id);
    CU_ASSERT_EQUAL(back[0].status, FR_RUN_DONE);
    CU_ASSERT(back[0].heldout_nll == r[0].heldout_nll);
    CU_ASSERT(back[0].heldout_r2 == r[0].heldout_r2);
    CU_ASSERT(isnan(back[0].heldout_pc));
    CU_ASSERT(back[0].group_latent_r2 == r[0].group_latent_r2);
    CU_ASSERT(back[0].train_nll == r[0].train_nll);
    CU_ASSERT(back[0].pc_null_sd == r[0].pc_null_sd);
    CU_ASSERT_EQUAL(back[0].epochs_done, 300);
    CU_ASSERT(back[0].objective == r[0].objective);
    CU_ASSERT(back[0].coupling == r[0].coupling);
    CU_ASSERT(back[0].co_bps == r[0].co_bps && isnan(back[0].co_r2));
    CU_ASSERT(back[0].behavior_align_r2 == r[0].behavior_align_r2);
    CU_ASSERT(back[0].behavior_align_all_r2 == r[0].behavior_align_all_r2);
    CU_ASSERT_EQUAL(back[1].status, FR_RUN_FAILED);
    CU_ASSERT_STRING_EQUAL(back[1].reason, "loss is nan at epoch 3, step 7 second line");
    /* matching to a run list: done beats failed, absent = pending */
    fr_sweep_run runs[3];
    memset(runs, 0, sizeof runs);
    snprintf(runs[0].id, sizeof runs[0].id, "K6_g6_b20_s0_f0");
    snprintf(runs[1].id, sizeof runs[1].id, "K6_g3+3_b20_s0_f0");
    snprintf(runs[2].id, sizeof runs[2].id, "K6_g2+2+2_b20_s0_f0");
    fr_sweep_record all[3], m[3];
    all[0] = back[0];
    all[1] = back[1];
    all[2] = back[1];
    all[2].status = FR_RUN_DONE;
    all[2].heldout_nll = 2.0;
    fr_sweep_records_match(runs, 3, all, 3, m);
    CU_ASSERT_EQUAL(m[0].status, FR_RUN_DONE);
    CU_ASSERT_EQUAL(m[0].heldout_nll, 2.0);
    CU_ASSERT_EQUAL(m[1].status, FR_RUN_DONE);
    CU_ASSERT_EQUAL(m[2].status, FR_RUN_PENDING);
    free(back);
    /* a missing manifest is empty, a foreign file is refused */
    char other[1100];
    snprintf(other, sizeof other, "%s/none", fr_test_tmpdir());
    CU_ASSERT_EQUAL(fr_sweep_manifest_read(other, &back, &n, NULL, 0), FR_OK);
    CU_ASSERT_EQUAL(n, 0);
    FILE *f = fopen(other, "w");
    fprintf(f, "hello\n");
    fclose(f);
    CU_ASSERT_EQUAL(fr_sweep_manifest_read(other, &back, &n, NULL, 0), FR_EINVAL);
    /* a version-1 manifest (before objective and coupling) still reads */
    f = fopen(other, "w");
    fprintf(f, "# facrnn sweep manifest v1\n# id\tstatus\t...\n"
               "K4_g2+2_b20_s0_f0\tdone\t-1.5\t0.9\t0.1\tnan\t-1.6\t0.1\t0.8\t0.05\t100\t3.5\t\n");
    fclose(f);
    CU_ASSERT_EQUAL_FATAL(fr_sweep_manifest_read(other, &back, &n, ro_back, sizeof ro_back), FR_OK);
    CU_ASSERT_STRING_EQUAL(ro_back, ""); /* no readout line before v5 */
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_EQUAL(back[0].heldout_nll, -1.5);
    CU_ASSERT_EQUAL(back[0].seconds, 3.5);
    CU_ASSERT(isnan(back[0].objective) && isnan(back[0].coupling));
    CU_ASSERT(isnan(back[0].behavior_align_r2) && isnan(back[0].behavior_align_all_r2));
    free(back);
    /* a version-3 manifest (before the behaviour alignment) still reads */
    f = fopen(other, "w");
    fprintf(f, "# facrnn sweep manifest v3\n# id\tstatus\t...\n"
               "K4_g2+2_b20_s0_f0\tdone\t-1.5\t0.9\t0.1\tnan\t-1.6\t0.1\t0.8\t0.05\t100\t3.5\t-2\t0.01\t0.3\t0.4\t\n");
    fclose(f);
    CU_ASSERT_EQUAL_FATAL(fr_sweep_manifest_read(other, &back, &n, NULL, 0), FR_OK);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_EQUAL(back[0].co_bps, 0.3);
    CU_ASSERT_EQUAL(back[0].co_r2, 0.4);
    CU_ASSERT(isnan(back[0].behavior_align_r2) && isnan(back[0].behavior_align_all_r2));
    CU_ASSERT(isnan(back[0].predictability));
    free(back);
}

/* Two independent non-Gaussian 2-D sources (uniform square, ring): PC of the
 * true partition is near 0 and clearly below random rotations; a Gaussian
 * cloud shows no such gap. */
static void test_pc_null(void)
{
    int n = 200, K = 4, groups[2] = {2, 2};
    double *mu = calloc((size_t)n * K, sizeof *mu), *g = calloc((size_t)n * K, sizeof *g);
    for (int i = 0; i < n; ++i) {
        double th = 6.283185307179586 * fr_rng_uniform(3, FR_STREAM_SYNTH, 0, (uint64_t)i);
        mu[i * K + 0] = 4 * (fr_rng_uniform(3, FR_STREAM_SYNTH, 1, (uint64_t)i) - 0.5);
        mu[i * K + 1] = 4 * (fr_rng_uniform(3, FR_STREAM_SYNTH, 2, (uint64_t)i) - 0.5);
        mu[i * K + 2] = 2 * cos(th);
        mu[i * K + 3] = 2 * sin(th);
        for (int k = 0; k < K; ++k) g[i * K + k] = fr_rng_normal(3, FR_STREAM_SYNTH, 10 + k, (uint64_t)i);
    }
    fr_sweep_rule rule;
    fr_sweep_rule_defaults(&rule);
    double obs, nm, nsd, obs2, nm2, nsd2;
    CU_ASSERT_EQUAL(fr_sweep_pc_null(K, 2, groups, n, mu, 0.3, &rule, 5, &obs, &nm, &nsd), FR_OK);
    CU_ASSERT(isfinite(obs) && isfinite(nm) && nsd >= 0);
    CU_ASSERT(obs < 0.5 * nm);
    /* deterministic */
    CU_ASSERT_EQUAL(fr_sweep_pc_null(K, 2, groups, n, mu, 0.3, &rule, 5, &obs2, &nm2, &nsd2), FR_OK);
    CU_ASSERT(obs == obs2 && nm == nm2 && nsd == nsd2);
    /* an isotropic Gaussian: rotations change nothing, independence ~ 0 */
    CU_ASSERT_EQUAL(fr_sweep_pc_null(K, 2, groups, n, g, 0.3, &rule, 5, &obs, &nm, &nsd), FR_OK);
    fr_sweep_run run = {.G = 2};
    fr_sweep_record rec = {.pc_obs = obs, .pc_null_mean = nm};
    CU_ASSERT(fabs(fr_sweep_independence(&run, &rec)) < 0.5);
    /* G = 1: PC is 0 by construction, no null, no score */
    int one[1] = {4};
    CU_ASSERT_EQUAL(fr_sweep_pc_null(K, 1, one, n, mu, 0.3, &rule, 5, &obs, &nm, &nsd), FR_OK);
    CU_ASSERT(obs == 0 && isnan(nm));
    run.G = 1;
    rec.pc_obs = 0;
    rec.pc_null_mean = NAN;
    CU_ASSERT(isnan(fr_sweep_independence(&run, &rec)));
    free(mu);
    free(g);
}

/* A hand-made table: configs (K, groups), 3 folds each, given NLL and PC. */
typedef struct {
    int K, G, groups[3];
    double nll[3];
    double pc_obs, pc_null; /* same for every fold */
    double coup;            /* dynamical coupling, + 0.005 per fold */
} hand;

static void build(const hand *h, int nh, fr_sweep_run *runs, fr_sweep_record *recs)
{
    int n = 0;
    for (int c = 0; c < nh; ++c)
        for (int f = 0; f < 3; ++f, ++n) {
            memset(&runs[n], 0, sizeof runs[n]);
            memset(&recs[n], 0, sizeof recs[n]);
            runs[n].index = n;
            runs[n].K = h[c].K;
            runs[n].G = h[c].G;
            memcpy(runs[n].groups, h[c].groups, sizeof h[c].groups);
            runs[n].beta = 20;
            runs[n].fold = f;
            recs[n].status = FR_RUN_DONE;
            recs[n].heldout_nll = h[c].nll[f];
            recs[n].pc_obs = h[c].G > 1 ? h[c].pc_obs + 0.01 * f : 0;
            recs[n].pc_null_mean = h[c].G > 1 ? h[c].pc_null : NAN;
            recs[n].coupling = h[c].G > 1 ? h[c].coup + 0.005 * f : 0;
            recs[n].predictability = h[c].G > 1 ? 0.5 : NAN;
            recs[n].objective = h[c].nll[f];
        }
}

/* The selection's confidence: each fold x seed fit alone and resamples of
 * the folds, deterministic in the seed. */
static void test_confidence(void)
{
    fr_sweep_rule rule;
    fr_sweep_rule_defaults(&rule);
    fr_sweep_run runs[30];
    fr_sweep_record recs[30];
    fr_sweep_selection sel;
    fr_sweep_confidence c1, c2;
    /* K = 4 (2+2) wins only through the one-SE band: every fold alone picks
     * K = 6 (lower NLL, 3+3 supported), and so does a resample that draws
     * one fold three times (SE 0). */
    hand t1[] = {
        {4, 1, {4}, {1.00, 1.10, 0.90}, 0, 0, 0},
        {4, 2, {2, 2}, {1.02, 1.12, 0.92}, 0.1, 0.5, 0.05},
        {6, 1, {6}, {0.98, 1.08, 0.88}, 0, 0, 0},
        {6, 2, {3, 3}, {1.5, 1.6, 1.4}, 0.1, 0.5, 0.05},
    };
    build(t1, 4, runs, recs);
    CU_ASSERT_EQUAL_FATAL(fr_sweep_select(runs, recs, 12, &rule, &sel), FR_OK);
    CU_ASSERT_EQUAL(sel.ranked[sel.chosen].K, 4);
    CU_ASSERT_EQUAL_FATAL(fr_sweep_confidence_of(runs, recs, 12, &rule, &sel, 7, &c1), FR_OK);
    CU_ASSERT_EQUAL(c1.units, 3);
    CU_ASSERT_EQUAL(c1.units_agree, 0);
    CU_ASSERT_EQUAL(c1.boot_n, 200);
    CU_ASSERT(c1.boot_agree > 0 && c1.boot_agree < 200);
    CU_ASSERT_STRING_EQUAL(c1.alt, "K=6 3+3");
    CU_ASSERT_EQUAL(c1.alt_count, 200 - c1.boot_agree);
    CU_ASSERT(strstr(c1.text, "K=4 2+2 chosen by 0 of 3 fold x seed fits alone") != NULL);
    /* 3 draws of 3 folds give one fold thrice with probability 3/27: about 22 of 200 */
    CU_ASSERT(c1.alt_count >= 5 && c1.alt_count <= 45);
    CU_ASSERT_EQUAL_FATAL(fr_sweep_confidence_of(runs, recs, 12, &rule, &sel, 7, &c2), FR_OK);
    CU_ASSERT_EQUAL(c1.boot_agree, c2.boot_agree);
    fr_sweep_selection_free(&sel);
    /* A clear answer: every fold alone and every resample agree. */
    hand t3[] = {
        {6, 1, {6}, {0.90, 1.00, 0.80}, 0, 0, 0},
        {6, 2, {3, 3}, {1.00, 1.10, 0.90}, 0.1, 0.6, 0.05},
        {6, 3, {2, 2, 2}, {1.50, 1.60, 1.40}, 0.1, 0.6, 0.10},
    };
    build(t3, 3, runs, recs);
    CU_ASSERT_EQUAL_FATAL(fr_sweep_select(runs, recs, 9, &rule, &sel), FR_OK);
    rule.bootstrap = 50;
    CU_ASSERT_EQUAL_FATAL(fr_sweep_confidence_of(runs, recs, 9, &rule, &sel, 7, &c1), FR_OK);
    CU_ASSERT_EQUAL(c1.units_agree, 3);
    CU_ASSERT_EQUAL(c1.boot_n, 50);
    CU_ASSERT_EQUAL(c1.boot_agree, 50);
    CU_ASSERT_EQUAL(c1.alt_count, 0);
    CU_ASSERT_STRING_EQUAL(c1.text, "K=6 2+2+2 chosen by 3 of 3 fold x seed fits alone and in 50 of 50 resamples of the 3 folds");
    /* bootstrap 0: the fits alone only */
    rule.bootstrap = 0;
    CU_ASSERT_EQUAL_FATAL(fr_sweep_confidence_of(runs, recs, 9, &rule, &sel, 7, &c1), FR_OK);
    CU_ASSERT_EQUAL(c1.boot_n, 0);
    CU_ASSERT_STRING_EQUAL(c1.text, "K=6 2+2+2 chosen by 3 of 3 fold x seed fits alone");
    fr_sweep_selection_free(&sel);
}

static void test_selection(void)
{
    fr_sweep_rule rule;
    fr_sweep_rule_defaults(&rule);
    fr_sweep_run runs[30];
    fr_sweep_record recs[30];
    fr_sweep_selection sel;
    /* K = 4 is within one SE of the best (K = 6), so K = 4 is chosen; at
     * K = 4 the lrRNN [4] has PC = 0 by construction but [2,2] is supported
     * (independence ~0.8, coupling 0.05) -> [2,2]; the G = 1 trap. */
    hand t1[] = {
        {4, 1, {4}, {1.00, 1.10, 0.90}, 0, 0, 0},
        {4, 2, {2, 2}, {1.02, 1.12, 0.92}, 0.1, 0.5, 0.05},
        {6, 1, {6}, {0.98, 1.08, 0.88}, 0, 0, 0},
        {6, 2, {3, 3}, {1.5, 1.6, 1.4}, 0.1, 0.5, 0.05},
        {2, 1, {2}, {3.0, 3.1, 2.9}, 0, 0, 0},
    };
    build(t1, 5, runs, recs);
    recs[14].status = FR_RUN_FAILED; /* failed runs are ignored */
    recs[14].heldout_nll = -100;
    CU_ASSERT_EQUAL_FATAL(fr_sweep_select(runs, recs, 15, &rule, &sel), FR_OK);
    CU_ASSERT_EQUAL(sel.n, 5);
    CU_ASSERT_FATAL(sel.chosen >= 0);
    CU_ASSERT_EQUAL(sel.ranked[sel.chosen].K, 4);
    CU_ASSERT_EQUAL(sel.ranked[sel.chosen].G, 2);
    CU_ASSERT(sel.ranked[sel.chosen].supported);
    CU_ASSERT_EQUAL(sel.ranked[sel.chosen].n_folds, 3);
    FR_ASSERT_CLOSE(sel.ranked[sel.chosen].coup_mean, 0.055, 1e-12, 0);
    FR_ASSERT_CLOSE(sel.ranked[sel.chosen].coup_se, 0.005 / sqrt(3.0), 1e-9, 0);
    CU_ASSERT_EQUAL(sel.ranked[sel.best].K, 6);
    CU_ASSERT_EQUAL(sel.ranked[sel.best].G, 1);
    FR_ASSERT_CLOSE(sel.ranked[sel.best].nll_mean, 0.98, 1e-12, 0);
    FR_ASSERT_CLOSE(sel.ranked[sel.best].nll_se, 0.1 / sqrt(3.0), 1e-9, 0);
    /* ranked by NLL */
    for (int c = 1; c < sel.n; ++c) CU_ASSERT(sel.ranked[c - 1].nll_mean <= sel.ranked[c].nll_mean);
    CU_ASSERT(strstr(sel.rule, "standard error") != NULL);
    CU_ASSERT(strstr(sel.rule, "coupling") != NULL);
    fr_sweep_selection_free(&sel);

    /* No multi-group partition is independent at equal times (PC close to
     * the null), although uncoupled over time: G = 1. */
    hand t2[] = {
        {4, 1, {4}, {1.00, 1.10, 0.90}, 0, 0, 0},
        {4, 2, {2, 2}, {0.99, 1.09, 0.89}, 0.45, 0.5, 0.01},
        {4, 2, {3, 1}, {0.99, 1.09, 0.89}, 0.40, 0.5, 0.01},
    };
    build(t2, 3, runs, recs);
    CU_ASSERT_EQUAL_FATAL(fr_sweep_select(runs, recs, 9, &rule, &sel), FR_OK);
    CU_ASSERT_EQUAL(sel.ranked[sel.chosen].G, 1);
    CU_ASSERT(strstr(sel.why, "G = 1") != NULL);
    fr_sweep_selection_free(&sel);

    /* Several supported: the most groups wins, whatever its NLL (the
     * penalty's price is not evidence); a partition that is independent at
     * equal times but coupled over time (4+1+1) is not supported. */
    hand t3[] = {
        {6, 1, {6}, {0.90, 1.00, 0.80}, 0, 0, 0},
        {6, 2, {3, 3}, {1.00, 1.10, 0.90}, 0.1, 0.6, 0.05},
        {6, 3, {2, 2, 2}, {1.50, 1.60, 1.40}, 0.1, 0.6, 0.10},
        {6, 3, {4, 1, 1}, {1.00, 1.10, 0.90}, 0.0, 0.6, 0.60},
    };
    build(t3, 4, runs, recs);
    CU_ASSERT_EQUAL_FATAL(fr_sweep_select(runs, recs, 12, &rule, &sel), FR_OK);
    CU_ASSERT_EQUAL(sel.ranked[sel.chosen].G, 3);
    CU_ASSERT_EQUAL(sel.ranked[sel.chosen].groups[0], 2);
    CU_ASSERT(strstr(sel.why, "most groups") != NULL);
    for (int c = 0; c < sel.n; ++c)
        if (sel.ranked[c].groups[0] == 4) CU_ASSERT(!sel.ranked[c].supported);
    fr_sweep_selection_free(&sel);
    /* the same with the split coupled over time: back to 3+3 */
    t3[2].coup = 0.45;
    build(t3, 4, runs, recs);
    CU_ASSERT_EQUAL_FATAL(fr_sweep_select(runs, recs, 12, &rule, &sel), FR_OK);
    CU_ASSERT_EQUAL(sel.ranked[sel.chosen].G, 2);
    CU_ASSERT_EQUAL(sel.ranked[sel.chosen].groups[0], 3);
    fr_sweep_selection_free(&sel);
    /* a coupling just above the threshold by one SE is not supported */
    rule.max_coupling = 0.055;
    build(t3, 4, runs, recs);
    CU_ASSERT_EQUAL_FATAL(fr_sweep_select(runs, recs, 12, &rule, &sel), FR_OK);
    CU_ASSERT_EQUAL(sel.ranked[sel.chosen].G, 1);
    fr_sweep_selection_free(&sel);
    fr_sweep_rule_defaults(&rule);

    /* Predictability: a partition whose weakest group does not predict its
     * own next state (latents without dynamics) is no sub-circuit, however
     * independent and uncoupled: 2+2+2 falls back to 3+3. A manifest
     * without the number (NaN) is not tested on it. */
    t3[2].coup = 0.10;
    rule.min_predictability = 0.2;
    build(t3, 4, runs, recs);
    for (int i = 6; i < 9; ++i) recs[i].predictability = 0.21 + 0.03 * (i - 6); /* 0.24 +- 0.017: passes */
    CU_ASSERT_EQUAL_FATAL(fr_sweep_select(runs, recs, 12, &rule, &sel), FR_OK);
    CU_ASSERT_EQUAL(sel.ranked[sel.chosen].G, 3);
    fr_sweep_selection_free(&sel);
    for (int i = 6; i < 9; ++i) recs[i].predictability = 0.19 + 0.03 * (i - 6); /* 0.22 - 0.017 = 0.203 */
    CU_ASSERT_EQUAL_FATAL(fr_sweep_select(runs, recs, 12, &rule, &sel), FR_OK);
    CU_ASSERT_EQUAL(sel.ranked[sel.chosen].G, 3);
    fr_sweep_selection_free(&sel);
    for (int i = 6; i < 9; ++i) recs[i].predictability = 0.02;
    CU_ASSERT_EQUAL_FATAL(fr_sweep_select(runs, recs, 12, &rule, &sel), FR_OK);
    CU_ASSERT_EQUAL(sel.ranked[sel.chosen].G, 2);
    CU_ASSERT_EQUAL(sel.ranked[sel.chosen].groups[0], 3);
    for (int c = 0; c < sel.n; ++c)
        if (sel.ranked[c].G == 3 && sel.ranked[c].groups[0] == 2) {
            CU_ASSERT(!sel.ranked[c].supported);
            FR_ASSERT_CLOSE(sel.ranked[c].pred_mean, 0.02, 1e-12, 0);
        }
    fr_sweep_selection_free(&sel);
    for (int i = 0; i < 12; ++i) recs[i].predictability = NAN;
    CU_ASSERT_EQUAL_FATAL(fr_sweep_select(runs, recs, 12, &rule, &sel), FR_OK);
    CU_ASSERT_EQUAL(sel.ranked[sel.chosen].G, 3);
    fr_sweep_selection_free(&sel);
    fr_sweep_rule_defaults(&rule);

    /* beta = 0 rows are the G = 1 fit under another label: never
     * candidates, even when they look independent and uncoupled; among the
     * penalised 3+3 and 4+2 (same number of groups) the lower NLL wins. */
    hand t4[] = {
        {6, 1, {6}, {1.00, 1.10, 0.90}, 0, 0, 0},
        {6, 2, {4, 2}, {1.00, 1.10, 0.90}, 0.1, 0.6, 0.01},    /* beta 0 */
        {6, 2, {3, 3}, {1.00, 1.10, 0.90}, 0.1, 0.6, 0.01},    /* beta 0 */
        {6, 2, {3, 3}, {1.60, 1.70, 1.50}, 0.1, 0.6, 0.05},    /* beta 20 */
        {6, 2, {4, 2}, {1.90, 2.00, 1.80}, 0.1, 0.6, 0.05},    /* beta 20 */
        {4, 1, {4}, {3.00, 3.10, 2.90}, 0, 0, 0},
    };
    build(t4, 6, runs, recs);
    for (int i = 3; i < 9; ++i) runs[i].beta = 0;
    CU_ASSERT_EQUAL_FATAL(fr_sweep_select(runs, recs, 18, &rule, &sel), FR_OK);
    CU_ASSERT_EQUAL(sel.ranked[sel.chosen].K, 6);
    CU_ASSERT_EQUAL(sel.ranked[sel.chosen].G, 2);
    CU_ASSERT_EQUAL(sel.ranked[sel.chosen].groups[0], 3);
    CU_ASSERT_EQUAL(sel.ranked[sel.chosen].beta, 20);
    FR_ASSERT_CLOSE(sel.ranked[sel.chosen].nll_mean, 1.6, 1e-12, 0);
    fr_sweep_selection_free(&sel);

    /* Every penalised partition is coupled over time (a forced split of
     * one coupled system): G = 1, and the message names the least coupled. */
    hand t5[] = {
        {6, 1, {6}, {1.00, 1.10, 0.90}, 0, 0, 0},
        {6, 2, {3, 3}, {1.50, 1.60, 1.40}, 0.1, 0.6, 0.40},
        {6, 2, {4, 2}, {1.90, 2.00, 1.80}, 0.1, 0.6, 0.70},
    };
    build(t5, 3, runs, recs);
    CU_ASSERT_EQUAL_FATAL(fr_sweep_select(runs, recs, 9, &rule, &sel), FR_OK);
    CU_ASSERT_EQUAL(sel.ranked[sel.chosen].G, 1);
    CU_ASSERT(strstr(sel.why, "least coupled: 3+3") != NULL);
    fr_sweep_selection_free(&sel);

    /* Seeds: per fold the evidence is the seed with the lowest training
     * objective. Two seeds of 3+3 per fold; seed 1 optimised well (lower
     * objective, uncoupled), seed 0 got stuck (coupled). */
    hand t6[] = {
        {6, 1, {6}, {1.00, 1.10, 0.90}, 0, 0, 0},
        {6, 2, {3, 3}, {1.50, 1.60, 1.40}, 0.1, 0.6, 0.60}, /* seed 0 */
        {6, 2, {3, 3}, {1.40, 1.50, 1.30}, 0.1, 0.6, 0.05}, /* seed 1 */
    };
    build(t6, 3, runs, recs);
    for (int i = 6; i < 9; ++i) runs[i].seed = 1;
    CU_ASSERT_EQUAL_FATAL(fr_sweep_select(runs, recs, 9, &rule, &sel), FR_OK);
    CU_ASSERT_EQUAL(sel.ranked[sel.chosen].G, 2);
    CU_ASSERT_EQUAL(sel.ranked[sel.chosen].n, 6);
    CU_ASSERT_EQUAL(sel.ranked[sel.chosen].n_folds, 3);
    FR_ASSERT_CLOSE(sel.ranked[sel.chosen].coup_mean, 0.055, 1e-12, 0);
    FR_ASSERT_CLOSE(sel.ranked[sel.chosen].nll_mean, 1.45, 1e-12, 0); /* NLL: every run */
    fr_sweep_selection_free(&sel);
    for (int i = 3; i < 9; ++i) recs[i].objective = i < 6 ? -5 : 5; /* now seed 0 is the better optimum */
    CU_ASSERT_EQUAL_FATAL(fr_sweep_select(runs, recs, 9, &rule, &sel), FR_OK);
    CU_ASSERT_EQUAL(sel.ranked[sel.chosen].G, 1);
    fr_sweep_selection_free(&sel);

    /* Nothing finished: no choice, no crash. */
    for (int i = 0; i < 9; ++i) recs[i].status = FR_RUN_FAILED;
    CU_ASSERT_EQUAL(fr_sweep_select(runs, recs, 9, &rule, &sel), FR_OK);
    CU_ASSERT_EQUAL(sel.n, 0);
    CU_ASSERT_EQUAL(sel.chosen, -1);
    fr_sweep_selection_free(&sel);
}

static void reg(void)
{
    CU_pSuite s = CU_add_suite("sweep", NULL, NULL);
    CU_add_test(s, "integer partitions", test_partition_counts);
    CU_add_test(s, "run list, ids, queue, slices, validation", test_run_list);
    CU_add_test(s, "run list cells: unpenalised partitions, one group once", test_run_list_cells);
    CU_add_test(s, "manifest round trip", test_manifest_roundtrip);
    CU_add_test(s, "independence null", test_pc_null);
    CU_add_test(s, "selection rule", test_selection);
    CU_add_test(s, "selection confidence", test_confidence);
}

int main(int argc, char **argv) { return fr_test_main(argc, argv, reg); }
