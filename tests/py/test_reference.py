"""The C model core against the independent PyTorch reference
(tests/reference/facrnn_ref.py), plus checks of the reference on its own.

Equivalence: for each case make_case.py writes parameters, a minibatch and
the reference's loss terms and flat gradient; tool_model_case evaluates the
same case with fr_model_loss_grad (and fr_model_loss_grad_ref); every term
and EVERY gradient entry must agree within 1e-10 relative (1e-12 absolute
for entries near zero).

Needs torch (Debian python3-torch); the module is skipped only when torch is
not importable. FACRNN_BUILD must point at the build tree (ctest sets it).
"""
import itertools
import math
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch (python3-torch) is not installed")
h5py = pytest.importorskip("h5py")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import facrnn_ref as ref  # noqa: E402
import make_case  # noqa: E402

RTOL = 1e-10
ATOL = 1e-12


def tool_path():
    build = os.environ.get("FACRNN_BUILD")
    assert build, "FACRNN_BUILD is not set (run through ctest, or export it)"
    path = os.path.join(build, "tests", "tool_model_case")
    assert os.path.isfile(path) and os.access(path, os.X_OK), "missing %s: build the project first" % path
    return path


def assert_agree(name, got, want, where=str):
    """Every entry within RTOL relative or ATOL absolute; report the worst
    (relative to its tolerance), its index named by where(index)."""
    got = np.atleast_1d(np.asarray(got, dtype=np.float64))
    want = np.atleast_1d(np.asarray(want, dtype=np.float64))
    assert got.shape == want.shape, "%s: shape %s vs %s" % (name, got.shape, want.shape)
    assert np.all(np.isfinite(got)), "%s: non-finite entries at %s" % (name, np.where(~np.isfinite(got))[0])
    err = np.abs(got - want)
    tol = np.maximum(RTOL * np.maximum(np.abs(got), np.abs(want)), ATOL)
    bad = np.where(err > tol)[0]
    if bad.size:
        i = bad[np.argmax(err[bad] / tol[bad])]
        raise AssertionError("%s: %d of %d entries disagree; worst at %s: C %.17g vs torch %.17g "
                             "(abs err %.3g)" % (name, bad.size, got.size, where(int(i)), got[i], want[i], err[i]))


def param_name(spec, idx):
    """Which parameter block a flat index belongs to (for failure messages)."""
    for name, off, shape in ref.layout(spec)[0]:
        if off <= idx < off + int(np.prod(shape)):
            return "%s[%s]" % (name, ",".join(map(str, np.unravel_index(idx - off, shape))))
    return "?"


# ---- the case grid ----------------------------------------------------------
OBS_LINKS = [("gaussian", "softplus"), ("poisson", "softplus"), ("poisson", "exp")]
GROUPS = [[3, 3], [3, 2, 1]]
NONLINS = ["tanh", "identity"]
BETAS = [0.0, 20.0]

CASES = []
for (obs, link), groups, nonlin, beta in itertools.product(OBS_LINKS, GROUPS, NONLINS, BETAS):
    CASES.append(dict(obs=obs, link=link, groups=groups, nonlin=nonlin, beta=beta, L=2, psi_learned=True, D=2))
# Beyond the grid: fixed kernels, no inputs, one lag, the plain lrRNN (G = 1),
# singleton groups (G = K, total correlation) and an explicit encoder std.
CASES += [
    dict(obs="gaussian", link="softplus", groups=[3, 3], nonlin="tanh", beta=20.0, L=1, psi_learned=False, D=0),
    dict(obs="poisson", link="softplus", groups=[3, 2, 1], nonlin="tanh", beta=20.0, L=2, psi_learned=False,
         psi=[0.7, 0.3], D=0),
    dict(obs="gaussian", link="softplus", groups=[6], nonlin="tanh", beta=20.0, L=2, psi_learned=True, D=2),
    dict(obs="poisson", link="exp", groups=[1] * 6, nonlin="identity", beta=2.0, L=2, psi_learned=True, D=2),
    dict(obs="gaussian", link="softplus", groups=[3, 3], nonlin="tanh", beta=20.0, L=2, psi_learned=True, D=2,
         encoder_std=0.3),
]


