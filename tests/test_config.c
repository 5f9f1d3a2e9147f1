/* Tests for config: defaults, parsing, --set overrides, every class of bad
 * config (the error names the key), resolution, the YAML round trip, the
 * fit hash and the help text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "facrnn/config.h"
#include "facrnn/model.h"
#include "testlib.h"

static fr_config g_a, g_b; /* large: keep them off the stack */
static char g_yaml[FR_CFG_YAML_MAX], g_yaml2[FR_CFG_YAML_MAX];

static int has(const char *phrase)
{
    if (strstr(fr_error_msg(), phrase)) return 1;
    fprintf(stderr, "  message '%s' lacks '%s'\n", fr_error_msg(), phrase);
    return 0;
}

static const char *write_file(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", fr_test_tmpdir(), name);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_defaults(void)
{
    fr_config_defaults(&g_a);
    CU_ASSERT_STRING_EQUAL(g_a.data_path, "");
    CU_ASSERT_STRING_EQUAL(g_a.observation, "");
    CU_ASSERT_EQUAL(g_a.rank, 6);
    CU_ASSERT_EQUAL(g_a.n_groups, 0);
    CU_ASSERT_EQUAL(g_a.lags, 1);
    CU_ASSERT_EQUAL(g_a.psi_learned, 0);
    CU_ASSERT_EQUAL(g_a.n_psi, 0);
    CU_ASSERT_STRING_EQUAL(g_a.nonlinearity, "tanh");
    CU_ASSERT_STRING_EQUAL(g_a.link, "softplus");
    CU_ASSERT_EQUAL(g_a.inputs, 1);
    CU_ASSERT(g_a.encoder_std <= 0);
    CU_ASSERT_STRING_EQUAL(g_a.init, "auto");
    CU_ASSERT_STRING_EQUAL(g_a.optimizer, "adamw");
    CU_ASSERT_EQUAL(g_a.lr, 3e-3);
    CU_ASSERT_EQUAL(g_a.weight_decay, 0.0);
    CU_ASSERT_EQUAL(g_a.batch_size, 128);
    CU_ASSERT_EQUAL(g_a.epochs, 400);
    CU_ASSERT_EQUAL(g_a.beta, 20.0);
    CU_ASSERT_EQUAL(g_a.seed, 0);
    CU_ASSERT_EQUAL(g_a.eval_every, 10);
    CU_ASSERT_EQUAL(g_a.checkpoint_every, 50);
    CU_ASSERT_EQUAL(g_a.restarts, 8);
    CU_ASSERT_EQUAL(g_a.log_every, 50);
    CU_ASSERT_EQUAL(g_a.folds, 5);
    CU_ASSERT_EQUAL(g_a.fold, 0);
    CU_ASSERT_EQUAL(g_a.n_sweep_ranks, 0);
    CU_ASSERT_EQUAL(g_a.sweep_partitions_all, 0);
    CU_ASSERT_EQUAL(g_a.n_sweep_partitions, 0);
    CU_ASSERT_EQUAL(g_a.sweep_max_groups, 0);
    CU_ASSERT_EQUAL(g_a.sweep_min_group_size, 1);
    CU_ASSERT_EQUAL(g_a.n_sweep_betas, 0);
    CU_ASSERT_EQUAL(g_a.n_sweep_seeds, 0);
    CU_ASSERT_EQUAL(g_a.ranks_per_fit, 1);
    CU_ASSERT_EQUAL(g_a.sweep_se_rule, 1.0);
    CU_ASSERT_EQUAL(g_a.sweep_min_independence, 0.25);
    CU_ASSERT_EQUAL(g_a.n_sweep_coupling_lags, 2);
    CU_ASSERT_EQUAL(g_a.sweep_coupling_lags[0], 1);
    CU_ASSERT_EQUAL(g_a.sweep_coupling_lags[1], 4);
    CU_ASSERT_EQUAL(g_a.sweep_min_predictability, 0.2);
    CU_ASSERT_EQUAL(g_a.sweep_max_coupling, 0.2);
    CU_ASSERT_EQUAL(g_a.sweep_null_samples, 8);
    CU_ASSERT_EQUAL(g_a.sweep_null_max_points, 256);
    CU_ASSERT_EQUAL(g_a.sweep_null_nmc, 4);
    CU_ASSERT_STRING_EQUAL(g_a.output_path, "facrnn_results.h5");
    CU_ASSERT_STRING_EQUAL(g_a.checkpoint_dir, "");
    CU_ASSERT_EQUAL(g_a.connectivity_max_n, 2000);
}

/* An empty document is the defaults, resolved. */
static void test_empty_resolves(void)
{
    CU_ASSERT_EQUAL_FATAL(fr_config_from_yaml_text("", &g_a), FR_OK);
    CU_ASSERT_EQUAL(g_a.n_groups, 1);
    CU_ASSERT_EQUAL(g_a.groups[0], 6);
    CU_ASSERT_EQUAL(g_a.n_psi, 1);
    CU_ASSERT_EQUAL(g_a.psi[0], 1.0);
    CU_ASSERT_STRING_EQUAL(g_a.checkpoint_dir, "facrnn_results.h5.ckpt");
    CU_ASSERT_EQUAL(fr_config_from_yaml_text("# only a comment\n", &g_a), FR_OK);
    CU_ASSERT_EQUAL(fr_config_from_yaml_text("model:\ntrain: ~\n", &g_a), FR_OK);
    CU_ASSERT_EQUAL(g_a.rank, 6);
}

static const char *good_yaml =
    "# a good config\n"
    "data:\n"
    "  path: data/lt.h5\n"
    "  observation: poisson\n"
    "model:\n"
    "  rank: 6\n"
    "  groups: [3, 2, 1]\n"
    "  lags: 3\n"
    "  psi:\n"
    "    - 0.5\n"
    "    - 0.25\n"
    "    - 0.25\n"
    "  nonlinearity: identity\n"
    "  link: exp\n"
    "  inputs: no\n"
    "  encoder_std: 0.3\n"
    "  init: uniform\n"
    "train:\n"
    "  optimizer: adam\n"
    "  lr: 3e-3\n"
    "  weight_decay: 1.0e-4\n"
    "  batch_size: 64\n"
    "  epochs: 12\n"
    "  beta: 2\n"
    "  seed: 123456789012\n"
    "  eval_every: 3\n"
    "  checkpoint_every: 0\n"
    "  restarts: 4\n"
    "  log_every: 2\n"
    "cv: {folds: 3, fold: 2}\n"
    "sweep:\n"
    "  ranks: [4, 6]\n"
    "  partitions: [[2, 2], [3, 3], [6]]\n"
    "  max_groups: 3\n"
    "  min_group_size: 2\n"
    "  betas: [0, 20]\n"
    "  seeds: [0, 1, 7]\n"
    "  ranks_per_fit: 2\n"
    "  se_rule: 0.5\n"
    "  min_independence: 0.3\n"
    "  null_samples: 16\n"
    "  null_max_points: 512\n"
    "  null_nmc: 2\n"
    "output:\n"
    "  path: out/res.h5\n"
    "  connectivity_max_n: 50\n";

static void test_good_config(void)
{
    CU_ASSERT_EQUAL_FATAL(fr_config_from_yaml_text(good_yaml, &g_a), FR_OK);
    CU_ASSERT_STRING_EQUAL(g_a.data_path, "data/lt.h5");
    CU_ASSERT_STRING_EQUAL(g_a.observation, "poisson");
    CU_ASSERT_EQUAL(g_a.n_groups, 3);
    CU_ASSERT(g_a.groups[0] == 3 && g_a.groups[1] == 2 && g_a.groups[2] == 1);
    CU_ASSERT_EQUAL(g_a.lags, 3);
    CU_ASSERT_EQUAL(g_a.n_psi, 3);
    CU_ASSERT(g_a.psi[0] == 0.5 && g_a.psi[1] == 0.25 && g_a.psi[2] == 0.25);
    CU_ASSERT_STRING_EQUAL(g_a.nonlinearity, "identity");
    CU_ASSERT_STRING_EQUAL(g_a.link, "exp");
    CU_ASSERT_EQUAL(g_a.inputs, 0);
    CU_ASSERT_EQUAL(g_a.encoder_std, 0.3);
    CU_ASSERT_STRING_EQUAL(g_a.init, "uniform");
    CU_ASSERT_STRING_EQUAL(g_a.optimizer, "adam");
    CU_ASSERT_EQUAL(g_a.lr, 3e-3);
    CU_ASSERT_EQUAL(g_a.weight_decay, 1e-4);
    CU_ASSERT_EQUAL(g_a.batch_size, 64);
    CU_ASSERT_EQUAL(g_a.epochs, 12);
    CU_ASSERT_EQUAL(g_a.beta, 2.0);
    CU_ASSERT_EQUAL(g_a.seed, 123456789012LL);
    CU_ASSERT_EQUAL(g_a.eval_every, 3);
    CU_ASSERT_EQUAL(g_a.checkpoint_every, 0);
    CU_ASSERT_EQUAL(g_a.restarts, 4);
    CU_ASSERT_EQUAL(g_a.log_every, 2);
    CU_ASSERT_EQUAL(g_a.folds, 3);
    CU_ASSERT_EQUAL(g_a.fold, 2);
    CU_ASSERT_EQUAL(g_a.n_sweep_ranks, 2);
    CU_ASSERT(g_a.sweep_ranks[0] == 4 && g_a.sweep_ranks[1] == 6);
    CU_ASSERT_EQUAL(g_a.n_sweep_partitions, 3);
    CU_ASSERT(g_a.sweep_partitions[0][0] == 2 && g_a.sweep_partitions[0][1] == 2 && g_a.sweep_partitions[0][2] == 2);
    CU_ASSERT(g_a.sweep_partitions[2][0] == 1 && g_a.sweep_partitions[2][1] == 6);
    CU_ASSERT_EQUAL(g_a.sweep_partitions_all, 0);
    CU_ASSERT_EQUAL(g_a.sweep_max_groups, 3);
    CU_ASSERT_EQUAL(g_a.sweep_min_group_size, 2);
    CU_ASSERT(g_a.n_sweep_betas == 2 && g_a.sweep_betas[0] == 0.0 && g_a.sweep_betas[1] == 20.0);
    CU_ASSERT(g_a.n_sweep_seeds == 3 && g_a.sweep_seeds[2] == 7);
    CU_ASSERT_EQUAL(g_a.ranks_per_fit, 2);
    CU_ASSERT_EQUAL(g_a.sweep_se_rule, 0.5);
    CU_ASSERT_EQUAL(g_a.sweep_min_independence, 0.3);
    CU_ASSERT_EQUAL(g_a.sweep_null_samples, 16);
    CU_ASSERT_EQUAL(g_a.sweep_null_max_points, 512);
    CU_ASSERT_EQUAL(g_a.sweep_null_nmc, 2);
    CU_ASSERT_STRING_EQUAL(g_a.output_path, "out/res.h5");
    CU_ASSERT_STRING_EQUAL(g_a.checkpoint_dir, "out/res.h5.ckpt");
    CU_ASSERT_EQUAL(g_a.connectivity_max_n, 50);

    /* Spot checks of other spellings. */
    CU_ASSERT_EQUAL(fr_config_from_yaml_text("model: {psi: learned, lags: 2, encoder_std: auto}\n"
                                             "sweep: {partitions: all}\n",
                                             &g_a),
                    FR_OK);
    CU_ASSERT(g_a.psi_learned == 1 && g_a.n_psi == 0 && g_a.lags == 2 && g_a.encoder_std <= 0);
    CU_ASSERT(g_a.sweep_partitions_all == 1 && g_a.n_sweep_partitions == 0);
    CU_ASSERT_EQUAL(fr_config_from_yaml_text("model: {lags: 4}\n", &g_a), FR_OK);
    CU_ASSERT(g_a.n_psi == 4 && g_a.psi[3] == 0.25); /* [] = uniform 1/L, resolved */
}

/* Every bad case: FR_EINVAL and a message naming what is wrong. */
static void test_bad_configs(void)
{
    static const struct {
        const char *yaml, *phrase;
    } cases[] = {
        {"train:\n  lr: 1e-3\n  lrr: 2\n", "unknown key 'train.lrr' (line 3)"},
        /* found by tests/fuzz/fuzz_config: a null enum value was taken as "" */
        {"model:\n  nonlinearity:\n", "model.nonlinearity: '' is not one of tanh|identity"},
        {"train: {optimizer: ~}\n", "train.optimizer: '' is not one of adam|adamw"},
        {"trian:\n  lr: 1\n", "unknown section 'trian' (expected data, model, train, cv, sweep or output) (line 1)"},
        {"train:\n  lr: abc\n", "train.lr: expected a number, got 'abc' (line 2)"},
        {"model:\n  rank: 2.5\n", "model.rank: expected an integer, got '2.5'"},
        {"model:\n  rank: [6]\n", "model.rank: expected an integer, got a list"},
        {"model:\n  rank: \"6\"\n", "model.rank: expected an integer"},
        {"model:\n  rank:\n", "model.rank: expected an integer"},
        {"model:\n  groups: 6\n", "model.groups: expected a list"},
        {"model:\n  groups: [3, x]\n", "model.groups[1]: expected an integer, got 'x'"},
        {"model:\n  groups: [3, 0, 3]\n", "model.groups[1] = 0 is out of range"},
        {"model:\n  groups: [3, 2]\n", "model.groups sums to 5 but model.rank is 6"},
        {"model:\n  rank: 0\n", "model.rank = 0 is out of range"},
        {"model:\n  lags: 2\n  psi: [1.0]\n", "model.psi has 1 weights but model.lags is 2"},
        {"model:\n  lags: 2\n  psi: [0.5, 0.6]\n", "model.psi sums to"},
        {"model:\n  lags: 2\n  psi: [1.5, -0.5]\n", "model.psi[0] = 1.5 is out of range"},
        {"model:\n  psi: learnt\n", "model.psi: expected a list of weights or `learned`"},
        {"model:\n  nonlinearity: relu\n", "model.nonlinearity: 'relu' is not one of tanh|identity"},
        {"data:\n  observation: bernoulli\n", "data.observation: 'bernoulli' is not one of gaussian|poisson"},
        {"model:\n  inputs: maybe\n", "model.inputs: expected true or false"},
        {"model:\n  encoder_std: -1\n", "model.encoder_std = -1 is out of range"},
        {"model:\n  encoder_std: 0\n", "model.encoder_std = 0 is out of range"},
        {"model:\n  encoder_std: big\n", "model.encoder_std: expected `auto` or a positive number"},
        {"train:\n  lr: 0\n", "train.lr = 0 is out of range"},
        {"train:\n  lr: .nan\n", "train.lr: expected a number"},
        {"train:\n  batch_size: 1\n", "train.batch_size = 1 is out of range"},
        {"train:\n  seed: -1\n", "train.seed = -1 is out of range"},
        {"train:\n  seed: 99999999999999999999\n", "train.seed: integer '99999999999999999999' is out of range"},
        {"cv:\n  folds: 3\n  fold: 3\n", "cv.fold = 3 must be below cv.folds = 3"},
        {"sweep:\n  ranks: [4, 6]\n  partitions: [[2, 2], [3, 4]]\n",
         "sweep.partitions[1] = [3,4] sums to 7, which is not a rank in sweep.ranks [4,6]"},
        {"sweep:\n  partitions: [[2, 2]]\n", "sweep.partitions[0] = [2,2] sums to 4, which is not a rank in model.rank [6]"},
        {"sweep:\n  partitions: [[3, 3], []]\n", "sweep.partitions[1]: partition is empty"},
        {"sweep:\n  partitions: [[3, 3], 6]\n", "sweep.partitions[1]: expected a list"},
        {"sweep:\n  partitions: [[3, 3], [3, y]]\n", "sweep.partitions[1][1]: expected an integer, got 'y'"},
        {"sweep:\n  partitions: some\n", "sweep.partitions: expected `all` or a list"},
        {"sweep:\n  partitions: []\n", "sweep.partitions: list is empty"},
        {"sweep:\n  ranks: []\n", "sweep.ranks: list is empty"},
        {"sweep:\n  betas: []\n", "sweep.betas: list is empty"},
        {"sweep:\n  seeds: []\n", "sweep.seeds: list is empty"},
        {"sweep:\n  ranks: [4]\n  partitions: all\n  min_group_size: 5\n", "sweep.min_group_size = 5 exceeds every rank"},
        {"sweep:\n  null_samples: 0\n", "sweep.null_samples = 0 is out of range"},
        {"sweep:\n  se_rule: -1\n", "sweep.se_rule = -1 is out of range"},
        {"sweep:\n  min_independence: 1.5\n", "sweep.min_independence = 1.5 is out of range"},
        {"train:\n  lr: 1\n  lr: 2\n", "duplicate key 'train.lr' (line 3)"},
        {"train:\n  lr: 1\ntrain:\n  beta: 2\n", "section 'train' appears twice (line 3)"},
        {"train: 5\n", "section 'train' must be a mapping of keys"},
        {"- a\n- b\n", "top level must be a mapping of sections"},
        {"model:\n  rank: 6\n   groups: [3, 3]\n", "malformed YAML"},
        {"model: {rank: 6\n", "malformed YAML"},
        {"model:\n  rank: 6\n---\nmodel:\n  rank: 4\n", "more than one YAML document"},
        {"output:\n  path: \"\"\n", "output.path must not be empty"},
        {"data:\n  path: [a, b]\n", "data.path: expected a string, got a list"},
    };
    int n = (int)(sizeof cases / sizeof cases[0]);
    for (int i = 0; i < n; ++i) {
        fr_error_clear();
        fr_err rc = fr_config_from_yaml_text(cases[i].yaml, &g_a);
        if (rc != FR_EINVAL) fprintf(stderr, "  case %d returned %d for:\n%s", i, (int)rc, cases[i].yaml);
        CU_ASSERT_EQUAL(rc, FR_EINVAL);
        CU_ASSERT(has(cases[i].phrase));
        CU_ASSERT(!strncmp(fr_error_msg(), "config: ", 8));
        CU_ASSERT_PTR_NULL(strchr(fr_error_msg(), '\n'));
    }
    /* Malformed YAML reports a line. */
    CU_ASSERT_EQUAL(fr_config_from_yaml_text("model:\n  rank: 6\n  groups: [3, 3\n", &g_a), FR_EINVAL);
    CU_ASSERT(has("line "));
}

/* The model's spec for a loaded config (what the trainer builds). */
static fr_err model_accepts(const fr_config *c)
{
    fr_model_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.N = c->rank + 1, sp.K = c->rank, sp.D = 0, sp.L = c->lags, sp.G = c->n_groups;
    for (int g = 0; g < c->n_groups; ++g) sp.group_size[g] = c->groups[g];
    for (int l = 0; l < c->lags; ++l) sp.psi[l] = c->psi[l];
    sp.psi_learned = c->psi_learned;
    sp.obs = FR_OBS_GAUSSIAN, sp.beta = c->beta, sp.n_train = 1000, sp.batch_size = c->batch_size;
    fr_model m;
    return fr_model_init(&m, &sp);
}

/* Every limit is stated once: the config accepts exactly what the model
 * supports and rejects the next value with its normal one-line message. */
static void test_limits(void)
{
    CU_ASSERT_EQUAL(FR_CFG_MAX_GROUPS, FR_MAX_GROUPS);
    char yaml[4096], msg[160];
    size_t len;

    /* model.lags: the model's FR_MAX_LAGS */
    snprintf(yaml, sizeof yaml, "model:\n  lags: %d\n", FR_MAX_LAGS);
    CU_ASSERT_EQUAL_FATAL(fr_config_from_yaml_text(yaml, &g_a), FR_OK);
    CU_ASSERT(g_a.lags == FR_MAX_LAGS && g_a.n_psi == FR_MAX_LAGS);
    CU_ASSERT_EQUAL(model_accepts(&g_a), FR_OK);
    snprintf(yaml, sizeof yaml, "model:\n  lags: %d\n", FR_MAX_LAGS + 1);
    CU_ASSERT_EQUAL(fr_config_from_yaml_text(yaml, &g_a), FR_EINVAL);
    snprintf(msg, sizeof msg, "model.lags = %d is out of range: must be >= 1 and <= %d", FR_MAX_LAGS + 1, FR_MAX_LAGS);
    CU_ASSERT(has(msg));
    CU_ASSERT(has("(line 2)"));
    /* a psi list longer than the model's lags */
    len = (size_t)snprintf(yaml, sizeof yaml, "model:\n  psi: [");
    for (int l = 0; l <= FR_MAX_LAGS; ++l) len += (size_t)snprintf(yaml + len, sizeof yaml - len, "%s0", l ? ", " : "");
    snprintf(yaml + len, sizeof yaml - len, "]\n");
    CU_ASSERT_EQUAL(fr_config_from_yaml_text(yaml, &g_a), FR_EINVAL);
    snprintf(msg, sizeof msg, "model.psi: has %d entries, at most %d are supported", FR_MAX_LAGS + 1, FR_MAX_LAGS);
    CU_ASSERT(has(msg));
    /* --set goes through the same check */
    char set[64];
    snprintf(set, sizeof set, "model.lags=%d", FR_MAX_LAGS + 1);
    char *sets[] = {set};
    CU_ASSERT_EQUAL(fr_config_load(MPI_COMM_WORLD, NULL, 1, sets, 0, &g_a), FR_EINVAL);
    CU_ASSERT(has("model.lags"));
    CU_ASSERT(has("--set"));

    /* model.groups: at most the model's FR_MAX_GROUPS groups */
    for (int extra = 0; extra < 2; ++extra) {
        int G = FR_MAX_GROUPS + extra;
        len = (size_t)snprintf(yaml, sizeof yaml, "model:\n  rank: %d\n  groups: [", G);
        for (int g = 0; g < G; ++g) len += (size_t)snprintf(yaml + len, sizeof yaml - len, "%s1", g ? ", " : "");
        snprintf(yaml + len, sizeof yaml - len, "]\n");
        fr_err rc = fr_config_from_yaml_text(yaml, &g_a);
        if (!extra) {
            CU_ASSERT_EQUAL(rc, FR_OK);
            CU_ASSERT_EQUAL(g_a.n_groups, FR_MAX_GROUPS);
            CU_ASSERT_EQUAL(model_accepts(&g_a), FR_OK);
        } else {
            CU_ASSERT_EQUAL(rc, FR_EINVAL);
            snprintf(msg, sizeof msg, "model.groups: has %d entries, at most %d are supported", G, FR_MAX_GROUPS);
            CU_ASSERT(has(msg));
        }
    }
    /* a partition has the same group limit */
    len = (size_t)snprintf(yaml, sizeof yaml, "model:\n  rank: %d\nsweep:\n  partitions: [[", FR_MAX_GROUPS + 1);
    for (int g = 0; g <= FR_MAX_GROUPS; ++g) len += (size_t)snprintf(yaml + len, sizeof yaml - len, "%s1", g ? ", " : "");
    snprintf(yaml + len, sizeof yaml - len, "]]\n");
    CU_ASSERT_EQUAL(fr_config_from_yaml_text(yaml, &g_a), FR_EINVAL);
    CU_ASSERT(has("sweep.partitions[0]: has"));

    /* every K and group size: FR_CFG_MAX_RANK */
    static const char *const over_rank[][2] = {
        {"model:\n  rank: %d\n", "model.rank = %d is out of range"},
        {"model:\n  rank: 6\n  groups: [%d]\n", "model.groups[0] = %d is out of range"},
        {"sweep:\n  ranks: [%d]\n", "sweep.ranks[0] = %d is out of range"},
        {"sweep:\n  partitions: [[%d]]\n", "sweep.partitions[0][0] = %d is out of range"},
        {"sweep:\n  min_group_size: %d\n", "sweep.min_group_size = %d is out of range"},
    };
    for (int i = 0; i < 5; ++i) {
        snprintf(yaml, sizeof yaml, over_rank[i][0], FR_CFG_MAX_RANK + 1);
        snprintf(msg, sizeof msg, over_rank[i][1], FR_CFG_MAX_RANK + 1);
        CU_ASSERT_EQUAL(fr_config_from_yaml_text(yaml, &g_a), FR_EINVAL);
        CU_ASSERT(has(msg));
    }
    snprintf(yaml, sizeof yaml, "model:\n  rank: %d\nsweep:\n  ranks: [%d]\n", FR_CFG_MAX_RANK, FR_CFG_MAX_RANK);
    CU_ASSERT_EQUAL(fr_config_from_yaml_text(yaml, &g_a), FR_OK);
}

static void test_files_and_sets(void)
{
    MPI_Comm comm = MPI_COMM_WORLD;
    const char *path = write_file("good.yaml", good_yaml);
    char *sets[] = {"train.lr=5e-4", "model.groups=[3,3]", "model.psi=learned", "sweep.partitions=[[3,3],[6]]",
                    "data.path=other file.h5", "train.lr=2e-4", "sweep.partitions=all", "data.observation="};
    CU_ASSERT_EQUAL_FATAL(fr_config_load(comm, path, 8, sets, 1, &g_a), FR_OK);
    CU_ASSERT_EQUAL(g_a.lr, 2e-4); /* later overrides win */
    CU_ASSERT(g_a.n_groups == 2 && g_a.groups[0] == 3 && g_a.groups[1] == 3 && g_a.groups[2] == 0);
    CU_ASSERT(g_a.psi_learned == 1 && g_a.n_psi == 0);
    CU_ASSERT(g_a.sweep_partitions_all == 1 && g_a.n_sweep_partitions == 0);
    CU_ASSERT_STRING_EQUAL(g_a.data_path, "other file.h5");
    CU_ASSERT_STRING_EQUAL(g_a.observation, "");
    CU_ASSERT_EQUAL(g_a.batch_size, 64); /* from the file */

    /* No file: defaults plus overrides. require_data without data.path fails. */
    char *s2[] = {"sweep.partitions=[[3,3],[6]]", "model.rank=6"};
    CU_ASSERT_EQUAL(fr_config_load(comm, NULL, 2, s2, 0, &g_a), FR_OK);
    CU_ASSERT(g_a.n_sweep_partitions == 2 && g_a.sweep_partitions[1][0] == 1 && g_a.sweep_partitions[1][1] == 6);
    CU_ASSERT_EQUAL(fr_config_load(comm, NULL, 0, NULL, 1, &g_a), FR_EINVAL);
    CU_ASSERT(has("data.path is required"));

    /* Missing file names the path. */
    CU_ASSERT_EQUAL(fr_config_load(comm, "/nonexistent/dir/cfg.yaml", 0, NULL, 0, &g_a), FR_EINVAL);
    CU_ASSERT(has("cannot open '/nonexistent/dir/cfg.yaml'"));
    /* A directory is not a config. */
    CU_ASSERT_EQUAL(fr_config_load(comm, fr_test_tmpdir(), 0, NULL, 0, &g_a), FR_EINVAL);
    CU_ASSERT(has("cannot read"));
    /* A bad file reports the line. */
    const char *bad = write_file("bad.yaml", "data:\n  path: x.h5\n\ntrain:\n  lr: 1e-3\n  lrr: 3\n");
    CU_ASSERT_EQUAL(fr_config_load(comm, bad, 0, NULL, 0, &g_a), FR_EINVAL);
    CU_ASSERT(has("config: unknown key 'train.lrr' (line 6)"));

    /* Bad --set: syntax, unknown key, wrong type, out of range, bad YAML. */
    static const struct {
        const char *set, *phrase;
    } bs[] = {
        {"train.lr", "--set expects key=value, got 'train.lr'"},
        {"=3", "--set expects key=value"},
        {"train.lrr=3", "unknown key 'train.lrr' (--set 'train.lrr=3')"},
        {"lr=3", "unknown key 'lr'"},
        {"train.lr=abc", "train.lr: expected a number, got 'abc' (--set 'train.lr=abc')"},
        {"model.rank=2.5", "model.rank: expected an integer"},
        {"model.groups=[3,2,x]", "model.groups[2]: expected an integer, got 'x'"},
        {"model.groups=[3,2]", "model.groups sums to 5 but model.rank is 6"},
        {"train.batch_size=1", "train.batch_size = 1 is out of range"},
        {"model.groups=[3,3", "malformed YAML in --set 'model.groups=[3,3'"},
        {"train.lr=a: b", "train.lr: expected a number, got a mapping"},
        {"sweep.partitions=[[3,3],[5]]", "sweep.partitions[1] = [5] sums to 5"},
    };
    for (int i = 0; i < (int)(sizeof bs / sizeof bs[0]); ++i) {
        char *one[] = {(char *)bs[i].set};
        fr_error_clear();
        CU_ASSERT_EQUAL(fr_config_load(comm, NULL, 1, one, 0, &g_a), FR_EINVAL);
        CU_ASSERT(has(bs[i].phrase));
    }
}

/* to_yaml -> from_yaml_text gives back the identical struct, and the text is
 * a fixed point. Strings with characters YAML must escape survive. */
static void test_round_trip(void)
{
    const char *texts[] = {good_yaml, "", "model: {psi: learned, lags: 2, rank: 4, groups: [1,1,2]}\n"
                                          "sweep: {partitions: all, ranks: [2, 4], betas: [0.1, 1e-7, 3]}\n"
                                          "train: {lr: 0.1, beta: 0.30000000000000004}\n"
                                          "data: {path: \"we\\\"ird \\\\ pa:th #1 \\t é.h5\"}\n"};
    for (int t = 0; t < 3; ++t) {
        CU_ASSERT_EQUAL_FATAL(fr_config_from_yaml_text(texts[t], &g_a), FR_OK);
        CU_ASSERT_EQUAL_FATAL(fr_config_to_yaml(&g_a, g_yaml, sizeof g_yaml), FR_OK);
        memset(&g_b, 0x5a, sizeof g_b);
        fr_err rc = fr_config_from_yaml_text(g_yaml, &g_b);
        if (rc) fprintf(stderr, "  %s\n%s", fr_error_msg(), g_yaml);
        CU_ASSERT_EQUAL_FATAL(rc, FR_OK);
        CU_ASSERT_EQUAL(memcmp(&g_a, &g_b, sizeof g_a), 0);
        CU_ASSERT_EQUAL(fr_config_to_yaml(&g_b, g_yaml2, sizeof g_yaml2), FR_OK);
        CU_ASSERT_STRING_EQUAL(g_yaml, g_yaml2);
        CU_ASSERT_EQUAL(fr_config_fit_hash(&g_a), fr_config_fit_hash(&g_b));
    }
    CU_ASSERT_STRING_EQUAL(g_a.data_path, "we\"ird \\ pa:th #1 \t é.h5");
    CU_ASSERT_EQUAL(g_a.beta, 0.30000000000000004);
    /* Every key appears, in table order, under its section. */
    CU_ASSERT_PTR_NOT_NULL(strstr(g_yaml, "model:\n  rank: 4\n  groups: [1, 1, 2]\n  lags: 2\n  psi: learned\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_yaml, "  lr: 0.1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_yaml, "  weight_decay: 0.0\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_yaml, "  seeds: null\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_yaml, "  partitions: all\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_yaml, "  betas: [0.1, 1.0e-07, 3.0]\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_yaml, "  checkpoint_dir: \"facrnn_results.h5.ckpt\"\n"));
    /* A buffer that is too small is an error, not a truncation. */
    CU_ASSERT_EQUAL(fr_config_to_yaml(&g_a, g_yaml, 100), FR_EINVAL);
    CU_ASSERT(has("does not fit in 100 bytes"));
    /* Explicit partitions round-trip as nested lists. */
    CU_ASSERT_EQUAL_FATAL(fr_config_from_yaml_text(good_yaml, &g_a), FR_OK);
    CU_ASSERT_EQUAL(fr_config_to_yaml(&g_a, g_yaml, sizeof g_yaml), FR_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_yaml, "  partitions: [[2, 2], [3, 3], [6]]\n"));
}

