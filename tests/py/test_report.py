"""postprocess/report.py and compare.py on results files built here with
h5py in the layout of docs/formats.md (and, when FACRNN_BIN can fit, on a
real one): every expected figure is a valid PNG, the numbers in index.html
equal the HDF5 values, every image loads in headless Chromium, and
non-facrnn inputs fail with a one-line message and exit status 2.
"""
import html.parser
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")
pytest.importorskip("matplotlib")
pytest.importorskip("scipy")

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("FACRNN_SRC", os.path.normpath(os.path.join(HERE, "..", "..")))
POST = os.path.join(SRC, "postprocess")
sys.path.insert(0, POST)
import facrnn_results as fr  # noqa: E402

PY = "/usr/bin/python3"
PNG_SIG = b"\x89PNG\r\n\x1a\n"

# ---------------------------------------------------------------------------
# fixture files


def write_data(path, n_trials=12, T=25, N=12, n_cond=3, seed=0):
    """Input file: two independent 2-D rotating latent groups, linear readout
    to N channels, 2-D behaviour = a linear map of group 1. Returns truth."""
    rng = np.random.default_rng(seed)
    cond = np.arange(n_trials) % n_cond
    lat = []
    for k in range(n_trials):
        t = np.arange(T) * 0.3
        ph = 2 * np.pi * cond[k] / n_cond
        g1 = np.c_[np.cos(t + ph), np.sin(t + ph)] * (1 + 0.1 * rng.standard_normal())
        g2 = np.c_[np.cos(0.37 * t + 1.0), np.sin(0.37 * t + 1.0)] * (0.5 + 0.2 * cond[k]) + 0.05 * rng.standard_normal((T, 2))
        lat.append(np.c_[g1, g2])
    lat = np.vstack(lat)
    A = rng.standard_normal((N, 4))
    x = lat @ A.T + 0.1 * rng.standard_normal((lat.shape[0], N))
    beh = lat[:, :2] @ np.array([[1.0, 0.5], [-0.3, 2.0]]) + 0.05 * rng.standard_normal((lat.shape[0], 2))
    with h5py.File(path, "w") as f:
        f["data"] = x
        f["trial_offsets"] = np.arange(n_trials + 1, dtype=np.int64) * T
        f["trial_condition"] = cond.astype(np.int32)
        f["behavior"] = beh
        f["truth/latents"] = lat
        f["truth/latents"].attrs["groups"] = np.array([2, 2], dtype=np.int32)
        f["truth/A"] = A
        f.attrs["bin_size_s"] = 0.02
        f.attrs["observation"] = "gaussian"
        f.attrs["format_version"] = 1
        f.attrs["description"] = "test fixture"
    return {"latents": lat, "x": x, "offsets": np.arange(n_trials + 1) * T, "N": N}


