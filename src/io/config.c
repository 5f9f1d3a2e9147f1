/* config: the option table of fr_config and everything that walks it:
 * defaults, YAML parsing (libyaml's document API), `--set key=value`
 * overrides, per-value and cross-key validation and resolution of derived
 * defaults. The resolved-YAML echo, the fit hash and the --help text walk
 * the same table in config_echo.c.
 *
 * Defaults live in the table as YAML flow text and are parsed by the same
 * code as user values, so there is exactly one description of every key.
 */
#include "facrnn/config.h"
#include "facrnn/model.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "config_internal.h"

#define OFF(f) offsetof(fr_config, f)
#define SZ(f) sizeof(((fr_config *)0)->f)
#define NEL(f) (sizeof(((fr_config *)0)->f) / sizeof(((fr_config *)0)->f[0]))
#define BIG 1e9

/* The option table. Order = order of to_yaml, --help and the fit hash. */
static const opt g_opts[] = {
    {.key = "data.path", .type = OT_PATH, .off = OFF(data_path), .cap = SZ(data_path), .def = "\"\"",
     .help = "input HDF5 file (format spec); required by fit and sweep"},
    {.key = "data.observation", .type = OT_ENUM, .off = OFF(observation), .cap = SZ(observation), .def = "\"\"",
     .choices = "|gaussian|poisson", .help = "observation model; \"\" = the file's `observation` attribute"},
    {.key = "data.heldout_channels", .type = OT_INTLIST, .off = OFF(heldout_channels),
     .off_n = OFF(n_heldout_channels), .cap = NEL(heldout_channels), .def = "[]", .min = 0, .max = 1e9,
     .help = "co-smoothing: channels (0-based) the encoder never reads; the decoder predicts them, scored as "
             "co_bps (Poisson) and co_r2; [] = the input file's /heldout_channels, if it has one"},
    {.key = "data.standardize", .type = OT_ENUM, .off = OFF(standardize), .cap = SZ(standardize), .def = "auto",
     .choices = "auto|zscore|off",
     .help = "scale of the data the model sees: zscore = each channel minus its mean, over its std, both from "
             "the training trials only (stored with the run; eval and simulate apply it and report in the "
             "original units); auto = zscore for Gaussian data off tanh's scale (some channel |mean| > 3 or "
             "std outside 0.2..5), else as they are; counts unchanged for Poisson; off = the "
             "numbers as they are (refused for Gaussian data that would saturate tanh)"},
    {.key = "data.sigma_cache_mb", .type = OT_INT, .off = OFF(sigma_cache_mb), .def = "64", .min = 0, .max = BIG,
     .flags = OF_NOHASH,
     .help = "keep sigma(x) of the local rows in memory when it takes at most this many MiB per rank; "
             "otherwise compute it per minibatch (same numbers, about half the memory, slower steps)"},

    {.key = "model.rank", .type = OT_INT, .off = OFF(rank), .def = "6", .min = 1, .max = FR_CFG_MAX_RANK,
     .help = "K, total latent rank"},
    {.key = "model.groups", .type = OT_INTLIST, .off = OFF(groups), .off_n = OFF(n_groups), .cap = NEL(groups),
     .def = "[]", .min = 1, .max = FR_CFG_MAX_RANK,
     .help = "group sizes summing to model.rank, e.g. [3, 3]; [] = [K] (plain lrRNN)"},
    {.key = "model.lags", .type = OT_INT, .off = OFF(lags), .def = "1", .min = 1, .max = FR_MAX_LAGS,
     .help = "L, history lags"},
    {.key = "model.psi", .type = OT_PSI, .off = OFF(psi), .off_n = OFF(n_psi), .off_flag = OFF(psi_learned),
     .cap = NEL(psi), .def = "[]", .min = 0, .max = 1,
     .help = "history kernel: L non-negative weights summing to 1, or `learned`; [] = uniform 1/L"},
    {.key = "model.nonlinearity", .type = OT_ENUM, .off = OFF(nonlinearity), .cap = SZ(nonlinearity),
     .def = "tanh", .choices = "tanh|identity", .help = "sigma applied to past activity"},
    {.key = "model.link", .type = OT_ENUM, .off = OFF(link), .cap = SZ(link), .def = "softplus",
     .choices = "softplus|exp", .help = "Poisson rate link"},
    {.key = "model.inputs", .type = OT_BOOL, .off = OFF(inputs), .def = "true",
     .help = "use /inputs when the data file has them"},
    {.key = "model.encoder_std", .type = OT_ENCSTD, .off = OFF(encoder_std), .def = "auto", .min = 0,
     .max = 1e6, .flags = OF_GT, .help = "fixed encoder std: `auto` = n_train^(-1/(K+4)), or a positive number"},
    {.key = "model.init", .type = OT_ENUM, .off = OFF(init), .cap = SZ(init), .def = "auto",
     .choices = "auto|uniform|pca|truth",
     .help = "initialisation: uniform (like a linear layer), pca (principal components of sigma(x), "
             "least-squares decoder), auto (restart 0 from pca, the others uniform; the best training "
             "objective wins), or truth (/truth/A, B, c, d of a synthetic file; for benchmarks)"},

    {.key = "train.optimizer", .type = OT_ENUM, .off = OFF(optimizer), .cap = SZ(optimizer), .def = "adamw",
     .choices = "adam|adamw", .help = "optimizer"},
    {.key = "train.lr", .type = OT_DOUBLE, .off = OFF(lr), .def = "3.0e-3", .min = 0, .max = 10,
     .flags = OF_GT, .help = "learning rate"},
    {.key = "train.lr_schedule", .type = OT_ENUM, .off = OFF(lr_schedule), .cap = SZ(lr_schedule),
     .def = "cosine", .choices = "cosine|constant",
     .help = "cosine: lr decays from train.lr to lr/20 over each restart's steps (final parameters settle); "
             "constant: train.lr throughout"},
    {.key = "train.weight_decay", .type = OT_DOUBLE, .off = OFF(weight_decay), .def = "0", .min = 0,
     .max = 1e3, .help = "decoupled weight decay (adamw)"},
    {.key = "train.batch_size", .type = OT_INT, .off = OFF(batch_size), .def = "128", .min = 2,
     .max = 16777216, .help = "M, samples per global minibatch (the PC estimator needs M >= 2)"},
    {.key = "train.epochs", .type = OT_INT, .off = OFF(epochs), .def = "400", .min = 1, .max = BIG,
     .help = "training epochs"},
    {.key = "train.beta", .type = OT_DOUBLE, .off = OFF(beta), .def = "20", .min = 0, .max = 1e6,
     .help = "weight of the partial-correlation penalty"},
    {.key = "train.rollout_steps", .type = OT_INT, .off = OFF(rollout_steps), .def = "1", .min = 1, .max = 1000,
     .flags = OF_HASH_SET, .help = "k: training for generation adds the mean NLL of bins t+1..t+k-1 under a k-step mean-mode rollout "
             "from the true history before t (1 = off: one-step prediction only)"},
    {.key = "train.rollout_weight", .type = OT_DOUBLE, .off = OFF(rollout_weight), .def = "1", .min = 0,
     .max = 1e6, .flags = OF_HASH_SET, .help = "lambda, weight of the rollout term in the loss"},
    {.key = "train.rollout_anneal", .type = OT_DOUBLE, .off = OFF(rollout_anneal), .def = "0.5", .min = 0,
     .max = 1,
     .flags = OF_HASH_SET, .help = "teacher forcing of the rollout: the fed-back bins are alpha x + (1 - alpha) xhat, alpha falling "
             "linearly from 1 to 0 over this fraction of each restart's steps (0 = free-running throughout)"},
    {.key = "train.seed", .type = OT_INT64, .off = OFF(seed), .def = "0", .min = 0, .max = 9.2e18,
     .help = "random seed (initialisation, minibatches, noise)"},
    {.key = "train.eval_every", .type = OT_INT, .off = OFF(eval_every), .def = "10", .min = 1, .max = BIG,
     .flags = OF_NOHASH,
     .help = "epochs between held-out NLL evaluations, which keep the best-held-out parameters (the other "
             "metrics are computed once, at the end)"},
    {.key = "train.checkpoint_every", .type = OT_INT, .off = OFF(checkpoint_every), .def = "50", .min = 0,
     .max = BIG, .flags = OF_NOHASH, .help = "epochs between checkpoints (0 = never)"},
    {.key = "train.restarts", .type = OT_INT, .off = OFF(restarts), .def = "8", .min = 1, .max = 10000,
     .help = "initialisations per fit; the best training objective wins"},
    {.key = "train.restart_schedule", .type = OT_ENUM, .off = OFF(restart_schedule), .cap = SZ(restart_schedule),
     .def = "halving", .choices = "all|halving",
     .help = "all: every restart trains all epochs; halving: successive halving (every restart trains E/2^k "
             "epochs, the better half by training objective continues, ... until one reaches E)"},
    {.key = "train.log_every", .type = OT_INT, .off = OFF(log_every), .def = "50", .min = 1, .max = BIG,
     .flags = OF_NOHASH, .help = "epochs between progress lines"},

    {.key = "cv.folds", .type = OT_INT, .off = OFF(folds), .def = "5", .min = 1, .max = 100000,
     .help = "folds over trials (1 = no held-out trials)"},
    {.key = "cv.fold", .type = OT_INT, .off = OFF(fold), .def = "0", .min = 0, .max = 100000,
     .help = "fold a single fit holds out (below cv.folds)"},

    {.key = "sweep.ranks", .type = OT_INTLIST, .off = OFF(sweep_ranks), .off_n = OFF(n_sweep_ranks),
     .cap = NEL(sweep_ranks), .def = "null", .min = 1, .max = FR_CFG_MAX_RANK, .flags = OF_NONEMPTY,
     .help = "list of K; null = [model.rank]"},
    {.key = "sweep.partitions", .type = OT_PARTS, .off = OFF(sweep_partitions), .off_n = OFF(n_sweep_partitions),
     .off_flag = OFF(sweep_partitions_all), .cap = NEL(sweep_partitions), .def = "null", .min = 1,
     .max = FR_CFG_MAX_RANK,
     .flags = OF_NONEMPTY,
     .help = "group-size lists, each summing to a K of the sweep, or `all`; null = model.groups"},
    {.key = "sweep.max_groups", .type = OT_INT, .off = OFF(sweep_max_groups), .def = "0", .min = 0,
     .max = FR_CFG_MAX_GROUPS, .help = "most groups in `all` (0 = no bound)"},
    {.key = "sweep.min_group_size", .type = OT_INT, .off = OFF(sweep_min_group_size), .def = "1", .min = 1,
     .max = FR_CFG_MAX_RANK, .help = "smallest group in `all`"},
    {.key = "sweep.betas", .type = OT_DBLLIST, .off = OFF(sweep_betas), .off_n = OFF(n_sweep_betas),
     .cap = NEL(sweep_betas), .def = "null", .min = 0, .max = 1e6, .flags = OF_NONEMPTY,
     .help = "list of beta; null = [train.beta]"},
    {.key = "sweep.seeds", .type = OT_I64LIST, .off = OFF(sweep_seeds), .off_n = OFF(n_sweep_seeds),
     .cap = NEL(sweep_seeds), .def = "null", .min = 0, .max = 9.2e18, .flags = OF_NONEMPTY,
     .help = "list of seeds; null = [train.seed]"},
    {.key = "sweep.fit_unpenalised_partitions", .type = OT_BOOL, .off = OFF(sweep_fit_unpenalised),
     .def = "false",
     .help = "also fit the multi-group partitions at beta = 0; they are the one-group model from another "
             "initial basis, never a selection candidate, so by default a sweep fits them only at a K "
             "without a one-group partition (a one-group fit is planned once, at the smallest beta)"},
    {.key = "sweep.ranks_per_fit", .type = OT_INT, .off = OFF(ranks_per_fit), .def = "1", .min = 1,
     .max = 1048576, .help = "MPI ranks per fit (team size)"},
    {.key = "sweep.se_rule", .type = OT_DOUBLE, .off = OFF(sweep_se_rule), .def = "1.0", .min = 0, .max = 100,
     .help = "selection: a K or configuration within this many standard errors of the best counts as tied"},
    {.key = "sweep.min_independence", .type = OT_DOUBLE, .off = OFF(sweep_min_independence), .def = "0.25",
     .min = -BIG, .max = 1,
     .help = "selection: a multi-group partition is supported when its independence score, mean - SE, "
             "is at least this"},
    {.key = "sweep.max_coupling", .type = OT_DOUBLE, .off = OFF(sweep_max_coupling), .def = "0.2", .min = -BIG,
     .max = BIG,
     .help = "selection: a multi-group partition is supported when its held-out dynamical coupling between "
             "groups, mean + SE over folds, is at most this"},
    {.key = "sweep.coupling_lags", .type = OT_INTLIST, .off = OFF(sweep_coupling_lags),
     .off_n = OFF(n_sweep_coupling_lags), .cap = NEL(sweep_coupling_lags), .def = "[1, 4]", .min = 1, .max = 100000,
     .flags = OF_NONEMPTY,
     .help = "selection: horizons (bins) at which the coupling is measured; a run's coupling is the largest"},
    {.key = "sweep.min_predictability", .type = OT_DOUBLE, .off = OFF(sweep_min_predictability), .def = "0.2",
     .min = -BIG, .max = 1,
     .help = "selection: a multi-group partition is supported when its predictability (the held-out R^2 of "
             "each group's next latent from its own present, worst group), mean - SE over folds, is at least "
             "this: a sub-circuit must have dynamics"},
    {.key = "sweep.null_samples", .type = OT_INT, .off = OFF(sweep_null_samples), .def = "8", .min = 1,
     .max = 100000, .help = "selection: random rotations of the held-out latents in the independence null"},
    {.key = "sweep.null_max_points", .type = OT_INT, .off = OFF(sweep_null_max_points), .def = "256", .min = 2,
     .max = 1000000, .help = "selection: held-out points (subsampled) in the null's KDE, O(points^2 K) cost"},
    {.key = "sweep.null_nmc", .type = OT_INT, .off = OFF(sweep_null_nmc), .def = "4", .min = 1, .max = 10000,
     .help = "selection: Monte-Carlo samples per point in the null's PC estimates"},
    {.key = "sweep.bootstrap", .type = OT_INT, .off = OFF(sweep_bootstrap), .def = "200", .min = 0, .max = 100000,
     .help = "selection's confidence: resamples of the folds (with replacement) to which the rule is applied "
             "again (0 = none); each fold x seed fit alone is also tried"},

    {.key = "output.path", .type = OT_PATH, .off = OFF(output_path), .cap = SZ(output_path),
     .def = "facrnn_results.h5", .help = "results file"},
    {.key = "output.checkpoint_dir", .type = OT_PATH, .off = OFF(checkpoint_dir), .cap = SZ(checkpoint_dir),
     .def = "\"\"", .help = "checkpoint folder; \"\" = <output.path>.ckpt"},
    {.key = "output.connectivity_max_n", .type = OT_INT, .off = OFF(connectivity_max_n), .def = "2000",
     .min = 0, .max = BIG, .help = "write dense W_g only when N <= this"},
};
#define NOPTS (int)(sizeof g_opts / sizeof g_opts[0])

