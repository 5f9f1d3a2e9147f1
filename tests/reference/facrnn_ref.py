#!/usr/bin/python3
"""facrnn_ref: an independent PyTorch (float64) implementation of the FacRNN
model of docs/model.md, used as the oracle for the C model core and as the speed baseline.

It is written from docs/model.md alone, not from the C code, and keeps the
C parameter layout (model.h) so flat parameter and gradient vectors can be
compared entry by entry:

    [A (N,K) | B (K,N) | c (N) | d (K) | s (N) if gaussian | E (N,D) if D > 0
     | psi logits (L) if psi is learned]                      row-major

Choices the published method leaves open, matched to the C contract:
  * Poisson rate floor: lambda = max(lambda, 1e-8) (FR_POISSON_RATE_FLOOR).
    Where the floor is active lambda is a constant, so its gradient is 0.
  * softplus is the exact log(1 + e^eta), computed stably as
    max(eta, 0) + log1p(exp(-|eta|)) (torch's softplus switches to the
    identity above eta = 20, an approximation we do not want in an oracle).
  * Loss terms are reported as SUMS over the minibatch rows (fr_terms):
    nll = sum_i NLL_i, kl = sum_i KL_i, pc = sum_i [ln q(z_i) - sum_g ln q(z_ig)];
    loss = (nll + kl) / M + beta * pc / M.
"""
import math
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np
import torch

POISSON_RATE_FLOOR = 1e-8
LN_2PI = math.log(2.0 * math.pi)

# Integer codes, the same as the enums in model.h.
OBS = {"gaussian": 0, "poisson": 1}
LINK = {"softplus": 0, "exp": 1}
NONLIN = {"tanh": 0, "identity": 1}


@dataclass
class Spec:
    N: int
    groups: List[int]            # (G) group sizes, sum = K
    D: int = 0                   # input dimension, 0 = no inputs
    L: int = 1                   # history lags
    obs: str = "gaussian"        # gaussian | poisson
    link: str = "softplus"       # Poisson link: softplus | exp
    nonlin: str = "tanh"         # tanh | identity
    psi_learned: bool = False    # psi = softmax(logits) when True
    psi: Optional[List[float]] = None  # (L) fixed kernel; default uniform
    encoder_std: float = 0.0     # > 0 override; <= 0 -> n_train^(-1/(K+4))
    beta: float = 0.0            # PC weight
    n_train: int = 1000          # global number of training samples
    extra: dict = field(default_factory=dict)

    @property
    def K(self):
        return int(sum(self.groups))

    @property
    def G(self):
        return len(self.groups)

    def fixed_psi(self):
        if self.psi is None:
            return [1.0 / self.L] * self.L
        return list(self.psi)


def s_enc(spec):
    """Fixed encoder std: the override, or n_train^(-1/(K+4))."""
    if spec.encoder_std > 0:
        return float(spec.encoder_std)
    return float(spec.n_train) ** (-1.0 / (spec.K + 4))


def layout(spec):
    """Ordered list of (name, offset, shape) of the flat buffer, and its length."""
    N, K, D, L = spec.N, spec.K, spec.D, spec.L
    parts = [("A", (N, K)), ("B", (K, N)), ("c", (N,)), ("d", (K,))]
    if spec.obs == "gaussian":
        parts.append(("s", (N,)))
    if D > 0:
        parts.append(("E", (N, D)))
    if spec.psi_learned:
        parts.append(("psi", (L,)))
    out, off = [], 0
    for name, shape in parts:
        out.append((name, off, shape))
        off += int(np.prod(shape))
    return out, off


def n_params(spec):
    return layout(spec)[1]


def views(spec, flat):
    """Named views (reshapes, autograd-transparent) into a flat tensor."""
    lay, n = layout(spec)
    assert flat.shape == (n,), (flat.shape, n)
    return {name: flat[off:off + int(np.prod(shape))].reshape(shape) for name, off, shape in lay}


def effective_psi(spec, v):
    """(L) history kernel: softmax of the learned logits, or the fixed one."""
    if spec.psi_learned:
        return torch.softmax(v["psi"], dim=0)
    return torch.tensor(spec.fixed_psi(), dtype=torch.float64)


def sigma(spec, x):
    """The nonlinearity applied to past activity."""
    if spec.nonlin == "tanh":
        return torch.tanh(x)
    if spec.nonlin == "identity":
        return x
    raise ValueError("unknown nonlinearity %r" % spec.nonlin)


def softplus_exact(eta):
    return torch.clamp(eta, min=0.0) + torch.log1p(torch.exp(-torch.abs(eta)))


def nll_rows(spec, v, x, eta):
    """(M) per-row negative log-likelihood of x (M, N) under eta (M, N)."""
    if spec.obs == "gaussian":
        s = v["s"]
        r = x - eta
        return (0.5 * LN_2PI + s + 0.5 * r * r * torch.exp(-2.0 * s)).sum(dim=1)
    if spec.obs == "poisson":
        if spec.link == "softplus":
            lam = softplus_exact(eta)
        elif spec.link == "exp":
            lam = torch.exp(eta)
        else:
            raise ValueError("unknown link %r" % spec.link)
        lam = torch.clamp(lam, min=POISSON_RATE_FLOOR)
        return (lam - x * torch.log(lam) + torch.lgamma(x + 1.0)).sum(dim=1)
    raise ValueError("unknown observation model %r" % spec.obs)