def case_id(c):
    return "%s-%s-%s-%s-b%g-L%d%s-D%d%s" % (c["obs"], c["link"], "+".join(map(str, c["groups"])), c["nonlin"],
                                           c["beta"], c["L"], "l" if c["psi_learned"] else "f", c["D"],
                                           "-s%g" % c["encoder_std"] if "encoder_std" in c else "")


def spec_of(c, N=7):
    return ref.Spec(N=N, groups=list(c["groups"]), D=c["D"], L=c["L"], obs=c["obs"], link=c["link"],
                    nonlin=c["nonlin"], psi_learned=c["psi_learned"], psi=c.get("psi"),
                    encoder_std=c.get("encoder_std", 0.0), beta=c["beta"], n_train=1000)


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_c_matches_reference(case, tmp_path):
    spec = spec_of(case)
    path = str(tmp_path / "case.h5")
    make_case.write_case(path, spec, M=16, seed=1234 + CASES.index(case))
    proc = subprocess.run([tool_path(), path], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, "tool_model_case failed (%d): %s%s" % (proc.returncode, proc.stdout, proc.stderr)
    with h5py.File(path, "r") as f:
        want_terms, want_loss, want_grad = f["ref/terms"][()], f["ref/loss"][()], f["ref/grad"][()]
        assert np.all(np.isfinite(want_grad)) and np.any(want_grad != 0)
        for grp in ("c", "c_ref"):
            assert_agree(grp + "/terms [nll, kl, pc]", f[grp + "/terms"][()], want_terms)
            assert_agree(grp + "/loss", f[grp + "/loss"][()], want_loss)
            assert_agree(grp + "/grad", f[grp + "/grad"][()], want_grad, where=lambda i: param_name(spec, i))


# ---- the reference on its own ------------------------------------------------
def _small_case(obs, link="softplus", beta=20.0):
    spec = ref.Spec(N=3, groups=[2, 1], D=1, L=2, obs=obs, link=link, nonlin="tanh", psi_learned=True,
                    beta=beta, n_train=50)
    flat, x, sx, u, eps = make_case.random_case(spec, M=5, seed=7)
    return spec, flat, x, sx, u, eps


@pytest.mark.parametrize("obs,link", [("gaussian", "softplus"), ("poisson", "softplus"), ("poisson", "exp")])
def test_reference_grad_vs_finite_differences(obs, link):
    spec, flat, x, sx, u, eps = _small_case(obs, link)
    terms, grad = ref.loss_and_grad(spec, flat, x, sx, u, eps)
    assert terms["pc"] != 0.0

    def f(p):
        return ref.loss_and_grad(spec, p, x, sx, u, eps)[0]["loss"]

    h = 1e-5
    fd = np.empty_like(flat)
    for i in range(flat.size):
        e = np.zeros_like(flat)
        e[i] = h
        fd[i] = (f(flat + e) - f(flat - e)) / (2 * h)
    err = np.abs(fd - grad)
    assert np.all(err <= 1e-6 * np.maximum(1.0, np.abs(grad))), \
        "max |fd - autograd| = %.3g at %s" % (err.max(), param_name(spec, int(np.argmax(err))))


def test_reference_pc_zero_for_one_group():
    gen = torch.Generator().manual_seed(3)
    mu = torch.randn(9, 4, generator=gen, dtype=torch.float64)
    z = mu + 0.4 * torch.randn(9, 4, generator=gen, dtype=torch.float64)
    assert torch.all(ref.pc_rows([4], mu, z, 0.4, 100) == 0)
    # ... while two groups of the same latents give a nonzero estimate.
    assert torch.abs(ref.pc_rows([2, 2], mu, z, 0.4, 100)).sum() > 1e-3
    # Through the whole loss: G = 1 reports pc = 0 and beta has no effect.
    spec, flat, x, sx, u, eps = _small_case("gaussian")
    spec1 = ref.Spec(**{**spec.__dict__, "groups": [3], "beta": 0.0})
    spec2 = ref.Spec(**{**spec.__dict__, "groups": [3], "beta": 20.0})
    t1, g1 = ref.loss_and_grad(spec1, flat, x, sx, u, eps)
    t2, g2 = ref.loss_and_grad(spec2, flat, x, sx, u, eps)
    assert t1["pc"] == 0.0 and t2["pc"] == 0.0
    assert t1["loss"] == t2["loss"] and np.array_equal(g1, g2)


def test_reference_pc_matches_scalar_loops():
    """The vectorised estimator against the formulas of docs/model.md written as loops."""
    rng = np.random.default_rng(5)
    M, groups, s, n = 4, [2, 1], 0.6, 37
    K = sum(groups)
    mu = rng.normal(size=(M, K))
    z = mu + s * rng.normal(size=(M, K))

    def lnN(a, m):
        return -0.5 * math.log(2 * math.pi) - math.log(s) - 0.5 * (a - m) ** 2 / s ** 2

    def lse(v):
        top = max(v)
        return top + math.log(sum(math.exp(t - top) for t in v))

    def lnw(i, j):
        return 0.0 if i == j else math.log((n - 1) / (M - 1))

    want = []
    for i in range(M):
        joint = lse([sum(lnN(z[i, k], mu[j, k]) for k in range(K)) + lnw(i, j) for j in range(M)]) - math.log(n)
        marg, off = 0.0, 0
        for h in groups:
            marg += lse([sum(lnN(z[i, k], mu[j, k]) for k in range(off, off + h)) + lnw(i, j)
                         for j in range(M)]) - math.log(n)
            off += h
        want.append(joint - marg)
    got = ref.pc_rows(groups, torch.as_tensor(mu), torch.as_tensor(z), s, n).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)