/* The table for the other walkers of it (config_echo.c). */
const opt *const fr_cfg_opts = g_opts;
const int fr_cfg_nopts = NOPTS;

static const char *const g_sections[] = {"data", "model", "train", "cv", "sweep", "output"};
#define NSECTIONS (int)(sizeof g_sections / sizeof g_sections[0])
const char *const *const fr_cfg_sections = g_sections;
const int fr_cfg_nsections = NSECTIONS;

/* ---- small helpers ---------------------------------------------------------- */

static void *field(fr_config *cfg, size_t off) { return (char *)cfg + off; }

static const opt *find_opt(const char *key)
{
    for (int i = 0; i < NOPTS; ++i)
        if (!strcmp(g_opts[i].key, key)) return &g_opts[i];
    return NULL;
}

/* Where a value came from, for error messages. */
typedef struct {
    yaml_document_t *doc;
    const char *set; /* the --set argument, or NULL for a file/text */
} pctx;

static void where(const pctx *c, const yaml_node_t *n, char *buf, size_t cap)
{
    if (c->set) snprintf(buf, cap, " (--set '%s')", c->set);
    else if (n) snprintf(buf, cap, " (line %lu)", (unsigned long)n->start_mark.line + 1);
    else buf[0] = '\0';
}

/* Record "config: <msg> (<where>)" and return FR_EINVAL. */
static fr_err verr(const pctx *c, const yaml_node_t *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static fr_err verr(const pctx *c, const yaml_node_t *n, const char *fmt, ...)
{
    char msg[768], w[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    where(c, n, w, sizeof w);
    return FR_FAIL(FR_EINVAL, "config: %s%s", msg, w);
}

static const char *sval(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }
static int is_plain(const yaml_node_t *n) { return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE; }

/* YAML null: absent, empty plain scalar, ~ or null. */
static int is_null(const yaml_node_t *n)
{
    if (!n) return 1;
    if (n->type != YAML_SCALAR_NODE || !is_plain(n)) return 0;
    const char *v = sval(n);
    return !v[0] || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

static const char *kind(const yaml_node_t *n)
{
    if (!n) return "nothing";
    return n->type == YAML_SEQUENCE_NODE ? "a list" : n->type == YAML_MAPPING_NODE ? "a mapping" : "a scalar";
}

/* Describe a node for "got ..." in messages. */
static void got(const yaml_node_t *n, char *buf, size_t cap)
{
    if (n && n->type == YAML_SCALAR_NODE) snprintf(buf, cap, "'%.60s'", sval(n));
    else snprintf(buf, cap, "%s", kind(n));
}

static fr_err get_ll(const pctx *c, const yaml_node_t *n, const char *label, long long *out)
{
    char g[80];
    got(n, g, sizeof g);
    if (!n || n->type != YAML_SCALAR_NODE || !is_plain(n) || is_null(n))
        return verr(c, n, "%s: expected an integer, got %s", label, g);
    const char *s = sval(n);
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end) return verr(c, n, "%s: expected an integer, got %s", label, g);
    if (errno == ERANGE) return verr(c, n, "%s: integer %s is out of range", label, g);
    *out = v;
    return FR_OK;
}

static fr_err get_dbl(const pctx *c, const yaml_node_t *n, const char *label, double *out)
{
    char g[80];
    got(n, g, sizeof g);
    if (!n || n->type != YAML_SCALAR_NODE || !is_plain(n) || is_null(n))
        return verr(c, n, "%s: expected a number, got %s", label, g);
    const char *s = sval(n);
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end) return verr(c, n, "%s: expected a number, got %s", label, g);
    if (!isfinite(v) || errno == ERANGE) return verr(c, n, "%s: number %s is not finite or out of range", label, g);
    *out = v;
    return FR_OK;
}

static fr_err check_range(const pctx *c, const yaml_node_t *n, const opt *o, const char *label, double v, int integral)
{
    int low = (o->flags & OF_GT) ? !(v > o->min) : v < o->min;
    if (!low && v <= o->max) return FR_OK;
    if (integral)
        return verr(c, n, "%s = %.0f is out of range: must be %s %.0f and <= %.0f", label, v,
                    (o->flags & OF_GT) ? ">" : ">=", o->min, o->max);
    return verr(c, n, "%s = %g is out of range: must be %s %g and <= %g", label, v, (o->flags & OF_GT) ? ">" : ">=",
                o->min, o->max);
}

static fr_err get_string(const pctx *c, const yaml_node_t *n, const opt *o, char *dst)
{
    /* A null value is the empty string, which an enum must still allow
     * (`model.nonlinearity:` alone is refused, `data.observation:` is ""). */
    const char *v = "";
    size_t len = 0;
    if (!is_null(n)) {
        char g[80];
        got(n, g, sizeof g);
        if (n->type != YAML_SCALAR_NODE) return verr(c, n, "%s: expected a string, got %s", o->key, g);
        v = sval(n);
        len = n->data.scalar.length;
        if (strlen(v) != len) return verr(c, n, "%s: string contains a NUL byte", o->key);
        if (len >= o->cap) return verr(c, n, "%s: string is %zu bytes long, at most %zu allowed", o->key, len, o->cap - 1);
    }
    if (o->type == OT_ENUM) {
        /* Walk the '|'-separated choices; an empty choice allows "". */
        const char *p = o->choices;
        int ok = 0;
        for (;;) {
            const char *bar = strchr(p, '|');
            size_t m = bar ? (size_t)(bar - p) : strlen(p);
            if (m == len && !strncmp(p, v, len)) ok = 1;
            if (!bar) break;
            p = bar + 1;
        }
        if (!ok) return verr(c, n, "%s: '%s' is not one of %s", o->key, v, o->choices[0] == '|' ? o->choices + 1 : o->choices);
    }
    memset(dst, 0, o->cap);
    memcpy(dst, v, len);
    return FR_OK;
}

/* A list of scalars (ints, doubles or int64s) into dst/count. `label` is the
 * key, possibly with an outer index already. */
static fr_err get_numlist(const pctx *c, const yaml_node_t *n, const opt *o, const char *label, opt_type elem,
                          void *dst, size_t cap, int *count)
{
    size_t esz = elem == OT_DOUBLE ? sizeof(double) : elem == OT_INT64 ? sizeof(long long) : sizeof(int);
    memset(dst, 0, cap * esz);
    *count = 0;
    if (n->type != YAML_SEQUENCE_NODE) {
        char g[80];
        got(n, g, sizeof g);
        return verr(c, n, "%s: expected a list like [1, 2], got %s", label, g);
    }
    size_t len = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (len > cap) return verr(c, n, "%s: has %zu entries, at most %zu are supported", label, len, cap);
    for (size_t i = 0; i < len; ++i) {
        const yaml_node_t *it = yaml_document_get_node(c->doc, n->data.sequence.items.start[i]);
        char lab[160];
        snprintf(lab, sizeof lab, "%s[%zu]", label, i);
        if (elem == OT_DOUBLE) {
            double v;
            TRY(get_dbl(c, it, lab, &v));
            TRY(check_range(c, it, o, lab, v, 0));
            ((double *)dst)[i] = v;
        } else {
            long long v;
            TRY(get_ll(c, it, lab, &v));
            TRY(check_range(c, it, o, lab, (double)v, 1));
            if (elem == OT_INT64) ((long long *)dst)[i] = v;
            else ((int *)dst)[i] = (int)v;
        }
    }
    *count = (int)len;
    return FR_OK;
}

static int is_word(const yaml_node_t *n, const char *w)
{
    return n && n->type == YAML_SCALAR_NODE && !strcmp(sval(n), w);
}

/* Parse node `n` (NULL = null) as the value of option `o` into cfg. */
static fr_err set_value(const pctx *c, const opt *o, const yaml_node_t *n, fr_config *cfg)
{
    void *dst = field(cfg, o->off);
    char g[80];
    got(n, g, sizeof g);
    switch (o->type) {
    case OT_INT:
    case OT_INT64: {
        long long v;
        TRY(get_ll(c, n, o->key, &v));
        TRY(check_range(c, n, o, o->key, (double)v, 1));
        if (o->type == OT_INT) *(int *)dst = (int)v;
        else *(long long *)dst = v;
        return FR_OK;
    }
    case OT_DOUBLE: {
        double v;
        TRY(get_dbl(c, n, o->key, &v));
        TRY(check_range(c, n, o, o->key, v, 0));
        *(double *)dst = v;
        return FR_OK;
    }
    case OT_ENCSTD: {
        if (is_word(n, "auto")) {
            *(double *)dst = 0.0;
            return FR_OK;
        }
        double v;
        if (!n || n->type != YAML_SCALAR_NODE || !is_plain(n) || get_dbl(c, n, o->key, &v) != FR_OK)
            return verr(c, n, "%s: expected `auto` or a positive number, got %s", o->key, g);
        TRY(check_range(c, n, o, o->key, v, 0));
        *(double *)dst = v;
        return FR_OK;
    }
    case OT_BOOL: {
        static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
        if (n && n->type == YAML_SCALAR_NODE && is_plain(n))
            for (int i = 0; i < 3; ++i) {
                if (!strcasecmp(sval(n), yes[i])) return *(int *)dst = 1, FR_OK;
                if (!strcasecmp(sval(n), no[i])) return *(int *)dst = 0, FR_OK;
            }
        return verr(c, n, "%s: expected true or false, got %s", o->key, g);
    }
    case OT_ENUM:
    case OT_PATH: return get_string(c, n, o, dst);
    case OT_INTLIST:
    case OT_DBLLIST:
    case OT_I64LIST: {
        int *cnt = field(cfg, o->off_n);
        opt_type elem = o->type == OT_INTLIST ? OT_INT : o->type == OT_DBLLIST ? OT_DOUBLE : OT_INT64;
        if (is_null(n)) {
            size_t esz = elem == OT_DOUBLE ? sizeof(double) : elem == OT_INT64 ? sizeof(long long) : sizeof(int);
            memset(dst, 0, o->cap * esz);
            *cnt = 0;
            return FR_OK;
        }
        TRY(get_numlist(c, n, o, o->key, elem, dst, o->cap, cnt));
        if (*cnt == 0 && (o->flags & OF_NONEMPTY))
            return verr(c, n, "%s: list is empty; give at least one value or leave the key out", o->key);
        return FR_OK;
    }
    case OT_PSI: {
        int *cnt = field(cfg, o->off_n), *learned = field(cfg, o->off_flag);
        *learned = 0;
        if (is_word(n, "learned")) {
            memset(dst, 0, o->cap * sizeof(double));
            *cnt = 0;
            *learned = 1;
            return FR_OK;
        }
        if (is_null(n)) {
            memset(dst, 0, o->cap * sizeof(double));
            *cnt = 0;
            return FR_OK;
        }
        if (n->type != YAML_SEQUENCE_NODE)
            return verr(c, n, "%s: expected a list of weights or `learned`, got %s", o->key, g);
        return get_numlist(c, n, o, o->key, OT_DOUBLE, dst, o->cap, cnt);
    }
    case OT_PARTS: {
        int *cnt = field(cfg, o->off_n), *all = field(cfg, o->off_flag);
        int(*parts)[FR_CFG_MAX_GROUPS + 1] = dst;
        memset(dst, 0, SZ(sweep_partitions));
        *cnt = 0;
        *all = 0;
        if (is_word(n, "all")) {
            *all = 1;
            return FR_OK;
        }
        if (is_null(n)) return FR_OK;
        if (n->type != YAML_SEQUENCE_NODE)
            return verr(c, n, "%s: expected `all` or a list of group-size lists like [[3, 3], [6]], got %s", o->key,
                        g);
        size_t len = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
        if (len == 0) return verr(c, n, "%s: list is empty; give at least one partition, `all`, or leave the key out", o->key);
        if (len > o->cap) return verr(c, n, "%s: has %zu partitions, at most %zu are supported", o->key, len, o->cap);
        for (size_t i = 0; i < len; ++i) {
            const yaml_node_t *it = yaml_document_get_node(c->doc, n->data.sequence.items.start[i]);
            char lab[96];
            snprintf(lab, sizeof lab, "%s[%zu]", o->key, i);
            int gcount = 0;
            TRY(get_numlist(c, it, o, lab, OT_INT, &parts[i][1], FR_CFG_MAX_GROUPS, &gcount));
            if (gcount == 0) return verr(c, it, "%s: partition is empty", lab);
            parts[i][0] = gcount;
        }
        *cnt = (int)len;
        return FR_OK;
    }
    }
    return FR_FAIL(FR_EINTERNAL, "config: option %s has an unknown type", o->key);
}

/* ---- documents ------------------------------------------------------------- */

/* Load one YAML document from text; `label` names the source in messages. */
static fr_err load_doc(const char *text, size_t len, const char *label, yaml_document_t *doc)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) return FR_FAIL(FR_ENOMEM, "config: cannot initialise the YAML parser");
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    fr_err rc = FR_OK;
    if (!yaml_parser_load(&p, doc)) {
        rc = FR_FAIL(FR_EINVAL, "config: malformed YAML in %s: %s%s%s (line %lu, column %lu)", label,
                     p.problem ? p.problem : "parse error", p.context ? " " : "", p.context ? p.context : "",
                     (unsigned long)p.problem_mark.line + 1, (unsigned long)p.problem_mark.column + 1);
    } else {
        /* A second document would be silently ignored: refuse it. */
        yaml_document_t extra;
        if (!yaml_parser_load(&p, &extra)) {
            rc = FR_FAIL(FR_EINVAL, "config: malformed YAML in %s: %s (line %lu)", label,
                         p.problem ? p.problem : "parse error", (unsigned long)p.problem_mark.line + 1);
            yaml_document_delete(doc);
        } else {
            if (yaml_document_get_root_node(&extra)) {
                rc = FR_FAIL(FR_EINVAL, "config: %s holds more than one YAML document (line %lu)", label,
                             (unsigned long)extra.start_mark.line + 1);
                yaml_document_delete(doc);
            }
            yaml_document_delete(&extra);
        }
    }
    yaml_parser_delete(&p);
    return rc;
}

