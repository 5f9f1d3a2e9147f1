#!/usr/bin/python3
"""decode_baseline.py: the direct decoder a FacRNN fit's latents are compared
against, and an independent check of the fit's behaviour R².

For each run of a results file (or the one named by --run), on that run's own
/runs/<id>/split (1 = training trial, 0 = held-out):

1. Ridge decoder (the baseline). Predictors at bin t are sqrt(spike counts)
   of the L causal lags t-1 .. t-L (L = the run's model.lags, so the decoder
   sees exactly the bins the encoder mean mu_t = B h_t + d sees; --lags
   overrides, --include-current adds bin t itself), plus an unpenalised
   intercept. Samples are the bins t >= L of each trial, as in the model.
   Target: /behavior (e.g. hand velocity). The ridge strength is chosen by
   --cv-folds-fold cross-validation over training trials (whole trials per
   fold, seed 0) from a grid of lambda * trace(Cxx)/n_features (scale-free),
   then the decoder is refitted on all training trials and scored on the
   held-out trials.
2. Latent behaviour R², with the definition the C code uses for the
   `train/heldout_behavior_r2` metrics attributes: affine least squares from
   the stored latents (NaN context bins dropped) to /behavior, fitted on the
   training trials' bins with a ridge of 1e-6 * trace(Cxx)/K on the centred
   covariance (intercept free), scored on held-out bins as R² = 1 - SSE/SST
   about the held-out mean per behaviour dimension (a constant dimension
   scores 0), averaged uniformly over dimensions.

R² is always the uniform mean over behaviour dimensions; per-dimension values
are printed too.

Usage:
  postprocess/decode_baseline.py RESULTS.h5 [--data INPUT.h5] [--run RUN_ID]
        [--lags L] [--include-current] [--json OUT.json]

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
    if not os.path.exists(path):
        raise DecodeError(f"--data: no such file '{path}'")
    with h5py.File(path, "r") as f:
        for name in ("/data", "/trial_offsets", "/behavior"):
            if name not in f:
                raise DecodeError(f"{path}: {name} is missing (the decoder needs spike data and behaviour)")
        x = np.asarray(f["/data"][()], float)            # (total_bins, N)
        off = np.asarray(f["/trial_offsets"][()], np.int64)  # (n_trials + 1)
        y = np.asarray(f["/behavior"][()], float)         # (total_bins, P)
    if y.ndim == 1:
        y = y[:, None]
    if np.any(x < 0):
        raise DecodeError(f"{path}: /data has negative values; the decoder takes sqrt of spike counts")
    return x, off, y


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


def config_lags(config_text):
    """model.lags from the resolved config YAML text stored in the results file."""
    m = re.search(r"^model:\s*$(.*?)^\S", config_text + "\nend", re.S | re.M)
    if m:
        lm = re.search(r"^\s+lags:\s*(\d+)", m.group(1), re.M)
        if lm:
            return int(lm.group(1))
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="See the module docstring for the definitions.")
    ap.add_argument("results", help="facrnn results HDF5 (fit or sweep)")
    ap.add_argument("--data", help="input HDF5 (default: the results file's input_path)")
    ap.add_argument("--run", help="run id under /runs (default: every run)")
    ap.add_argument("--lags", type=int, help="decoder lags (default: the run's model.lags)")
    ap.add_argument("--include-current", action="store_true", help="also use bin t (not causal w.r.t. the model)")
    ap.add_argument("--cv-folds", type=int, default=5, help="folds over training trials for choosing lambda")
    ap.add_argument("--json", help="also write the numbers to this JSON file")
    args = ap.parse_args(argv)
    try:
        if not os.path.exists(args.results):
            raise DecodeError(f"results: no such file '{args.results}'")
        with h5py.File(args.results, "r") as f:
            if "runs" not in f:
                raise DecodeError(f"{args.results}: no /runs group")
            attr = lambda k: f.attrs[k].decode() if isinstance(f.attrs[k], bytes) else str(f.attrs[k])  # noqa: E731
            data_path = args.data or (attr("input_path") if "input_path" in f.attrs else None)
            cfg_lags = config_lags(attr("config")) if "config" in f.attrs else None
            ids = [args.run] if args.run else sorted(f["runs"])
            runs = {}
            for rid in ids:
                if rid not in f["runs"]:
                    raise DecodeError(f"{args.results}: no run '/runs/{rid}'")
                g = f["runs"][rid]
                for name in ("split", "latents"):
                    if name not in g:
                        raise DecodeError(f"{args.results}: /runs/{rid}/{name} is missing")
                runs[rid] = {"split": np.asarray(g["split"][()]).astype(int),
                             "latents": np.asarray(g["latents"][()], float),
                             "metrics": {k: g["metrics"].attrs[k] for k in g["metrics"].attrs}
                             if "metrics" in g else {}}
        if not data_path:
            raise DecodeError("--data: not given and the results file has no input_path")
        x, off, y = read_input(data_path)
        lags = args.lags or cfg_lags or 1
        report = {"results": args.results, "data": data_path, "runs": {}}
        for rid, r in runs.items():
            if len(r["split"]) != len(off) - 1:
                raise DecodeError(f"/runs/{rid}/split has {len(r['split'])} trials, {data_path} has {len(off) - 1}")
            if r["latents"].shape[0] != x.shape[0]:
                raise DecodeError(f"/runs/{rid}/latents has {r['latents'].shape[0]} rows, /data has {x.shape[0]}")
            dec = ridge_decoder(x, off, y, r["split"], lags, args.include_current, args.cv_folds)
            lat = latent_behavior(r["latents"], off, y, r["split"])
            c_val = float(r["metrics"].get("heldout_behavior_r2", np.nan))
            report["runs"][rid] = {"ridge": dec, "latent": lat, "c_heldout_behavior_r2": c_val}
            ratio = lat["heldout_r2"] / dec["heldout_r2"] if dec["heldout_r2"] > 0 else float("nan")
            print(f"{rid}: ridge decoder (sqrt counts, {dec['n_features']} features = {lags} lag(s)"
                  f"{' + current bin' if args.include_current else ''}, lambda {dec['lambda_rel']:.3g}, "
                  f"CV R2 {dec['cv_r2']:.4f}) held-out R2 {dec['heldout_r2']:.4f} "
                  f"[{', '.join('%.4f' % v for v in dec['heldout_r2_dims'])}]")
            print(f"{rid}: latents -> behaviour held-out R2 {lat['heldout_r2']:.4f} "
                  f"[{', '.join('%.4f' % v for v in lat['heldout_r2_dims'])}] (train {lat['train_r2']:.4f}); "
                  f"C metric {c_val:.4f}; latents / ridge = {ratio:.3f}")
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(report, fh, indent=1)
    except (DecodeError, ValueError, OSError, KeyError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"decode_baseline.py: error: {args.results if isinstance(e, OSError) else ''}"
              f"{': ' if isinstance(e, OSError) else ''}{msg}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
