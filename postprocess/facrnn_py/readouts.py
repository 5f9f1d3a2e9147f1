"""readouts: the numerical read-outs of a fit that the figures and users need.

Sub-connectivities, each neuron's participation in each group, affine R²,
group alignment against ground truth, behaviour R² (defined once, exactly as
the C metric: src/core/analysis.c fr_behavior_r2_from_moments called from
src/par/readout.c) and condition averages. Pure numpy (scipy for the
assignment); nothing here reads files or plots. Definitions: docs/model.md,
"Metrics".
"""
import warnings

import numpy as np


def group_bounds(sizes):
    """[(first, last + 1)] latent columns of each group, group 1 first."""
    e = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    return [(int(e[i]), int(e[i + 1])) for i in range(len(sizes))]


def sub_connectivity(params, sizes):
    """W_g = A[:, g] B[g, :] for every group: list of (N, N) arrays."""
    A, B = params["A"], params["B"]
    return [A[:, a:b] @ B[a:b, :] for a, b in group_bounds(sizes)]


def latent_recurrence(params):
    """J = B A (K, K)."""
    return params["B"] @ params["A"]


def participation(params, sizes):
    """Each neuron's part in each group: the norm of its row of A[:, g]
    (how the group drives it) and of its column of B[g, :] (how it drives
    the group). Returns (out (N, G), in (N, G))."""
    A, B = np.asarray(params["A"]), np.asarray(params["B"])
    gb = group_bounds(sizes)
    out = np.stack([np.linalg.norm(A[:, a:b], axis=1) for a, b in gb], axis=1)
    inn = np.stack([np.linalg.norm(B[a:b, :], axis=0) for a, b in gb], axis=1)
    return out, inn


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
    """Group alignment (docs/model.md, "Metrics"): for each true group a and
    fitted group b an affine least-squares map z_b -> z*_a over every bin
    where both are finite; R[a, b] is its R² averaged uniformly over the dims
    of a. Hungarian assignment (scipy) maximises the total R²; the matched
    score is the R² of the concatenated matched predictions, uniform over all
    true dimensions (a true group left unmatched when G_fit < G_true counts 0).
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


# --------------------------------------------------------------------------
# behaviour R²: the one definition

BEHAVIOR_RIDGE = 1e-6  # relative ridge of the C metric (src/par/readout.c)


def _trial_of_bin(offsets):
    offsets = np.asarray(offsets, dtype=np.int64)
    return np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))


def behavior_fit(X, Y, ridge=BEHAVIOR_RIDGE):
    """The C decoder: W = (Cxx + ridge·tr(Cxx)/K·I)⁻¹ Cxy and b = ȳ − Wᵀx̄,
    with population (1/n) covariances of the rows given; W = 0 (the map is
    the mean) when the latents are constant. X (n, K), Y (n, P)."""
    K = X.shape[1]
    mx, my = X.mean(axis=0), Y.mean(axis=0)
    Xc, Yc = X - mx, Y - my
    C = Xc.T @ Xc / X.shape[0]
    tr = float(np.trace(C))
    W = np.zeros((K, Y.shape[1]))
    if K > 0 and tr > 0:
        W = np.linalg.solve(C + (ridge * tr / K) * np.eye(K), Xc.T @ Yc / X.shape[0])
    return W, my - mx @ W


def behavior_score(X, Y, W, b):
    """R² per behaviour dimension of the map (W, b) on these rows: 1 − SSE/SS
    about these rows' mean; 0 for a dimension that is constant here (as C)."""
    pred = X @ W + b
    n = X.shape[0]
    sse = np.sum((Y - pred) ** 2, axis=0) / n
    cyy = np.var(Y, axis=0)
    raw = np.mean(Y ** 2, axis=0)
    ok = (cyy > 1e-14 * raw) & (cyy > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, 1.0 - sse / np.where(ok, cyy, 1.0), 0.0)


