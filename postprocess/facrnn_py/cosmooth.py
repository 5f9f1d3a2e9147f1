"""cosmooth: co-smoothing scores and the Neural Latents Benchmark's baselines.

co_bps is the one Python definition of facrnn's `co_bps` metric
(src/par/trainer_eval.c, docs/model.md "Held-out channels"): bits per spike of
the held-out channels on the evaluated bins against each channel's mean rate
over those bins, rates floored at 1e-8 as in the C code, ln x! cancelling.
The baselines of decode_baseline.py are scored with it, and its tests compare
it with an independent computation and with the C metric.

Timing is facrnn's: the prediction of bin t reads bins before t only (the
encoder reads x_{t-1} .. x_{t-L}), and the scored bins are those with t >= L
in each trial (L = model.lags), exactly the bins facrnn scores. NLB's own
baselines read the held-in neurons of bin t itself (and smooth acausally), so
the figures here are comparable in definition, and the task is the same one
facrnn solves.

Baselines (fitted on the training trials, scored on the held-out trials):

* smoothing: every held-in channel is smoothed with a causal half-Gaussian
  kernel over the bins before t, weights exp(-(j-1)^2 / (2 sigma^2)) for lag
  j = 1 .. J (J = ceil(3 sigma) + 1), renormalised over the lags that lie
  inside the trial; a Poisson GLM (exp link, L2 SMOOTH_ALPHA) maps the
  smoothed held-in activity to each held-out channel. sigma is chosen from
  SIGMA_GRID_BINS by cross-validation over the training trials.
* glm: a Poisson GLM (exp link) from the held-in counts at lags 1 .. L to
  each held-out channel, L2 strength chosen from ALPHA_GRID by
  cross-validation over the training trials.

The GLM's predictors are z-scored with the fitting rows' means and stds; the
objective per held-out channel is the mean over its observed fitting rows of
(lambda - y ln lambda) plus alpha/2 |w|^2 on the z-scored weights (the
intercept is free), minimised by Newton's method for each held-out channel
(it is convex; numpy only). Cross-validation: whole training trials in
`folds` folds (seed 0), the summed validation Poisson NLL decides. Weights
are returned in the units of the raw predictors: rate = exp(F W + b).

With a mask (1 = observed), masked targets are left out of the fits and of
the scores, and masked predictor entries count as 0.
"""
import math

import numpy as np

RATE_FLOOR = 1e-8                              # FR_POISSON_RATE_FLOOR (include/facrnn/model.h)
SIGMA_GRID_BINS = (0.5, 1.0, 2.0, 3.0, 5.0, 8.0)   # smoothing widths tried (in bins)
SMOOTH_ALPHA = 1e-3                            # the smoothing baseline's GLM L2 (z-scored predictors)
ALPHA_GRID = (1.0, 1e-1, 1e-2, 1e-3, 1e-4)  # the lagged GLM's L2 strengths tried (strongest first)
ETA_MAX = 30.0                                 # exp argument cap in the fits (rates up to e^30)


# ---- the score -----------------------------------------------------------------


def co_bps(y, rate, mask=None):
    """facrnn's co_bps of predicted rates: y (n, H) held-out counts on the
    evaluated bins, rate (n, H) the predicted Poisson rates, mask (n, H) 1 =
    observed (None: all). (NLL of each channel's mean rate over its observed
    bins - NLL of the rates) / (spikes x ln 2); NaN without spikes."""
    y = np.asarray(y, dtype=float)
    lam = np.maximum(np.asarray(rate, dtype=float), RATE_FLOOR)
    w = np.ones_like(y) if mask is None else np.asarray(mask, dtype=float)
    n = w.sum(axis=0)
    s = (w * y).sum(axis=0)
    rbar = np.maximum(s / np.maximum(n, 1), RATE_FLOOR)
    nll_model = (w * (lam - y * np.log(lam))).sum()
    nll_null = (n * rbar - s * np.log(rbar)).sum()
    spikes = s.sum()
    return float((nll_null - nll_model) / (spikes * math.log(2.0))) if spikes > 0 else math.nan