def pc_rows(groups, mu, z, s, n_train):
    """(M) per-row minibatch PC estimator of docs/model.md.

    mu, z (M, K); groups (G) sizes; s the encoder std; n = n_train.
    ln w_ii = 0, ln w_ij = ln((n-1)/(M-1)) for j != i, and -ln n after the LSE.
    """
    M, K = mu.shape
    diff = z[:, None, :] - mu[None, :, :]                            # (M, M, K)
    lp = -0.5 * LN_2PI - math.log(s) - 0.5 * diff * diff / (s * s)  # (M, M, K)
    if M > 1:
        lw_off = math.log((n_train - 1.0) / (M - 1.0))
    else:
        lw_off = 0.0  # no off-diagonal entries exist
    lw = torch.full((M, M), lw_off, dtype=mu.dtype)
    lw.fill_diagonal_(0.0)
    ln_n = math.log(n_train)
    joint = torch.logsumexp(lp.sum(dim=2) + lw, dim=1) - ln_n       # (M)
    marg = torch.zeros_like(joint)
    off = 0
    for h in groups:
        lg = lp[:, :, off:off + h].sum(dim=2)                        # (M, M)
        marg = marg + (torch.logsumexp(lg + lw, dim=1) - ln_n)
        off += h
    assert off == K
    return joint - marg


def forward(spec, flat, x, sx, u, eps):
    """Loss terms for one minibatch (autograd-ready).

    flat (P); x (M, N); sx (M, L, N) = sigma(x_{t-l}) for l = 1..L (already
    transformed); u (M, D) or None; eps (M, K).
    Returns a dict of 0-d tensors: nll, kl, pc (sums over rows) and loss.
    """
    v = views(spec, flat)
    M = x.shape[0]
    s = s_enc(spec)
    psi = effective_psi(spec, v)                                     # (L)
    h = torch.einsum("l,mln->mn", psi, sx)                           # (M, N)
    mu = h @ v["B"].T + v["d"]                                       # (M, K)
    z = mu + s * eps                                                 # (M, K)
    eta = z @ v["A"].T + v["c"]                                      # (M, N)
    if spec.D > 0:
        eta = eta + u @ v["E"].T
    nll = nll_rows(spec, v, x, eta).sum()
    kl = 0.5 * (mu * mu + s * s - 1.0 - 2.0 * math.log(s)).sum()
    if spec.G > 1:
        pc = pc_rows(spec.groups, mu, z, s, spec.n_train).sum()
    else:
        pc = torch.zeros((), dtype=torch.float64)
    loss = (nll + kl) / M + spec.beta * pc / M
    return {"nll": nll, "kl": kl, "pc": pc, "loss": loss, "mu": mu, "z": z}


def history(spec, xs):
    """sx (M, L, N) from raw windows xs (M, L+1, N): sx[:, l-1] = sigma(xs[:, L-l])."""
    L = spec.L
    return torch.stack([sigma(spec, xs[:, L - l]) for l in range(1, L + 1)], dim=1)


def _t(a):
    return None if a is None else torch.as_tensor(np.asarray(a, dtype=np.float64))


def loss_and_grad(spec, flat, x, sx, u, eps):
    """numpy in, numpy out: (terms dict of floats, flat gradient (P))."""
    p = torch.tensor(np.asarray(flat, dtype=np.float64), requires_grad=True)
    out = forward(spec, p, _t(x), _t(sx), _t(u), _t(eps))
    out["loss"].backward()
    terms = {k: float(out[k].detach()) for k in ("nll", "kl", "pc", "loss")}
    return terms, p.grad.detach().numpy().copy()


def init_params(spec, gen):
    """Default initialisation (like a default linear layer; docs/model.md):
    A, c ~ U(+-1/sqrt(K)); B, d ~ U(+-1/sqrt(N)); s = -1; E ~ U(+-1/sqrt(D));
    psi logits 0 (uniform kernel). gen: a torch.Generator."""
    lay, n = layout(spec)
    flat = torch.zeros(n, dtype=torch.float64)
    bound = {"A": 1 / math.sqrt(spec.K), "c": 1 / math.sqrt(spec.K),
             "B": 1 / math.sqrt(spec.N), "d": 1 / math.sqrt(spec.N),
             "E": 1 / math.sqrt(max(spec.D, 1))}
    for name, off, shape in lay:
        size = int(np.prod(shape))
        if name in bound:
            r = torch.rand(size, generator=gen, dtype=torch.float64)
            flat[off:off + size] = (2 * r - 1) * bound[name]
        elif name == "s":
            flat[off:off + size] = -1.0
    return flat
