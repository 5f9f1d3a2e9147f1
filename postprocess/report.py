#!/usr/bin/python3
"""report: figures and a self-contained HTML report for one facrnn results file.

    report.py RESULTS.h5 --out DIR [--data FILE] [--run ID] [--rollouts FILE]

Writes DIR/*.png and DIR/index.html (relative image links, key numbers in
tables whose cells carry data-key/data-value attributes with the exact value
read from the file). The page opens with the answer: one sentence (selected
K, partition, beta and the confidence) and one figure of the evidence the
selection rule used; tables and the other figures follow. Groups and
restarts are numbered from 1, as in the log (the file counts from 0). The input data file comes from --data or the results
file's `input_path` attribute; without it the trial structure is inferred
from the NaN context bins of the latents and data-dependent figures are
skipped. Exit status: 0 success, 2 when an input is not a facrnn file or an
option is wrong (one-line message on stderr).
"""
import argparse
import html
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import facrnn_py as fr  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

plt.rcParams.update({"figure.dpi": 110, "axes.titlesize": 11, "axes.labelsize": 10, "font.size": 9,
                     "axes.spines.top": False, "axes.spines.right": False,
                     "figure.constrained_layout.use": True})

MAX_TRIALS_SHOWN = 6
MAX_DIMS_SHOWN = 3
MAX_HEATMAP_NEURONS = 400
TOP_EDGES = 40


class ReportError(ValueError):
    pass


# --------------------------------------------------------------------------
# context: everything a figure needs, resolved once


class Context:
    def __init__(self, res, run_id, data, rollouts, out):
        self.res, self.run_id, self.data, self.rollouts, self.out = res, run_id, data, rollouts, out
        self.meta = res.run(run_id)  # only this run's arrays are read
        self.run = res.run_dict(run_id)
        self.sizes = list(self.meta.groups)
        self.bin_s = None
        if data is not None and "bin_size_s" in data["attrs"]:
            b = float(data["attrs"]["bin_size_s"])
            self.bin_s = b if b > 0 else None
        self.offsets = data["trial_offsets"] if data is not None else infer_offsets(self.run)
        self.condition = data.get("trial_condition") if data is not None else None
        self.figures = []  # (file, caption)
        self.notes = []

    def cond_name(self, c):
        """A condition's label from the input's condition_labels, else its number."""
        return fr.condition_name(self.data, c)

    def t_axis(self, n):
        if self.bin_s:
            return np.arange(n) * self.bin_s, "time from trial start (s)"
        return np.arange(n), "time from trial start (bins)"

    def save(self, fig, name, caption):
        path = os.path.join(self.out, name)
        fig.savefig(path, bbox_inches="tight")
        plt.close(fig)
        self.figures.append((name, caption))


def infer_offsets(run):
    """Trial offsets from the latents alone: every trial opens with its L NaN
    context bins, so a trial starts where a run of NaN rows starts."""
    lat = run.get("latents")
    if lat is None:
        return None
    nan = ~np.all(np.isfinite(lat), axis=1)
    starts = np.where(nan & ~np.concatenate([[False], nan[:-1]]))[0]
    if starts.size == 0 or starts[0] != 0:
        return None
    off = np.concatenate([starts, [lat.shape[0]]]).astype(np.int64)
    split = run.get("split")
    if split is not None and len(split) != len(off) - 1:
        return None
    return off


def cond_colors(conds):
    u = list(np.unique(conds))
    cmap = plt.get_cmap("tab10" if len(u) <= 10 else "viridis")
    return {c: cmap(i if len(u) <= 10 else i / max(len(u) - 1, 1)) for i, c in enumerate(u)}


# --------------------------------------------------------------------------
# figures