def poisson_nll(y, rate, mask=None):
    """Summed Poisson NLL without ln y! (the part that depends on the rates)."""
    lam = np.maximum(np.asarray(rate, dtype=float), RATE_FLOOR)
    w = 1.0 if mask is None else np.asarray(mask, dtype=float)
    return float((w * (lam - np.asarray(y, dtype=float) * np.log(lam))).sum())


# ---- rows and predictors --------------------------------------------------------


def scored_rows(offsets, split, which, lags):
    """Global rows t >= lags of the trials with split == which, in order
    (facrnn's evaluated bins of that set), and each row's trial."""
    rows, trial = [], []
    for k in range(len(offsets) - 1):
        if int(split[k]) != which:
            continue
        a, e = int(offsets[k]) + lags, int(offsets[k + 1])
        if e > a:
            rows.append(np.arange(a, e))
            trial.append(np.full(e - a, k))
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(rows), np.concatenate(trial)


def lag_features(x, rows, lags):
    """[x_{t-1}, ..., x_{t-lags}] for each row t (n, lags * N): the caller's
    rows have t - lags inside their trial (scored_rows)."""
    return np.hstack([x[rows - j] for j in range(1, lags + 1)])


def smooth_kernel(sigma):
    """Causal half-Gaussian weights for lags 1 .. J (unnormalised)."""
    J = int(math.ceil(3.0 * sigma)) + 1
    j = np.arange(1, J + 1)
    return np.exp(-((j - 1) ** 2) / (2.0 * sigma * sigma))


def smoothed_features(x, offsets, rows, sigma):
    """Causally smoothed x for each row t (n, N): sum_j g_j x_{t-j} / sum_j g_j
    over the lags j >= 1 whose bin t-j lies in t's trial."""
    g = smooth_kernel(sigma)
    trial = np.searchsorted(offsets, rows, side="right") - 1
    pos = rows - np.asarray(offsets)[trial]          # bins of the trial before t
    num = np.zeros((len(rows), x.shape[1]))
    den = np.zeros(len(rows))
    for j, gj in enumerate(g, start=1):
        ok = pos >= j
        num[ok] += gj * x[rows[ok] - j]
        den[ok] += gj
    if np.any(den <= 0):
        raise ValueError("smoothing: a scored bin has no earlier bin in its trial (lags must be >= 1)")
    return num / den[:, None]


# ---- the Poisson GLM --------------------------------------------------------------


def _glm_objective(Z1, Y, Wt, n_obs, alpha, theta):
    """Per-channel objectives (H,) of z-scored predictors with an intercept
    column (Z1 (n, p+1), theta (p+1, H)): mean over observed rows of
    lambda - y eta, plus alpha/2 |w|^2 (the intercept, last row, is free)."""
    eta = np.minimum(Z1 @ theta, ETA_MAX)
    f = (Wt * (np.exp(eta) - Y * eta)).sum(axis=0) / n_obs
    return f + 0.5 * alpha * (theta[:-1] ** 2).sum(axis=0)