/* Apply a whole config document (sections of keys) to cfg. */
static fr_err apply_doc(yaml_document_t *doc, fr_config *cfg)
{
    pctx c = {doc, NULL};
    yaml_node_t *root = yaml_document_get_root_node(doc);
    if (is_null(root)) return FR_OK; /* empty file: defaults */
    if (root->type != YAML_MAPPING_NODE)
        return verr(&c, root, "the top level must be a mapping of sections (data:, model:, train:, cv:, sweep:, output:), got %s",
                    kind(root));
    unsigned char seen[NOPTS], seen_sec[NSECTIONS];
    memset(seen, 0, sizeof seen);
    memset(seen_sec, 0, sizeof seen_sec);
    for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top; ++pr) {
        yaml_node_t *k = yaml_document_get_node(doc, pr->key), *v = yaml_document_get_node(doc, pr->value);
        if (k->type != YAML_SCALAR_NODE) return verr(&c, k, "section names must be plain words, got %s", kind(k));
        int s = -1;
        for (int i = 0; i < NSECTIONS; ++i)
            if (!strcmp(sval(k), g_sections[i])) s = i;
        if (s < 0)
            return verr(&c, k, "unknown section '%.60s' (expected data, model, train, cv, sweep or output)", sval(k));
        if (seen_sec[s]) return verr(&c, k, "section '%s' appears twice", g_sections[s]);
        seen_sec[s] = 1;
        if (is_null(v)) continue;
        if (v->type != YAML_MAPPING_NODE)
            return verr(&c, v, "section '%s' must be a mapping of keys, got %s", g_sections[s], kind(v));
        for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < v->data.mapping.pairs.top; ++q) {
            yaml_node_t *kk = yaml_document_get_node(doc, q->key), *vv = yaml_document_get_node(doc, q->value);
            if (kk->type != YAML_SCALAR_NODE)
                return verr(&c, kk, "keys in section '%s' must be plain words, got %s", g_sections[s], kind(kk));
            char full[160];
            snprintf(full, sizeof full, "%s.%.100s", g_sections[s], sval(kk));
            const opt *o = find_opt(full);
            if (!o) return verr(&c, kk, "unknown key '%s'", full);
            int idx = (int)(o - g_opts);
            if (seen[idx]) return verr(&c, kk, "duplicate key '%s'", full);
            seen[idx] = 1;
            TRY(set_value(&c, o, vv, cfg));
        }
    }
    return FR_OK;
}