def write_run(g, rid, K, sizes, truth, seed, fold, rng, heldout_nll, n_folds=2):
    lat_true, offsets, N = truth["latents"], truth["offsets"], truth["N"]
    n_trials = len(offsets) - 1
    # fitted latents: an invertible mix of the true latents (padded/cut to K) + noise
    Z = lat_true[:, :K] if K <= 4 else np.c_[lat_true, rng.standard_normal((lat_true.shape[0], K - 4))]
    if Z.shape[1] < K:
        Z = np.c_[Z, np.zeros((Z.shape[0], K - Z.shape[1]))]
    Z = Z @ (np.eye(K) + 0.2 * rng.standard_normal((K, K))) + 0.05 * rng.standard_normal(Z.shape)
    Z[offsets[:-1]] = np.nan  # L = 1 context bin per trial
    r = g.create_group("runs/" + rid)
    p = r.create_group("params")
    p["A"] = rng.standard_normal((N, K))
    p["B"] = rng.standard_normal((K, N)) / np.sqrt(N)
    p["c"] = rng.standard_normal(N)
    p["d"] = rng.standard_normal(K)
    p["s"] = -np.ones(N)
    p["psi"] = np.ones(1)
    # [A | B | c | d | s | psi logits], docs/formats.md
    p["flat"] = np.concatenate([p["A"][()].ravel(), p["B"][()].ravel(), p["c"][()], p["d"][()], p["s"][()], [0.0]])
    r["latents"] = Z
    split = np.ones(n_trials, np.uint8)
    split[fold::n_folds] = 0
    r["split"] = split
    E = 30
    ep = np.arange(1, E + 1, dtype=float)
    h = r.create_group("history")
    h["epoch"] = ep
    h["nll"] = 20 * np.exp(-ep / 8) + heldout_nll
    h["kl"] = 2 + 0.5 * np.exp(-ep / 5)
    h["pc"] = 0.5 * np.exp(-ep / 10) + 0.05
    h["loss"] = h["nll"][()] + h["kl"][()] + 20 * h["pc"][()]
    hn = np.full(E, np.nan)
    hn[4::5] = 21 * np.exp(-ep[4::5] / 8) + heldout_nll + 0.1
    h["heldout_nll"] = hn
    r["pca_eigenvalues"] = np.sort(rng.exponential(1.0, N))[::-1] * np.r_[10, 8, 5, 4, np.ones(N - 4)]
    m = r.create_group("metrics")
    for pre in ("train", "heldout"):
        for name in ("nll_per_bin", "r2", "bits_per_spike", "pc", "tc", "group_latent_r2", "component_latent_r2", "behavior_r2", "n_samples"):
            m.attrs[pre + "_" + name] = float(rng.uniform(0.1, 0.9))
    m.attrs["heldout_nll_per_bin"] = heldout_nll
    m.attrs["objective"] = float(heldout_nll + 1)
    m.attrs["K"] = K
    m.attrs["groups"] = "+".join(map(str, sizes))
    m.attrs["beta"] = 20.0
    m.attrs["seed"] = seed
    m.attrs["fold"] = fold
    m.attrs["status"] = "done"
    m.attrs["epochs_done"] = E
    m.attrs["seconds"] = 1.5
    c = r.create_group("connectivity")
    c["J"] = p["B"][()] @ p["A"][()]
    e = np.cumsum([0] + list(sizes))
    for gi in range(len(sizes)):
        Wg = p["A"][()][:, e[gi]:e[gi + 1]] @ p["B"][()][e[gi]:e[gi + 1], :]
        c["sv_%d" % gi] = np.linalg.svd(Wg, compute_uv=False)[: sizes[gi]]
        if gi == 0:
            c["W_%d" % gi] = Wg  # stored for one group only: the other is computed
    return {"run_id": rid, "K": K, "groups": "+".join(map(str, sizes)), "heldout_nll": heldout_nll,
            "heldout_pc": float(m.attrs["heldout_pc"]), "seed": seed, "fold": fold}


CONFIGS = [(2, [2]), (2, [1, 1]), (4, [4]), (4, [2, 2])]