def fit_glm(F, Y, alpha, mask=None, init=None, tol=1e-12, max_iter=100):
    """Poisson GLM rate = exp(F W + b) for every column of Y (see the module
    docstring), by Newton's method with a backtracking line search, each
    column on its own (the problem is separable and strictly convex for
    alpha > 0): stops when every column's Newton decrement g' H^-1 g / 2 is
    below tol (nats per row). F (n, p), Y (n, H), mask (n, H) or None.
    Returns {"W" (p, H), "b" (H,)} in F's units, "theta" ((p+1, H), the
    z-scored solution, a warm start for init), "converged", "iterations"."""
    F = np.asarray(F, dtype=float)
    Y = np.asarray(Y, dtype=float)
    n, p = F.shape
    H = Y.shape[1]
    Wt = np.ones_like(Y) if mask is None else np.asarray(mask, dtype=float)
    n_obs = np.maximum(Wt.sum(axis=0), 1.0)
    mu = F.mean(axis=0)
    sd = F.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    Z1 = np.hstack([(F - mu) / sd, np.ones((n, 1))])
    if init is None:
        theta = np.zeros((p + 1, H))
        theta[-1] = np.log(np.maximum((Wt * Y).sum(axis=0) / n_obs, RATE_FLOOR))
    else:
        theta = np.array(init, dtype=float)
    reg = np.full(p + 1, alpha)
    reg[-1] = 0.0
    f = _glm_objective(Z1, Y, Wt, n_obs, alpha, theta)
    active = np.ones(H, bool)
    it = 0
    for it in range(1, max_iter + 1):
        eta = np.minimum(Z1 @ theta[:, active], ETA_MAX)
        lam = np.exp(eta)
        w = Wt[:, active] / n_obs[active]
        grad = Z1.T @ (w * (lam - Y[:, active])) + reg[:, None] * theta[:, active]
        step = np.empty_like(grad)
        for j in range(grad.shape[1]):
            hess = Z1.T @ (Z1 * (w[:, j] * lam[:, j])[:, None])
            hess[np.diag_indices(p + 1)] += reg + 1e-12
            step[:, j] = np.linalg.solve(hess, grad[:, j])
        dec = 0.5 * (grad * step).sum(axis=0)
        idx = np.flatnonzero(active)
        done = dec < tol
        # backtracking on the columns still moving
        t = np.ones(idx.size)
        cur = f[idx]
        for _ in range(40):
            trial = theta[:, idx] - t * step
            ft = _glm_objective(Z1, Y[:, idx], Wt[:, idx], n_obs[idx], alpha, trial)
            ok = done | (ft <= cur - 1e-4 * t * 2 * dec)
            if ok.all():
                break
            t = np.where(ok, t, 0.5 * t)
        move = ~done
        theta[:, idx[move]] = (theta[:, idx] - t * step)[:, move]
        f[idx[move]] = ft[move]
        active[idx[done]] = False
        if not active.any():
            break
    Wz = theta[:-1]
    W = Wz / sd[:, None]
    b = theta[-1] - mu @ W
    return {"W": W, "b": b, "theta": theta, "converged": not active.any(), "iterations": it}


def glm_rate(F, fit):
    return np.exp(np.minimum(np.asarray(F, dtype=float) @ fit["W"] + fit["b"], ETA_MAX))


def _folds(trial, train_trials, folds, seed=0):
    """Fold of each row, whole trials per fold (seed fixed)."""
    rng = np.random.default_rng(seed)
    fold_of = {int(k): int(f) for k, f in zip(train_trials, rng.permutation(len(train_trials)) % folds)}
    return np.array([fold_of[int(k)] for k in trial])


def _cv_nll(F, Y, M, fold, folds, alpha, inits):
    total = 0.0
    for f in range(folds):
        fit_rows, val = fold != f, fold == f
        if not val.any() or not fit_rows.any():
            continue
        g = fit_glm(F[fit_rows], Y[fit_rows], alpha, None if M is None else M[fit_rows], init=inits.get(f))
        inits[f] = g["theta"]
        total += poisson_nll(Y[val], glm_rate(F[val], g), None if M is None else M[val])
    return total


# ---- the two baselines ------------------------------------------------------------


