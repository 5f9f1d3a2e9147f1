#!/usr/bin/python3
"""The selection benchmark's design and report (driven by selection_grid.sh).

  selection_grid.py design            one line per ground truth (tab-separated)
  selection_grid.py report WORK_DIR [HALF]
                                      the accuracy table from WORK_DIR/runs.tsv
                                      and each truth's sweep results file
  selection_grid.py tune WORK_DIR     the rule re-applied to the tuning half's
                                      finished sweeps over a grid of its
                                      parameters (how the defaults were set)

Design: 16 truth structures (independent partitions 2+1, 2+2, 3+2, 2+2+2,
3+1+1 over the `systems` families; coupled chains; one higher-dimensional
system; latent noise without dynamics), each at 3 SNR levels: 48 ground
truths. Observation model and size (N, trials) rotate over the truths (a
fractional design: not every truth is seen at every size and observation).
Each truth has its own data seed; odd seeds form the reporting half, even
seeds the tuning half. The rule's parameters (sweep.min_independence,
sweep.max_coupling, sweep.coupling_lags, sweep.min_predictability) were set
with `tune` on the tuning half alone; the reporting half is scored with the
rule as shipped.
"""
import math
import os
import sys

SNRS = [("low", 0.25), ("mid", 1.0), ("high", 4.0)]
# (N, trials) cells, cheapest first.
CELLS = [(20, 20), (100, 20), (20, 100), (100, 100)]
COUPLING = 1.5  # the chain drive of the coupled truths (test_synth_families checks it is coupled)

# (name, systems, coupling, kind, true groups)
STRUCTURES = [
    ("vdp+line", "vdp,line", 0, "independent", [2, 1]),
    ("damped+line", "damped,line", 0, "independent", [2, 1]),
    ("vdp+hopf", "vdp,hopf", 0, "independent", [2, 2]),
    ("damped+ring", "damped,ring", 0, "independent", [2, 2]),
    ("rossler+damped", "rossler,damped", 0, "independent", [3, 2]),
    ("rossler+ring", "rossler,ring", 0, "independent", [3, 2]),
    ("vdp+hopf+damped", "vdp,hopf,damped", 0, "independent", [2, 2, 2]),
    ("ring+damped+vdp", "ring,damped,vdp", 0, "independent", [2, 2, 2]),
    ("rossler+line+line", "rossler,line,line", 0, "independent", [3, 1, 1]),
    ("vdp>hopf", "vdp,hopf", COUPLING, "coupled", [4]),
    ("rossler>damped", "rossler,damped", COUPLING, "coupled", [5]),
    ("hopf>ring", "hopf,ring", COUPLING, "coupled", [4]),
    ("damped>line", "damped,line", COUPLING, "coupled", [3]),
    ("l96:5", "l96:5", 0, "single", [5]),
    ("noise:3", "noise:3", 0, "noise", [3]),
    ("noise:4", "noise:4", 0, "noise", [4]),
]

FIELDS = ["id", "seed", "half", "structure", "systems", "coupling", "kind", "groups", "K", "snr_level", "snr",
          "obs", "N", "trials", "ranks"]