def write_results(path, data_path, truth, table="compound", sweep=True, seed=1):
    rng = np.random.default_rng(seed)
    rows = []
    with h5py.File(path, "w") as f:
        f.attrs["format_version"] = 1
        f.attrs["version"] = "0.1.0"
        f.attrs["git_revision"] = "abc1234"
        f.attrs["n_ranks"] = 3
        f.attrs["config"] = "model:\n  rank: 4\n  groups: [2, 2]\n"
        f.attrs["input_path"] = data_path
        f.attrs["input_checksum"] = "00ff00ff00ff00ff"
        f.attrs["program"] = "facrnn"
        configs = CONFIGS if sweep else [(4, [2, 2])]
        for K, sizes in configs:
            for fold in (0, 1):
                base = {2: 3.0, 4: 2.0}[K] + (0.0 if len(sizes) == 2 and K == 4 else 0.3 * len(sizes))
                nll = base + 0.05 * rng.standard_normal()
                rid = "K%d_g%s_b20_s0_f%d" % (K, "+".join(map(str, sizes)), fold)
                rows.append(write_run(f, rid, K, sizes, truth, 0, fold, rng, nll))
        if sweep:
            if table == "compound":
                dt = np.dtype([("run_id", h5py.string_dtype()), ("K", np.int32), ("groups", h5py.string_dtype()),
                               ("beta", np.float64), ("seed", np.int32), ("fold", np.int32), ("status", h5py.string_dtype()),
                               ("heldout_nll_per_bin", np.float64), ("heldout_pc", np.float64), ("epochs_done", np.int32),
                               ("seconds", np.float64)])
                arr = np.array([(r["run_id"], r["K"], r["groups"], 20.0, r["seed"], r["fold"], "done", r["heldout_nll"],
                                 r["heldout_pc"], 30, 1.5) for r in rows], dtype=dt)
                f["sweep/table"] = arr
            else:
                t = f.create_group("sweep/table")
                t["run_id"] = np.array([r["run_id"] for r in rows], dtype=h5py.string_dtype())
                t["K"] = np.array([r["K"] for r in rows])
                t["groups"] = np.array([r["groups"] for r in rows], dtype=h5py.string_dtype())
                t["heldout_nll_per_bin"] = np.array([r["heldout_nll"] for r in rows])
                t["heldout_pc"] = np.array([r["heldout_pc"] for r in rows])
                t["status"] = np.array(["done"] * len(rows), dtype=h5py.string_dtype())
            s = f.create_group("sweep/selection")
            sel = [r["heldout_nll"] for r in rows if r["K"] == 4 and r["groups"] == "2+2"]
            s.attrs["score"] = float(np.mean(sel))
            s.attrs["score_se"] = float(np.std(sel, ddof=1) / np.sqrt(len(sel)))
            if table == "compound":  # as facrnn sweep writes it
                s.attrs["rule"] = "smallest K within 1 SE, then the supported partition with the most groups"
                s.attrs["selected_K"] = 4
                s.attrs["selected_groups"] = "2+2"
                s.attrs["selected_beta"] = 20.0
                s.attrs["se_rule"] = 1.0
                s.attrs["min_independence"] = 0.5
                s.attrs["max_coupling"] = 0.2
                s.attrs["why"] = "K = 4 (best K 4); partition 2+2 (beta 20) is the supported partition with the most groups"
                s.attrs["confidence"] = "K=4 2+2 chosen by 2 of 2 fold x seed fits alone and in 200 of 200 resamples of the 2 folds"
                rk = s.create_group("ranked")
                cfg = [(K, "+".join(map(str, g))) for K, g in CONFIGS]
                nll = [np.array([r["heldout_nll"] for r in rows if (r["K"], r["groups"]) == c]) for c in cfg]
                rk["K"] = np.array([c[0] for c in cfg], dtype=np.int32)
                rk["groups"] = np.array([c[1] for c in cfg], dtype=h5py.string_dtype())
                rk["beta"] = np.full(len(cfg), 20.0)
                rk["n_runs"] = np.array([v.size for v in nll], dtype=np.int32)
                rk["n_folds"] = np.array([v.size for v in nll], dtype=np.int32)
                rk["nll_mean"] = np.array([v.mean() for v in nll])
                rk["nll_se"] = np.array([v.std(ddof=1) / np.sqrt(v.size) for v in nll])
                multi = np.array([c[1].count("+") > 0 for c in cfg])
                rk["independence_mean"] = np.where(multi, [0.6, 0.9, 0.0, 0.8][:len(cfg)], np.nan)
                rk["independence_se"] = np.where(multi, 0.05, np.nan)
                rk["coupling_mean"] = np.where(multi, [0.5, 0.4, 0.0, 0.05][:len(cfg)], np.nan)
                rk["coupling_se"] = np.where(multi, 0.02, np.nan)
                rk["supported"] = np.array([c == (4, "2+2") for c in cfg], dtype=np.int32)
                rk["selected"] = np.array([c == (4, "2+2") for c in cfg], dtype=np.int32)
            else:  # an older, terser selection: K and groups only
                s.attrs["rule"] = "lowest mean held-out NLL per bin"
                s.attrs["K"] = 4
                s.attrs["groups"] = "2+2"
    return rows