def behavior_r2(latents, behavior, offsets, split, ridge=BEHAVIOR_RIDGE):
    """Behaviour R², the same number facrnn stores as train_behavior_r2 and
    heldout_behavior_r2: an affine map from all K latents to the P behaviour
    dimensions, fitted on the bins of the training trials (split == 1) with
    a small relative ridge, scored on the training bins (train) and on the
    held-out bins (heldout); bins with a NaN in the latents (each trial's
    context bins) or the behaviour are left out; R² is averaged uniformly over
    the P dimensions. NaN where C writes NaN: training needs more than K + 1
    bins; held-out needs held-out trials and more than one bin.
    latents (total_bins, K), behavior (total_bins, P), offsets (n_trials+1,),
    split (n_trials,). Returns {"train": (r2 (P,), mean), "heldout": (...)}."""
    Z = np.asarray(latents, dtype=float)
    Y = np.asarray(behavior, dtype=float)
    if Y.ndim == 1:
        Y = Y[:, None]
    if Z.shape[0] != Y.shape[0]:
        raise ValueError("behaviour R²: %d latent rows but %d behaviour rows" % (Z.shape[0], Y.shape[0]))
    n_tr = len(offsets) - 1
    split = np.ones(n_tr, bool) if split is None else np.asarray(split).astype(bool)
    train_bin = split[_trial_of_bin(offsets)]
    ok = ~(np.any(np.isnan(Z), axis=1) | np.any(np.isnan(Y), axis=1))
    t, h = ok & train_bin, ok & ~train_bin
    K, P = Z.shape[1], Y.shape[1]
    nan = (np.full(P, np.nan), np.nan)
    out = {"train": nan, "heldout": nan}
    if t.sum() <= K + 1:
        return out
    W, b = behavior_fit(Z[t], Y[t], ridge)
    r = behavior_score(Z[t], Y[t], W, b)
    out["train"] = (r, float(np.mean(r)))
    if (~split).any() and h.sum() > 1:
        r = behavior_score(Z[h], Y[h], W, b)
        out["heldout"] = (r, float(np.mean(r)))
    return out


def behavior_decoding(latents, behavior, offsets, split):
    """behavior_r2 plus what a scatter plot needs: y_true, y_pred (n, P) of
    the bins scored (held-out bins, or the training bins when the run has no
    held-out trials, as `scored_on` says), r2 per dim, r2_mean."""
    Z = np.asarray(latents, dtype=float)
    Y = np.asarray(behavior, dtype=float)
    if Y.ndim == 1:
        Y = Y[:, None]
    n_tr = len(offsets) - 1
    split = np.ones(n_tr, bool) if split is None else np.asarray(split).astype(bool)
    train_bin = split[_trial_of_bin(offsets)]
    ok = ~(np.any(np.isnan(Z), axis=1) | np.any(np.isnan(Y), axis=1))
    r = behavior_r2(Z, Y, offsets, split)
    rows, key, scored_on = ok & ~train_bin, "heldout", "held-out trials"
    if not np.isfinite(r["heldout"][1]):
        rows, key, scored_on = ok & train_bin, "train", "training trials (no held-out trials in this run)"
    W, b = behavior_fit(Z[ok & train_bin], Y[ok & train_bin])
    return {"y_true": Y[rows], "y_pred": Z[rows] @ W + b, "r2": r[key][0], "r2_mean": r[key][1],
            "scored_on": scored_on}


# --------------------------------------------------------------------------
# condition averages


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
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", category=RuntimeWarning)  # all-NaN columns
            n = np.sum(np.isfinite(stack), axis=0)
            mean = np.nanmean(stack, axis=0)
            sd = np.nanstd(stack, axis=0, ddof=1) if len(idx) > 1 else np.zeros_like(mean)
            se = sd / np.sqrt(np.maximum(n, 1))
        out[c.item() if hasattr(c, "item") else c] = (mean, se, len(idx))
    return out
