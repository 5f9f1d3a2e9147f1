"""results: read a facrnn results file (docs/formats.md, "Results" and
"Sweep files"), lazily.

    import facrnn_py
    res = facrnn_py.load("sweep.h5")
    res.selection["confidence"]            # None for a single fit
    run = res.default_run()                 # the selected configuration's best run
    p = res.params(run)                     # named views of params/flat
    z = res.latents(run, trial=3)           # (T_3, K), read now
    for z in res.latents(run): ...          # one trial at a time

Only the metadata of the runs (their metrics attributes) is read at load;
parameters, latents and histories are read from the open file when asked
for, one run (or one trial) at a time. Configurations are (K, groups, beta)
everywhere: two runs that differ only in beta are different configurations.
"""
import math
import os
import re
from collections.abc import Sequence

import numpy as np

from ._h5 import attrs, h5py, plain, read_group_arrays


# --------------------------------------------------------------------------
# groups and run ids


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


_RUN_ID = re.compile(r"K(\d+)_g([\d+]+)(?:_b([-+0-9.eE]+))?(?:_s(\d+))?(?:_f(\d+))?")


def parse_run_id(rid):
    """(K, groups text, beta or None) from a run id like "K6_g3+3_b20_s0_f0",
    or None when it does not look like one."""
    m = _RUN_ID.match(str(rid))
    if not m:
        return None
    beta = None
    if m.group(3) is not None:
        try:
            beta = float(m.group(3))
        except ValueError:
            beta = None
    return int(m.group(1)), m.group(2), beta


def same_beta(a, b):
    """Betas equal as the configuration key: NaN (unknown) matches NaN only."""
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def beta_text(beta):
    return "?" if beta is None or not np.isfinite(beta) else "%g" % beta


def config_key(K, groups, beta):
    """Hashable (K, groups text, beta rounded) configuration key."""
    b = float(beta) if beta is not None else math.nan
    return int(K), str(groups), (None if math.isnan(b) else round(b, 9))


# --------------------------------------------------------------------------
# runs


class Run:
    """One run's identity and scalar metrics (cheap: attributes only).
    `groups` is the list of group sizes (group 1 first), `metrics` every
    attribute of /runs/<id>/metrics."""

    __slots__ = ("id", "K", "groups", "beta", "seed", "fold", "status", "metrics")

    def __init__(self, rid, metrics):
        self.id = rid
        self.metrics = metrics
        parsed = parse_run_id(rid)
        K = metrics.get("K", parsed[0] if parsed else None)
        self.K = int(K) if K is not None else None
        self.groups = parse_groups(metrics.get("groups", parsed[1] if parsed else ""), self.K)
        if self.K is None:
            self.K = sum(self.groups)
        beta = metrics.get("beta", parsed[2] if parsed and parsed[2] is not None else math.nan)
        self.beta = float(beta)
        self.seed = _int_or_none(metrics.get("seed"))
        self.fold = _int_or_none(metrics.get("fold"))
        self.status = str(metrics.get("status", "done"))

    @property
    def groups_text(self):
        return groups_text(self.groups)

    @property
    def config(self):
        return config_key(self.K, self.groups_text, self.beta)

    def metric(self, name, default=math.nan):
        v = self.metrics.get(name, default)
        return float(v) if np.ndim(v) == 0 and isinstance(v, (int, float, np.number)) else v

    def __repr__(self):
        return "Run(%s: K=%d, groups %s, beta %s, seed %s, fold %s, %s)" % (
            self.id, self.K, self.groups_text, beta_text(self.beta), self.seed, self.fold, self.status)


