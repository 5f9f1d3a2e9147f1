#!/usr/bin/python3
"""decode_baseline.py: the baselines a FacRNN fit is compared against: a
direct behaviour decoder, and the Neural Latents Benchmark's co-smoothing
baselines.

For each run of a results file (or the one named by --run), on that run's own
/runs/<id>/split (1 = training trial, 0 = held-out):

1. Ridge decoder (when the input has /behavior). Predictors at bin t are
   sqrt(spike counts) of the L causal lags t-1 .. t-L (L = the run's
   model.lags, so the decoder sees exactly the bins the encoder mean
   mu_t = B h_t + d sees; --lags overrides, --include-current adds bin t
   itself), plus an unpenalised intercept. Samples are the bins t >= L of each
   trial, as in the model. Target: /behavior (e.g. hand velocity). The ridge
   strength is chosen by --cv-folds-fold cross-validation over training
   trials (whole trials per fold, seed 0) from a grid of
   lambda * trace(Cxx)/n_features (scale-free), then the decoder is refitted
   on all training trials and scored on the held-out trials.
2. Latent behaviour R² (when the input has /behavior), with the definition
   the C code uses for the `train/heldout_behavior_r2` metrics attributes:
   affine least squares from the stored latents (NaN context bins dropped) to
   /behavior, fitted on the training trials' bins with a ridge of
   1e-6 * trace(Cxx)/K on the centred covariance (intercept free), scored on
   held-out bins as R² = 1 - SSE/SST about the held-out mean per behaviour
   dimension (a constant dimension scores 0), averaged uniformly over
   dimensions.
3. Co-smoothing baselines (when the run has held-out channels,
   data.heldout_channels in its stored configuration, else the input's
   /heldout_channels): spike smoothing (held-in counts smoothed with a causal
   Gaussian kernel whose width is chosen by cross-validation on the training
   trials, then a Poisson GLM to each held-out channel) and a Poisson GLM
   from the held-in counts at lags 1 .. L (L2 by cross-validation), both
   fitted on the training trials and scored on the held-out trials with
   facrnn's co_bps definition (facrnn_py.cosmooth.co_bps: bits per spike of
   the held-out channels against each one's mean rate). The timing is
   facrnn's: bin t is predicted from bins before t only, and the scored bins
   are t >= L of each trial, the bins facrnn scores. facrnn's own co_bps (the
   run's heldout_co_bps) is printed beside them, with the same number
   recomputed in Python from the run's latents and decoder. Details:
   postprocess/facrnn_py/cosmooth.py. Input /mask (1 = observed): masked
   entries are left out of the fits and scores and count as 0 as predictors.

R² is always the uniform mean over behaviour dimensions; per-dimension values
are printed too.

Usage:
  postprocess/decode_baseline.py RESULTS.h5 [--data INPUT.h5] [--run RUN_ID]
        [--lags L] [--include-current] [--cv-folds F] [--co-cv-folds F]
        [--json OUT.json]

--data defaults to the results file's `input_path` attribute. Exit status 2
on a usage or input problem (one-line message on stderr), 0 otherwise.
"""
import argparse
import json
import os
import re
import sys

import numpy as np

try:
    import h5py
except ImportError:  # pragma: no cover - Debian python3-h5py
    print("decode_baseline.py: error: needs h5py (Debian package python3-h5py)", file=sys.stderr)
    sys.exit(2)

LAMBDA_GRID = 10.0 ** np.arange(-6, 2.5, 0.5)   # relative ridge strengths tried by CV

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import facrnn_py as fr  # noqa: E402
from facrnn_py import cosmooth  # noqa: E402


class DecodeError(Exception):
    """A problem with the inputs; reported as one line."""


# ---- moments-based affine ridge (mirrors the C analysis module) ---------------


