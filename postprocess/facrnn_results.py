#!/usr/bin/python3
"""facrnn_results: read facrnn results and input files into plain Python.

Owns the reading side of docs/formats.md (results HDF5 and input HDF5) and
the small numerical read-outs the figures need (sub-connectivities, affine
R², group alignment against ground truth). Everything comes back as plain
dicts of numpy arrays, strings and numbers, so a notebook can use it without
knowing HDF5:

    import facrnn_results as fr
    res = fr.load_results("fit.h5")
    run = res["runs"][fr.default_run(res)]
    run["params"]["A"]          # (N, K)
    run["metrics"]["heldout_nll_per_bin"]

Nothing here writes files or plots.
"""
import os
import re

import numpy as np

try:
    import h5py
except ImportError as exc:  # pragma: no cover - Debian python3-h5py is a dependency
    raise ImportError("facrnn_results needs h5py (Debian package python3-h5py)") from exc


# --------------------------------------------------------------------------
# decoding helpers


def _plain(v):
    """HDF5 attribute/dataset value -> str, int, float or numpy array."""
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray):
        if v.dtype.kind in "SO":
            flat = [_plain(x) for x in v.ravel()]
            if v.ndim == 0:
                return flat[0]
            return np.array(flat, dtype=object).reshape(v.shape)
        if v.ndim == 0:
            return v.item()
        return v
    if isinstance(v, np.generic):
        return v.item()
    return v


def _attrs(obj):
    return {k: _plain(obj.attrs[k]) for k in obj.attrs.keys()}


def _read_group_arrays(g):
    """Every dataset directly in group g -> {name: array}."""
    out = {}
    for name, item in g.items():
        if isinstance(item, h5py.Dataset):
            out[name] = _plain(item[()])
    return out


def parse_groups(text, K=None):
    """Group sizes from text like "3+2+1" (or "[3, 2, 1]"); [K] when empty."""
    if isinstance(text, (list, tuple, np.ndarray)):
        return [int(x) for x in text]
    nums = re.findall(r"\d+", str(text or ""))
    if not nums:
        if K is None:
            raise ValueError("cannot parse group sizes from %r" % (text,))
        return [int(K)]
    return [int(x) for x in nums]


def groups_text(sizes):
    return "+".join(str(int(s)) for s in sizes)


# --------------------------------------------------------------------------
# results file


def _check_results(path, f):
    a = f.attrs
    prog = _plain(a["program"]) if "program" in a else None
    # `facrnn fit` writes "facrnn", `facrnn sweep` "facrnn sweep".
    if prog is not None and prog != "facrnn" and not str(prog).startswith("facrnn "):
        raise ValueError("%s: not a facrnn results file (root attribute program = %r)" % (path, prog))
    if "format_version" not in a:
        raise ValueError("%s: not a facrnn results file (root attribute format_version missing)" % path)
    if "runs" not in f and "sweep" not in f:
        if "data" in f and "trial_offsets" in f:
            raise ValueError("%s: this is a facrnn input data file, not a results file (no /runs)" % path)
        raise ValueError("%s: not a facrnn results file (no /runs or /sweep group)" % path)


def _read_sweep_table(obj):
    """The sweep table as {column: 1-D array}: from a compound dataset, a group
    of 1-D datasets, or a 2-D numeric dataset with a `columns` attribute."""
    cols = {}
    if isinstance(obj, h5py.Group):
        for name, item in obj.items():
            if isinstance(item, h5py.Dataset):
                cols[name] = _plain(item[()])
    else:
        data = obj[()]
        if data.dtype.names:
            for name in data.dtype.names:
                cols[name] = _plain(np.asarray(data[name]))
        elif data.ndim == 2 and "columns" in obj.attrs:
            names = [_plain(x) for x in np.atleast_1d(obj.attrs["columns"])]
            for j, name in enumerate(names):
                cols[name] = data[:, j]
        else:
            raise ValueError("/sweep/table: unsupported layout (shape %s, dtype %s)" % (data.shape, data.dtype))
    for k, v in list(cols.items()):
        v = np.atleast_1d(v)
        if v.dtype.kind in "SO":
            v = np.array([_plain(x) for x in v], dtype=object)
        cols[k] = v
    lens = {len(v) for v in cols.values()}
    if len(lens) > 1:
        raise ValueError("/sweep/table: columns have different lengths %s" % sorted(lens))
    return cols