/* Apply one "key=value" override; the value is parsed as YAML flow text. */
static fr_err apply_set(const char *set, fr_config *cfg)
{
    const char *eq = strchr(set, '=');
    if (!eq || eq == set) return FR_FAIL(FR_EINVAL, "config: --set expects key=value, got '%s'", set);
    char key[160];
    size_t kl = (size_t)(eq - set);
    if (kl >= sizeof key) return FR_FAIL(FR_EINVAL, "config: --set key is too long in '%.80s'", set);
    memcpy(key, set, kl);
    key[kl] = '\0';
    const opt *o = find_opt(key);
    if (!o) return FR_FAIL(FR_EINVAL, "config: unknown key '%s' (--set '%s')", key, set);
    yaml_document_t doc;
    const char *val = eq + 1;
    char label[200];
    snprintf(label, sizeof label, "--set '%.150s'", set);
    TRY(load_doc(val, strlen(val), label, &doc));
    pctx c = {&doc, set};
    fr_err rc = set_value(&c, o, yaml_document_get_root_node(&doc), cfg);
    yaml_document_delete(&doc);
    return rc;
}

static fr_err apply_text(const char *text, size_t len, const char *label, fr_config *cfg)
{
    yaml_document_t doc;
    TRY(load_doc(text, len, label, &doc));
    fr_err rc = apply_doc(&doc, cfg);
    yaml_document_delete(&doc);
    return rc;
}

