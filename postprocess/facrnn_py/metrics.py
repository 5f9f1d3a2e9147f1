"""metrics: the names of the numbers facrnn stores, one table.

The per-set metrics mirror the C table fr_metric_defs (src/io/fit_result.c):
the same names, in the same order, with the same short labels the log prints.
A results file stores each as `train_<name>` and `heldout_<name>` attributes of
/runs/<id>/metrics; `facrnn eval` writes the bare names in its JSON and CSV.
The report, the loader and compare.py use these names and nothing else, so a
number is called the same everywhere (tests/py/test_facrnn_py.py checks the
table against the C source).
"""

# (name, label as the log prints it, description)
METRICS = (
    ("nll_per_bin", "nll/bin", "negative log-likelihood per bin (nats)"),
    ("r2", "R2", "reconstruction R² of the activity"),
    ("bits_per_spike", "bits/spike", "bits per spike over a per-channel constant rate (Poisson only)"),
    ("pc", "PC", "partial correlation between groups (nats)"),
    ("tc", "TC", "total correlation of the latents (nats)"),
    ("group_latent_r2", "group-latent R2", "R² of the true latent groups from the fitted groups (synthetic data)"),
    ("component_latent_r2", "component R2", "R² of the true latents one component at a time (synthetic data)"),
    ("behavior_r2", "behaviour R2", "behaviour decoded from the latents, affine map fitted on training trials"),
    ("behavior_align_r2", "aligned behaviour R2", "cumulative latents of one group per behaviour column against "
     "cumulative behaviour (hand position), columns matched to groups; fitted on training trials"),
    ("behavior_align_all_r2", "aligned behaviour R2 (all latents)", "the same from all latents for every column"),
    ("co_bps", "co-bps", "co-smoothing (Poisson): bits/spike of the channels the encoder never reads, against "
     "their mean rate"),
    ("co_r2", "co-R2", "co-smoothing: one-step R2 of the channels the encoder never reads"),
    ("n_samples", "samples", "bins scored"),
)
METRIC_NAMES = tuple(m[0] for m in METRICS)
SETS = ("train", "heldout")

# Recovery of known connectivity (attributes of /runs/<id>/metrics when the
# input has /truth/A and /truth/B): one name each.
CONNECTIVITY = (
    ("connectivity_r_W", "Pearson r between fitted and true W"),
    ("connectivity_r_groups", "Pearson r per fitted group against its matched true group (group 1 first)"),
)


def label(name):
    """The log's label of a metric name (with or without a train_/heldout_ prefix)."""
    for pre in SETS:
        if name.startswith(pre + "_"):
            name = name[len(pre) + 1:]
    for n, lab, _ in METRICS:
        if n == name:
            return lab
    return name