def fig_training(ctx):
    h = ctx.run.get("history") or {}
    if "epoch" not in h or len(np.atleast_1d(h["epoch"])) == 0:
        ctx.notes.append("No training history stored: training-curve figure skipped.")
        return
    ep = np.atleast_1d(h["epoch"])
    m = ctx.run["metrics"]
    beta = m.get("beta")
    # The trainer's loss/nll/kl/pc are epoch means of per-sample minibatch
    # means (one sample = one time bin), with the latents sampled from the
    # encoder; heldout_nll is evaluated at the encoder mean. So the two NLL
    # curves differ by the sampling noise as well as by generalisation: the
    # final training NLL at the encoder mean (metrics) is drawn for scale.
    fig, axs = plt.subplots(1, 3, figsize=(13, 3.8))
    ax = axs[0]
    for key, lab in (("loss", "total loss (NLL + KL + β·PC)"), ("nll", "NLL"), ("kl", "KL")):
        if key in h:
            ax.plot(ep, h[key], label=lab)
    clipped = clip_transient(ax, [h[k] for k in ("loss", "nll", "kl") if k in h], ep)
    ax.set_xlabel("epoch" + (" (first epochs off scale)" if clipped else ""))
    ax.set_ylabel("nats per bin (training minibatches)")
    ax.set_title("Training objective and its terms")
    ax.legend(frameon=False)
    ax = axs[1]
    if "nll" in h:
        ax.plot(ep, h["nll"], label="training NLL, sampled latents")
    tn = m.get("train_nll_per_bin")
    if tn is not None and np.isfinite(tn):
        ax.axhline(tn, color="C0", ls="--", lw=1, label="training NLL at encoder mean (final)")
    if "heldout_nll" in h:
        v = np.asarray(h["heldout_nll"], float)
        ok = np.isfinite(v)
        if ok.any():
            ax.plot(ep[ok], v[ok], "o-", ms=3, label="held-out NLL at encoder mean")
            best = np.nanargmin(v)
            ax.axvline(ep[best], color="0.6", ls=":", lw=1)
            ax.annotate("best held-out (epoch %d)" % ep[best], (ep[best], v[best]), xytext=(5, 10),
                        textcoords="offset points", fontsize=8)
    nll_curves = [h["nll"]] if "nll" in h else []
    if "heldout_nll" in h:
        nll_curves.append(h["heldout_nll"])
    clipped = clip_transient(ax, nll_curves, ep)
    ax.set_xlabel("epoch" + (" (first epochs off scale)" if clipped else ""))
    ax.set_ylabel("NLL (nats per bin)")
    ax.set_title("Training vs held-out NLL")
    ax.legend(frameon=False, fontsize=8)
    ax = axs[2]
    if "pc" in h:
        ax.plot(ep, h["pc"], color="C3")
    ax.axhline(0, color="0.7", lw=0.8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("PC estimate (nats, minibatch)")
    ax.set_title("Group partial correlation (β = %s)" % (fmt(beta) if beta is not None else "?"))
    title = "Training curves, run %s" % ctx.run_id
    rc, nr = m.get("restart_chosen"), m.get("restarts")
    if rc is not None and nr is not None and int(nr) > 1:
        title += " (restart %d of %d, chosen by training objective)" % (int(rc) + 1, int(nr))
    fig.suptitle(title)
    ctx.save(fig, "training.png", "Training curves per epoch: loss terms (per-bin means over the training minibatches, "
             "latents sampled from the encoder), training vs held-out NLL per bin (held-out at the encoder mean; the "
             "dashed line is the final training NLL at the encoder mean), and the minibatch PC estimate. "
             "Axes are clipped to leave out the first epochs' transient when it would dominate.")


def clip_transient(ax, curves, ep):
    """Fit the y range to the curves after the first tenth of the epochs when
    the initial transient would otherwise squash the rest of the plot;
    returns whether it did."""
    vals = [np.asarray(c, float) for c in curves]
    n = len(ep)
    if n < 20 or not vals:
        return False
    late = np.concatenate([v[n // 10:] for v in vals])
    allv = np.concatenate(vals)
    late, allv = late[np.isfinite(late)], allv[np.isfinite(allv)]
    if late.size == 0:
        return False
    lo, hi = late.min(), late.max()
    span = hi - lo if hi > lo else max(abs(hi), 1.0)
    if allv.max() - allv.min() > 3 * span:
        ax.set_ylim(lo - 0.1 * span, hi + 0.4 * span)
        return True
    return False


def pick_trials(ctx):
    n = len(ctx.offsets) - 1
    if ctx.condition is None:
        return list(range(min(n, MAX_TRIALS_SHOWN)))
    conds = np.asarray(ctx.condition)
    picks, seen = [], {}
    for k in range(n):  # one per condition first, then fill
        if conds[k] not in seen and len(picks) < MAX_TRIALS_SHOWN:
            seen[conds[k]] = k
            picks.append(k)
    for k in range(n):
        if len(picks) >= MAX_TRIALS_SHOWN:
            break
        if k not in picks:
            picks.append(k)
    return sorted(picks)


def label_latent_grid(ctx, axs, bounds, ncol):
    """Titles and axis labels of a group x latent grid; hide the cells past
    each group's size."""
    for g, (a, b) in enumerate(bounds):
        for j in range(ncol):
            ax = axs[g, j]
            if j >= b - a:
                ax.set_visible(False)
                continue
            ax.set_title("group %d (size %d), latent %d" % (g + 1, b - a, j + 1))
            ax.set_ylabel("z (a.u.)")
            ax.set_xlabel(ctx.t_axis(2)[1])


def latent_grid(ctx, title):
    G = len(ctx.sizes)
    ncol = min(max(ctx.sizes), MAX_DIMS_SHOWN)
    fig, axs = plt.subplots(G, ncol, figsize=(3.6 * ncol + 0.6, 2.5 * G), squeeze=False, sharex=True)
    fig.suptitle(title)
    return fig, axs, ncol


def legend_right(axs, sizes, ncol, handles, labels):
    """Legend outside, right of the last visible panel of the first row."""
    ax = axs[0, min(sizes[0], ncol) - 1]
    ax.legend(list(handles), list(labels), loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize=8)


def fig_latents(ctx):
    lat = ctx.run.get("latents")
    if lat is None or ctx.offsets is None:
        ctx.notes.append("Latents or trial structure unavailable: latent figures skipped.")
        return
    bounds = fr.group_bounds(ctx.sizes)
    conds = np.asarray(ctx.condition) if ctx.condition is not None else None
    colors = cond_colors(conds) if conds is not None else None
    # a few single trials
    fig, axs, ncol = latent_grid(ctx, "Latent trajectories (encoder means) of %d trials, by group%s"
                                 % (len(pick_trials(ctx)), ", coloured by condition" if conds is not None else ""))
    for k in pick_trials(ctx):
        seg = lat[ctx.offsets[k]:ctx.offsets[k + 1]]
        t, tlab = ctx.t_axis(seg.shape[0])
        for g, (a, b) in enumerate(bounds):
            for j in range(min(b - a, ncol)):
                c = colors[conds[k]] if conds is not None else None
                axs[g, j].plot(t, seg[:, a + j], color=c, lw=1.2,
                               label=ctx.cond_name(conds[k]) if conds is not None else "trial %d" % k)
    label_latent_grid(ctx, axs, bounds, ncol)
    h, lab = axs[0, 0].get_legend_handles_labels()
    uniq = dict(zip(lab, h))
    legend_right(axs, ctx.sizes, ncol, uniq.values(), uniq.keys())
    ctx.save(fig, "latents_trials.png", "Single-trial latent trajectories per group (first %d latents of each group)." % ncol)
    # condition averages
    P = fr.psth(lat, ctx.offsets, conds)
    fig, axs, ncol = latent_grid(ctx, "Condition-averaged latents (mean ± SE over trials), by group"
                                 if conds is not None else "Trial-averaged latents (mean ± SE over trials), by group")
    cols = colors or {list(P)[0]: "C0"}
    for c, (mean, se, n) in P.items():
        t, tlab = ctx.t_axis(mean.shape[0])
        for g, (a, b) in enumerate(bounds):
            for j in range(min(b - a, ncol)):
                ax = axs[g, j]
                ax.plot(t, mean[:, a + j], color=cols[c], lw=1.5, label="%s (n=%d)" % (ctx.cond_name(c), n) if conds is not None else "all trials (n=%d)" % n)
                ax.fill_between(t, mean[:, a + j] - se[:, a + j], mean[:, a + j] + se[:, a + j], color=cols[c], alpha=0.2, lw=0)
    label_latent_grid(ctx, axs, bounds, ncol)
    legend_right(axs, ctx.sizes, ncol, *axs[0, 0].get_legend_handles_labels())
    ctx.save(fig, "latents_condavg.png", "Condition-averaged latent time courses per group; shading is ± 1 SE over trials.")
    # phase portraits (groups with >= 2 latents): of the condition averages
    # when the data has conditions; otherwise of a few single trials, since
    # averaging trials that are not aligned to anything (e.g. autonomous
    # chaotic systems) leaves only noise.
    multi = [(g, a, b) for g, (a, b) in enumerate(bounds) if b - a >= 2]
    if multi:
        if conds is not None:
            curves = [(ctx.cond_name(c), cols[c], mean) for c, (mean, se, n) in P.items()]
            what, how = "condition-averaged latents", "averaged per condition"
        else:
            ks = pick_trials(ctx)[:3]
            curves = [("trial %d" % k, "C%d" % i, lat[ctx.offsets[k]:ctx.offsets[k + 1]]) for i, k in enumerate(ks)]
            what, how = "latents of %d single trials (no trial conditions to average over)" % len(ks), "of single trials"
        fig, axs = plt.subplots(1, len(multi), figsize=(3.8 * len(multi), 3.6), squeeze=False)
        for i, (g, a, b) in enumerate(multi):
            ax = axs[0, i]
            for lab, col, Z in curves:
                ok = np.isfinite(Z[:, a])
                ax.plot(Z[ok, a], Z[ok, a + 1], color=col, lw=1.1 if conds is None else 1.3, alpha=0.85, label=lab)
                if ok.any():
                    first = np.argmax(ok)
                    ax.plot(Z[first, a], Z[first, a + 1], "o", color=col, ms=4)
            ax.set_xlabel("group %d latent 1 (a.u.)" % (g + 1))
            ax.set_ylabel("group %d latent 2 (a.u.)" % (g + 1))
            ax.set_title("Group %d state space (dot = start)" % (g + 1))
        axs[0, -1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize=8)
        fig.suptitle("Phase portraits of the %s" % what)
        ctx.save(fig, "latents_phase.png", "Latent state-space trajectories of each group (first two latents), %s." % how)


def cluster_order(W):
    """Neuron order from average-linkage hierarchical clustering of W's rows
    (Euclidean), leaves in optimal order when cheap."""
    from scipy.cluster.hierarchy import leaves_list, linkage
    if W.shape[0] < 3:
        return np.arange(W.shape[0])
    Z = linkage(W, method="average", metric="euclidean", optimal_ordering=W.shape[0] <= 300)
    return leaves_list(Z)


def draw_graph(ax, W, order, k, title):
    """Nodes on a circle (in `order`), arrows j -> i for the k strongest
    off-diagonal |W_ij| (W_ij is the weight from neuron j onto neuron i)."""
    N = W.shape[0]
    ang = 2 * np.pi * np.arange(N) / N
    pos = np.zeros((N, 2))
    pos[order] = np.c_[np.cos(ang), np.sin(ang)]
    M = np.abs(W).copy()
    np.fill_diagonal(M, 0)
    k = min(k, int(np.count_nonzero(M)))
    flat = np.argsort(M.ravel())[::-1][:k]
    wmax = M.ravel()[flat[0]] if k else 1.0
    for f in flat[::-1]:
        i, j = divmod(int(f), N)
        w = W[i, j]
        ax.add_patch(FancyArrowPatch(pos[j], pos[i], arrowstyle="-|>", mutation_scale=8,
                                     connectionstyle="arc3,rad=0.15", lw=0.4 + 2.6 * abs(w) / wmax,
                                     color="#c0392b" if w > 0 else "#2166ac", alpha=0.75, shrinkA=4, shrinkB=4))
    deg = np.zeros(N)
    for f in flat:
        i, j = divmod(int(f), N)
        deg[i] += 1
        deg[j] += 1
    ax.scatter(pos[:, 0], pos[:, 1], s=12 + 10 * deg, c="0.25", zorder=3)
    if N <= 40:
        for n in range(N):
            ax.text(1.12 * pos[n, 0], 1.12 * pos[n, 1], str(n), ha="center", va="center", fontsize=6)
    ax.set_xlim(-1.3, 1.3)
    ax.set_ylim(-1.3, 1.3)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title)
    ax.plot([], [], color="#c0392b", label="excitatory (W > 0)")
    ax.plot([], [], color="#2166ac", label="inhibitory (W < 0)")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False, fontsize=7)


def shared_neurons(ctx, Ws):
    """One neuron subset and order for every group's heatmap, so that
    sub-circuits can be compared: the neurons with the largest total
    participation when N is large, ordered by average-linkage clustering of
    each neuron's outgoing and incoming weights in every group together."""
    p = ctx.run["params"]
    N = Ws[0].shape[0]
    keep, note = np.arange(N), ""
    if N > MAX_HEATMAP_NEURONS:
        out, inn = fr.participation(p, ctx.sizes)
        keep = np.sort(np.argsort(-(out.sum(1) + inn.sum(1)))[:MAX_HEATMAP_NEURONS])
        note = " (%d of %d neurons with the largest participation)" % (MAX_HEATMAP_NEURONS, N)
    feats = np.hstack([W[np.ix_(keep, keep)] for W in Ws] + [W[np.ix_(keep, keep)].T for W in Ws])
    return keep, cluster_order(feats), note


def fig_connectivity(ctx):
    p = ctx.run["params"]
    if "A" not in p or "B" not in p:
        ctx.notes.append("Parameters A, B missing: connectivity figures skipped.")
        return
    conn = ctx.run.get("connectivity") or {}
    Ws, where = [], []
    for g, W in enumerate(fr.sub_connectivity(p, ctx.sizes)):
        stored = conn.get("W_%d" % g)
        # The results file numbers groups from 0 (connectivity/W_0 is group 1).
        Ws.append(np.asarray(stored) if stored is not None else W)
        where.append("stored as connectivity/W_%d" % g if stored is not None else "computed from A, B")
    keep, order, note = shared_neurons(ctx, Ws)
    ctx.neuron_order = keep[order]
    vmax = max(float(np.max(np.abs(W[np.ix_(keep, keep)]))) for W in Ws) or 1.0
    labels = keep[order]
    G = len(Ws)
    # every group side by side: one order, one colour scale
    fig, axs = plt.subplots(1, G, figsize=(4.2 * G + 1.2, 4.4), squeeze=False)
    for g, W in enumerate(Ws):
        ax = axs[0, g]
        im = ax.imshow(W[np.ix_(keep, keep)][np.ix_(order, order)], cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                       interpolation="nearest")
        ax.set_title("group %d (rank %d)" % (g + 1, ctx.sizes[g]))
        ax.set_xlabel("presynaptic neuron j")
        if g == 0:
            ax.set_ylabel("postsynaptic neuron i")
        if len(keep) <= 40:
            ax.set_xticks(range(len(keep)))
            ax.set_xticklabels(labels, fontsize=5, rotation=90)
            ax.set_yticks(range(len(keep)))
            ax.set_yticklabels(labels, fontsize=5)
    fig.colorbar(im, ax=list(axs[0]), fraction=0.03, pad=0.02).set_label("weight W_ij (a.u.), one scale for all groups")
    fig.suptitle("Sub-connectivities W_g = A[:, g] B[g, :] on one neuron order and one colour scale%s" % note)
    ctx.save(fig, "connectivity_groups.png",
             "Every group's sub-connectivity side by side, with the same neurons in the same order (clustering of "
             "their weights in all groups together) and the same colour scale, so sub-circuits can be compared.")
    for g, W in enumerate(Ws):
        Wk = W[np.ix_(keep, keep)]
        fig, axs = plt.subplots(1, 2, figsize=(12, 5.4), gridspec_kw={"width_ratios": [1.15, 1]})
        im = axs[0].imshow(Wk[np.ix_(order, order)], cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        cb = fig.colorbar(im, ax=axs[0], fraction=0.046, pad=0.04)
        cb.set_label("weight W_ij (a.u.), scale shared by all groups")
        axs[0].set_xlabel("presynaptic neuron j (shared order)")
        axs[0].set_ylabel("postsynaptic neuron i (shared order)")
        if len(keep) <= 40:
            axs[0].set_xticks(range(len(keep)))
            axs[0].set_xticklabels(labels, fontsize=6, rotation=90)
            axs[0].set_yticks(range(len(keep)))
            axs[0].set_yticklabels(labels, fontsize=6)
        axs[0].set_title("group %d: A[:, g%d] B[g%d, :], rank %d, %s%s" % (g + 1, g + 1, g + 1, ctx.sizes[g], where[g], note))
        draw_graph(axs[1], Wk, order, TOP_EDGES, "Strongest %d connections of group %d (arrow j → i)" % (TOP_EDGES, g + 1))
        fig.suptitle("Sub-connectivity W of group %d (neurons in the order shared by all groups)" % (g + 1))
        ctx.save(fig, "connectivity_g%d.png" % (g + 1),
                 "Group %d sub-connectivity (%s): heatmap on the neuron order and colour scale shared by all groups, "
                 "and a graph of its %d strongest off-diagonal weights." % (g + 1, where[g], TOP_EDGES))


def area_labels(ctx):
    """The area of each channel (text), from the input's /channel_area, or None."""
    if ctx.data is None or "channel_area" not in ctx.data:
        return None
    return np.array([str(a) for a in ctx.data["channel_area"]], dtype=object)


def fig_participation(ctx):
    p = ctx.run["params"]
    if "A" not in p or "B" not in p:
        return
    out, inn = fr.participation(p, ctx.sizes)
    N, G = out.shape
    area = area_labels(ctx)
    if area is not None and len(area) != N:
        ctx.notes.append("/channel_area has %d entries for %d channels: participation not coloured by area." % (len(area), N))
        area = None
    base = getattr(ctx, "neuron_order", np.arange(N))
    order = np.r_[base, np.setdiff1d(np.arange(N), base)]
    if area is not None:  # group the neurons by area, shared order inside each area
        order = np.array(sorted(order, key=lambda n: (area[n], list(order).index(n))))
        names = sorted(set(area))
        cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
        col = {a: cmap(i % cmap.N) for i, a in enumerate(names)}
        colors = [col[area[n]] for n in order]
    else:
        colors = ["0.35"] * N
    x = np.arange(N)
    fig, axs = plt.subplots(G, 2, figsize=(12, 1.9 * G + 1.2), squeeze=False, sharex=True)
    for g in range(G):
        for j, (M, what) in enumerate(((out, "‖A[i, g%d]‖: group drives neuron" % (g + 1)),
                                       (inn, "‖B[g%d, i]‖: neuron drives group" % (g + 1)))):
            ax = axs[g, j]
            ax.bar(x, M[order, g], color=colors, width=1.0 if N > 60 else 0.8)
            ax.set_ylabel("group %d" % (g + 1))
            ax.set_title(what, fontsize=9)
    for j in range(2):
        axs[-1, j].set_xlabel("neuron (%s)" % ("grouped by area" if area is not None else "shared connectivity order"))
        if N <= 40:
            axs[-1, j].set_xticks(x)
            axs[-1, j].set_xticklabels(order, fontsize=6, rotation=90)
    if area is not None:
        from matplotlib.patches import Patch
        axs[0, 1].legend(handles=[Patch(color=col[a], label="area %s" % a) for a in names], loc="upper left",
                         bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
    fig.suptitle("Participation of each neuron in each group%s" % (", coloured by area" if area is not None else ""))
    ctx.save(fig, "participation.png",
             "Each neuron's participation in each group: the norm of its row of A over the group's latents (how much "
             "the group drives it) and of its column of B (how much it drives the group)%s."
             % (", coloured by the input's /channel_area" if area is not None else
                "; the input has no /channel_area, so bars are not coloured by area"))


def predicted_activity(ctx, lat):
    """The model's one-step prediction of the activity from the encoder
    means: eta = A z + c (+ E u), then the observation mean (identity under
    Gaussian, the rate link under Poisson). (total_bins, N)."""
    p = ctx.run["params"]
    eta = lat @ np.asarray(p["A"]).T + np.asarray(p["c"])
    if "E" in p and ctx.data is not None and "inputs" in ctx.data:
        eta = eta + np.asarray(ctx.data["inputs"], float) @ np.asarray(p["E"]).T
    if "s" in p:  # Gaussian observations carry log-stds s
        return eta
    link = "exp" if "link: exp" in str(ctx.res.attrs.get("config", "")) else "softplus"
    return np.exp(eta) if link == "exp" else np.logaddexp(0.0, eta)


def fig_observed(ctx):
    lat = ctx.run.get("latents")
    p = ctx.run["params"]
    if ctx.data is None or lat is None or "A" not in p or "c" not in p:
        return
    x = ctx.data["data"]
    xh = predicted_activity(ctx, lat)
    split = ctx.run.get("split")
    n_tr = len(ctx.offsets) - 1
    held = [k for k in range(n_tr) if split is not None and not split[k]]
    k = held[0] if held else 0
    chans = np.argsort(-np.var(x, axis=0))[:4]
    seg = slice(int(ctx.offsets[k]), int(ctx.offsets[k + 1]))
    t, tlab = ctx.t_axis(seg.stop - seg.start)
    fig, axs = plt.subplots(len(chans), 1, figsize=(11, 1.7 * len(chans) + 0.8), squeeze=False, sharex=True)
    ok = np.all(np.isfinite(lat), axis=1)
    for i, n in enumerate(chans):
        ax = axs[i, 0]
        ax.plot(t, x[seg, n], color="0.3", lw=1.2, label="observed")
        ax.plot(t, xh[seg, n], color="C1", lw=1.4, label="predicted (one step ahead)")
        rows = ok.copy()
        if held:
            trial_of = np.repeat(np.arange(n_tr), np.diff(ctx.offsets))
            rows &= ~np.asarray(split, bool)[trial_of]
        r2 = fr.r2_per_dim(x[rows][:, [n]], xh[rows][:, [n]])[0]
        ax.set_ylabel("channel %d" % n)
        ax.set_title("channel %d: R² %.3f over %s bins" % (n, r2, "held-out" if held else "all"), fontsize=9)
    axs[0, 0].legend(frameon=False, fontsize=8, loc="upper right")
    axs[-1, 0].set_xlabel(tlab)
    fig.suptitle("Observed vs predicted activity, trial %d (%s), 4 most variable channels"
                 % (k, "held out" if held else "training"))
    ctx.save(fig, "observed_predicted.png",
             "Observed activity and the model's one-step-ahead prediction (decoder mean of the encoder means) "
             "for the four most variable channels on one %s trial." % ("held-out" if held else "training"))


def fig_J(ctx):
    p = ctx.run["params"]
    conn = ctx.run.get("connectivity") or {}
    J = np.asarray(conn["J"]) if "J" in conn else (fr.latent_recurrence(p) if "A" in p else None)
    if J is None:
        return
    K = J.shape[0]
    fig, ax = plt.subplots(figsize=(4.8 + 0.15 * K, 4.2 + 0.15 * K))
    vmax = np.max(np.abs(J)) or 1.0
    im = ax.imshow(J, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04).set_label("J_kl (a.u.)")
    for e in np.cumsum(ctx.sizes)[:-1]:
        ax.axhline(e - 0.5, color="k", lw=1.2)
        ax.axvline(e - 0.5, color="k", lw=1.2)
    if K <= 12:
        for i in range(K):
            for j in range(K):
                ax.text(j, i, "%.2f" % J[i, j], ha="center", va="center", fontsize=7,
                        color="w" if abs(J[i, j]) > 0.6 * vmax else "k")
    ax.set_xticks(range(K))
    ax.set_xticklabels(range(1, K + 1))
    ax.set_yticks(range(K))
    ax.set_yticklabels(range(1, K + 1))
    ax.set_xlabel("source latent l")
    ax.set_ylabel("target latent k")
    ax.set_title("Latent recurrence J = B A (groups %s; lines = group borders)" % fr.groups_text(ctx.sizes))
    ctx.save(fig, "J.png", "Latent recurrence matrix J = B A; off-diagonal blocks couple groups.")


def fig_pca(ctx):
    ev = ctx.run.get("pca_eigenvalues")
    if ev is None:
        ctx.notes.append("No pca_eigenvalues stored: variance-explained figure skipped.")
        return
    ev = np.sort(np.clip(np.asarray(ev, float), 0, None))[::-1]
    frac = np.cumsum(ev) / ev.sum()
    K = sum(ctx.sizes)
    n = np.arange(1, len(ev) + 1)
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.plot(n, 100 * frac, "o-", ms=3)
    ax.bar(n, 100 * ev / ev.sum(), color="0.8", label="per component")
    ax.axvline(K, color="C3", ls="--", lw=1)
    ax.annotate("K = %d: %.1f%%" % (K, 100 * frac[min(K, len(frac)) - 1]), (K, 100 * frac[min(K, len(frac)) - 1]),
                xytext=(8, -18), textcoords="offset points", color="C3")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("number of principal components")
    ax.set_ylabel("variance explained (%)")
    ax.set_ylim(0, 102)
    ax.set_title("PCA of the data: cumulative variance explained")
    ax.legend(["cumulative", "model rank K", "per component"], frameon=False, loc="center right")
    ctx.save(fig, "pca_variance.png", "Cumulative variance explained by principal components of the data, with the model rank K marked.")


def ranked_rows(ctx):
    """/sweep/selection/ranked as a list of dicts (one per configuration), or None."""
    rk = ctx.res.ranked
    if not rk or "K" not in rk:
        return None
    n = len(rk["K"])
    rows = []
    for i in range(n):
        d = {c: (rk[c][i] if rk[c].dtype.kind == "O" else float(rk[c][i])) for c in rk}
        d["K"] = int(d["K"])
        d["groups"] = fr.groups_text(fr.parse_groups(str(d.get("groups", d["K"])), d["K"]))
        d["G"] = len(fr.parse_groups(d["groups"]))
        d["beta"] = float(d.get("beta", np.nan))
        rows.append(d)
    return rows


def evidence_per_K(ctx, summary):
    """Per K: the best configuration's held-out NLL mean and SE (rule 1 of
    docs/selection.md), from the ranked table, else from the summary."""
    rows = ranked_rows(ctx)
    if rows:
        pts = [(d["K"], d["nll_mean"], d.get("nll_se", np.nan), d["groups"], d["beta"]) for d in rows]
    else:
        pts = [(d["K"], d["heldout_nll_per_bin"], d["heldout_nll_per_bin_se"], d["groups"], d["beta"]) for d in summary]
    best = {}
    for K, m, se, g, b in pts:
        if np.isfinite(m) and (K not in best or m < best[K][0]):
            best[K] = (m, se, g, b)
    return pts, best


def fig_answer(ctx, summary, sel):
    """The first screen's figure: held-out NLL against K with SE bands and the
    one-SE choice, and at the chosen K every candidate partition's
    independence and coupling against the rule's thresholds."""
    S = ctx.res.selection or {}
    rows = ranked_rows(ctx)
    pts, best = evidence_per_K(ctx, summary)
    if not best:
        return False
    fig, axs = plt.subplots(1, 4, figsize=(14.5, 3.5), gridspec_kw={"width_ratios": [1.25, 1, 1, 1]})
    ax = axs[0]
    Ks = sorted(best)
    m = np.array([best[K][0] for K in Ks])
    se = np.array([best[K][1] for K in Ks])
    se0 = np.where(np.isfinite(se), se, 0.0)
    for K, v, _, g, b in pts:
        ax.plot(K, v, "o", color="0.75", ms=3.5, zorder=1)
    ax.fill_between(Ks, m - se0, m + se0, color="C0", alpha=0.25, lw=0, label="± 1 SE over folds × seeds")
    ax.errorbar(Ks, m, yerr=se0, fmt="o-", color="C0", capsize=4, label="best configuration at each K")
    Ksel = sel["K"] if sel else None
    se_rule = float(S.get("se_rule", 1.0))
    kb = Ks[int(np.argmin(m))]
    thr = best[kb][0] + se_rule * (best[kb][1] if np.isfinite(best[kb][1]) else 0.0)
    ax.axhline(thr, color="C3", ls="--", lw=1, label="best + %g SE" % se_rule)
    if Ksel in best:
        ax.plot(Ksel, best[Ksel][0], marker="*", ms=17, color="C3", mec="k", zorder=4, label="chosen K = %d" % Ksel)
    ax.set_xticks(Ks)
    ax.set_xlabel("latent rank K")
    ax.set_ylabel("held-out NLL (nats per bin)")
    ax.set_title("1. K: smallest within %g SE of the best" % se_rule)
    ax.legend(frameon=False, fontsize=7)
    cands = [d for d in (rows or []) if d["K"] == Ksel and d["G"] >= 2 and d["beta"] > 0]
    evidence = (("independence", "min_independence", "independence (1 = independent)", -1, 0.25,
                 "independent at equal times"),
                ("coupling", "max_coupling", "coupling (0 = self-contained)", +1, 0.2, "independent over time"),
                ("predictability", "min_predictability", "predictability (own-past R²)", -1, 0.2,
                 "dynamics of its own"))
    for j, (key, thr_key, what, sign, t_def, title) in enumerate(evidence):
        ax = axs[1 + j]
        if not cands:
            ax.axis("off")
            ax.text(0.5, 0.5, "no multi-group partition fitted\nwith β > 0 at K = %s%s" % (
                Ksel, "" if rows else "\n(no /sweep/selection/ranked table)"), ha="center", va="center", fontsize=9,
                transform=ax.transAxes)
            continue
        y = np.arange(len(cands))
        for i, d in enumerate(cands):
            v, e = d.get(key + "_mean", np.nan), d.get(key + "_se", np.nan)
            ok = int(d.get("supported", 0)) == 1
            chosen = sel is not None and fr.matches_selection(d["K"], d["groups"], d["beta"], sel)
            ax.errorbar(v if np.isfinite(v) else np.nan, i, xerr=e if np.isfinite(e) else None, fmt="o",
                        color="C2" if ok else "0.45", capsize=3, ms=7 if chosen else 5)
            if chosen:
                ax.plot(v, i, marker="*", ms=16, color="C3", mec="k", zorder=4)
        t = float(S.get(thr_key, t_def))
        ax.axvline(t, color="C3", ls="--", lw=1)
        ax.text(t, len(cands) - 0.45, " threshold %g" % t, color="C3", fontsize=7, va="bottom")
        ax.set_yticks(y)
        ax.set_yticklabels(["%s β=%s" % (d["groups"], fr.beta_text(d["beta"])) for d in cands], fontsize=8)
        ax.set_ylim(-0.6, len(cands) - 0.1)
        ax.set_xlabel("%s, mean %s SE" % (what, "−" if sign < 0 else "+"))
        ax.set_title("%d. %s at K = %d" % (2 + j, title, Ksel), fontsize=10)
    if cands:
        axs[1].plot([], [], "o", color="C2", label="supported")
        axs[1].plot([], [], "o", color="0.45", label="not supported")
        axs[1].legend(frameon=False, fontsize=7, loc="lower right")
    fig.suptitle("Evidence for the answer (rule: docs/selection.md)", fontsize=11)
    ctx.save(fig, "answer_evidence.png",
             "Left: held-out NLL per bin of the best configuration at each K, mean ± SE over folds and seeds (grey: "
             "every configuration); the dashed line is the one-SE band, the star the chosen K. Then, at "
             "the chosen K, every partition fitted with β > 0: its independence score (mean ± SE, must stay above "
             "the threshold after subtracting one SE), dynamical coupling (max over the rule's horizons; must stay "
             "below the threshold after adding one SE) and predictability (must stay above the threshold after "
             "subtracting one SE); green = supported, star = selected.")
    ctx.answer_figure = "answer_evidence.png"
    return True


def fig_sweep(ctx, summary, sel):
    """Every configuration: held-out NLL (what chooses K), independence and
    coupling (what chooses the partition), with the thresholds."""
    rows = ranked_rows(ctx)
    if rows:
        cfgs = sorted(rows, key=lambda d: (d["K"], d["G"], [-s for s in fr.parse_groups(d["groups"])], d["beta"]))
        get = {"nll": lambda d: (d["nll_mean"], d.get("nll_se", np.nan)),
               "independence": lambda d: (d.get("independence_mean", np.nan), d.get("independence_se", np.nan)),
               "coupling": lambda d: (d.get("coupling_mean", np.nan), d.get("coupling_se", np.nan)),
               "predictability": lambda d: (d.get("predictability_mean", np.nan), d.get("predictability_se", np.nan))}
        panels = (("nll", "held-out NLL (nats per bin)"), ("independence", "independence score"),
                  ("coupling", "dynamical coupling"), ("predictability", "predictability"))
    elif summary:
        cfgs = summary
        get = {"nll": lambda d: (d["heldout_nll_per_bin"], d["heldout_nll_per_bin_se"])}
        panels = (("nll", "held-out NLL (nats per bin)"),)
    else:
        return
    S = ctx.res.selection or {}
    x = np.arange(len(cfgs))
    fig, axs = plt.subplots(len(panels), 1, figsize=(max(6, 0.55 * len(cfgs) + 2), 2.6 * len(panels) + 1.4),
                            sharex=True, squeeze=False)
    Ks = sorted({d["K"] for d in cfgs})
    kc = {K: plt.get_cmap("tab10")(i % 10) for i, K in enumerate(Ks)}
    for (key, ylab), ax in zip(panels, axs[:, 0]):
        for i, d in enumerate(cfgs):
            v, e = get[key](d)
            ax.errorbar(x[i], v, yerr=e if np.isfinite(e) else None, fmt="o", color=kc[d["K"]], capsize=3)
            if fr.matches_selection(d["K"], d["groups"], d["beta"], sel):
                ax.plot(x[i], v, marker="*", ms=16, mfc="none", mec="k", mew=1.4)
        if key in ("independence", "coupling", "predictability"):
            t = float(S.get({"independence": "min_independence", "coupling": "max_coupling",
                             "predictability": "min_predictability"}[key], np.nan))
            if np.isfinite(t):
                ax.axhline(t, color="C3", ls="--", lw=1, label="threshold %g" % t)
                ax.legend(frameon=False, fontsize=8)
        ax.set_ylabel(ylab)
    axs[0, 0].set_title("Sweep: every configuration (mean ± SE; ☆ = selected)")
    axs[-1, 0].set_xticks(x)
    axs[-1, 0].set_xticklabels(["K=%d %s β=%s" % (d["K"], d["groups"], fr.beta_text(d["beta"])) for d in cfgs],
                               rotation=60, ha="right")
    axs[-1, 0].set_xlabel("configuration (rank K, group sizes, β)")
    ctx.save(fig, "sweep_configs.png",
             "Every configuration (K, partition, β): held-out NLL per bin, which chooses K, and the independence score, "
             "dynamical coupling and predictability, which choose the partition (dashed: the rule's thresholds); mean ± SE; the "
             "selected configuration is starred. Held-out NLL and PC do not rank partitions (docs/selection.md).")


def fig_alignment(ctx):
    if ctx.data is None or "truth" not in ctx.data or "latents" not in ctx.data["truth"] or ctx.run.get("latents") is None:
        return None
    truth = ctx.data["truth"]["latents"]
    lat = ctx.run["latents"]
    if truth.shape[0] != lat.shape[0]:
        ctx.notes.append("Ground-truth latents have %d rows but the fit has %d: alignment skipped." % (truth.shape[0], lat.shape[0]))
        return None
    tsizes = ctx.data["truth"]["groups"]
    R, matches, score = fr.group_alignment(lat, truth, ctx.sizes, tsizes)
    fig, ax = plt.subplots(figsize=(1.3 * len(ctx.sizes) + 2.8, 1.0 * len(tsizes) + 2))
    im = ax.imshow(R, cmap="magma", vmin=0, vmax=1, aspect="auto")
    fig.colorbar(im, ax=ax).set_label("affine R²")
    for a in range(R.shape[0]):
        for b in range(R.shape[1]):
            ax.text(b, a, "%.2f" % R[a, b], ha="center", va="center", color="w" if R[a, b] < 0.6 else "k")
    for a, b in matches:
        ax.add_patch(plt.Rectangle((b - 0.5, a - 0.5), 1, 1, fill=False, ec="c", lw=2.5))
    ax.set_xticks(range(len(ctx.sizes)))
    ax.set_xticklabels(["fit g%d (%d)" % (b + 1, s) for b, s in enumerate(ctx.sizes)])
    ax.set_yticks(range(len(tsizes)))
    ax.set_yticklabels(["true g%d (%d)" % (a + 1, s) for a, s in enumerate(tsizes)])
    ax.set_xlabel("fitted group (size)")
    ax.set_ylabel("ground-truth group (size)")
    ax.set_title("Group alignment R² (affine map fit → truth)\nmatched (cyan) R² = %.3f" % score)
    ctx.save(fig, "alignment_r2.png", "Affine R² from each fitted latent group to each ground-truth group; cyan boxes mark the Hungarian matching.")
    return R, matches, score, tsizes


def fig_behavior(ctx):
    if ctx.data is None or "behavior" not in ctx.data or ctx.run.get("latents") is None:
        return None
    beh = np.asarray(ctx.data["behavior"], float)
    if beh.ndim == 1:
        beh = beh[:, None]
    split = ctx.run.get("split")
    dec = fr.behavior_decoding(ctx.run["latents"], beh, ctx.offsets, split)
    P = beh.shape[1]
    fig, axs = plt.subplots(1, P, figsize=(3.8 * P, 3.8), squeeze=False)
    for p in range(P):
        ax = axs[0, p]
        y, yh = dec["y_true"][:, p], dec["y_pred"][:, p]
        ax.scatter(y, yh, s=4, alpha=0.4)
        lo, hi = np.nanmin([y.min(), yh.min()]), np.nanmax([y.max(), yh.max()])
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlabel("measured behaviour dim %d" % (p + 1))
        ax.set_ylabel("decoded from latents")
        ax.set_title("dim %d: R² = %.3f" % (p + 1, dec["r2"][p]))
    fig.suptitle("Behaviour decoding (affine map fitted on training trials, scored on %s)" % dec["scored_on"])
    ctx.save(fig, "behavior_decoding.png", "Behaviour decoded from all latents with an affine map fitted on training trials; points are %s bins." % dec["scored_on"])
    return dec


def fig_rollouts(ctx):
    if ctx.rollouts is None or ctx.data is None:
        if ctx.rollouts is not None:
            ctx.notes.append("Rollouts given but no data file: rollout PSTHs skipped.")
        return
    x, xr = ctx.data["data"], ctx.rollouts["data"]
    cond_d = ctx.condition
    cond_r = ctx.rollouts.get("trial_condition", cond_d if len(ctx.rollouts["trial_offsets"]) == len(ctx.offsets) else None)
    Pd = fr.psth(x, ctx.offsets, cond_d)
    Pr = fr.psth(xr, ctx.rollouts["trial_offsets"], cond_r)
    var = np.var(x, axis=0)
    neurons = np.argsort(-var)[:4]
    colors = cond_colors(np.array(list(Pd)))
    fig, axs = plt.subplots(1, len(neurons), figsize=(3.6 * len(neurons), 3.3), squeeze=False)
    for i, n in enumerate(neurons):
        ax = axs[0, i]
        for c, (m, se, cnt) in Pd.items():
            t, tlab = ctx.t_axis(m.shape[0])
            ax.plot(t, m[:, n], color=colors[c], lw=1.6)
            if c in Pr:
                mr = Pr[c][0]
                tr, _ = ctx.t_axis(mr.shape[0])
                ax.plot(tr, mr[:, n], color=colors[c], lw=1.2, ls="--")
        ax.set_xlabel(tlab)
        ax.set_ylabel("activity (data units)")
        ax.set_title("neuron %d" % n)
    axs[0, 0].plot([], [], "k-", label="data")
    axs[0, 0].plot([], [], "k--", label="rollout")
    axs[0, 0].legend(frameon=False)
    fig.suptitle("PSTHs: data (solid) vs generative rollouts (dashed), 4 most variable neurons")
    ctx.save(fig, "rollouts_psth.png", "Condition-averaged activity of the most variable neurons: data vs free-running rollouts of the fitted RNN.")


# --------------------------------------------------------------------------
# HTML


def answer_sentence(ctx, sel):
    """The answer in one sentence (HTML-escaped text)."""
    S = ctx.res.selection or {}
    if sel:
        G = len(fr.parse_groups(sel["groups"]))
        beta = sel.get("beta")
        part = ("%d independent groups (partition %s)" % (G, sel["groups"]) if G > 1
                else "one group (no partition into independent groups is supported)")
        text = "The sweep selects K = %d latents in %s at β = %s" % (sel["K"], part, fr.beta_text(beta))
        conf = S.get("confidence")
        text += ("; confidence: %s." % str(conf).rstrip(".")) if conf else "; this file records no confidence."
        return text
    m = ctx.meta
    v = m.metric("heldout_nll_per_bin")
    return ("Single fit of K = %d latents in %s at β = %s%s; no sweep, so no partition was tested: run "
            "facrnn sweep to ask which partition the data support."
            % (m.K, "%d groups (%s)" % (len(m.groups), m.groups_text) if len(m.groups) > 1 else "one group",
               fr.beta_text(m.beta), ", held-out NLL %.5g per bin" % v if isinstance(v, float) and np.isfinite(v) else ""))


def fmt(v):
    if isinstance(v, (float, np.floating)):
        return "%.6g" % v
    return str(v)


def cell(key, v, text=None):
    """A table cell carrying the exact value for machine checks."""
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return '<td class="num" data-key="%s" data-value="%r">%s</td>' % (
            html.escape(key), float(v), html.escape(fmt(v) if text is None else text))
    return '<td data-key="%s">%s</td>' % (html.escape(key), html.escape(str(v)))


def isnan(v):
    return isinstance(v, (float, np.floating)) and not np.isfinite(v)


# run attributes that count from 0 in the file and from 1 in the log and here
ONE_BASED = {"restart_chosen": "restarts"}


def html_report(ctx, summary, sel, align, dec):
    a = ctx.res.attrs
    m = ctx.run["metrics"]
    S = ctx.res.selection or {}
    E = []
    E.append("<!DOCTYPE html><html><head><meta charset='utf-8'><title>facrnn report: %s</title>" % html.escape(ctx.run_id))
    E.append("""<style>body{font-family:sans-serif;max-width:1150px;margin:auto;padding:0 1em 1em;color:#222}
h1{font-size:1.35em;margin:.5em 0 .3em}.answer{font-size:1.15em;margin:.3em 0 .4em;line-height:1.35}
#evidence{margin:.2em 0}#evidence img{max-height:430px;width:auto;max-width:100%}
table{border-collapse:collapse;margin:.5em 0 1.2em}td,th{border:1px solid #ccc;padding:3px 8px}
td.num{text-align:right;font-family:monospace}th{background:#f2f2f2}img{max-width:100%;border:1px solid #eee}
figure{margin:1.2em 0}figcaption{color:#555;font-size:90%}pre{background:#f7f7f7;padding:.6em;overflow:auto}
.why{color:#444;font-size:92%}.sel{background:#fff3c4}</style></head><body>""")
    E.append("<h1>facrnn report: <code>%s</code></h1>" % html.escape(os.path.basename(ctx.res.path)))
    E.append('<p id="answer" class="answer"><strong>%s</strong></p>' % html.escape(answer_sentence(ctx, sel)))
    first = getattr(ctx, "answer_figure", None)
    caps = dict(ctx.figures)
    if first:
        E.append('<figure id="evidence"><img src="%s" alt="evidence for the answer"><figcaption>%s</figcaption></figure>'
                 % (html.escape(first), html.escape(caps[first])))
    if S.get("why"):
        E.append('<p class="why" id="why">Why: %s.</p>' % html.escape(str(S["why"]).rstrip(".")))
    if S.get("rule"):
        E.append('<p class="why">Rule: %s.</p>' % html.escape(str(S["rule"]).rstrip(".")))
    E.append("<p>The figures and run tables below show run <code>%s</code> (groups %s, β %s)%s.</p>"
             % (html.escape(ctx.run_id), fr.groups_text(ctx.sizes), fr.beta_text(ctx.meta.beta),
                ", the selected configuration's run with the lowest held-out NLL" if sel and fr.matches_selection(
                    ctx.meta.K, ctx.meta.groups_text, ctx.meta.beta, sel) else ""))
    if summary:
        E.append('<h2>Sweep</h2><table id="sweep-summary"><tr><th>K</th><th>groups</th><th>β</th><th>runs</th>'
                 "<th>heldout_nll_per_bin</th><th>± SE</th><th>heldout_pc</th><th>± SE</th></tr>")
        for d in summary:
            key = "sweep:K%d:%s:b%s" % (d["K"], d["groups"], fr.beta_text(d["beta"]))
            s = fr.matches_selection(d["K"], d["groups"], d["beta"], sel)
            E.append("<tr%s>%s%s%s%s%s%s%s%s</tr>" % (
                ' class="sel"' if s else "", cell(key + ":K", d["K"]), cell(key + ":groups", d["groups"]),
                cell(key + ":beta", d["beta"]), cell(key + ":n", d["n"]),
                cell(key + ":heldout_nll_per_bin", d["heldout_nll_per_bin"]),
                cell(key + ":heldout_nll_per_bin_se", d["heldout_nll_per_bin_se"]),
                cell(key + ":heldout_pc", d["heldout_pc"]), cell(key + ":heldout_pc_se", d["heldout_pc_se"])))
        E.append("</table>")
        ranked = ctx.res.ranked
        if ranked:
            # the selection's own evidence per configuration (K, groups, beta),
            # in its order (by held-out NLL)
            cols = [c for c in ("K", "groups", "beta", "n_runs", "n_folds", "nll_mean", "nll_se", "independence_mean",
                                "independence_se", "coupling_mean", "coupling_se", "predictability_mean",
                                "predictability_se", "supported", "selected")
                    if c in ranked]
            E.append('<h3>Selection evidence per configuration</h3><p>independence: equal-time, 1 - PC / rotation '
                     'null (higher is more independent); coupling: how much the other groups improve the '
                     'prediction of a group\'s latent 1 or more bins ahead (0 = self-contained); predictability: '
                     'how well the weakest group predicts its own next latent (held-out R²); all over each fold\'s '
                     'best-objective seed.</p><table id="selection-ranked"><tr>%s</tr>'
                     % "".join("<th>%s</th>" % html.escape(c) for c in cols))
            for i in range(len(ranked[cols[0]])):
                chosen = "selected" in ranked and int(ranked["selected"][i]) == 1
                E.append("<tr%s>%s</tr>" % (' class="sel"' if chosen else "",
                                            "".join(cell("ranked:%d:%s" % (i, c), ranked[c][i]) for c in cols)))
            E.append("</table>")
        if S:
            E.append('<table id="selection"><tr><th>selection</th><th>value</th></tr>')
            for k in sorted(S):
                if np.ndim(S[k]) == 0:
                    E.append("<tr><td>%s</td>%s</tr>" % (html.escape(k), cell("selection:" + k, S[k])))
            E.append("</table>")
    E.append('<h2>Metrics of run %s</h2><table id="metrics"><tr><th>metric</th><th>meaning</th>'
             "<th>training trials</th><th>held-out trials</th></tr>" % html.escape(ctx.run_id))
    absent = []
    for n, lab, what in fr.METRICS:
        tv, hv = m.get("train_" + n), m.get("heldout_" + n)
        if tv is None and hv is None:
            continue
        if (tv is None or isnan(tv)) and (hv is None or isnan(hv)):
            absent.append(n)
            continue
        E.append("<tr><td>%s</td><td>%s</td>%s%s</tr>" % (n, html.escape(what), cell("train_" + n, "" if tv is None else tv),
                                                          cell("heldout_" + n, "" if hv is None else hv)))
    E.append("</table>")
    if absent:
        E.append("<p>Not applicable to this run (NaN in the file): %s.</p>" % ", ".join(absent))
    E.append('<table id="run-info"><tr><th>attribute</th><th>value</th></tr>')
    for k in sorted(m):
        if any(k == p + "_" + n for p in fr.SETS for n in fr.METRIC_NAMES) or np.ndim(m[k]) != 0:
            continue
        if k in ONE_BASED and isinstance(m[k], (int, float)) and not isnan(m[k]):
            total = m.get(ONE_BASED[k])
            text = "restart %d of %s" % (int(m[k]) + 1, int(total) if total is not None else "?")
            E.append("<tr><td>%s</td>%s</tr>" % (html.escape(k), cell(k, m[k], text)))
        else:
            E.append("<tr><td>%s</td>%s</tr>" % (html.escape(k), cell(k, m[k])))
    for name, what in fr.CONNECTIVITY:
        v = m.get(name)
        if v is not None and np.ndim(v) == 1:
            for g, r in enumerate(np.atleast_1d(v)):
                E.append("<tr><td>%s, group %d</td>%s</tr>" % (name, g + 1, cell("%s:%d" % (name, g + 1), float(r))))
    E.append("</table>")
    if align is not None:
        R, matches, score, tsizes = align
        E.append('<h2>Alignment with ground truth</h2><table id="alignment"><tr><th>true \\ fitted</th>%s</tr>'
                 % "".join("<th>g%d (%d)</th>" % (b + 1, s) for b, s in enumerate(ctx.sizes)))
        for i in range(R.shape[0]):
            E.append("<tr><th>g%d (%d)</th>%s</tr>" % (i + 1, tsizes[i], "".join(cell("align:%d:%d" % (i, j), R[i, j]) for j in range(R.shape[1]))))
        E.append("</table><p>Matched group latent R² (recomputed here): <span>%s</span></p>"
                 % cell("align:matched", score).replace("<td", "<span").replace("</td>", "</span>"))
    if dec is not None:
        E.append('<h2>Behaviour decoding</h2><table id="behavior"><tr><th>dim</th><th>behavior_r2 (%s)</th></tr>'
                 % html.escape(dec["scored_on"]))
        for p, r in enumerate(dec["r2"]):
            E.append("<tr><td>%d</td>%s</tr>" % (p + 1, cell("behavior:%d" % p, r)))
        E.append("<tr><td>mean</td>%s</tr></table>" % cell("behavior:mean", dec["r2_mean"]))
    E.append("<h2>Figures</h2>")
    for name, cap in ctx.figures:
        if name == first:
            continue
        E.append('<figure><img src="%s" alt="%s"><figcaption>%s</figcaption></figure>'
                 % (html.escape(name), html.escape(cap), html.escape(cap)))
    if ctx.notes:
        E.append("<h2>Notes</h2><ul>%s</ul>" % "".join("<li>%s</li>" % html.escape(n) for n in ctx.notes))
    E.append('<h2>Provenance</h2><table id="provenance"><tr><th>attribute</th><th>value</th></tr>')
    for k in ("program", "version", "git_revision", "format_version", "n_ranks", "input_path", "input_checksum"):
        if k in a:
            E.append("<tr><td>%s</td>%s</tr>" % (k, cell("attr:" + k, a[k])))
    if ctx.data is not None:
        E.append("<tr><td>data file used</td>%s</tr>" % cell("data_path", ctx.data["path"]))
        E.append("<tr><td>bin size (s)</td>%s</tr>" % cell("bin_size_s", ctx.bin_s if ctx.bin_s else "unknown"))
    E.append("</table>")
    if "config" in a:
        E.append("<details><summary>Resolved configuration (YAML)</summary><pre>%s</pre></details>" % html.escape(str(a["config"])))
    E.append("</body></html>\n")
    tmp = os.path.join(ctx.out, "index.html.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(E))
    os.replace(tmp, os.path.join(ctx.out, "index.html"))


# --------------------------------------------------------------------------


def make_report(results_path, out, data_path=None, run_id=None, rollouts_path=None):
    """Build the report; returns the list of figure file names. Raises
    ValueError with a one-line message on bad input."""
    with fr.load(results_path, data=data_path) as res:
        return _make_report(res, results_path, out, data_path, run_id, rollouts_path)


def _make_report(res, results_path, out, data_path, run_id, rollouts_path):
    if not res.runs:
        raise ReportError("%s: no runs in /runs to report on" % results_path)
    if run_id is None:
        run_id = res.default_run()
    elif run_id not in res.runs:
        raise ReportError("--run %s: no such run (available: %s)" % (run_id, ", ".join(sorted(res.runs))))
    dpath = res.data_path()
    data = fr.load_data(dpath) if dpath else None
    rollouts = fr.load_data(rollouts_path) if rollouts_path else None
    os.makedirs(out, exist_ok=True)
    ctx = Context(res, run_id, data, rollouts, out)
    if data is None:
        ctx.notes.append("Input data file not found (input_path = %s): data-dependent figures skipped; time axes in bins."
                         % res.attrs.get("input_path", "?"))
    elif data["data"].shape[0] != (ctx.run["latents"].shape[0] if ctx.run.get("latents") is not None else data["data"].shape[0]):
        raise ReportError("%s: /data has %d rows but run %s has %d latent rows (wrong --data file?)"
                          % (dpath, data["data"].shape[0], run_id, ctx.run["latents"].shape[0]))
    summary, sel = None, None
    if res.is_sweep or len(res.runs) > 1:
        summary = res.sweep_summary()
        sel = res.selected_config()
        fig_answer(ctx, summary, sel)
    fig_training(ctx)
    if not getattr(ctx, "answer_figure", None) and any(f == "training.png" for f, _ in ctx.figures):
        ctx.answer_figure = "training.png"  # a single fit: its training curves come first
    fig_latents(ctx)
    fig_connectivity(ctx)
    fig_participation(ctx)
    fig_observed(ctx)
    fig_J(ctx)
    fig_pca(ctx)
    if summary:
        fig_sweep(ctx, summary, sel)
    align = fig_alignment(ctx)
    dec = fig_behavior(ctx)
    fig_rollouts(ctx)
    html_report(ctx, summary, sel, align, dec)
    return [f for f, _ in ctx.figures]


def main(argv=None):
    ap = argparse.ArgumentParser(description="Figures and an HTML report for a facrnn results file.")
    ap.add_argument("results", help="facrnn results HDF5 file")
    ap.add_argument("--out", required=True, help="output directory (created)")
    ap.add_argument("--data", help="input data file (default: the results file's input_path)")
    ap.add_argument("--run", help="run id to show (default: the selected configuration's best run)")
    ap.add_argument("--rollouts", help="output of `facrnn simulate` (input format) to compare PSTHs with")
    args = ap.parse_args(argv)
    try:
        figs = make_report(args.results, args.out, args.data, args.run, args.rollouts)
    except (ValueError, OSError, KeyError, IndexError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print("report: error: %s" % msg, file=sys.stderr)
        return 2
    print("report: wrote %d figures and %s" % (len(figs), os.path.join(args.out, "index.html")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