def _int_or_none(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


class Trials(Sequence):
    """The latents of one run, trial by trial, read from the file when
    indexed: trials[k] is (T_k, K) with NaN in the first L context bins."""

    def __init__(self, dataset, offsets):
        self._ds, self.offsets = dataset, offsets

    def __len__(self):
        return len(self.offsets) - 1

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        k = int(k)
        if k < 0:
            k += len(self)
        if not 0 <= k < len(self):
            raise IndexError("trial %d out of range (the run has %d trials)" % (k, len(self)))
        return np.asarray(self._ds[int(self.offsets[k]):int(self.offsets[k + 1])], dtype=float)


# --------------------------------------------------------------------------
# the results file


def _check_results(path, f):
    a = f.attrs
    prog = plain(a["program"]) if "program" in a else None
    # `facrnn fit` writes "facrnn", `facrnn sweep` "facrnn sweep".
    if prog is not None and prog != "facrnn" and not str(prog).startswith("facrnn "):
        raise ValueError("%s: not a facrnn results file (root attribute program = %r)" % (path, prog))
    if "format_version" not in a:
        if "data" in f and "trial_offsets" in f:
            raise ValueError("%s: this is a facrnn input data file, not a results file (no /runs)" % path)
        raise ValueError("%s: not a facrnn results file (root attribute format_version missing)" % path)
    if "runs" not in f and "sweep" not in f:
        if "data" in f and "trial_offsets" in f:
            raise ValueError("%s: this is a facrnn input data file, not a results file (no /runs)" % path)
        raise ValueError("%s: not a facrnn results file (no /runs or /sweep group)" % path)


def _open(path):
    if not os.path.exists(path):
        raise ValueError("%s: no such file" % path)
    if not h5py.is_hdf5(path):
        raise ValueError("%s: not an HDF5 file (so not a facrnn results file)" % path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError("%s: cannot open as HDF5 (%s)" % (path, str(exc).splitlines()[0])) from exc
    try:
        _check_results(path, f)
    except ValueError:
        f.close()
        raise
    return f


def read_table(obj):
    """A table as {column: 1-D array}: from a compound dataset, a group of
    1-D datasets, or a 2-D numeric dataset with a `columns` attribute."""
    cols = {}
    if isinstance(obj, h5py.Group):
        for name, item in obj.items():
            if isinstance(item, h5py.Dataset):
                cols[name] = plain(item[()])
    else:
        data = obj[()]
        if data.dtype.names:
            for name in data.dtype.names:
                cols[name] = plain(np.asarray(data[name]))
        elif data.ndim == 2 and "columns" in obj.attrs:
            names = [plain(x) for x in np.atleast_1d(obj.attrs["columns"])]
            for j, name in enumerate(names):
                cols[name] = data[:, j]
        else:
            raise ValueError("%s: unsupported table layout (shape %s, dtype %s)" % (obj.name, data.shape, data.dtype))
    for k, v in list(cols.items()):
        v = np.atleast_1d(v)
        if v.dtype.kind in "SO":
            v = np.array([plain(x) for x in v], dtype=object)
        cols[k] = v
    lens = {len(v) for v in cols.values()}
    if len(lens) > 1:
        raise ValueError("%s: columns have different lengths %s" % (obj.name, sorted(lens)))
    return cols


class Results:
    """An open facrnn results file (a fit or a sweep). Attributes:
    path, attrs (root attributes), runs {id: Run} (in the sweep table's
    order, else sorted), selection (the /sweep/selection attributes,
    including rule, selected_K/groups/beta, why and confidence*, or None for
    a fit file), ranked ({column: array} per configuration, or None), table
    (/sweep/table as {column: array}, or None). Use as a context manager or
    call close()."""

    def __init__(self, path, data=None):
        self.path = os.path.abspath(path)
        self._f = _open(path)
        f = self._f
        self.attrs = attrs(f)
        self.table = self.selection = self.ranked = None
        self._data_path = data
        self._offsets = None
        if "sweep" in f:
            sw = f["sweep"]
            if "table" in sw:
                self.table = read_table(sw["table"])
            if "selection" in sw:
                sel = sw["selection"]
                self.selection = attrs(sel)
                if isinstance(sel, h5py.Group):
                    for k, v in read_group_arrays(sel).items():
                        self.selection.setdefault(k, v)
                    if isinstance(sel.get("ranked"), h5py.Group):
                        self.ranked = read_table(sel["ranked"])
        runs = {}
        if "runs" in f:
            for rid in f["runs"]:
                g = f["runs"][rid]
                m = g.get("metrics")
                met = attrs(m) if m is not None else {}
                if isinstance(m, h5py.Group):
                    met.update(read_group_arrays(m))
                runs[rid] = Run(rid, met)
        order = list(self.table["run_id"]) if self.table is not None and "run_id" in self.table else []
        pos = {str(r): i for i, r in enumerate(order)}
        self.runs = {rid: runs[rid] for rid in sorted(runs, key=lambda r: (pos.get(r, len(pos)), r))}
        if not self.runs and self.table is None:
            self.close()
            raise ValueError("%s: facrnn results file holds no runs" % path)

    # -- plumbing
    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "Results(%s: %d runs%s)" % (os.path.basename(self.path), len(self.runs),
                                          ", sweep" if self.is_sweep else "")

    @property
    def is_sweep(self):
        return self.table is not None or self.selection is not None

    def run(self, run=None):
        """The Run for an id (or a Run); the default run when None."""
        if run is None:
            return self.runs[self.default_run()]
        if isinstance(run, Run):
            return run
        if run not in self.runs:
            raise ValueError("run %s: no such run in %s (available: %s)"
                             % (run, os.path.basename(self.path), ", ".join(sorted(self.runs)) or "none"))
        return self.runs[run]

    def _group(self, run):
        return self._f["runs"][self.run(run).id]

    # -- per-run data, read on demand
    def params(self, run=None):
        """Named views of the flat parameter vector params/flat (layout
        [A | B | c | d | s | E | psi logits], docs/formats.md): A (N, K),
        B (K, N), c (N,), d (K,), s (N,) under Gaussian observations, E (N, D)
        with inputs, psi_logits (L,) when the kernel is learned; plus flat
        itself and psi, the effective kernel. Views share flat's memory.
        Without params/flat the stored params/* datasets are returned."""
        g = self._group(run)
        if "params" not in g:
            raise ValueError("run %s has no params group" % self.run(run).id)
        p = g["params"]
        stored = {k: np.asarray(v[()]) for k, v in p.items() if isinstance(v, h5py.Dataset)}
        if "flat" not in stored or "A" not in stored:
            return stored
        flat = np.asarray(stored["flat"], dtype=float)
        N, K = stored["A"].shape
        shapes = [("A", (N, K)), ("B", (K, N)), ("c", (N,)), ("d", (K,))]
        if "s" in stored:
            shapes.append(("s", (N,)))
        if "E" in stored:
            shapes.append(("E", tuple(stored["E"].shape)))
        out, o = {"flat": flat}, 0
        for name, shp in shapes:
            n = int(np.prod(shp))
            if o + n > flat.size:
                raise ValueError("run %s: params/flat has %d values, too few for %s %s"
                                 % (self.run(run).id, flat.size, name, shp))
            out[name] = flat[o:o + n].reshape(shp)
            o += n
        if o < flat.size:
            out["psi_logits"] = flat[o:]
        if "psi" in stored:
            out["psi"] = stored["psi"]
        return out

    def history(self, run=None):
        g = self._group(run)
        h = g.get("history")
        if h is None:
            return {}
        if isinstance(h, h5py.Group):
            return read_group_arrays(h)
        data = h[()]
        return {n: np.asarray(data[n]) for n in data.dtype.names} if data.dtype.names else {}

    def connectivity(self, run=None):
        g = self._group(run)
        return read_group_arrays(g["connectivity"]) if "connectivity" in g else {}

    def standardize(self, run=None):
        """The transform the model saw: {"mode": "zscore" or "off", "mean"
        (N,), "std" (N,)}; the data entered as (x - mean) / std. Runs written
        before data.standardize existed: {"mode": "off"}."""
        g = self._group(run)
        if "standardize" not in g:
            return {"mode": "off"}
        st = g["standardize"]
        return {"mode": plain(st.attrs.get("mode", "off")), **read_group_arrays(st)}

    def split(self, run=None):
        g = self._group(run)
        return np.asarray(g["split"][()]) if "split" in g else None

    def pca_eigenvalues(self, run=None):
        g = self._group(run)
        return np.asarray(g["pca_eigenvalues"][()]) if "pca_eigenvalues" in g else None

    def data_path(self):
        """The input file: the one given to load(), else the root attribute
        input_path (also tried next to the results file); None if absent."""
        if self._data_path:
            return self._data_path
        p = self.attrs.get("input_path")
        if not p:
            return None
        if os.path.exists(p):
            return p
        alt = os.path.join(os.path.dirname(self.path), os.path.basename(p))
        return alt if os.path.exists(alt) else None

    def trial_offsets(self, run=None):
        """[n_trials + 1] trial offsets: from the input file's /trial_offsets
        when it is found and has the latents' number of rows, else from the
        NaN context bins of the run's latents (one column read)."""
        if self._offsets is not None:
            return self._offsets
        lat = self._group(run).get("latents")
        rows = lat.shape[0] if lat is not None else None
        dp = self.data_path()
        if dp and h5py.is_hdf5(dp):
            with h5py.File(dp, "r") as d:
                if "trial_offsets" in d:
                    off = np.asarray(d["trial_offsets"][()], dtype=np.int64)
                    if rows is None or off[-1] == rows:
                        self._offsets = off
                        return off
        if lat is None:
            return None
        col = np.asarray(lat[:, 0], dtype=float)
        nan = np.isnan(col)
        starts = np.where(nan & ~np.concatenate([[False], nan[:-1]]))[0]
        if starts.size == 0 or starts[0] != 0:
            return None
        self._offsets = np.concatenate([starts, [rows]]).astype(np.int64)
        return self._offsets

    def latents(self, run=None, trial=None):
        """The run's encoder means per trial, read lazily: with trial=None a
        sequence whose item k is trial k's (T_k, K) array (read when
        indexed); with an int the array of that trial; with a list of ints a
        list of arrays. The first L bins of every trial are NaN (context)."""
        g = self._group(run)
        if "latents" not in g:
            raise ValueError("run %s has no latents" % self.run(run).id)
        off = self.trial_offsets(run)
        if off is None:
            raise ValueError("run %s: trial boundaries unknown (no data file and no NaN context bins)" % self.run(run).id)
        t = Trials(g["latents"], off)
        if trial is None:
            return t
        if np.ndim(trial) == 0:
            return t[int(trial)]
        return [t[int(k)] for k in trial]

    def all_latents(self, run=None):
        """Every bin's latents of one run, (total_bins, K), read now."""
        g = self._group(run)
        return np.asarray(g["latents"][()], dtype=float) if "latents" in g else None

    def run_dict(self, run=None):
        """One run as the plain dict of load_results (params, latents,
        split, history, metrics, connectivity, pca_eigenvalues)."""
        r = self.run(run)
        g = self._group(r)
        d = {"params": self.params(r) if "params" in g else {}, "metrics": dict(r.metrics),
             "history": self.history(r), "connectivity": self.connectivity(r),
             "standardize": self.standardize(r)}
        for name, fn in (("latents", self.all_latents), ("split", self.split), ("pca_eigenvalues", self.pca_eigenvalues)):
            v = fn(r)
            if v is not None:
                d[name] = v
        return d

    # -- sweeps, beta-aware
    def sweep_rows(self):
        """One dict per run of the sweep (see sweep_rows)."""
        return sweep_rows(self)

    def sweep_summary(self):
        return sweep_summary(sweep_rows(self))

    def selected_config(self):
        return selected_config(self)

    def default_run(self):
        return default_run(self)


def load(path, data=None):
    """Open a facrnn results file: a Results object (see its docstring).
    data: the input file, when it is not where input_path says. Raises
    ValueError with a one-line message when path is not a facrnn results
    file."""
    return Results(path, data)


# --------------------------------------------------------------------------
# the whole file as plain dicts (small files, notebooks, older scripts)


def load_results(path):
    """Read a whole facrnn results file into a plain dict (every run's
    latents included: use load() for large sweeps):

    {"path", "attrs": root attributes,
     "runs": {run_id: {"params": {A (N,K), B (K,N), c (N,), d (K,), s, E, psi, flat, ...},
                       "latents" (total_bins, K), "split" (n_trials,),
                       "history": {epoch, loss, nll, kl, pc, heldout_nll},
                       "metrics": {name: value}, "connectivity": {J, sv_<g>, W_<g>},
                       "pca_eigenvalues" (N,) if stored}},
     "sweep": {"table": {column: array}, "selection": {attr: value},
               "ranked": {column: array} or None} or None}"""
    with Results(path) as r:
        out = {"path": r.path, "attrs": r.attrs, "runs": {rid: r.run_dict(rid) for rid in r.runs}, "sweep": None}
        if r.is_sweep:
            out["sweep"] = {"table": r.table, "selection": r.selection or {}, "ranked": r.ranked}
    return out


# --------------------------------------------------------------------------
# sweep summary and selection: these accept a Results or a load_results dict


def _runs_meta(res):
    if isinstance(res, Results):
        return res.runs
    return {rid: Run(rid, r.get("metrics", {})) for rid, r in res["runs"].items()}


def _sweep_parts(res):
    if isinstance(res, Results):
        return res.table, res.selection
    sw = res.get("sweep") or {}
    return sw.get("table"), sw.get("selection") or None


def run_groups(run):
    """Fitted group sizes of a run (a Run or a load_results run dict)."""
    if isinstance(run, Run):
        return list(run.groups)
    K = run["params"]["A"].shape[1] if "A" in run.get("params", {}) else run["metrics"].get("K")
    return parse_groups(run["metrics"].get("groups", ""), K)


ROW_NUMBERS = ("heldout_nll_per_bin", "heldout_pc", "heldout_r2", "heldout_group_latent_r2", "heldout_co_bps",
               "heldout_co_r2", "heldout_behavior_align_r2", "heldout_behavior_align_all_r2", "train_nll_per_bin",
               "independence", "coupling", "predictability", "objective", "epochs_done", "seconds")


def sweep_rows(res):
    """One dict per run: run_id, K, groups (text), beta, seed, fold, status
    and the numbers of ROW_NUMBERS (NaN when absent), from /sweep/table when
    present, else from the runs' metrics. Metric names are the file's."""
    table, _ = _sweep_parts(res)
    rows = []
    if table:
        n = len(next(iter(table.values())))

        def col(*names):
            for nm in names:
                if nm in table:
                    return table[nm]
            return None

        c_id, c_K, c_g = col("run_id"), col("K"), col("groups")
        for i in range(n):
            rid = str(c_id[i]) if c_id is not None else "row%d" % i
            parsed = parse_run_id(rid)
            K = int(c_K[i]) if c_K is not None else (parsed[0] if parsed else -1)
            g = str(c_g[i]) if c_g is not None else (parsed[1] if parsed else str(K))
            row = {"run_id": rid, "K": K, "groups": groups_text(parse_groups(g, K))}
            c = col("beta")
            row["beta"] = float(c[i]) if c is not None else (parsed[2] if parsed and parsed[2] is not None else math.nan)
            for key in ("seed", "fold"):
                c = col(key)
                row[key] = int(c[i]) if c is not None else None
            for key in ROW_NUMBERS:
                c = col(key)
                row[key] = float(c[i]) if c is not None else math.nan
            c = col("status")
            row["status"] = str(c[i]) if c is not None else "done"
            rows.append(row)
        return rows
    for rid, r in _runs_meta(res).items():
        row = {"run_id": rid, "K": r.K, "groups": r.groups_text, "beta": r.beta, "seed": r.seed, "fold": r.fold,
               "status": r.status}
        for key in ROW_NUMBERS:
            v = r.metrics.get(key, math.nan)
            row[key] = float(v) if np.ndim(v) == 0 else math.nan
        rows.append(row)
    return rows


def _mean_se(v):
    v = np.asarray(v, dtype=float)
    v = v[np.isfinite(v)]
    mean = float(v.mean()) if v.size else math.nan
    se = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else math.nan
    return mean, se


def sweep_summary(rows):
    """Finished runs per configuration (K, groups, beta): mean and standard
    error (SD/√n) over seeds and folds of held-out NLL per bin and PC.
    Sorted by K, number of groups, sizes, beta. A list of dicts with K,
    groups, beta, n, heldout_nll_per_bin(_se), heldout_pc(_se)."""
    acc = {}
    for r in rows:
        if r["status"] != "done":
            continue
        acc.setdefault(config_key(r["K"], r["groups"], r["beta"]), []).append(r)
    out = []
    for (K, g, b), rs in acc.items():
        d = {"K": K, "groups": g, "beta": math.nan if b is None else float(rs[0]["beta"]), "n": len(rs)}
        for key in ("heldout_nll_per_bin", "heldout_pc"):
            d[key], d[key + "_se"] = _mean_se([x[key] for x in rs])
        out.append(d)
    out.sort(key=lambda d: (d["K"], len(parse_groups(d["groups"])), [-s for s in parse_groups(d["groups"])],
                            d["beta"] if np.isfinite(d["beta"]) else -1.0))
    return out


def selected_config(res):
    """The sweep's selection as {"K", "groups", and "beta" when the file
    records it}, from the /sweep/selection attributes (selected_K,
    selected_groups, selected_beta; older files: K, groups, run_id); None
    for a fit file or a sweep without a selection."""
    _, sel = _sweep_parts(res)
    if not sel:
        return None
    out = {}
    for key in ("selected_K", "K"):
        if key in sel:
            out["K"] = int(sel[key])
            break
    for key in ("selected_groups", "groups", "partition"):
        if key in sel:
            out["groups"] = groups_text(parse_groups(sel[key], out.get("K")))
            break
    for key in ("selected_beta", "beta"):
        if key in sel and np.ndim(sel[key]) == 0:
            out["beta"] = float(sel[key])
            break
    for key in ("run_id", "selected_run_id", "selected_run"):
        if key in sel:
            p = parse_run_id(sel[key])
            if p:
                out.setdefault("K", p[0])
                out.setdefault("groups", groups_text(parse_groups(p[1])))
                if p[2] is not None:
                    out.setdefault("beta", p[2])
    if "K" in out and "groups" not in out:
        out["groups"] = str(out["K"])
    return out if "K" in out else None


def matches_selection(K, groups, beta, sel):
    """Whether configuration (K, groups text, beta) is the selected one."""
    if sel is None or K != sel["K"] or groups != sel["groups"]:
        return False
    return "beta" not in sel or same_beta(beta, sel["beta"])


def default_run(res):
    """The run to show when none is named: among the finished runs of the
    selected configuration (K, groups, beta), the one with the lowest
    held-out NLL per bin. A run at another beta is used only when the
    selected beta has no run, and a beta = 0 run never stands in for a
    selected beta > 0. Without a selection: the best finished run."""
    runs = _runs_meta(res)
    if not runs:
        raise ValueError("%s: no runs in /runs" % (res.path if isinstance(res, Results) else res["path"]))
    sel = selected_config(res)
    cands = list(runs.values())
    if sel:
        same = [r for r in cands if matches_selection(r.K, r.groups_text, r.beta, sel)]
        if not same:
            same = [r for r in cands if r.K == sel["K"] and r.groups_text == sel["groups"]]
            if "beta" in sel and sel["beta"] > 0:
                same = [r for r in same if not (r.beta == 0)]
        cands = same or cands
    best, best_v = None, math.inf
    for r in sorted(cands, key=lambda r: r.id):
        v = r.metric("heldout_nll_per_bin")
        if r.status == "done" and isinstance(v, float) and math.isfinite(v) and v < best_v:
            best, best_v = r.id, v
    return best if best is not None else sorted(r.id for r in cands)[0]
