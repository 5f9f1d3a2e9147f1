#!/usr/bin/python3
"""report: the figures of tests/bench/run.sh. Reads the harness's working
folder (results.txt written by run.sh, the logs, results files and reference
JSON lines), writes the JSON and prints the table. Every number it prints is
in the JSON; tests/bench/README.md says what each one measures.

Usage (run.sh calls it): tests/bench/report.py WORK_DIR OUT_JSON
"""
import json
import math
import os
import re
import sys

import h5py

REF_LOOP_STEPS = 40000  # the authors' training loop: 40,000 optimizer steps per fit
TARGETS = {"per_step_ratio": 30.0, "time_to_model_speedup": 10.0, "group_latent_r2_mean": 0.93,
           "sweep_speedup": 30.0}
# The paper-size sweep of run.sh (keep in step with its sweep.yaml).
SWEEP_GRID = {"ranks": [4, 6, 8], "max_groups": 3, "min_group_size": 2, "betas": [0, 20], "seeds": [0, 1], "folds": 3}
SWEEP_WANT = (6, "3+3")
# `phases: startup 0.1 s, init 0.5 s, training 3.2 s, evaluation 0.4 s, output 0.1 s`; any names, any
# number of phases; a parenthesised share after a time is ignored.
PHASES_RE = re.compile(r"phases:\s*(.*)$")
PHASE_RE = re.compile(r"([A-Za-z][A-Za-z_/ -]*?)\s+([0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)\s*s\b")


class ReportError(Exception):
    pass


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return v


def read_kv(path):
    r = {}
    with open(path) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                r[k] = v
    return r