# ---------------------------------------------------------------------------
# helpers


def run_tool(script, *args):
    return subprocess.run([PY, os.path.join(POST, script), *args], capture_output=True, text=True, timeout=300)


def assert_png(path):
    assert os.path.isfile(path), "missing figure %s" % path
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == PNG_SIG, "%s is not a PNG (signature %r)" % (path, head[:8])
    assert head[12:16] == b"IHDR"
    w, h = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    assert w >= 200 and h >= 150, "%s is suspiciously small (%dx%d)" % (path, w, h)
    assert os.path.getsize(path) > 5000, "%s is nearly empty (%d bytes)" % (path, os.path.getsize(path))


class Cells(html.parser.HTMLParser):
    """data-key -> (data-value or None, text) for every cell in index.html."""

    def __init__(self):
        super().__init__()
        self.cells, self.imgs, self._cur = {}, [], None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a.get("src"))
        if "data-key" in a:
            self._cur = a["data-key"]
            self.cells[self._cur] = [a.get("data-value"), ""]

    def handle_data(self, data):
        if self._cur is not None:
            self.cells[self._cur][1] += data

    def handle_endtag(self, tag):
        if tag in ("td", "span"):
            self._cur = None


def parse_index(out):
    p = Cells()
    with open(os.path.join(out, "index.html"), encoding="utf-8") as f:
        p.feed(f.read())
    return p


def assert_value(cells, key, want):
    assert key in cells, "index.html has no cell %s" % key
    exact, text = cells[key]
    assert exact is not None, "cell %s carries no data-value" % key
    assert float(exact) == pytest.approx(float(want), rel=1e-12, abs=1e-300), "%s: data-value %s vs file %r" % (key, exact, want)
    assert float(text) == pytest.approx(float(want), rel=1e-5), "%s: printed %s vs file %r" % (key, text, want)