static void test_fit_hash(void)
{
    CU_ASSERT_EQUAL_FATAL(fr_config_from_yaml_text(good_yaml, &g_a), FR_OK);
    uint64_t h0 = fr_config_fit_hash(&g_a);
    /* Cadences, sweep and output do not change the trajectory. */
    static const char *same[] = {"train.eval_every=7", "train.checkpoint_every=9", "train.log_every=1",
                                 "sweep.betas=[1]", "output.path=x.h5", "sweep.ranks_per_fit=4"};
    for (int i = 0; i < 6; ++i) {
        char *one[] = {(char *)same[i]};
        CU_ASSERT_EQUAL_FATAL(fr_config_load(MPI_COMM_WORLD, write_file("h.yaml", good_yaml), 1, one, 0, &g_b), FR_OK);
        CU_ASSERT_EQUAL(fr_config_fit_hash(&g_b), h0);
    }
    static const char *diff[] = {"train.lr=2e-3", "train.epochs=13", "model.groups=[3,3]", "data.path=y.h5",
                                 "cv.fold=1", "train.seed=5", "model.init=pca", "train.beta=2.5",
                                 "data.observation=gaussian", "train.restarts=2"};
    for (int i = 0; i < 10; ++i) {
        char *one[] = {(char *)diff[i]};
        CU_ASSERT_EQUAL_FATAL(fr_config_load(MPI_COMM_WORLD, write_file("h.yaml", good_yaml), 1, one, 0, &g_b), FR_OK);
        CU_ASSERT_NOT_EQUAL(fr_config_fit_hash(&g_b), h0);
    }
    /* Options added later (OF_HASH_SET) count only when set away from their
     * default, so results and checkpoints written before them still match:
     * this value is what the version without the train.rollout_* options
     * wrote as config_hash for this config. */
    static const char old_yaml[] = "data: {path: d.h5}\nmodel: {rank: 2}\ntrain: {epochs: 2, restarts: 1}\n";
    CU_ASSERT_EQUAL_FATAL(fr_config_from_yaml_text(old_yaml, &g_b), FR_OK);
    CU_ASSERT_EQUAL(fr_config_fit_hash(&g_b), 0xeaa2671b0508cb26ULL);
    static const char *later[] = {"train.rollout_steps=1", "train.rollout_weight=1", "train.rollout_anneal=0.5"};
    for (int i = 0; i < 3; ++i) {
        char *one[] = {(char *)later[i]};
        CU_ASSERT_EQUAL_FATAL(fr_config_load(MPI_COMM_WORLD, write_file("h.yaml", old_yaml), 1, one, 0, &g_b), FR_OK);
        CU_ASSERT_EQUAL(fr_config_fit_hash(&g_b), 0xeaa2671b0508cb26ULL);
    }
    char *ms[] = {"train.rollout_steps=2"};
    CU_ASSERT_EQUAL_FATAL(fr_config_load(MPI_COMM_WORLD, write_file("h.yaml", old_yaml), 1, ms, 0, &g_b), FR_OK);
    CU_ASSERT_NOT_EQUAL(fr_config_fit_hash(&g_b), 0xeaa2671b0508cb26ULL);
}