def design():
    rows = []
    for si, (name, systems, coupling, kind, groups) in enumerate(STRUCTURES):
        for li, (level, snr) in enumerate(SNRS):
            i = 3 * si + li
            bit = (si + li) % 2
            seed = 2 * i + bit  # odd seed: reporting half
            obs = "gaussian" if (si + 2 * li) % 4 < 2 else "poisson"
            N, trials = CELLS[(si // 2 + li) % 4]
            K = sum(groups)
            ranks = [k for k in (K - 1, K, K + 1) if k >= 1]
            rows.append({
                "id": "t%02d_%s_%s" % (i, name.replace(">", "-to-").replace(":", "d").replace("+", "_"), level),
                "seed": seed, "half": "report" if seed % 2 else "tune", "structure": name, "systems": systems,
                "coupling": coupling, "kind": kind, "groups": "+".join(map(str, groups)), "K": K,
                "snr_level": level, "snr": snr, "obs": obs, "N": N, "trials": trials,
                "ranks": ",".join(map(str, ranks)),
            })
    return rows


def cost(r):
    """Rough relative cost of a truth's sweep (for running the cheapest first)."""
    return (r["N"] / 20.0) ** 0.5 * (r["trials"] / 20.0) * (r["K"] + 1) ** 1.5


def cmd_design():
    print("\t".join(FIELDS))
    for r in sorted(design(), key=cost):
        print("\t".join(str(r[f]) for f in FIELDS))


def read_runs(work):
    runs = {}
    path = os.path.join(work, "runs.tsv")
    if not os.path.exists(path):
        return runs
    with open(path) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if len(p) >= 5 and p[0] != "id":
                runs[p[0]] = {"rc": int(p[1]), "wall": float(p[2]), "load_before": p[3], "load_after": p[4]}
    return runs


def selection(path):
    import h5py
    with h5py.File(path, "r") as f:
        a = f["/sweep/selection"].attrs
        g = a["selected_groups"]
        g = g.decode() if isinstance(g, bytes) else str(g)
        return int(a["selected_K"]), sorted(int(x) for x in g.split("+")), g


def score(r, sel):
    """exact, signed K error (None for noise), multi-group answer."""
    K, groups, _ = sel
    truth = sorted(int(x) for x in r["groups"].split("+"))
    multi = len(groups) > 1
    if r["kind"] == "noise":
        return (not multi), None, multi
    return (K == r["K"] and groups == truth), K - r["K"], multi


def pct(a, n):
    return "%d/%d = %.0f%%" % (a, n, 100.0 * a / n) if n else "-"


def cmd_report(work, half):
    runs = read_runs(work)
    rows = [r for r in design() if half == "all" or r["half"] == half]
    done, missing, failed = [], [], []
    for r in rows:
        res = os.path.join(work, r["id"] + ".sweep.h5")
        run = runs.get(r["id"])
        if run is None:
            missing.append(r)
            continue
        if run["rc"] != 0 or not os.path.exists(res):
            failed.append(r)
            continue
        try:
            sel = selection(res)
        except (OSError, KeyError, ValueError) as e:
            print("warning: %s: cannot read the selection (%s)" % (res, e), file=sys.stderr)
            failed.append(r)
            continue
        done.append((r, sel, score(r, sel), run))
    print("selection grid, %s half: %d truths in the design, %d run, %d failed, %d not run"
          % (half, len(rows), len(done), len(failed), len(missing)))
    print()
    print("| SNR | truths run | exact (K, partition) | signed K error (mean; range) | multi-group on coupled/null |"
          " noise null: one group |")
    print("|---|---|---|---|---|---|")
    for level, snr in SNRS:
        d = [x for x in done if x[0]["snr_level"] == level]
        ex = [x for x in d if x[0]["kind"] != "noise"]
        kerr = [x[2][1] for x in ex]
        cn = [x for x in d if x[0]["kind"] != "independent"]
        nz = [x for x in d if x[0]["kind"] == "noise"]
        ke = "%+.2f; %+d..%+d" % (sum(kerr) / len(kerr), min(kerr), max(kerr)) if kerr else "-"
        print("| %s (%g) | %d | %s | %s | %s | %s |" % (
            level, snr, len(d), pct(sum(x[2][0] for x in ex), len(ex)), ke,
            pct(sum(x[2][2] for x in cn), len(cn)), pct(sum(x[2][0] for x in nz), len(nz))))
    print()
    print("| truth | kind | truth K, groups | SNR | obs | N | trials | selected | exact | wall s | load before -> after |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    total = 0.0
    for r, sel, sc, run in sorted(done, key=lambda x: x[0]["id"]):
        total += run["wall"]
        print("| %s | %s | %d, %s | %s | %s | %d | %d | K = %d, %s | %s | %.0f | %s -> %s |" % (
            r["structure"], r["kind"], r["K"], r["groups"], r["snr_level"], r["obs"], r["N"], r["trials"],
            sel[0], sel[2], "yes" if sc[0] else "no", run["wall"], run["load_before"], run["load_after"]))
    for r in failed:
        print("| %s | %s | %d, %s | %s | %s | %d | %d | sweep failed | - | - | - |" % (
            r["structure"], r["kind"], r["K"], r["groups"], r["snr_level"], r["obs"], r["N"], r["trials"]))
    print()
    print("sweep wall time in all: %.0f s (%.1f min)" % (total, total / 60))
    if missing:
        print("not run: " + ", ".join(r["id"] for r in missing))


# ---- tuning: the rule re-applied to saved runs ------------------------------------
# The evidence of every run is computed again from its saved latents and
# train/held-out split (the sweep's per-run files), as src/core/coupling.c
# does, at every horizon of TUNE_LAGS; then the rule of docs/selection.md is
# applied with other parameters. `tune` first checks that, with the
# parameters a results file records, this re-implementation gives the
# selection the file records.
TUNE_LAGS = (1, 2, 3, 4)


def _feats(z, quad):
    import numpy as np
    K = z.shape[1]
    f = [z]
    if quad:
        for i in range(K):
            for j in range(i, K):
                f.append((z[:, i] * z[:, j])[:, None])
    return np.hstack(f)


def _own(K, quad, k0, k1):
    idx, p = list(range(k0, k1)), K
    if quad:
        for i in range(K):
            for j in range(i, K):
                if k0 <= i < k1 and k0 <= j < k1:
                    idx.append(p)
                p += 1
    return idx


def _sse(Xtr, Ytr, Xte, Yte):
    import numpy as np
    xm, ym = Xtr.mean(0), Ytr.mean(0)
    Xc = Xtr - xm
    C = Xc.T @ Xc / len(Xtr)
    C += 1e-6 * np.trace(C) / C.shape[0] * np.eye(C.shape[0])
    W = np.linalg.solve(C, Xc.T @ (Ytr - ym) / len(Xtr))
    return float(((Yte - (ym + (Xte - xm) @ W)) ** 2).sum())


def run_evidence(lat, off, is_train, groups, lags=TUNE_LAGS):
    """{lag: (coupling max over groups, worst group's predictability)} of one
    run's latents (rows, K; NaN rows are context bins) split into trials by
    off, standardised with the training trials' bins."""
    import numpy as np
    K = lat.shape[1]
    quad = K <= 10
    tr_rows = np.concatenate([np.arange(off[k], off[k + 1]) for k in range(len(off) - 1) if is_train[k]])
    L = lat[tr_rows]
    L = L[~np.isnan(L[:, 0])]
    z = (lat - L.mean(0)) / L.std(0)
    out = {}
    for lag in lags:
        A, B, T = [], [], []
        for k in range(len(off) - 1):
            a = np.arange(off[k], off[k + 1] - lag)
            a = a[~np.isnan(z[a, 0]) & ~np.isnan(z[a + lag, 0])]
            A.append(z[a])
            B.append(z[a + lag])
            T.append(np.full(len(a), bool(is_train[k])))
        A, B, T = np.vstack(A), np.vstack(B), np.concatenate(T)
        X = _feats(A, quad)
        cs, r2, k0 = [], [], 0
        for g in groups:
            k1 = k0 + g
            oi = _own(K, quad, k0, k1)
            Yte = B[~T][:, k0:k1]
            sst = float(((Yte - Yte.mean(0)) ** 2).sum())
            so = _sse(X[T][:, oi], B[T][:, k0:k1], X[~T][:, oi], Yte)
            sa = _sse(X[T], B[T][:, k0:k1], X[~T], Yte) if len(groups) > 1 else so
            cs.append((so - sa) / so if so > 0 else 0.0)
            r2.append(1 - so / sst if sst > 0 else 0.0)
            k0 = k1
        out[lag] = (max(cs) if len(groups) > 1 else 0.0, min(r2))
    return out


def truth_evidence(work, tid):
    """One row per finished run of a truth's sweep: K, groups, beta, seed,
    fold, held-out NLL, objective, independence, and run_evidence; cached in
    WORK_DIR/<id>.evidence.json."""
    import json
    import h5py
    import numpy as np
    cache = os.path.join(work, tid + ".evidence.json")
    if os.path.exists(cache):
        with open(cache) as f:
            return json.load(f)
    sweep = os.path.join(work, tid + ".sweep.h5")
    with h5py.File(os.path.join(work, tid + ".h5"), "r") as f:
        off = f["trial_offsets"][()]
    rows = []
    with h5py.File(sweep, "r") as f:
        t = f["sweep/table"]
        col = {c: t[c][()] for c in ("run_id", "K", "groups", "beta", "seed", "fold", "status",
                                     "heldout_nll_per_bin", "objective", "independence")}
        for i, rid in enumerate(col["run_id"]):
            rid = rid.decode() if isinstance(rid, bytes) else str(rid)
            st = col["status"][i]
            st = st.decode() if isinstance(st, bytes) else str(st)
            g = col["groups"][i]
            g = g.decode() if isinstance(g, bytes) else str(g)
            if st != "done":
                continue
            with h5py.File(os.path.join(work, tid + ".sweep.h5.runs", rid + ".h5"), "r") as rf:
                run = rf["runs"][rid]
                lat, split = run["latents"][()], run["split"][()].astype(bool)
            groups = [int(x) for x in g.split("+")]
            ev = run_evidence(lat, off, split, groups)
            rows.append({"K": int(col["K"][i]), "groups": g, "beta": float(col["beta"][i]),
                         "seed": int(col["seed"][i]), "fold": int(col["fold"][i]),
                         "nll": float(col["heldout_nll_per_bin"][i]), "objective": float(col["objective"][i]),
                         "ind": float(col["independence"][i]),
                         "coup": {str(k): v[0] for k, v in ev.items()}, "pred": {str(k): v[1] for k, v in ev.items()}})
    with open(cache, "w") as f:
        json.dump(rows, f)
    return rows


def _mse(v):
    import numpy as np
    v = np.array([x for x in v if x is not None and math.isfinite(x)], float)
    if len(v) == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0


def apply_rule(rows, se=1.0, min_ind=0.25, max_coup=0.2, lags=(1, 4), min_pred=0.2):
    """docs/selection.md's rule on evidence rows: (K, groups text)."""
    cfg = {}
    for r in rows:
        cfg.setdefault((r["K"], r["groups"], r["beta"]), []).append(r)
    sc = []
    for (K, g, b), rs in cfg.items():
        G = len(g.split("+"))
        rep = {}
        for r in rs:  # each fold's best-objective seed
            if r["fold"] not in rep or r["objective"] < rep[r["fold"]]["objective"]:
                rep[r["fold"]] = r
        ev = list(rep.values())
        nm, ns = _mse([r["nll"] for r in rs])
        im, i_se = _mse([r["ind"] for r in ev])
        cm, c_se = _mse([max(r["coup"][str(l)] for l in lags) for r in ev])
        pm, p_se = _mse([r["pred"][str(lags[0])] for r in ev])
        sup = (G >= 2 and b > 0 and im - i_se >= min_ind and cm + c_se <= max_coup and pm - p_se >= min_pred)
        sc.append({"K": K, "g": g, "G": G, "nm": nm, "ns": ns, "sup": sup})
    best = min(sc, key=lambda s: s["nm"])
    thr = best["nm"] + se * (best["ns"] if math.isfinite(best["ns"]) else 0.0)
    Ks = min(s["K"] for s in sc if s["nm"] <= thr)
    at = [s for s in sc if s["K"] == Ks]
    sup = [s for s in at if s["sup"]]
    if sup:
        ch = sorted(sup, key=lambda s: (-s["G"], s["nm"]))[0]
    else:
        ones = [s for s in at if s["G"] == 1]
        ch = min(ones or at, key=lambda s: s["nm"])
    return Ks, ch["g"]


def cmd_tune(work):
    import itertools
    import h5py
    runs = read_runs(work)
    rows = [r for r in design() if r["half"] == "tune" and runs.get(r["id"], {}).get("rc") == 0
            and os.path.exists(os.path.join(work, r["id"] + ".sweep.h5"))]
    ev = {r["id"]: truth_evidence(work, r["id"]) for r in rows}
    print("tuning half: %d truths with a finished sweep" % len(rows))
    # the re-implementation against what each file recorded, with its parameters
    agree = 0
    for r in rows:
        with h5py.File(os.path.join(work, r["id"] + ".sweep.h5"), "r") as f:
            a = f["/sweep/selection"].attrs
            lags = tuple(int(x) for x in str(a["coupling_lags"].decode() if isinstance(a["coupling_lags"], bytes)
                                              else a["coupling_lags"]).split(",")) if "coupling_lags" in a else (1,)
            p = dict(se=float(a["se_rule"]), min_ind=float(a["min_independence"]), max_coup=float(a["max_coupling"]),
                     lags=lags, min_pred=float(a["min_predictability"]) if "min_predictability" in a else -1e9)
            rec = (int(a["selected_K"]), selection(os.path.join(work, r["id"] + ".sweep.h5"))[2])
        agree += apply_rule(ev[r["id"]], **p) == rec
    print("re-implementation gives the recorded selection on %d of %d" % (agree, len(rows)))

    def score_all(p):
        ok = {l: [0, 0] for l, _ in SNRS}
        fd, nfd = [], 0
        for r in rows:
            K, g = apply_rule(ev[r["id"]], **p)
            sel = (K, sorted(int(x) for x in g.split("+")), g)
            exact, _, multi = score(r, sel)
            ok[r["snr_level"]][0] += exact
            ok[r["snr_level"]][1] += 1
            if r["kind"] != "independent":
                nfd += 1
                if multi:
                    fd.append(r["id"])
        return ok, fd, nfd

    print("| min_independence | max_coupling | coupling_lags | min_predictability | exact mid+high | exact low |"
          " multi-group on coupled/null |")
    print("|---|---|---|---|---|---|---|")
    for mi, mc, lags, mp in itertools.product((0.1, 0.2, 0.25, 0.3, 0.5), (0.1, 0.2), ((1,), (1, 2), (1, 4), (1, 2, 4)),
                                              (-1e9, 0.1, 0.2)):
        ok, fd, nfd = score_all(dict(min_ind=mi, max_coup=mc, lags=lags, min_pred=mp))
        print("| %g | %g | %s | %s | %d/%d | %d/%d | %d/%d %s |" % (
            mi, mc, ",".join(map(str, lags)), "off" if mp < -1 else "%g" % mp, ok["mid"][0] + ok["high"][0],
            ok["mid"][1] + ok["high"][1], ok["low"][0], ok["low"][1], len(fd), nfd, " ".join(fd)))


def main(argv):
    if len(argv) >= 2 and argv[1] == "design":
        cmd_design()
        return 0
    if len(argv) >= 3 and argv[1] == "report":
        half = argv[3] if len(argv) >= 4 else "report"
        if half not in ("report", "tune", "all"):
            print("selection_grid.py: half must be report, tune or all, not '%s'" % half, file=sys.stderr)
            return 2
        cmd_report(argv[2], half)
        return 0
    if len(argv) >= 3 and argv[1] == "tune":
        cmd_tune(argv[2])
        return 0
    print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