/* ---- cross-key validation and resolution ------------------------------------ */

static void fmt_intlist(const int *v, int n, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && len + 1 < cap; ++i)
        len += (size_t)snprintf(buf + len, cap - len, "%s%d", i ? "," : "[", v[i]);
    if (len + 1 < cap) snprintf(buf + len, cap - len, "]");
}

static fr_err validate(const fr_config *cfg, int require_data)
{
    if (cfg->n_groups > 0) {
        int s = 0;
        for (int g = 0; g < cfg->n_groups; ++g) s += cfg->groups[g];
        if (s != cfg->rank)
            return FR_FAIL(FR_EINVAL, "config: model.groups sums to %d but model.rank is %d", s, cfg->rank);
    }
    if (!cfg->psi_learned && cfg->n_psi > 0) {
        if (cfg->n_psi != cfg->lags)
            return FR_FAIL(FR_EINVAL, "config: model.psi has %d weights but model.lags is %d", cfg->n_psi, cfg->lags);
        double s = 0;
        for (int l = 0; l < cfg->n_psi; ++l) s += cfg->psi[l];
        if (fabs(s - 1.0) > 1e-9) return FR_FAIL(FR_EINVAL, "config: model.psi sums to %.12g, not 1", s);
    }
    if (!strcmp(cfg->init, "truth") && !strcmp(cfg->standardize, "zscore"))
        return FR_FAIL(FR_EINVAL, "config: model.init: truth starts from parameters in the file's units; set "
                                  "data.standardize: auto or off, not zscore");
    if (cfg->fold >= cfg->folds)
        return FR_FAIL(FR_EINVAL, "config: cv.fold = %d must be below cv.folds = %d", cfg->fold, cfg->folds);
    if (require_data && !cfg->data_path[0])
        return FR_FAIL(FR_EINVAL, "config: data.path is required (set it in the file or with --set data.path=FILE)");
    if (!cfg->output_path[0]) return FR_FAIL(FR_EINVAL, "config: output.path must not be empty");

    /* The ranks a sweep visits: sweep.ranks, or model.rank when unset. */
    const int *ks = cfg->n_sweep_ranks ? cfg->sweep_ranks : &cfg->rank;
    int nk = cfg->n_sweep_ranks ? cfg->n_sweep_ranks : 1, kmax = 0;
    for (int i = 0; i < nk; ++i) kmax = ks[i] > kmax ? ks[i] : kmax;
    const char *kname = cfg->n_sweep_ranks ? "sweep.ranks" : "model.rank";
    char klist[300];
    fmt_intlist(ks, nk, klist, sizeof klist);
    for (int p = 0; p < cfg->n_sweep_partitions; ++p) {
        const int *part = cfg->sweep_partitions[p];
        int s = 0;
        for (int g = 1; g <= part[0]; ++g) s += part[g];
        int ok = 0;
        for (int i = 0; i < nk; ++i) ok |= ks[i] == s;
        if (!ok) {
            char pl[300];
            fmt_intlist(part + 1, part[0], pl, sizeof pl);
            return FR_FAIL(FR_EINVAL, "config: sweep.partitions[%d] = %s sums to %d, which is not a rank in %s %s", p,
                           pl, s, kname, klist);
        }
    }
    if (cfg->sweep_partitions_all && cfg->sweep_min_group_size > kmax)
        return FR_FAIL(FR_EINVAL,
                       "config: sweep.min_group_size = %d exceeds every rank in %s %s, so `all` has no partitions",
                       cfg->sweep_min_group_size, kname, klist);
    return FR_OK;
}