def test_reference_terms_by_hand():
    """KL, encoder std and the Gaussian NLL of one row against direct formulas."""
    spec = ref.Spec(N=2, groups=[1, 1], D=0, L=1, obs="gaussian", nonlin="identity", beta=0.0, n_train=81)
    s = ref.s_enc(spec)
    assert s == pytest.approx(81 ** (-1 / 6), rel=1e-15)
    flat = np.array([1.0, 0.5, -0.5, 2.0,   # A (2,2)
                     0.3, -0.2, 0.1, 0.4,   # B (2,2)
                     0.1, -0.1,             # c
                     0.2, 0.0,              # d
                     -1.0, -0.5])           # s
    assert flat.size == ref.n_params(spec)
    x = np.array([[0.7, -1.2]])
    sx = np.array([[[0.5, -0.25]]])
    eps = np.array([[0.3, -1.1]])
    t, _ = ref.loss_and_grad(spec, flat, x, sx, None, eps)
    A, B = flat[:4].reshape(2, 2), flat[4:8].reshape(2, 2)
    mu = B @ sx[0, 0] + flat[10:12]
    zz = mu + s * eps[0]
    eta = A @ zz + flat[8:10]
    ls = flat[12:14]
    nll = np.sum(0.5 * math.log(2 * math.pi) + ls + 0.5 * (x[0] - eta) ** 2 * np.exp(-2 * ls))
    kl = 0.5 * np.sum(mu ** 2 + s ** 2 - 1 - 2 * math.log(s))
    assert t["nll"] == pytest.approx(nll, rel=1e-14)
    assert t["kl"] == pytest.approx(kl, rel=1e-14)
    assert t["loss"] == pytest.approx(nll + kl, rel=1e-14)