def read_text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def last_json_line(path):
    for line in reversed(read_text(path).splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise ReportError(f"{path}: no JSON line")


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt(v, spec=".3g", na="n/a"):
    return na if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


class Work:
    def __init__(self, wd):
        self.wd = wd
        self.kv = read_kv(self.path("results.txt"))
        self.load = []  # (time, 1-min, 5-min, 15-min)
        for line in read_text(self.path("load.log")).splitlines():
            p = line.split()
            if len(p) >= 4:
                self.load.append(tuple(float(x) for x in p[:4]))

    def path(self, name):
        return os.path.join(self.wd, name)

    def has(self, proc):
        return f"{proc}.wall_s" in self.kv

    def get(self, key, default=None):
        return num(self.kv[key]) if key in self.kv else default

    def proc(self, name):
        """Whole-process measurement of one timed command."""
        if not self.has(name):
            return None
        wall = self.get(f"{name}.wall_s")
        cpu = self.get(f"{name}.cpu_s")
        t0, t1 = self.get(f"{name}.t0"), self.get(f"{name}.t1")
        # samples are 5 s apart: the one just before the start counts for short runs
        during = [s[1] for s in self.load if t0 - 5.5 <= s[0] <= t1]
        return {"command": self.kv.get(f"{name}.cmd"), "wall_s": wall, "cpu_s": cpu,
                "cpu_over_wall": ratio(cpu, wall), "max_rss_kb": self.get(f"{name}.max_rss_kb"),
                "loadavg_before": self.kv.get(f"{name}.load_before"),
                "loadavg_after": self.kv.get(f"{name}.load_after"),
                "load_1min_during": {"samples": len(during),
                                     "mean": sum(during) / len(during) if during else None,
                                     "max": max(during) if during else None}}

    def log(self, name):
        return read_text(self.path(f"{name}.log"))


def phase_lines(text):
    """One dict {phase: seconds} per `phases:` line in a log."""
    out = []
    for line in text.splitlines():
        m = PHASES_RE.search(line)
        if m:
            body = re.sub(r"\([^)]*\)", "", m.group(1))
            ph = {k.strip(): float(v) for k, v in PHASE_RE.findall(body)}
            if ph:
                out.append(ph)
    return out


def phases_summary(text, wall):
    lines = phase_lines(text)
    if not lines:
        return {"lines": 0, "seconds": None}
    tot = {}
    for ph in lines:
        for k, v in ph.items():
            tot[k] = tot.get(k, 0.0) + v
    s = sum(tot.values())
    return {"lines": len(lines), "seconds": tot, "sum_s": s,
            "share_of_wall": {k: v / wall for k, v in tot.items()} if wall else None,
            "outside_phases_s": wall - s if wall is not None else None}


def phases_text(p):
    if not p or not p["seconds"]:
        return "n/a (facrnn prints no `phases:` line)"
    sh = p.get("share_of_wall") or {}
    parts = [f"{k} {v:.2f} s" + (f" ({100 * sh[k]:.0f}%)" if k in sh else "") for k, v in p["seconds"].items()]
    extra = f" over {p['lines']} fit lines" if p["lines"] > 1 else ""
    out = ", ".join(parts) + extra
    if p.get("outside_phases_s") is not None:
        out += f"; outside the phases (exec, MPI start/finish) {p['outside_phases_s']:.2f} s"
    return out


def trainer_sps(text):
    """The trainer's own rate of training steps alone (last progress line)."""
    m = re.findall(r"([0-9.]+) steps/s", text)
    return float(m[-1]) if m else None


def grep_int(text, pattern):
    m = re.search(pattern, text)
    return int(m.group(1)) if m else None


def runs_of(path):
    """metrics attributes of every run in a results file"""
    with h5py.File(path, "r") as f:
        return [{k: (v.item() if hasattr(v, "item") and getattr(v, "size", 2) == 1 else v)
                 for k, v in r["metrics"].attrs.items()} for r in f["runs"].values()]


def input_seed(path):
    with h5py.File(path, "r") as f:
        return int(f.attrs["seed"])


def partitions(k, max_groups, min_size, largest=None):
    """integer partitions of k, parts non-increasing, each >= min_size, at most max_groups parts"""
    largest = k if largest is None else largest
    if k == 0:
        return [[]]
    if max_groups == 0:
        return []
    out = []
    for p in range(min(k, largest), min_size - 1, -1):
        for rest in partitions(k - p, max_groups - 1, min_size, p):
            out.append([p] + rest)
    return out


def sweep_grid_fits():
    g = SWEEP_GRID
    n_part = sum(len(partitions(k, g["max_groups"], g["min_group_size"])) for k in g["ranks"])
    return n_part * len(g["betas"]) * len(g["seeds"]) * g["folds"], n_part


def selection_block(info):
    """the /sweep/selection attributes as `facrnn info` prints them"""
    out, on = [], False
    for line in info.splitlines():
        if line.strip().startswith("/sweep/selection"):
            on = line.strip() == "/sweep/selection/"
        if on:
            out.append(line.strip())
    return "\n".join(out)


def finite(v):
    """JSON has no NaN: non-finite numbers become null"""
    if isinstance(v, dict):
        return {k: finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [finite(x) for x in v]
    if hasattr(v, "tolist"):
        return finite(v.tolist())
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def fit_figures(w, name, h5name):
    """whole-process figures of one `facrnn fit`"""
    p = w.proc(name)
    text = w.log(name)
    runs = runs_of(w.path(h5name))
    steps = sum(int(r["steps"]) for r in runs)
    m = runs[0]
    p.update({"steps": steps, "restarts": int(m["restarts"]), "epochs": int(m["epochs_done"]),
              "steps_per_epoch": grep_int(text, r"(\d+) steps/epoch"), "n_train": grep_int(text, r"n_train=(\d+)"),
              "whole_process_steps_per_s": steps / p["wall_s"],
              "diagnostic_training_steps_only_steps_per_s": trainer_sps(text),
              "fit_seconds_in_results": float(m["seconds"]),
              "heldout_group_latent_r2": float(m["heldout_group_latent_r2"]),
              "phases": phases_summary(text, p["wall_s"])})
    return p


def main(argv):
    if len(argv) != 3:
        raise ReportError("usage: report.py WORK_DIR OUT_JSON")
    w, out_path = Work(argv[1]), argv[2]
    mode = w.kv.get("mode", "?")
    kern = json.loads(read_text(w.path("kern.json")))
    cpu = next((l.split(":", 1)[1].strip() for l in read_text("/proc/cpuinfo").splitlines()
                if l.startswith("model name")), "?")
    t0, t1 = w.get("harness_t0"), w.get("harness_t1")
    load_all = [s[1] for s in w.load]
    res = {
        "mode": mode, "flags": w.kv.get("flags"),
        "harness_wall_s": t1 - t0 if t0 and t1 else None,
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "blas_core": kern.get("blas_core"),
                    "blas_config": kern.get("blas_config"),
                    "facrnn_version": read_text(w.path("version.txt")).strip(),
                    "loadavg_start": load_all and " ".join(f"{x:g}" for x in w.load[0][1:]),
                    "loadavg_end": load_all and " ".join(f"{x:g}" for x in w.load[-1][1:]),
                    "load_1min_mean": sum(load_all) / len(load_all) if load_all else None,
                    "load_1min_max": max(load_all) if load_all else None,
                    "env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}},
    }

    # 1. per step, whole process
    f1 = fit_figures(w, "t1_fit", "t1.h5")
    r1 = w.proc("t1_ref")
    ref = last_json_line(w.path("t1_ref.log"))
    if ref["steps"] != f1["steps"]:
        raise ReportError(f"reference ran {ref['steps']} steps, facrnn {f1['steps']}")
    r1.update({"steps": ref["steps"], "loop_s": ref["seconds"], "loop_steps_per_s": ref["steps_per_s"],
               "whole_process_steps_per_s": ref["steps"] / r1["wall_s"], "torch": ref["torch"],
               "threads": ref["threads"], "dtype": ref["dtype"], "samples": ref["samples"], "batch": ref["batch"],
               "warmup_steps_excluded": ref.get("warmup", 0), "seconds_at_step": ref.get("seconds_at_step", {})})
    res["per_step"] = {
        "what": "facrnn fit (every default but train.restarts 1 and train.epochs E), whole process, 1 rank, vs the "
                "PyTorch reference's training loop (torch.set_num_threads(1)) for the same number of steps",
        "epochs": f1["epochs"], "full_figure": mode == "full",
        "facrnn": f1, "reference": r1,
        "ratio": f1["whole_process_steps_per_s"] / r1["loop_steps_per_s"],
        "diagnostic_training_steps_only_ratio": ratio(f1["diagnostic_training_steps_only_steps_per_s"],
                                                      r1["loop_steps_per_s"]),
        # CPU seconds count only the time a process had a core: less sensitive to other load than wall time
        "diagnostic_whole_process_steps_per_cpu_s": {
            "facrnn": ratio(f1["steps"], f1["cpu_s"]), "reference": ratio(r1["steps"], r1["cpu_s"]),
            "ratio": ratio(ratio(f1["steps"], f1["cpu_s"]), ratio(r1["steps"], r1["cpu_s"]))},
        "target": f">= {TARGETS['per_step_ratio']:g}x"}

    # reference time for one 40,000-step fit: measured inside the figure-1 run when it is that long
    at = r1["seconds_at_step"].get(str(REF_LOOP_STEPS))
    if at is not None:
        ref40 = {"seconds": at, "kind": "measured", "how": f"measured: the first {REF_LOOP_STEPS} steps of the figure-1 reference run"}
    else:
        ref40 = {"seconds": REF_LOOP_STEPS / r1["loop_steps_per_s"], "kind": "extrapolated",
                 "how": f"extrapolated from the figure-1 reference rate over {r1['steps']} steps"}
    ref40["steps"] = REF_LOOP_STEPS

    # 2. time to a fitted model
    f2 = fit_figures(w, "t2_fit", "t2.h5")
    r2 = {"seed_0_data_seed": input_seed(w.path("lt.h5")), "per_seed": {"0": f2["heldout_group_latent_r2"]}}
    walls = {"0": f2["wall_s"]}
    extra_fits = {}
    for s in (1, 2):
        if w.has(f"r2_fit_s{s}"):
            fs = fit_figures(w, f"r2_fit_s{s}", f"r2_s{s}.h5")
            extra_fits[str(s)] = fs
            r2["per_seed"][str(s)] = fs["heldout_group_latent_r2"]
            walls[str(s)] = fs["wall_s"]
    vals = list(r2["per_seed"].values())
    r2["mean"] = sum(vals) / len(vals)
    r2["seeds"] = sorted(int(s) for s in r2["per_seed"])
    r2["target"] = f"mean over seeds 0-2 >= {TARGETS['group_latent_r2_mean']:g}"
    res["time_to_model"] = {
        "what": "a default facrnn fit (every default, restarts and all), whole process, 1 rank, vs the reference's "
                f"{REF_LOOP_STEPS}-step training loop on one core",
        "smoke_settings": mode == "smoke",
        "facrnn": f2, "reference_40k": ref40, "speedup": ref40["seconds"] / f2["wall_s"],
        "target": f">= {TARGETS['time_to_model_speedup']:g}x",
        "heldout_group_latent_r2": r2, "other_seed_fits": extra_fits,
        "facrnn_wall_s_per_seed": walls}

    # 3. the paper-size sweep
    if w.has("sweep"):
        ps = w.proc("sweep")
        grid, n_part = sweep_grid_fits()
        runs = runs_of(w.path("sweep.h5"))
        with h5py.File(w.path("sweep.h5"), "r") as f:
            sel = {k: (v.item() if hasattr(v, "item") else v) for k, v in f["sweep/selection"].attrs.items()}
            sel = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in sel.items()}
        epochs = [int(r["epochs_done"]) for r in runs]
        scale = max(epochs) / w.get("default_epochs") if w.kv.get("sweep_set") else 1.0
        ref_fit_steps = round(REF_LOOP_STEPS * scale)
        if ref_fit_steps == REF_LOOP_STEPS:
            ref_fit = dict(ref40)
        else:
            ref_fit = {"seconds": ref_fit_steps / r1["loop_steps_per_s"], "steps": ref_fit_steps, "kind": "extrapolated",
                       "how": f"{REF_LOOP_STEPS} steps scaled like the sweep's epochs ({scale:g}), "
                              f"extrapolated from the figure-1 reference rate"}
        steps = sum(int(r["steps"]) for r in runs)
        ps.update({"runs_fitted": len(runs), "steps": steps, "whole_process_steps_per_s": steps / ps["wall_s"],
                   "settings_changed": w.kv.get("sweep_set") or None,
                   "phases": phases_summary(w.log("sweep"), ps["wall_s"])})
        got = (sel.get("selected_K"), sel.get("selected_groups"))
        res["sweep"] = {
            "what": "mpirun -n 2 facrnn sweep (K in {4,6,8}, partitions into <= 3 groups of size >= 2, beta in "
                    "{0,20}, 3 folds, 2 seeds, every other setting default), whole process, vs grid fits x the "
                    "reference's 40,000-step loop on one core",
            "grid_fits": grid, "grid_partitions": n_part, "facrnn": ps, "reference_per_fit": ref_fit,
            "reference_total_s": grid * ref_fit["seconds"], "speedup": grid * ref_fit["seconds"] / ps["wall_s"],
            "target": f">= {TARGETS['sweep_speedup']:g}x and selects K = 6, 3+3",
            "selection": sel, "selects_truth": got == SWEEP_WANT,
            "selected_line": next((l[l.index("selected: "):] for l in w.log("sweep").splitlines()
                                   if "selected: " in l), None),
            "info_selection": selection_block(read_text(w.path("sweep_info.txt")))}

    # hold: figures that must not regress (training steps alone or kernels)
    if w.has("hold_img_fit"):
        kimg = json.loads(read_text(w.path("kern_img.json")))
        rimg = last_json_line(w.path("hold_img_ref.log"))
        io = [json.loads(read_text(w.path(f"io{n}.json"))) for n in (1, 2)]
        g = w.get
        res["hold"] = {
            "imaging": {"facrnn_steps_per_s": g("hold_imaging_facrnn_sps"), "reference_steps_per_s": rimg["steps_per_s"],
                        "ratio": ratio(g("hold_imaging_facrnn_sps"), rimg["steps_per_s"]), "target_ratio": ">= 3",
                        "step_gflops": kimg["step_gflops"], "dgemm_gflops": kimg["dgemm_gflops"],
                        "step_vs_dgemm": kimg["step_vs_dgemm"], "target_step_vs_dgemm": ">= 0.5"},
            "large_batch": {"steps_per_s_1rank": g("hold_largebatch_sps_np1"),
                            "steps_per_s_2ranks": g("hold_largebatch_sps_np2"),
                            "time_ratio_2_over_1": ratio(g("hold_largebatch_sps_np1"), g("hold_largebatch_sps_np2")),
                            "target": "<= 0.55"},
            "big_data": {"bins": 100000, "N": 500, "raw_bytes": 100 * 1000 * 500 * 8,
                         "epoch_s_1rank": g("hold_bigdata_epoch_s_np1"), "epoch_s_2ranks": g("hold_bigdata_epoch_s_np2"),
                         "peak_rss_bytes_1rank": g("hold_bigdata_peak_rss_kb_np1") * 1024,
                         "peak_rss_bytes_per_rank_2ranks": g("hold_bigdata_peak_rss_kb_np2") * 1024,
                         "rss_2_over_1": g("hold_bigdata_peak_rss_kb_np2") / g("hold_bigdata_peak_rss_kb_np1"),
                         "target_rss_2_over_1": "<= 0.6",
                         "rss_1rank_over_raw": g("hold_bigdata_peak_rss_kb_np1") * 1024 / (100 * 1000 * 500 * 8),
                         "target_rss_over_raw": "<= 1.3"},
            "results_io": {"bins": g("hold_io_bins"), "bytes": io[0]["bytes"], "sequential_MBps": io[0]["sequential_MBps"],
                           "parallel_MBps_1rank": io[0]["parallel_MBps"], "parallel_MBps_2ranks": io[1]["parallel_MBps"],
                           "ratio_1rank": io[0]["ratio"], "ratio_2ranks": io[1]["ratio"], "target": ">= 0.5"}}

    res["diagnostics"] = {
        "kernel_step_s_paper_size": kern.get("step_s"),
        "kernel_step_note": "one model step at N=20, K=6 (3+3), M=128, thread CPU time, minimum over blocks "
                            "(tests/tool_bench_kernels): the compute floor of a step"}
    with open(out_path + ".tmp", "w") as f:
        json.dump(finite(res), f, indent=1, allow_nan=False)
    os.replace(out_path + ".tmp", out_path)
    print_table(res)
    print(f"JSON: {out_path}")


def load_text(p):
    ld = p["load_1min_during"]
    return (f"cpu/wall {fmt(p['cpu_over_wall'], '.2f')}, load {p['loadavg_before']} -> {p['loadavg_after']}, "
            f"1-min load during: mean {fmt(ld['mean'], '.1f')} max {fmt(ld['max'], '.1f')}")


def print_table(res):
    m = res["machine"]
    label = {"full": "full figures", "quick": "QUICK (figure 1 at 500 epochs; not the headline figure 1)",
             "smoke": "SMOKE (token sizes: checks the harness, the numbers measure nothing)"}.get(res["mode"], res["mode"])
    print(f"{m['facrnn_version']} on {m['cpu']}, {m['cores']} cores, OpenBLAS core {m['blas_core']}; mode: {label}")
    print(f"machine load (1, 5, 15 min): start {m['loadavg_start']}, end {m['loadavg_end']}; 1-min load over the run: "
          f"mean {fmt(m['load_1min_mean'], '.1f')}, max {fmt(m['load_1min_max'], '.1f')} on {m['cores']} cores")
    ps, tm = res["per_step"], res["time_to_model"]
    f1, r1, f2, rf = ps["facrnn"], ps["reference"], tm["facrnn"], tm["reference_40k"]
    r2 = tm["heldout_group_latent_r2"]
    rows = [
        (f"1. per step, whole process: fit, {f1['restarts']} restart, {f1['epochs']} epochs = {f1['steps']} steps",
         f"{f1['wall_s']:.1f} s = {f1['whole_process_steps_per_s']:.0f} steps/s",
         f"loop {r1['loop_s']:.1f} s = {r1['loop_steps_per_s']:.0f} steps/s",
         f"{ps['ratio']:.2f}x", ps["target"]),
        (f"2. time to a fitted model: default fit ({f2['restarts']} restarts x {f2['epochs']} epochs = {f2['steps']} "
         f"steps) vs {rf['steps']}-step loop",
         f"{f2['wall_s']:.1f} s", f"{rf['seconds']:.1f} s ({rf['kind']})",
         f"{tm['speedup']:.2f}x faster", tm["target"]),
        (f"2. held-out group latent R2, lorenz-thomas seed(s) {','.join(map(str, r2['seeds']))}",
         " / ".join(f"{v:.3f}" for v in r2["per_seed"].values()) + f" (mean {r2['mean']:.3f})", "-", "-",
         ">= 0.93 mean over seeds 0-2" + ("" if len(r2["seeds"]) == 3 else " (run with --r2)")),
    ]
    sw = res.get("sweep")
    if sw:
        fs, rs = sw["facrnn"], sw["reference_per_fit"]
        sel = sw["selection"]
        rows.append((f"3. paper-size sweep, 2 ranks: {fs['runs_fitted']} runs fitted ({sw['grid_fits']} in the grid)"
                     + (f", {fs['settings_changed']}" if fs["settings_changed"] else ""),
                     f"{fs['wall_s']:.0f} s", f"{sw['grid_fits']} x {rs['seconds']:.1f} s = {sw['reference_total_s']:.0f} s",
                     f"{sw['speedup']:.2f}x faster", sw["target"]))
        rows.append(("3. sweep selection", f"K = {sel.get('selected_K')}, {sel.get('selected_groups')}, "
                     f"beta {fmt(sel.get('selected_beta'), 'g')}", "-",
                     "right" if sw["selects_truth"] else "WRONG", "K = 6, 3+3"))
    else:
        rows.append(("3. paper-size sweep", "not run (--sweep)", "-", "-", f">= {TARGETS['sweep_speedup']:g}x"))
    print("| figure | facrnn (whole process) | PyTorch reference (one core) | facrnn vs reference | target |")
    print("|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(f"reference for figure 2 (and the sweep): {rf['how']}")
    print(f"reference whole process for figure 1 (Python start, import torch, data setup, loop): {r1['wall_s']:.1f} s "
          f"= {r1['whole_process_steps_per_s']:.0f} steps/s")
    print("load while timed (cpu/wall < 1 means the process waited for a core):")
    procs = [("figure 1 fit", f1), ("figure 1 reference", r1), ("figure 2 fit", f2)]
    procs += [(f"R2 fit seed {s}", v) for s, v in tm["other_seed_fits"].items()]
    if sw:
        procs.append(("sweep (2 ranks)", sw["facrnn"]))
    for name, p in procs:
        print(f"  {name}: {p['wall_s']:.1f} s, {load_text(p)}")
    print("phases (from facrnn's `phases:` line):")
    for name, p in [("figure 1 fit", f1), ("figure 2 fit", f2)] + \
            [(f"R2 fit seed {s}", v) for s, v in tm["other_seed_fits"].items()] + \
            ([("sweep, summed", sw["facrnn"])] if sw else []):
        print(f"  {name}: {phases_text(p['phases'])}")
    print(f"diagnostic, training steps alone (trainer's own timer: no start-up, initialisation, evaluation, "
          f"checkpoints or output): facrnn {fmt(f1['diagnostic_training_steps_only_steps_per_s'], '.0f')} steps/s "
          f"(figure-1 fit) vs reference loop {r1['loop_steps_per_s']:.0f} steps/s = "
          f"{fmt(ps['diagnostic_training_steps_only_ratio'], '.1f')}x; default fit "
          f"{fmt(f2['diagnostic_training_steps_only_steps_per_s'], '.0f')} steps/s")
    pc = ps["diagnostic_whole_process_steps_per_cpu_s"]
    print(f"diagnostic, figure 1 per CPU second instead of wall (whole processes; less sensitive to other load): "
          f"facrnn {fmt(pc['facrnn'], '.0f')} vs reference {fmt(pc['reference'], '.0f')} steps per CPU s = "
          f"{fmt(pc['ratio'], '.1f')}x")
    ks = res["diagnostics"]["kernel_step_s_paper_size"]
    print(f"diagnostic, compute floor of one step at paper size (thread CPU, tool_bench_kernels): "
          f"{fmt(ks * 1e6 if ks else None, '.0f')} us")
    h = res.get("hold")
    if h:
        i, l, b, o = h["imaging"], h["large_batch"], h["big_data"], h["results_io"]
        print("hold (training steps alone or kernels, as before):")
        print(f"  imaging scale steps/s facrnn / PyTorch: {fmt(i['facrnn_steps_per_s'], '.1f')} / "
              f"{i['reference_steps_per_s']:.1f} = {fmt(i['ratio'], '.1f')}x (>= 3x); step vs DGEMM "
              f"{100 * i['step_vs_dgemm']:.0f}% (>= 50%)")
        print(f"  large batch step time 2 / 1 rank: {fmt(l['time_ratio_2_over_1'], '.2f')} (<= 0.55)")
        print(f"  big data: epoch {fmt(b['epoch_s_1rank'], '.2f')} / {fmt(b['epoch_s_2ranks'], '.2f')} s (1 / 2 ranks); "
              f"peak RSS per rank 2 / 1 rank {b['rss_2_over_1']:.2f} (<= 0.6); 1 rank / raw {b['rss_1rank_over_raw']:.2f} (<= 1.3)")
        print(f"  results I/O parallel HDF5 vs sequential: {100 * o['ratio_1rank']:.0f}% / {100 * o['ratio_2ranks']:.0f}% "
              f"(1 / 2 ranks, >= 50%)")
    if res["harness_wall_s"]:
        print(f"harness wall time: {res['harness_wall_s']:.0f} s")


if __name__ == "__main__":
    try:
        main(sys.argv)
    except (ReportError, OSError, KeyError, ValueError, json.JSONDecodeError) as e:
        sys.exit(f"report.py: {type(e).__name__}: {e}")
