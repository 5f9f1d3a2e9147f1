"""facrnn_py: facrnn results and input files in Python.

Import it with the post-processing folder on the path (no install step):

    PYTHONPATH=postprocess /usr/bin/python3 -c "import facrnn_py"

    import facrnn_py as fp
    res = fp.load("sweep.h5")           # lazy: metadata now, arrays on demand
    res.selection["confidence"]         # the answer's confidence (None for a fit)
    run = res.run()                      # the selected configuration's best run
    run.K, run.groups, run.beta, run.metrics["heldout_nll_per_bin"]
    res.params(run)["A"]                 # (N, K) view of params/flat
    res.latents(run, trial=0)            # (T_0, K) encoder means of trial 0

Modules: results (load, Results, Run, sweep helpers; configurations are
(K, groups, beta)), data (load_data), readouts (sub-connectivity,
participation, alignment, behaviour R² as the C metric, PSTHs), metrics
(the metric names, the same as the C table), cosmooth (co_bps as the C
metric, and the co-smoothing baselines; import it as facrnn_py.cosmooth).
Layout: docs/formats.md.
"""
from .data import condition_name, load_data, trial_slices
from .metrics import CONNECTIVITY, METRIC_NAMES, METRICS, SETS
from .readouts import (affine_fit, affine_predict, behavior_decoding, behavior_fit, behavior_r2, behavior_score,
                       group_alignment, group_bounds, latent_recurrence, participation, psth, r2_per_dim,
                       sub_connectivity)
from .results import (Results, Run, Trials, beta_text, config_key, default_run, groups_text, load, load_results,
                      matches_selection, parse_groups, parse_run_id, read_table, run_groups, same_beta,
                      selected_config, sweep_rows, sweep_summary)

__all__ = [n for n in dir() if not n.startswith("_") and n not in ("data", "metrics", "readouts", "results")]