EXPECTED = ["answer_evidence.png", "training.png", "latents_trials.png", "latents_condavg.png", "latents_phase.png",
            "connectivity_groups.png", "connectivity_g1.png", "connectivity_g2.png", "participation.png",
            "observed_predicted.png", "J.png", "pca_variance.png", "sweep_configs.png", "alignment_r2.png",
            "behavior_decoding.png"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    data = str(d / "data.h5")
    truth = write_data(data)
    res = str(d / "sweep.h5")
    rows = write_results(res, data, truth, table="compound")
    out = str(d / "out")
    r = run_tool("report.py", res, "--out", out, "--run", "K4_g2+2_b20_s0_f0")
    assert r.returncode == 0, "report failed: %s %s" % (r.stdout, r.stderr)
    return {"dir": d, "data": data, "truth": truth, "res": res, "rows": rows, "out": out}


# ---------------------------------------------------------------------------
# tests


def test_loader_reads_everything(built):
    res = fr.load_results(built["res"])
    assert res["attrs"]["program"] == "facrnn" and res["attrs"]["n_ranks"] == 3
    assert len(res["runs"]) == 2 * len(CONFIGS)
    run = res["runs"]["K4_g2+2_b20_s0_f0"]
    assert run["params"]["A"].shape == (built["truth"]["N"], 4)
    assert run["latents"].shape == (built["truth"]["latents"].shape[0], 4)
    assert np.isnan(run["latents"][0]).all() and np.isfinite(run["latents"][1]).all()
    assert fr.run_groups(run) == [2, 2]
    assert set(run["history"]) >= {"epoch", "loss", "nll", "kl", "pc", "heldout_nll"}
    assert run["metrics"]["status"] == "done"
    table = res["sweep"]["table"]
    assert list(table["run_id"]) == [r["run_id"] for r in built["rows"]]
    assert fr.selected_config(res) == {"K": 4, "groups": "2+2", "beta": 20.0}
    data = fr.load_data(built["data"])
    assert data["truth"]["groups"] == [2, 2] and data["attrs"]["bin_size_s"] == 0.02


def test_sub_connectivity_matches_definition():
    rng = np.random.default_rng(3)
    A, B = rng.standard_normal((7, 5)), rng.standard_normal((5, 7))
    Ws = fr.sub_connectivity({"A": A, "B": B}, [3, 2])
    ref = [sum(np.outer(A[:, k], B[k, :]) for k in ks) for ks in ([0, 1, 2], [3, 4])]
    for W, R in zip(Ws, ref):
        np.testing.assert_allclose(W, R, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sum(Ws), A @ B, rtol=1e-12, atol=1e-12)


def test_group_alignment_recovers_permuted_groups():
    rng = np.random.default_rng(4)
    T = rng.standard_normal((500, 5))
    # fitted groups: (true group 2 mixed, size 3) then (true group 1 mixed, size 2)
    Z = np.c_[T[:, 2:] @ rng.standard_normal((3, 3)) + 1.0, T[:, :2] @ rng.standard_normal((2, 2))]
    Z[::50] = np.nan
    R, matches, score = fr.group_alignment(Z, T, [3, 2], [2, 3])
    assert sorted(matches) == [(0, 1), (1, 0)]
    assert score == pytest.approx(1.0, abs=1e-10)
    assert R[0, 0] < 0.2 and R[1, 1] < 0.2  # independent groups explain nothing


def test_behavior_decoding_fit_on_train_scored_on_heldout():
    rng = np.random.default_rng(5)
    off = np.arange(11) * 20
    Z = rng.standard_normal((200, 3))
    Y = Z @ rng.standard_normal((3, 2)) + 0.5
    Y[off[-2]:] += 100.0  # the last trial is held out and its behaviour is shifted
    split = np.ones(10, np.uint8)
    split[-1] = 0
    dec = fr.behavior_decoding(Z, Y, off, split)
    assert dec["y_true"].shape == (20, 2) and dec["scored_on"] == "held-out trials"
    assert np.all(dec["r2"] < 0)  # the shift is not learnable from training trials
    dec = fr.behavior_decoding(Z, Y - 100.0 * (np.arange(200) >= off[-2])[:, None], off, split)
    assert dec["r2_mean"] == pytest.approx(1.0, abs=1e-10)


def test_every_figure_is_a_png(built):
    for name in EXPECTED:
        assert_png(os.path.join(built["out"], name))


def test_html_numbers_equal_file(built):
    cells = parse_index(built["out"]).cells
    with h5py.File(built["res"], "r") as f:
        m = f["runs/K4_g2+2_b20_s0_f0/metrics"].attrs
        for pre in ("train", "heldout"):
            for name in ("nll_per_bin", "r2", "pc", "group_latent_r2", "behavior_r2"):
                assert_value(cells, "%s_%s" % (pre, name), m["%s_%s" % (pre, name)])
        assert_value(cells, "attr:n_ranks", f.attrs["n_ranks"])
        assert cells["attr:git_revision"][1] == "abc1234"
        assert_value(cells, "selection:score", f["sweep/selection"].attrs["score"])
    for K, sizes in CONFIGS:
        g = "+".join(map(str, sizes))
        v = np.array([r["heldout_nll"] for r in built["rows"] if r["K"] == K and r["groups"] == g])
        key = "sweep:K%d:%s:b20" % (K, g)
        assert_value(cells, key + ":heldout_nll_per_bin", v.mean())
        assert_value(cells, key + ":heldout_nll_per_bin_se", v.std(ddof=1) / np.sqrt(v.size))
        assert_value(cells, key + ":n", v.size)
    # alignment: recompute from the files independently of the report
    with h5py.File(built["res"], "r") as f:
        Z = f["runs/K4_g2+2_b20_s0_f0/latents"][()]
    T = built["truth"]["latents"]
    ok = np.isfinite(Z).all(1)
    for a, (ta, tb) in enumerate([(0, 2), (2, 4)]):
        for b, (fa, fb) in enumerate([(0, 2), (2, 4)]):
            X1 = np.c_[Z[ok, fa:fb], np.ones(ok.sum())]
            Y = T[ok, ta:tb]
            res = Y - X1 @ np.linalg.lstsq(X1, Y, rcond=None)[0]
            r2 = np.mean(1 - (res ** 2).sum(0) / ((Y - Y.mean(0)) ** 2).sum(0))
            assert_value(cells, "align:%d:%d" % (a, b), r2)


def test_report_table_as_group_of_columns(tmp_path, built):
    res = str(tmp_path / "sweep_cols.h5")
    rows = write_results(res, built["data"], built["truth"], table="columns", seed=2)
    out = str(tmp_path / "out")
    r = run_tool("report.py", res, "--out", out)
    assert r.returncode == 0, r.stderr
    cells = parse_index(out).cells
    v = np.array([x["heldout_nll"] for x in rows if x["K"] == 4 and x["groups"] == "2+2"])
    assert_value(cells, "sweep:K4:2+2:b20:heldout_nll_per_bin", v.mean())
    assert_png(os.path.join(out, "sweep_configs.png"))
    # no --run: the selected configuration's best fold is shown
    best = min((x for x in rows if x["K"] == 4 and x["groups"] == "2+2"), key=lambda x: x["heldout_nll"])
    assert "run <code>%s</code>" % best["run_id"] in open(os.path.join(out, "index.html"), encoding="utf-8").read()


def test_report_without_data_file(tmp_path, built):
    """input_path missing: trials are inferred from the NaN context bins,
    data-dependent figures are skipped, and the report still succeeds."""
    res = str(tmp_path / "single.h5")
    write_results(res, str(tmp_path / "gone.h5"), built["truth"], sweep=False)
    out = str(tmp_path / "out")
    r = run_tool("report.py", res, "--out", out)
    assert r.returncode == 0, r.stderr
    for name in ("training.png", "latents_trials.png", "connectivity_g1.png", "J.png"):
        assert_png(os.path.join(out, name))
    assert not os.path.exists(os.path.join(out, "alignment_r2.png"))
    assert "time axes in bins" in open(os.path.join(out, "index.html"), encoding="utf-8").read()


def test_rejects_non_facrnn_files(tmp_path, built):
    other = str(tmp_path / "other.h5")
    with h5py.File(other, "w") as f:
        f["x"] = np.zeros(3)
    text = str(tmp_path / "notes.txt")
    with open(text, "w") as f:
        f.write("hello\n")
    for path, needle in ((other, "not a facrnn results file"), (text, "not an HDF5 file"),
                         (built["data"], "input data file, not a results file"), (str(tmp_path / "nope.h5"), "no such file")):
        r = run_tool("report.py", path, "--out", str(tmp_path / "o"))
        assert r.returncode == 2, "%s: exit %d" % (path, r.returncode)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], "%s: stderr %r" % (path, r.stderr)
        with pytest.raises(ValueError, match=needle):
            fr.load_results(path)
    r = run_tool("report.py", built["res"], "--out", str(tmp_path / "o"), "--run", "K9_nope")
    assert r.returncode == 2 and "no such run" in r.stderr


