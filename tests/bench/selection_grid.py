#!/usr/bin/python3
"""The selection benchmark's design and report (driven by selection_grid.sh).

  selection_grid.py design            one line per ground truth (tab-separated)
  selection_grid.py report WORK_DIR   the accuracy table from WORK_DIR/runs.tsv
                                      and each truth's sweep results file

Design: 16 truth structures (independent partitions 2+1, 2+2, 3+2, 2+2+2,
3+1+1 over the `systems` families; coupled chains; one higher-dimensional
system; latent noise without dynamics), each at 3 SNR levels: 48 ground
truths. Observation model and size (N, trials) rotate over the truths (a
fractional design: not every truth is seen at every size and observation).
Each truth has its own data seed; odd seeds form the reporting half, even
seeds the tuning half. The selection rule's thresholds were not changed, so
the tuning half is not needed to report; it is there for whoever tunes.
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
    print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