def _read_run(g):
    run = {"params": {}, "history": {}, "metrics": {}, "connectivity": {}}
    if "params" in g:
        run["params"] = _read_group_arrays(g["params"])
        run["params_attrs"] = _attrs(g["params"])
    for name in ("latents", "split", "pca_eigenvalues"):
        if name in g:
            run[name] = _plain(g[name][()])
    if "history" in g:
        h = g["history"]
        if isinstance(h, h5py.Group):
            run["history"] = _read_group_arrays(h)
        else:
            data = h[()]
            if data.dtype.names:
                run["history"] = {n: np.asarray(data[n]) for n in data.dtype.names}
    if "metrics" in g:
        m = g["metrics"]
        run["metrics"] = _attrs(m)
        if isinstance(m, h5py.Group):
            run["metrics"].update(_read_group_arrays(m))
    if "standardize" in g:
        st = g["standardize"]
        run["standardize"] = {"mode": _plain(st.attrs.get("mode", "off")), **_read_group_arrays(st)}
    else:  # written before data.standardize existed: the data as stored
        run["standardize"] = {"mode": "off"}
    if "connectivity" in g:
        run["connectivity"] = _read_group_arrays(g["connectivity"])
        run["connectivity"].update({"attrs": _attrs(g["connectivity"])})
    return run