def affine_fit(X, Y, ridge_rel):
    """Affine ridge fit Y ~ X W + b on rows X (n, p), Y (n, q): the centred
    covariance Cxx (divided by n) gets ridge_rel * trace(Cxx)/p on its
    diagonal, the intercept is unpenalised. Returns (W (p, q), b (q))."""
    mx, my = X.mean(axis=0), Y.mean(axis=0)
    Xc, Yc = X - mx, Y - my
    n = X.shape[0]
    Cxx = Xc.T @ Xc / n
    Cxy = Xc.T @ Yc / n
    p = X.shape[1]
    tr = np.trace(Cxx)
    if p == 0 or tr <= 0:
        W = np.zeros((p, Y.shape[1]))
    else:
        W = np.linalg.solve(Cxx + ridge_rel * tr / p * np.eye(p), Cxy)
    return W, my - mx @ W


def r2_dims(Y, Yhat):
    """Per-dimension R² = 1 - SSE/SST about Y's own mean (0 where Y is constant)."""
    sst = ((Y - Y.mean(axis=0)) ** 2).sum(axis=0)
    sse = ((Y - Yhat) ** 2).sum(axis=0)
    raw = (Y ** 2).sum(axis=0)
    ok = (sst > 1e-14 * raw) & (sst > 0)
    return np.where(ok, 1.0 - sse / np.where(ok, sst, 1.0), 0.0)


# ---- inputs ------------------------------------------------------------------


def read_input(path):
    """/data (total_bins, N), /trial_offsets, and the optional /behavior,
    /mask, /heldout_channels and /inputs (each None when absent), the
    bin_size_s and observation attributes."""
    if not os.path.exists(path):
        raise DecodeError(f"--data: no such file '{path}'")
    with h5py.File(path, "r") as f:
        for name in ("/data", "/trial_offsets"):
            if name not in f:
                raise DecodeError(f"{path}: {name} is missing (not a facrnn input file)")
        x = np.asarray(f["/data"][()], float)            # (total_bins, N)
        off = np.asarray(f["/trial_offsets"][()], np.int64)  # (n_trials + 1)
        y = np.asarray(f["/behavior"][()], float) if "/behavior" in f else None  # (total_bins, P)
        mask = np.asarray(f["/mask"][()]) if "/mask" in f else None   # (total_bins, N), 1 = observed
        held = np.asarray(f["/heldout_channels"][()], np.int64).ravel() if "/heldout_channels" in f else None
        u = np.asarray(f["/inputs"][()], float) if "/inputs" in f else None  # (total_bins, D)
        bin_s = float(f.attrs.get("bin_size_s", 0) or 0)
        obs = f.attrs.get("observation", "")
        obs = obs.decode() if isinstance(obs, bytes) else str(obs)
    if y is not None and y.ndim == 1:
        y = y[:, None]
    if x.ndim != 2 or off.ndim != 1 or off[0] != 0 or off[-1] != x.shape[0] or np.any(np.diff(off) <= 0):
        raise DecodeError(f"{path}: /trial_offsets is not a valid offsets vector for /data")
    if mask is not None:
        if mask.shape != x.shape:
            raise DecodeError(f"{path}: /mask has shape {mask.shape}, /data {x.shape}")
        x = np.where(mask != 0, x, 0.0)                # NaN allowed where missing
    if not np.all(np.isfinite(x)):
        raise DecodeError(f"{path}: /data has NaN or Inf" + (" where /mask is 1" if mask is not None else ""))
    if np.any(x < 0):
        raise DecodeError(f"{path}: /data has negative values; the baselines take spike counts")
    return x, off, y, mask, held, u, bin_s, obs


def lagged(xs, off, lags, include_current):
    """Design rows for every sample (k, t), t >= L: [x_{t-1}, ..., x_{t-L}]
    (and x_t first with include_current). Returns (F (n_samples, n_feat),
    rows (n_samples,) global bin index t, trial (n_samples,))."""
    feats, rows, trial = [], [], []
    shifts = ([0] if include_current else []) + list(range(1, lags + 1))
    for k in range(len(off) - 1):
        a, e = off[k], off[k + 1]
        if e - a <= lags:
            continue
        t = np.arange(a + lags, e)
        feats.append(np.hstack([xs[t - s] for s in shifts]))
        rows.append(t)
        trial.append(np.full(len(t), k))
    return np.vstack(feats), np.concatenate(rows), np.concatenate(trial)


