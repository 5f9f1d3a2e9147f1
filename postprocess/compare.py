#!/usr/bin/python3
"""compare: several facrnn fits side by side (e.g. lrRNN vs FacRNN).

    compare.py A.h5 B.h5[:RUN_ID] [...] --out DIR [--data FILE]

Each argument is a results file, optionally with ":RUN_ID" (default: the
selected or best run). Writes DIR/compare_metrics.png (reconstruction R²,
held-out NLL, PC, group latent R²), DIR/compare_connectivity.png (W = A B of
every fit in one common neuron order and colour scale, plus pairwise and
ground-truth Pearson r), DIR/compare_alignment.png (group R² matrices vs
truth, when the data file has /truth/latents), DIR/compare.md and
DIR/index.html. Exit status 2 with a one-line message on bad input.
"""
import argparse
import html
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import facrnn_py as fr  # noqa: E402
import report  # noqa: E402  (shares plotting style and helpers)

plt = report.plt

ROWS = [("K", "K"), ("groups", "groups"), ("train_r2", "reconstruction R² (train)"),
        ("heldout_r2", "reconstruction R² (held-out)"), ("heldout_nll_per_bin", "held-out NLL per bin"),
        ("heldout_pc", "PC (held-out)"), ("heldout_tc", "TC (held-out)"),
        ("group_latent_r2_recomputed", "group latent R² vs truth (recomputed)"),
        ("heldout_behavior_r2", "behaviour R² (held-out)")]


def split_arg(a):
    if ":" in a and not os.path.exists(a):
        path, rid = a.rsplit(":", 1)
        return path, rid
    return a, None


def load_fit(arg, data_override):
    path, rid = split_arg(arg)
    try:
        res = fr.load(path, data=data_override)
    except ValueError as exc:
        msg = str(exc)
        if "input data file" in msg:
            msg = "%s: not a results file (it is a facrnn input data file)" % path
        raise ValueError(msg) from None
    with res:  # only the compared run's arrays are read
        rid = rid or res.default_run()
        if rid not in res.runs:
            raise ValueError("%s: no run %s (available: %s)" % (path, rid, ", ".join(sorted(res.runs))))
        run = res.run_dict(rid)
        dpath = res.data_path()
    data = fr.load_data(dpath) if dpath else None
    sizes = fr.run_groups(run)
    info = {"label": "%s:%s" % (os.path.basename(path), rid), "run": run, "sizes": sizes, "data": data}
    vals = {"K": sum(sizes), "groups": fr.groups_text(sizes)}
    for key, _ in ROWS[2:]:
        if key in run["metrics"]:
            vals[key] = run["metrics"][key]
    if data is not None and "truth" in data and "latents" in data["truth"] and run.get("latents") is not None \
            and data["truth"]["latents"].shape[0] == run["latents"].shape[0]:
        R, matches, score = fr.group_alignment(run["latents"], data["truth"]["latents"], sizes, data["truth"]["groups"])
        info["align"] = (R, matches, data["truth"]["groups"])
        vals["group_latent_r2_recomputed"] = score
    info["vals"] = vals
    info["W"] = run["params"]["A"] @ run["params"]["B"] if "A" in run["params"] else None
    return info


def pearson(a, b):
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    d = np.sqrt((a @ a) * (b @ b))
    return float(a @ b / d) if d > 0 else np.nan


def main(argv=None):
    ap = argparse.ArgumentParser(description="Compare facrnn fits side by side.")
    ap.add_argument("fits", nargs="+", help="results files, each optionally FILE:RUN_ID")
    ap.add_argument("--out", required=True)
    ap.add_argument("--data", help="input data file for all fits (default: each file's input_path)")
    args = ap.parse_args(argv)
    try:
        fits = [load_fit(a, args.data) for a in args.fits]
        write(fits, args.out)
    except (ValueError, OSError, KeyError, IndexError) as exc:
        print("compare: error: %s" % (str(exc).splitlines()[0] if str(exc) else type(exc).__name__), file=sys.stderr)
        return 2
    print("compare: wrote %s" % os.path.join(args.out, "index.html"))
    return 0