def cosmooth_baselines(x, offsets, split, heldout, lags, mask=None, folds=3, sigmas=SIGMA_GRID_BINS,
                       alphas=ALPHA_GRID):
    """Both baselines on one split. x (rows, N) counts, offsets (n_trials+1,),
    split (n_trials,) 1 = training trial, heldout: channel indices, lags: L
    (the run's model.lags), mask (rows, N) 1 = observed or None. Returns
    {"heldin", "heldout", "n_train", "n_heldout", "smoothing": {...},
    "glm": {...}}; each baseline has co_bps, its chosen setting, the CV
    NLLs, and W, b (rate = exp(F W + b) on its predictors F)."""
    x = np.asarray(x, dtype=float)
    N = x.shape[1]
    held = np.asarray(sorted(set(int(h) for h in heldout)), dtype=np.int64)
    if held.size == 0:
        raise ValueError("no held-out channels")
    if held.min() < 0 or held.max() >= N:
        raise ValueError(f"held-out channel {int(held.max() if held.max() >= N else held.min())} is out of range "
                         f"(the data have {N} channels)")
    heldin = np.setdiff1d(np.arange(N), held)
    if heldin.size == 0:
        raise ValueError("every channel is held out: nothing to predict from")
    if lags < 1:
        raise ValueError(f"lags must be >= 1, got {lags}")
    split = np.asarray(split).astype(int)
    m = None if mask is None else (np.asarray(mask) != 0)
    xin = x[:, heldin] if m is None else np.where(m[:, heldin], x[:, heldin], 0.0)
    tr_rows, tr_trial = scored_rows(offsets, split, 1, lags)
    te_rows, _ = scored_rows(offsets, split, 0, lags)
    if te_rows.size == 0:
        raise ValueError("the split has no held-out trial with more than L bins: nothing to score")
    train_trials = np.unique(tr_trial)
    folds = max(2, min(int(folds), train_trials.size))
    if train_trials.size < 2:
        raise ValueError("fewer than 2 training trials with more than L bins: cannot cross-validate")
    fold = _folds(tr_trial, train_trials, folds)
    Ytr, Yte = x[tr_rows][:, held], x[te_rows][:, held]
    Mtr = None if m is None else m[tr_rows][:, held]
    Mte = None if m is None else m[te_rows][:, held]
    out = {"heldin": heldin.tolist(), "heldout": held.tolist(), "lags": lags, "folds": folds,
           "n_train": int(tr_rows.size), "n_heldout": int(te_rows.size),
           "timing": "bin t predicted from bins before t; scored bins t >= L of each trial"}

    # smoothing + GLM: sigma by CV
    cv = []
    for s in sigmas:
        F = smoothed_features(xin, offsets, tr_rows, s)
        cv.append(_cv_nll(F, Ytr, Mtr, fold, folds, SMOOTH_ALPHA, {}))
    best = int(np.argmin(cv))
    sigma = float(sigmas[best])
    g = fit_glm(smoothed_features(xin, offsets, tr_rows, sigma), Ytr, SMOOTH_ALPHA, Mtr)
    rate = glm_rate(smoothed_features(xin, offsets, te_rows, sigma), g)
    out["smoothing"] = {"co_bps": co_bps(Yte, rate, Mte), "sigma_bins": sigma, "alpha": SMOOTH_ALPHA,
                        "cv_sigmas": [float(s) for s in sigmas], "cv_nll": cv,
                        "train_co_bps": co_bps(Ytr, glm_rate(smoothed_features(xin, offsets, tr_rows, sigma), g),
                                               Mtr),
                        "W": g["W"].tolist(), "b": g["b"].tolist(), "converged": g["converged"]}

    # lagged GLM: alpha by CV (strongest first, warm starts)
    F = lag_features(xin, tr_rows, lags)
    cv, inits = [], {}
    for a in alphas:
        cv.append(_cv_nll(F, Ytr, Mtr, fold, folds, a, inits))
    best = int(np.argmin(cv))
    alpha = float(alphas[best])
    g = fit_glm(F, Ytr, alpha, Mtr)
    rate = glm_rate(lag_features(xin, te_rows, lags), g)
    out["glm"] = {"co_bps": co_bps(Yte, rate, Mte), "alpha": alpha, "cv_alphas": [float(a) for a in alphas],
                  "cv_nll": cv, "train_co_bps": co_bps(Ytr, glm_rate(F, g), Mtr),
                  "W": g["W"].tolist(), "b": g["b"].tolist(), "converged": g["converged"]}
    return out