def test_rollouts_psth(tmp_path, built):
    roll = str(tmp_path / "roll.h5")
    shutil.copy(built["data"], roll)
    with h5py.File(roll, "r+") as f:
        x = f["data"][()]
        del f["data"]
        f["data"] = x + 0.3
    out = str(tmp_path / "out")
    r = run_tool("report.py", built["res"], "--out", out, "--rollouts", roll)
    assert r.returncode == 0, r.stderr
    assert_png(os.path.join(out, "rollouts_psth.png"))


def test_compare(tmp_path, built):
    single = str(tmp_path / "single.h5")
    rows = write_results(single, built["data"], built["truth"], sweep=False, seed=7)
    best = min(rows, key=lambda x: x["heldout_nll"])  # shown when no run id is given
    out = str(tmp_path / "cmp")
    r = run_tool("compare.py", built["res"] + ":K2_g2_b20_s0_f0", single, "--out", out)
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("compare_metrics.png", "compare_connectivity.png", "compare_alignment.png"):
        assert_png(os.path.join(out, name))
    cells = parse_index(out).cells
    with h5py.File(single, "r") as f:
        assert_value(cells, "fit2:heldout_nll_per_bin", f["runs/%s/metrics" % best["run_id"]].attrs["heldout_nll_per_bin"])
    with h5py.File(built["res"], "r") as f:
        assert_value(cells, "fit1:heldout_r2", f["runs/K2_g2_b20_s0_f0/metrics"].attrs["heldout_r2"])
    md = open(os.path.join(out, "compare.md"), encoding="utf-8").read()
    assert md.count("\n|") >= 3
    r = run_tool("compare.py", built["data"], single, "--out", out)
    assert r.returncode == 2 and "not a results file" in r.stderr