static void test_help(void)
{
    FILE *f = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fr_config_write_help(f);
    long n = ftell(f);
    rewind(f);
    char *text = calloc((size_t)n + 1, 1);
    CU_ASSERT_EQUAL(fread(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    /* Every key that to_yaml writes is documented with its default. */
    fr_config_defaults(&g_a);
    CU_ASSERT_EQUAL(fr_config_to_yaml(&g_a, g_yaml, sizeof g_yaml), FR_OK);
    char sec[32] = "";
    for (char *line = strtok(g_yaml, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') continue;
        if (line[0] != ' ') {
            snprintf(sec, sizeof sec, "%.*s", (int)(strchr(line, ':') - line), line);
            continue;
        }
        char key[96];
        snprintf(key, sizeof key, "  %s.%.*s ", sec, (int)(strchr(line, ':') - line - 2), line + 2);
        if (!strstr(text, key)) fprintf(stderr, "  help lacks '%s'\n", key);
        CU_ASSERT_PTR_NOT_NULL(strstr(text, key));
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "default 128"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "{tanh|identity}"));
    free(text);
}

/* The example configs shipped in configs/ load (with require_data) and say
 * what their comments promise. The source tree is found from this file. */
static void test_example_configs(void)
{
    char dir[512], path[640];
    snprintf(dir, sizeof dir, "%s", __FILE__);
    char *slash = strrchr(dir, '/');
    CU_ASSERT_PTR_NOT_NULL_FATAL(slash);
    *slash = '\0';
    MPI_Comm comm = MPI_COMM_WORLD;

    snprintf(path, sizeof path, "%s/../configs/lorenz_thomas.yaml", dir);
    CU_ASSERT_EQUAL_FATAL(fr_config_load(comm, path, 0, NULL, 1, &g_a), FR_OK);
    CU_ASSERT(g_a.rank == 6 && g_a.n_groups == 2 && g_a.groups[0] == 3 && g_a.beta == 20.0);
    CU_ASSERT_STRING_EQUAL(g_a.data_path, "lorenz_thomas.h5");

    snprintf(path, sizeof path, "%s/../configs/lorenz_thomas_lrrnn.yaml", dir);
    CU_ASSERT_EQUAL_FATAL(fr_config_load(comm, path, 0, NULL, 1, &g_a), FR_OK);
    CU_ASSERT(g_a.rank == 6 && g_a.n_groups == 1 && g_a.groups[0] == 6);

    snprintf(path, sizeof path, "%s/../configs/sweep_lorenz_thomas.yaml", dir);
    CU_ASSERT_EQUAL_FATAL(fr_config_load(comm, path, 0, NULL, 1, &g_a), FR_OK);
    CU_ASSERT(g_a.n_sweep_ranks == 3 && g_a.sweep_ranks[0] == 4 && g_a.sweep_ranks[2] == 8);
    CU_ASSERT(g_a.sweep_partitions_all == 1 && g_a.sweep_max_groups == 3 && g_a.sweep_min_group_size == 2);
    CU_ASSERT(g_a.n_sweep_betas == 2 && g_a.sweep_betas[1] == 20.0 && g_a.n_sweep_seeds == 2);
    CU_ASSERT_EQUAL(g_a.folds, 3);

    snprintf(path, sizeof path, "%s/../configs/monkey_poisson.yaml", dir);
    CU_ASSERT_EQUAL_FATAL(fr_config_load(comm, path, 0, NULL, 1, &g_a), FR_OK);
    CU_ASSERT_STRING_EQUAL(g_a.observation, "poisson");
    CU_ASSERT(g_a.rank == 4 && g_a.n_groups == 2 && g_a.groups[1] == 2 && g_a.beta == 2.0);
}

static void reg(void)
{
    CU_pSuite s = CU_add_suite("config", NULL, NULL);
    CU_add_test(s, "defaults", test_defaults);
    CU_add_test(s, "empty resolves", test_empty_resolves);
    CU_add_test(s, "good config", test_good_config);
    CU_add_test(s, "bad configs name the key", test_bad_configs);
    CU_add_test(s, "limits are the model's, stated once", test_limits);
    CU_add_test(s, "files and --set", test_files_and_sets);
    CU_add_test(s, "yaml round trip", test_round_trip);
    CU_add_test(s, "fit hash", test_fit_hash);
    CU_add_test(s, "help lists every key", test_help);
    CU_add_test(s, "example configs load", test_example_configs);
}

int main(int argc, char **argv) { return fr_test_main(argc, argv, reg); }