/* Fill the derived defaults, so the echo shows what a run actually used. */
static fr_err resolve(fr_config *cfg)
{
    if (cfg->n_groups == 0) {
        cfg->n_groups = 1;
        cfg->groups[0] = cfg->rank;
    }
    if (!cfg->psi_learned && cfg->n_psi == 0) {
        cfg->n_psi = cfg->lags;
        for (int l = 0; l < cfg->lags; ++l) cfg->psi[l] = 1.0 / cfg->lags;
    }
    if (!cfg->checkpoint_dir[0]) {
        size_t n = strlen(cfg->output_path);
        if (n + 6 > sizeof cfg->checkpoint_dir)
            return FR_FAIL(FR_EINVAL, "config: output.path is too long to derive output.checkpoint_dir; set it");
        memcpy(cfg->checkpoint_dir, cfg->output_path, n);
        memcpy(cfg->checkpoint_dir + n, ".ckpt", 6);
    }
    return FR_OK;
}

/* ---- public: defaults, parse, load --------------------------------------------- */

void fr_config_defaults(fr_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (int i = 0; i < NOPTS; ++i) {
        char set[256];
        snprintf(set, sizeof set, "%s=%s", g_opts[i].key, g_opts[i].def);
        fr_err rc = apply_set(set, cfg);
        if (rc != FR_OK) fr_fatal(FR_EINTERNAL); /* the table's own default is invalid: a bug */
    }
}