def ridge_decoder(x, off, y, split, lags, include_current, cv_folds, seed=0):
    """Ridge baseline (see the module docstring). Returns a dict."""
    F, rows, trial = lagged(np.sqrt(x), off, lags, include_current)
    Y = y[rows]
    tr = split[trial] == 1
    te = ~tr
    if not te.any():
        raise DecodeError("split: the run has no held-out trials (cv.folds: 1); nothing to score")
    train_trials = np.flatnonzero(split == 1)
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(split), int)
    fold_of[train_trials] = rng.permutation(len(train_trials)) % cv_folds
    cv = []
    for lam in LAMBDA_GRID:
        scores = []
        for f in range(cv_folds):
            fit = tr & (fold_of[trial] != f)
            val = tr & (fold_of[trial] == f)
            W, b = affine_fit(F[fit], Y[fit], lam)
            scores.append(r2_dims(Y[val], F[val] @ W + b).mean())
        cv.append(float(np.mean(scores)))
    best = int(np.argmax(cv))
    lam = float(LAMBDA_GRID[best])
    W, b = affine_fit(F[tr], Y[tr], lam)
    r2 = r2_dims(Y[te], F[te] @ W + b)
    r2_train = r2_dims(Y[tr], F[tr] @ W + b)
    return {"lags": lags, "include_current": include_current, "n_features": F.shape[1], "lambda_rel": lam,
            "cv_r2": cv[best], "heldout_r2": float(r2.mean()), "heldout_r2_dims": r2.tolist(),
            "train_r2": float(r2_train.mean()), "n_train": int(tr.sum()), "n_heldout": int(te.sum())}


def latent_behavior(latents, off, y, split):
    """Latents -> behaviour: facrnn_py.behavior_r2, the one definition (the C metric's)."""
    r = fr.behavior_r2(latents, y, off, split)
    out = {"train_r2": r["train"][1], "heldout_r2": float("nan"), "heldout_r2_dims": []}
    if np.isfinite(r["heldout"][1]):
        out.update(heldout_r2=r["heldout"][1], heldout_r2_dims=[float(v) for v in r["heldout"][0]])
    return out


def config_value(config_text, section, key):
    """The text of `key:` in `section:` of the resolved config YAML stored in a
    results file (flat two-level layout, as facrnn writes it), or None."""
    m = re.search(r"^%s:\s*$(.*?)^\S" % re.escape(section), config_text + "\nend", re.S | re.M)
    if m:
        km = re.search(r"^\s+%s:\s*(.*?)\s*$" % re.escape(key), m.group(1), re.M)
        if km:
            return km.group(1)
    return None


def config_lags(config_text):
    """model.lags from the resolved config YAML text stored in the results file."""
    v = config_value(config_text, "model", "lags")
    return int(v) if v is not None and v.isdigit() else None


def config_int_list(config_text, section, key):
    """An int list such as data.heldout_channels ([] for null or absent)."""
    v = config_value(config_text, section, key)
    if v is None or v in ("null", "[]", "~", ""):
        return []
    m = re.fullmatch(r"\[([-0-9,\s]*)\]", v)
    if not m:
        raise DecodeError(f"config: {section}.{key} is not a list of integers: {v}")
    return [int(t) for t in m.group(1).replace(",", " ").split()]


def facrnn_co_bps(g, x, off, split, held, lags, link, mask, inputs):
    """facrnn's held-out co_bps recomputed from the run's latents and decoder
    (rate = link(A mu_t + c [+ E u_t]) with Poisson counts), with the same
    function as the baselines; NaN when the run does not store what it needs."""
    if "latents" not in g or "params" not in g or link not in ("exp", "softplus"):
        return float("nan")
    p = g["params"]
    if "A" not in p or "c" not in p or ("E" in p and inputs is None):
        return float("nan")
    rows, _ = cosmooth.scored_rows(off, split, 0, lags)
    if rows.size == 0:
        return float("nan")
    A, c = np.asarray(p["A"][()], float), np.asarray(p["c"][()], float)
    mu = np.asarray(g["latents"][()], float)[rows]
    eta = mu @ A[held].T + c[held]
    if "E" in p:
        eta += inputs[rows] @ np.asarray(p["E"][()], float)[held].T
    rate = np.exp(eta) if link == "exp" else np.logaddexp(0.0, eta)
    return cosmooth.co_bps(x[rows][:, held], rate, None if mask is None else mask[rows][:, held] != 0)