def test_html_images_load_in_chromium(built):
    chrome = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chrome:
        pytest.skip("chromium is not installed (Debian package chromium): browser check not run")
    out = built["out"]
    # A copy of the page with a script that records, after load, whether every
    # image decoded; --dump-dom prints the DOM after scripts ran.
    src = open(os.path.join(out, "index.html"), encoding="utf-8").read()
    probe = ("<script>window.addEventListener('load',function(){var im=document.images,ok=0;"
             "for(var i=0;i<im.length;i++){var g=im[i].complete&&im[i].naturalWidth>0;"
             "im[i].setAttribute('data-loaded',g?'yes':'no');if(g)ok++;}"
             "document.body.setAttribute('data-images',im.length+'/'+ok);});</script></body>")
    check = os.path.join(out, "check.html")
    with open(check, "w", encoding="utf-8") as f:
        f.write(src.replace("</body>", probe))
    base = [chrome, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
            "--user-data-dir=%s" % (built["dir"] / "chrome-profile"), "--virtual-time-budget=5000"]
    r = subprocess.run(base + ["--dump-dom", "file://" + check], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    m = re.search(r'data-images="(\d+)/(\d+)"', r.stdout)
    assert m, "the probe script did not run: %s" % r.stdout[:500]
    total, ok = int(m.group(1)), int(m.group(2))
    assert total == len(EXPECTED) and ok == total, "%d of %d images loaded; broken: %s" % (
        ok, total, re.findall(r'src="([^"]+)"[^>]*data-loaded="no"', r.stdout))
    shot = os.path.join(out, "screenshot.png")
    r = subprocess.run(base + ["--screenshot=%s" % shot, "--window-size=1200,3000", "file://" + os.path.join(out, "index.html")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert_png(shot)


def test_real_fit_if_available(tmp_path):
    """A real `facrnn fit` and a real `facrnn sweep` (tiny settings): the
    report reads both, with the file's 0-based connectivity names mapped to
    1-based groups and the sweep's selection and provenance shown."""
    binp = os.environ.get("FACRNN_BIN")
    if not binp or not os.access(binp, os.X_OK):
        pytest.skip("FACRNN_BIN is unset or not built (%r): no real facrnn fit to report on" % binp)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OPENBLAS_NUM_THREADS="1")
    data = str(tmp_path / "lt.h5")
    r = subprocess.run([binp, "--quiet", "synth", "lorenz-thomas", "--out", data], capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0, "facrnn synth lorenz-thomas failed: %s" % r.stderr[-2000:]
    cfg = str(tmp_path / "fit.yaml")
    res = str(tmp_path / "fit.h5")
    with open(cfg, "w") as f:
        f.write("data:\n  path: %s\nmodel:\n  rank: 6\n  groups: [3, 3]\ntrain:\n  epochs: 20\n  restarts: 1\n"
                "cv:\n  folds: 3\noutput:\n  path: %s\n" % (data, res))
    r = subprocess.run([binp, "--quiet", "fit", cfg], capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, "facrnn fit failed: %s" % r.stderr[-2000:]
    out = str(tmp_path / "out")
    r = run_tool("report.py", res, "--out", out)
    assert r.returncode == 0, r.stderr
    for name in ("training.png", "latents_trials.png", "latents_phase.png", "connectivity_g1.png", "connectivity_g2.png",
                 "J.png", "alignment_r2.png"):
        assert_png(os.path.join(out, name))
    cells = parse_index(out).cells
    resd = fr.load_results(res)
    rid = fr.default_run(resd)
    m = resd["runs"][rid]["metrics"]
    assert_value(cells, "heldout_nll_per_bin", m["heldout_nll_per_bin"])
    assert_value(cells, "train_nll_per_bin", m["train_nll_per_bin"])
    page = open(os.path.join(out, "index.html"), encoding="utf-8").read()
    with h5py.File(res, "r") as f:
        conn = f["runs/%s/connectivity" % rid]
        assert "W_0" in conn and "W_1" in conn and "W_2" not in conn  # the file counts groups from 0
    assert "Group 1 sub-connectivity (stored as connectivity/W_0)" in page
    assert "Group 2 sub-connectivity (stored as connectivity/W_1)" in page

    # a two-configuration sweep, two folds
    scfg = str(tmp_path / "sweep.yaml")
    sres = str(tmp_path / "sweep.h5")
    with open(scfg, "w") as f:
        f.write("data:\n  path: %s\ntrain:\n  epochs: 5\n  restarts: 1\ncv:\n  folds: 2\n"
                "sweep:\n  ranks: [2]\n  partitions: [[2], [1, 1]]\n  betas: [20]\n  seeds: [0]\n"
                "output:\n  path: %s\n" % (data, sres))
    r = subprocess.run([binp, "--quiet", "sweep", scfg], capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, "facrnn sweep failed: %s" % r.stderr[-2000:]
    with h5py.File(sres, "r") as f, h5py.File(res, "r") as g:
        # provenance: the same input file, so the same checksum as the fit's
        assert f.attrs["input_checksum"] == g.attrs["input_checksum"], (f.attrs["input_checksum"], g.attrs["input_checksum"])
        sel = dict(f["sweep/selection"].attrs)
        nll = np.asarray(f["sweep/table/heldout_nll_per_bin"][()])
        groups = [x.decode() if isinstance(x, bytes) else x for x in f["sweep/table/groups"][()]]
    out = str(tmp_path / "sweep_out")
    r = run_tool("report.py", sres, "--out", out)
    assert r.returncode == 0, r.stderr
    for name in ("answer_evidence.png", "sweep_configs.png", "training.png"):
        assert_png(os.path.join(out, name))
    cells = parse_index(out).cells
    with h5py.File(res, "r") as g:
        want = g.attrs["input_checksum"]
    assert cells["attr:input_checksum"][1] == (want.decode() if isinstance(want, bytes) else want)
    assert_value(cells, "selection:score", sel["score"])
    assert_value(cells, "selection:selected_K", sel["selected_K"])
    for g in ("2", "1+1"):
        v = nll[[x == g for x in groups]]
        assert v.size == 2
        assert_value(cells, "sweep:K2:%s:b20:heldout_nll_per_bin" % g, v.mean())
    # the selection's evidence table: every number as stored
    with h5py.File(sres, "r") as f:
        rk = f["sweep/selection/ranked"]
        assert len(rk["K"]) == 2
        for i in range(2):
            for c in ("nll_mean", "independence_mean", "coupling_mean", "coupling_se", "n_folds", "selected"):
                v = float(rk[c][i])
                if np.isfinite(v):
                    assert_value(cells, "ranked:%d:%s" % (i, c), v)
        assert np.isfinite(rk["coupling_mean"][:]).sum() == 1  # the 1+1 row; one group has none