static fr_err parse_all(const char *text, size_t len, const char *label, int nset, char *const *sets,
                        int require_data, fr_config *cfg)
{
    fr_config_defaults(cfg);
    if (text) TRY(apply_text(text, len, label, cfg));
    for (int i = 0; i < nset; ++i) TRY(apply_set(sets[i], cfg));
    TRY(validate(cfg, require_data));
    return resolve(cfg);
}

fr_err fr_config_from_yaml_text(const char *text, fr_config *cfg)
{
    return parse_all(text, strlen(text), "config text", 0, NULL, 0, cfg);
}

#define FR_CFG_FILE_MAX (1 << 22)

static fr_err read_file(const char *path, char **text, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return FR_FAIL(FR_EINVAL, "config: cannot open '%s': %s", path, strerror(errno));
    char *buf = NULL;
    fr_err rc = FR_CALLOC(buf, FR_CFG_FILE_MAX + 1);
    if (rc != FR_OK) {
        fclose(f);
        return rc;
    }
    size_t n = fread(buf, 1, FR_CFG_FILE_MAX + 1, f);
    int bad = ferror(f);
    int e = errno;
    fclose(f);
    if (bad) rc = FR_FAIL(FR_EINVAL, "config: cannot read '%s': %s", path, strerror(e));
    else if (n > FR_CFG_FILE_MAX) rc = FR_FAIL(FR_EINVAL, "config: '%s' is larger than %d bytes", path, FR_CFG_FILE_MAX);
    if (rc != FR_OK) {
        free(buf);
        return rc;
    }
    if (strlen(buf) != n) {
        free(buf);
        return FR_FAIL(FR_EINVAL, "config: '%s' contains a NUL byte; is it a text file?", path);
    }
    *text = buf;
    *len = n;
    return FR_OK;
}