def write(fits, out):
    os.makedirs(out, exist_ok=True)
    n = len(fits)
    names = ["fit%d" % (i + 1) for i in range(n)]
    # metrics bars
    keys = [k for k, _ in ROWS[2:] if any(k in f["vals"] for f in fits)]
    ncol = min(max(len(keys), 1), 4)
    nrow = (max(len(keys), 1) + ncol - 1) // ncol
    fig, axs = plt.subplots(nrow, ncol, figsize=(3.2 * ncol + 0.5, 3.2 * nrow), squeeze=False)
    for ax in axs.ravel()[len(keys):]:
        ax.set_visible(False)
    for ax, key in zip(axs.ravel(), keys):
        v = [float(f["vals"].get(key, np.nan)) for f in fits]
        ax.bar(range(n), v, color=[plt.get_cmap("tab10")(i) for i in range(n)])
        ax.set_xticks(range(n))
        ax.set_xticklabels(["%s\n%s" % (names[i], fits[i]["vals"]["groups"]) for i in range(n)], fontsize=8)
        ax.set_title(dict(ROWS)[key], fontsize=9)
        ax.set_ylabel({"heldout_nll_per_bin": "nats per bin", "heldout_pc": "nats", "heldout_tc": "nats"}.get(key, "R²"))
    fig.suptitle("Fits side by side (x: fit, group sizes)")
    fig.savefig(os.path.join(out, "compare_metrics.png"), bbox_inches="tight")
    plt.close(fig)
    # connectivity in a common order and scale
    Ws = [f["W"] for f in fits]
    Nset = {W.shape[0] for W in Ws if W is not None}
    corr = np.full((n, n), np.nan)
    truthW = None
    d0 = next((f["data"] for f in fits if f["data"] is not None), None)
    if d0 is not None and "truth" in d0 and "A" in d0["truth"] and "B" in d0["truth"]:
        truthW = d0["truth"]["A"] @ d0["truth"]["B"]
    if len(Nset) == 1 and all(W is not None for W in Ws):
        order = report.cluster_order(Ws[0])
        vmax = max(np.max(np.abs(W)) for W in Ws) or 1.0
        fig, axs = plt.subplots(1, n, figsize=(4.2 * n + 1, 4.2), squeeze=False)
        for i, W in enumerate(Ws):
            im = axs[0, i].imshow(W[np.ix_(order, order)], cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            axs[0, i].set_title("%s (%s): W = A B" % (names[i], fits[i]["vals"]["groups"]), fontsize=9)
            axs[0, i].set_xlabel("presynaptic neuron (order of fit1's clustering)")
            axs[0, i].set_ylabel("postsynaptic neuron")
            if len(order) <= 40:  # tick labels are neuron ids, in the clustering order
                for setter in (axs[0, i].set_xticks, axs[0, i].set_yticks):
                    setter(range(len(order)))
                axs[0, i].set_xticklabels(order, fontsize=6, rotation=90)
                axs[0, i].set_yticklabels(order, fontsize=6)
            for j in range(n):
                corr[i, j] = pearson(W, Ws[j])
        fig.colorbar(im, ax=axs[0, :].tolist(), fraction=0.02).set_label("weight (a.u.)")
        fig.suptitle("Full connectivity of each fit, common colour scale")
        fig.savefig(os.path.join(out, "compare_connectivity.png"), bbox_inches="tight")
        plt.close(fig)
    for i, f in enumerate(fits):
        if truthW is not None and f["W"] is not None and f["W"].shape == truthW.shape:
            f["vals"]["W_r_truth"] = pearson(f["W"], truthW)
    # alignment matrices
    al = [(i, f) for i, f in enumerate(fits) if "align" in f]
    if al:
        fig, axs = plt.subplots(1, len(al), figsize=(3.4 * len(al) + 1, 3.4), squeeze=False)
        for ax, (i, f) in zip(axs[0], al):
            R, matches, ts = f["align"]
            im = ax.imshow(R, cmap="magma", vmin=0, vmax=1, aspect="auto")
            for a in range(R.shape[0]):
                for b in range(R.shape[1]):
                    ax.text(b, a, "%.2f" % R[a, b], ha="center", va="center", color="w" if R[a, b] < 0.6 else "k", fontsize=8)
            for a, b in matches:
                ax.add_patch(plt.Rectangle((b - 0.5, a - 0.5), 1, 1, fill=False, ec="c", lw=2))
            ax.set_xlabel("fitted group")
            ax.set_ylabel("true group")
            ax.set_xticks(range(R.shape[1]))
            ax.set_yticks(range(R.shape[0]))
            ax.set_title("%s (%s): matched R² %.3f" % (names[i], f["vals"]["groups"], f["vals"]["group_latent_r2_recomputed"]), fontsize=9)
        fig.colorbar(im, ax=axs[0, :].tolist(), fraction=0.03).set_label("affine R²")
        fig.suptitle("Group alignment with ground truth (cyan = Hungarian match)")
        fig.savefig(os.path.join(out, "compare_alignment.png"), bbox_inches="tight")
        plt.close(fig)
    # tables
    rows = list(ROWS) + [("W_r_truth", "Pearson r of W vs true W")]
    rows = [(k, lab) for k, lab in rows if any(k in f["vals"] for f in fits)]
    md = ["| quantity | " + " | ".join("%s (%s)" % (names[i], fits[i]["label"]) for i in range(n)) + " |",
          "|---|" + "---|" * n]
    H = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>facrnn comparison</title>",
         "<style>body{font-family:sans-serif;max-width:1150px;margin:auto}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:3px 8px}td.num{text-align:right;font-family:monospace}"
         "img{max-width:100%}</style></head><body><h1>facrnn fits compared</h1>",
         '<table id="compare"><tr><th>quantity</th>%s</tr>' % "".join(
             "<th>%s<br><small>%s</small></th>" % (names[i], html.escape(fits[i]["label"])) for i in range(n))]
    for k, lab in rows:
        vals = [fits[i]["vals"].get(k, "") for i in range(n)]
        md.append("| %s | %s |" % (lab, " | ".join(report.fmt(v) for v in vals)))
        H.append("<tr><td>%s</td>%s</tr>" % (html.escape(lab), "".join(report.cell("%s:%s" % (names[i], k), v) for i, v in enumerate(vals))))
    H.append("</table>")
    if np.isfinite(corr).any():
        md += ["", "Pearson r between full connectivities W:", "", "| | " + " | ".join(names) + " |", "|---|" + "---|" * n]
        H.append('<h2>Pearson r between connectivities W</h2><table id="w-corr"><tr><th></th>%s</tr>' % "".join("<th>%s</th>" % x for x in names))
        for i in range(n):
            md.append("| %s | %s |" % (names[i], " | ".join("%.3f" % corr[i, j] for j in range(n))))
            H.append("<tr><th>%s</th>%s</tr>" % (names[i], "".join(report.cell("wcorr:%d:%d" % (i, j), corr[i, j]) for j in range(n))))
        H.append("</table>")
    for name in ("compare_metrics.png", "compare_connectivity.png", "compare_alignment.png"):
        if os.path.exists(os.path.join(out, name)):
            H.append('<figure><img src="%s" alt="%s"></figure>' % (name, name))
    H.append("</body></html>\n")
    with open(os.path.join(out, "compare.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(md) + "\n")
    with open(os.path.join(out, "index.html"), "w", encoding="utf-8") as f:
        f.write("\n".join(H))


if __name__ == "__main__":
    sys.exit(main())