def load_results(path):
    """Read a facrnn results file into a plain dict:

    {"path", "attrs": root attributes,
     "runs": {run_id: {"params": {A (N,K), B (K,N), c (N,), d (K,), s, E, psi, flat},
                       "latents" (total_bins, K), "split" (n_trials,),
                       "history": {epoch, loss, nll, kl, pc, heldout_nll},
                       "metrics": {name: value}, "connectivity": {J, sv_<g>, W_<g>},
                       "pca_eigenvalues" (N,) if stored,
                       "standardize": {"mode": "zscore" or "off", "mean" (N,), "std" (N,)}:
                           the model saw (x - mean) / std}},
     "sweep": {"table": {column: array}, "selection": {attr: value},
               "ranked": {column: array} (per-configuration evidence, when present)} or None}

    Raises ValueError with a one-line message when path is not a facrnn
    results file (missing, not HDF5, or without the root attributes)."""
    if not os.path.exists(path):
        raise ValueError("%s: no such file" % path)
    if not h5py.is_hdf5(path):
        raise ValueError("%s: not an HDF5 file (so not a facrnn results file)" % path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError("%s: cannot open as HDF5 (%s)" % (path, str(exc).splitlines()[0])) from exc
    with f:
        _check_results(path, f)
        out = {"path": os.path.abspath(path), "attrs": _attrs(f), "runs": {}, "sweep": None}
        if "runs" in f:
            for rid in f["runs"]:
                out["runs"][rid] = _read_run(f["runs"][rid])
        if "sweep" in f:
            sw = f["sweep"]
            out["sweep"] = {"table": None, "selection": {}, "attrs": _attrs(sw)}
            if "table" in sw:
                out["sweep"]["table"] = _read_sweep_table(sw["table"])
            if "selection" in sw:
                sel = sw["selection"]
                out["sweep"]["selection"] = _attrs(sel)
                if isinstance(sel, h5py.Group):
                    out["sweep"]["selection"].update(_read_group_arrays(sel))
                    if isinstance(sel.get("ranked"), h5py.Group):
                        out["sweep"]["ranked"] = _read_sweep_table(sel["ranked"])
    if not out["runs"] and out["sweep"] is None:
        raise ValueError("%s: facrnn results file holds no runs" % path)
    return out


def default_run(res):
    """The run to show when none is named: among the runs of the sweep's
    selected configuration (all runs if none is identified), the finished one
    with the lowest held-out NLL per bin, else the first run id."""
    runs = res["runs"]
    if not runs:
        raise ValueError("%s: no runs in /runs" % res["path"])
    sel = selected_config(res)
    if sel and sel.get("run_id") in runs:
        return sel["run_id"]
    cands = sorted(runs.items())
    if sel:
        match = [(rid, r) for rid, r in cands
                 if int(r["metrics"].get("K", -1)) == sel["K"] and groups_text(run_groups(r)) == sel["groups"]]
        cands = match or cands
    best, best_v = None, np.inf
    for rid, r in cands:
        m = r["metrics"]
        v = m.get("heldout_nll_per_bin", np.nan)
        if m.get("status", "done") == "done" and np.isfinite(v) and v < best_v:
            best, best_v = rid, v
    return best if best is not None else cands[0][0]


def run_groups(run):
    """Fitted group sizes of a run: metrics attribute `groups`, else [K]."""
    K = run["params"]["A"].shape[1] if "A" in run["params"] else run["metrics"].get("K")
    return parse_groups(run["metrics"].get("groups", ""), K)


def parse_run_id(rid):
    """(K, groups text) from a run id like "K6_g3+3_b20_s0_f0", or None."""
    m = re.match(r"K(\d+)_g([\d+]+)", str(rid))
    return (int(m.group(1)), m.group(2)) if m else None


# --------------------------------------------------------------------------
# sweep summary


def sweep_rows(res):
    """One dict per run of a sweep: from /sweep/table when present, else
    built from the runs' metrics. Keys: run_id, K, groups, beta, seed, fold,
    status, heldout_nll (per bin), heldout_pc, epochs_done, seconds (NaN or
    "" when a column is missing)."""
    rows = []
    table = res["sweep"]["table"] if res.get("sweep") else None
    if table:
        n = len(next(iter(table.values())))

        def col(*names):
            for nm in names:
                if nm in table:
                    return table[nm]
            return None

        c_id = col("run_id", "id", "run")
        c_K = col("K", "rank")
        c_g = col("groups", "partition", "group_sizes")
        c_nll = col("heldout_nll_per_bin", "heldout_nll", "nll_heldout")
        c_pc = col("heldout_pc", "pc_heldout", "pc")
        for i in range(n):
            rid = str(c_id[i]) if c_id is not None else "row%d" % i
            parsed = parse_run_id(rid)
            K = int(c_K[i]) if c_K is not None else (parsed[0] if parsed else -1)
            g = str(c_g[i]) if c_g is not None else (parsed[1] if parsed else str(K))
            row = {"run_id": rid, "K": K, "groups": groups_text(parse_groups(g, K)),
                   "heldout_nll": float(c_nll[i]) if c_nll is not None else np.nan,
                   "heldout_pc": float(c_pc[i]) if c_pc is not None else np.nan}
            for key in ("beta", "seed", "fold", "epochs_done", "seconds"):
                c = col(key)
                row[key] = float(c[i]) if c is not None else np.nan
            c = col("status")
            row["status"] = str(c[i]) if c is not None else "done"
            rows.append(row)
        return rows
    for rid, r in sorted(res["runs"].items()):
        m = r["metrics"]
        K = int(m.get("K", r["params"]["A"].shape[1] if "A" in r["params"] else -1))
        rows.append({"run_id": rid, "K": K, "groups": groups_text(run_groups(r)),
                     "heldout_nll": float(m.get("heldout_nll_per_bin", np.nan)),
                     "heldout_pc": float(m.get("heldout_pc", np.nan)),
                     "beta": float(m.get("beta", np.nan)), "seed": float(m.get("seed", np.nan)),
                     "fold": float(m.get("fold", np.nan)), "epochs_done": float(m.get("epochs_done", np.nan)),
                     "seconds": float(m.get("seconds", np.nan)), "status": str(m.get("status", "done"))})
    return rows


def sweep_summary(rows):
    """Aggregate finished runs per (K, groups): mean and standard error (SD/√n)
    over seeds and folds of held-out NLL per bin and held-out PC. Sorted by K,
    then number of groups, then sizes. Returns a list of dicts."""
    acc = {}
    for r in rows:
        if r["status"] != "done":
            continue
        acc.setdefault((r["K"], r["groups"]), []).append(r)
    out = []
    for (K, g), rs in acc.items():
        d = {"K": K, "groups": g, "n": len(rs)}
        for key in ("heldout_nll", "heldout_pc"):
            v = np.array([x[key] for x in rs], dtype=float)
            v = v[np.isfinite(v)]
            d[key] = float(v.mean()) if v.size else np.nan
            d[key + "_se"] = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else np.nan
        out.append(d)
    out.sort(key=lambda d: (d["K"], len(parse_groups(d["groups"])), [-s for s in parse_groups(d["groups"])]))
    return out


def selected_config(res):
    """The sweep's selected configuration as {"K", "groups", "run_id"?}, read
    tolerantly from /sweep/selection attributes; None if absent."""
    if not res.get("sweep"):
        return None
    sel = res["sweep"].get("selection") or {}
    if not sel:
        return None
    out = {}
    for key in ("run_id", "selected_run_id", "selected_run", "best_run_id"):
        if key in sel:
            out["run_id"] = str(sel[key])
    for key in ("K", "selected_K", "rank", "selected_rank"):
        if key in sel:
            out["K"] = int(sel[key])
            break
    for key in ("groups", "selected_groups", "partition", "selected_partition"):
        if key in sel:
            out["groups"] = groups_text(parse_groups(sel[key]))
            break
    if "K" not in out or "groups" not in out:
        for key in ("selected", "configuration", "config", "selected_config"):
            if key in sel and isinstance(sel[key], str):
                p = parse_run_id(sel[key])
                if p:
                    out.setdefault("K", p[0])
                    out.setdefault("groups", groups_text(parse_groups(p[1])))
                else:
                    mK = re.search(r"K\s*[=:]?\s*(\d+)", sel[key])
                    mg = re.search(r"(\d+(?:\s*\+\s*\d+)+|\[[\d,\s]+\])", sel[key])
                    if mK:
                        out.setdefault("K", int(mK.group(1)))
                    if mg:
                        out.setdefault("groups", groups_text(parse_groups(mg.group(1))))
    if "run_id" in out and ("K" not in out or "groups" not in out):
        p = parse_run_id(out["run_id"])
        if p:
            out.setdefault("K", p[0])
            out.setdefault("groups", groups_text(parse_groups(p[1])))
    if "K" in out and "groups" not in out:
        out["groups"] = str(out["K"])
    return out if "K" in out else None


# --------------------------------------------------------------------------
# input data file


def load_data(path):
    """Read a facrnn input file: {"path", "attrs", "data" (total_bins, N),
    "trial_offsets" (n_trials+1,), and when present "inputs", "behavior",
    "trial_condition" (n_trials,), "truth": {latents (total_bins, K*),
    groups [sizes], A, B, c, d, ...}}. Raises ValueError on a file that is not
    a facrnn input file."""
    if not os.path.exists(path):
        raise ValueError("%s: no such file" % path)
    if not h5py.is_hdf5(path):
        raise ValueError("%s: not an HDF5 file (so not a facrnn input file)" % path)
    with h5py.File(path, "r") as f:
        for name in ("data", "trial_offsets"):
            if name not in f:
                raise ValueError("%s: not a facrnn input file (dataset /%s missing)" % (path, name))
        out = {"path": os.path.abspath(path), "attrs": _attrs(f),
               "data": np.asarray(f["data"][()], dtype=float),
               "trial_offsets": np.asarray(f["trial_offsets"][()], dtype=np.int64)}
        for name in ("inputs", "behavior", "trial_condition"):
            if name in f:
                out[name] = np.asarray(f[name][()])
        if "truth" in f:
            t = _read_group_arrays(f["truth"])
            if "latents" in f["truth"] and "groups" in f["truth/latents"].attrs:
                t["groups"] = [int(x) for x in np.atleast_1d(f["truth/latents"].attrs["groups"])]
            elif "latents" in t:
                t["groups"] = [t["latents"].shape[1]]
            out["truth"] = t
    off = out["trial_offsets"]
    if off.ndim != 1 or off.size < 2 or off[0] != 0 or off[-1] != out["data"].shape[0] or np.any(np.diff(off) <= 0):
        raise ValueError("%s: /trial_offsets is not a valid offsets vector for /data with %d rows"
                         % (path, out["data"].shape[0]))
    return out


def trial_slices(offsets):
    return [slice(int(a), int(b)) for a, b in zip(offsets[:-1], offsets[1:])]


# --------------------------------------------------------------------------
# read-outs (docs/model.md, "Read-outs" and "Metrics")


def group_bounds(sizes):
    e = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    return [(int(e[i]), int(e[i + 1])) for i in range(len(sizes))]


def sub_connectivity(params, sizes):
    """W_g = A[:, g] B[g, :] for every group: list of (N, N) arrays."""
    A, B = params["A"], params["B"]
    return [A[:, a:b] @ B[a:b, :] for a, b in group_bounds(sizes)]


def latent_recurrence(params):
    """J = B A (K, K)."""
    return params["B"] @ params["A"]


def affine_fit(X, Y, fit_rows=None):
    """Least-squares affine map Y ≈ [X, 1] β fitted on fit_rows (bool mask,
    default all rows). X (n, p), Y (n, q). Returns beta (p+1, q)."""
    X1 = np.hstack([X, np.ones((X.shape[0], 1))])
    if fit_rows is not None:
        X1, Y = X1[fit_rows], Y[fit_rows]
    beta, *_ = np.linalg.lstsq(X1, Y, rcond=None)
    return beta


def affine_predict(X, beta):
    return np.hstack([X, np.ones((X.shape[0], 1))]) @ beta


def r2_per_dim(Y, Yhat):
    """1 − SS_res/SS_tot per column of Y (n, q)."""
    ss_res = np.sum((Y - Yhat) ** 2, axis=0)
    ss_tot = np.sum((Y - Y.mean(axis=0)) ** 2, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ss_tot > 0, 1.0 - ss_res / ss_tot, np.nan)


def group_alignment(latents, truth, fit_sizes, true_sizes):
    """Group latent R² (docs/model.md, "Metrics"): for each true group a and fitted
    group b an affine least-squares map z_b -> z*_a over every bin where both
    are finite; R[a, b] is its R² averaged uniformly over the dims of a.
    Hungarian assignment (scipy) maximises the total R²; the matched score is
    the R² of the concatenated matched predictions, uniform over all true
    dimensions (a true group left unmatched when G_fit < G_true counts 0).
    Returns (R (G_true, G_fit), matches [(a, b)], matched_r2)."""
    from scipy.optimize import linear_sum_assignment
    ok = np.all(np.isfinite(latents), axis=1) & np.all(np.isfinite(truth), axis=1)
    Z, T = latents[ok], truth[ok]
    fb, tb = group_bounds(fit_sizes), group_bounds(true_sizes)
    R = np.zeros((len(tb), len(fb)))
    per_dim = {}
    for a, (ta, tz) in enumerate(tb):
        for b, (fa, fz) in enumerate(fb):
            beta = affine_fit(Z[:, fa:fz], T[:, ta:tz])
            r = r2_per_dim(T[:, ta:tz], affine_predict(Z[:, fa:fz], beta))
            per_dim[(a, b)] = r
            R[a, b] = np.nanmean(r)
    rows, cols = linear_sum_assignment(-R)
    matches = list(zip(rows.tolist(), cols.tolist()))
    total = np.zeros(T.shape[1])
    for a, b in matches:
        total[tb[a][0]:tb[a][1]] = per_dim[(a, b)]
    return R, matches, float(np.mean(total))


def behavior_decoding(latents, behavior, offsets, split):
    """Affine map latents -> behaviour fitted on training trials (split == 1),
    scored on held-out trials (split == 0); bins with NaN latents (context
    bins) are dropped. If there are no held-out trials it is scored on the
    training trials and `scored_on` says so. Returns dict with
    y_true, y_pred (n_scored, P), r2 per dim, r2_mean, scored_on."""
    n_tr = len(offsets) - 1
    trial_of_bin = np.repeat(np.arange(n_tr), np.diff(offsets))
    split = np.asarray(split).astype(bool) if split is not None else np.ones(n_tr, bool)
    train_bin = split[trial_of_bin]
    ok = np.all(np.isfinite(latents), axis=1) & np.all(np.isfinite(behavior), axis=1)
    fit_rows = ok & train_bin
    score_rows = ok & ~train_bin
    scored_on = "held-out trials"
    if not score_rows.any():
        score_rows, scored_on = fit_rows, "training trials (no held-out trials in this run)"
    beta = affine_fit(latents, behavior, fit_rows)
    pred = affine_predict(latents[score_rows], beta)
    r = r2_per_dim(behavior[score_rows], pred)
    return {"y_true": behavior[score_rows], "y_pred": pred, "r2": r, "r2_mean": float(np.nanmean(r)),
            "scored_on": scored_on}


def psth(x, offsets, condition=None):
    """Condition-averaged time courses: {condition: (mean (T, C), se (T, C), n)}
    aligned at trial start, over the bins where at least one trial exists
    (trials of unequal length are NaN-padded). x (total_bins, C)."""
    n_tr = len(offsets) - 1
    cond = np.zeros(n_tr, int) if condition is None else np.asarray(condition)
    Tmax = int(np.max(np.diff(offsets)))
    out = {}
    for c in np.unique(cond):
        idx = np.where(cond == c)[0]
        stack = np.full((len(idx), Tmax, x.shape[1]), np.nan)
        for j, k in enumerate(idx):
            seg = x[offsets[k]:offsets[k + 1]]
            stack[j, :seg.shape[0]] = seg
        with np.errstate(invalid="ignore"), _quiet():
            n = np.sum(np.isfinite(stack), axis=0)
            mean = np.nanmean(stack, axis=0)
            sd = np.nanstd(stack, axis=0, ddof=1) if len(idx) > 1 else np.zeros_like(mean)
            se = sd / np.sqrt(np.maximum(n, 1))
        out[c.item() if hasattr(c, "item") else c] = (mean, se, len(idx))
    return out


class _quiet:
    """Silence numpy's 'mean of empty slice' warnings for all-NaN columns."""

    def __enter__(self):
        import warnings
        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", category=RuntimeWarning)

    def __exit__(self, *a):
        return self._w.__exit__(*a)