def print_cosmooth(rid, co, c_val, c_py, bin_s):
    sig = co["smoothing"]["sigma_bins"]
    ms = f" = {sig * bin_s * 1e3:g} ms" if bin_s else ""
    print(f"{rid}: co-smoothing, {len(co['heldout'])} held-out channels predicted from {len(co['heldin'])} "
          f"held-in; {co['n_heldout']} scored bins of the held-out trials ({co['n_train']} training); "
          f"bin t predicted from bins before t (t >= L = {co['lags']} in each trial)")
    rows = (("facrnn (stored heldout_co_bps)", c_val, f"recomputed from latents: {c_py:.4f}"),
            ("spike smoothing + Poisson GLM", co["smoothing"]["co_bps"],
             f"causal Gaussian sigma {sig:g} bins{ms} (CV over {co['folds']} folds), L2 {co['smoothing']['alpha']:g}"),
            (f"Poisson GLM, lags 1..{co['lags']}", co["glm"]["co_bps"],
             f"L2 {co['glm']['alpha']:g} (CV over {co['folds']} folds)"))
    print(f"  {'model':<32} {'co_bps':>8}  settings")
    for name, v, how in rows:
        print(f"  {name:<32} {v:>8.4f}  {how}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="See the module docstring for the definitions.")
    ap.add_argument("results", help="facrnn results HDF5 (fit or sweep)")
    ap.add_argument("--data", help="input HDF5 (default: the results file's input_path)")
    ap.add_argument("--run", help="run id under /runs (default: every run)")
    ap.add_argument("--lags", type=int, help="ridge decoder lags (default: the run's model.lags; the co-smoothing "
                                             "baselines always use the run's, so they score the bins facrnn scores)")
    ap.add_argument("--include-current", action="store_true", help="also use bin t (not causal w.r.t. the model)")
    ap.add_argument("--cv-folds", type=int, default=5, help="folds over training trials for choosing lambda")
    ap.add_argument("--co-cv-folds", type=int, default=3,
                    help="folds over training trials for the co-smoothing baselines' kernel width and L2")
    ap.add_argument("--json", help="also write the numbers to this JSON file")
    args = ap.parse_args(argv)
    try:
        if not os.path.exists(args.results):
            raise DecodeError(f"results: no such file '{args.results}'")
        if args.lags is not None and args.lags < 1:
            raise DecodeError(f"--lags: must be >= 1, got {args.lags}")
        if args.cv_folds < 2 or args.co_cv_folds < 2:
            raise DecodeError("--cv-folds and --co-cv-folds: need at least 2 folds")
        if not h5py.is_hdf5(args.results):
            raise DecodeError(f"{args.results}: not an HDF5 file (so not a facrnn results file)")
        with h5py.File(args.results, "r") as f:
            if "runs" not in f:
                raise DecodeError(f"{args.results}: no /runs group")
            attr = lambda k: f.attrs[k].decode() if isinstance(f.attrs[k], bytes) else str(f.attrs[k])  # noqa: E731
            data_path = args.data or (attr("input_path") if "input_path" in f.attrs else None)
            cfg = attr("config") if "config" in f.attrs else ""
            cfg_lags = config_lags(cfg)
            cfg_held = config_int_list(cfg, "data", "heldout_channels")
            link = config_value(cfg, "model", "link")
            observation = (config_value(cfg, "data", "observation") or "").strip('"')
            ids = [args.run] if args.run else sorted(f["runs"])
            if not data_path:
                raise DecodeError("--data: not given and the results file has no input_path")
            x, off, y, mask, file_held, u, bin_s, file_obs = read_input(data_path)
            held = cfg_held or ([] if file_held is None else [int(h) for h in file_held])
            lags = args.lags or cfg_lags or 1
            co_lags = cfg_lags or 1                    # the run's L: the bins facrnn scores
            observation = observation or file_obs      # "" in the config: the file's attribute
            if y is None and not held:
                raise DecodeError(f"{data_path}: no /behavior and the run has no held-out channels "
                                  f"(data.heldout_channels): nothing to compare")
            if held and observation != "poisson":
                raise DecodeError(f"{args.results}: co-smoothing baselines score spike counts (Poisson), "
                                  f"the run's observation is {observation}")
            report = {"results": args.results, "data": data_path, "runs": {}}
            for rid in ids:
                if rid not in f["runs"]:
                    raise DecodeError(f"{args.results}: no run '/runs/{rid}'")
                g = f["runs"][rid]
                need = ("split", "latents") if y is not None else ("split",)
                for name in need:
                    if name not in g:
                        raise DecodeError(f"{args.results}: /runs/{rid}/{name} is missing")
                split = np.asarray(g["split"][()]).astype(int)
                metrics = {k: g["metrics"].attrs[k] for k in g["metrics"].attrs} if "metrics" in g else {}
                if len(split) != len(off) - 1:
                    raise DecodeError(f"/runs/{rid}/split has {len(split)} trials, {data_path} has {len(off) - 1}")
                if "latents" in g and g["latents"].shape[0] != x.shape[0]:
                    raise DecodeError(f"/runs/{rid}/latents has {g['latents'].shape[0]} rows, /data has {x.shape[0]}")
                out = {}
                if y is not None:
                    latents = np.asarray(g["latents"][()], float)
                    dec = ridge_decoder(x, off, y, split, lags, args.include_current, args.cv_folds)
                    lat = latent_behavior(latents, off, y, split)
                    c_val = float(metrics.get("heldout_behavior_r2", np.nan))
                    out.update(ridge=dec, latent=lat, c_heldout_behavior_r2=c_val)
                    ratio = lat["heldout_r2"] / dec["heldout_r2"] if dec["heldout_r2"] > 0 else float("nan")
                    print(f"{rid}: ridge decoder (sqrt counts, {dec['n_features']} features = {lags} lag(s)"
                          f"{' + current bin' if args.include_current else ''}, lambda {dec['lambda_rel']:.3g}, "
                          f"CV R2 {dec['cv_r2']:.4f}) held-out R2 {dec['heldout_r2']:.4f} "
                          f"[{', '.join('%.4f' % v for v in dec['heldout_r2_dims'])}]")
                    print(f"{rid}: latents -> behaviour held-out R2 {lat['heldout_r2']:.4f} "
                          f"[{', '.join('%.4f' % v for v in lat['heldout_r2_dims'])}] (train {lat['train_r2']:.4f}); "
                          f"C metric {c_val:.4f}; latents / ridge = {ratio:.3f}")
                if held:
                    try:
                        co = cosmooth.cosmooth_baselines(x, off, split, held, co_lags, mask, args.co_cv_folds)
                    except ValueError as e:
                        raise DecodeError(f"co-smoothing, run {rid}: {e}")
                    c_co = float(metrics.get("heldout_co_bps", np.nan))
                    c_py = facrnn_co_bps(g, x, off, split, co["heldout"], co_lags, link, mask, u)
                    co["facrnn_co_bps"] = c_co
                    co["facrnn_co_bps_python"] = c_py
                    out["cosmooth"] = co
                    print_cosmooth(rid, co, c_co, c_py, bin_s)
                report["runs"][rid] = out
        if args.json:
            tmp = args.json + ".tmp"
            with open(tmp, "w") as fh:
                json.dump(report, fh, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, args.json)
    except (DecodeError, ValueError, OSError, KeyError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"decode_baseline.py: error: {args.results if isinstance(e, OSError) else ''}"
              f"{': ' if isinstance(e, OSError) else ''}{msg}", file=sys.stderr)
        return 2
    except Exception as e:  # a promise: one line and exit 2, never a traceback
        print(f"decode_baseline.py: error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