fr_err fr_config_load(MPI_Comm comm, const char *path, int nset, char *const *sets, int require_data,
                      fr_config *cfg)
{
    int rank;
    CHECK_MPI(MPI_Comm_rank(comm, &rank));
    fr_err rc = FR_OK;
    if (rank == 0) {
        char *text = NULL;
        size_t len = 0;
        if (path) rc = read_file(path, &text, &len);
        if (rc == FR_OK) rc = parse_all(text, len, path ? path : "", nset, sets, require_data, cfg);
        free(text);
    }
    /* Status (and rank 0's message) first, so a bad config stops every rank
     * with the same code and text before anyone waits for the struct. */
    TRY(fr_error_agree(&comm, rc));
    CHECK_MPI(MPI_Bcast(cfg, (int)sizeof *cfg, MPI_BYTE, 0, comm));
    return FR_OK;
}

void fr_run_id(const fr_config *cfg, char *buf, size_t cap)
{
    char groups[256];
    if (cfg->n_groups > 0) fr_groups_text(cfg->n_groups, cfg->groups, groups, sizeof groups);
    else fr_groups_text(1, &cfg->rank, groups, sizeof groups);
    snprintf(buf, cap, "K%d_g%s_b%g_s%lld_f%d", cfg->rank, groups, cfg->beta, cfg->seed, cfg->fold);
}
