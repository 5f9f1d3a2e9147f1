#!/usr/bin/python3
"""make_case: write one model equivalence case as HDF5, with the PyTorch
reference's loss terms and flat gradient under /ref.

Case file layout (read by tests/tool_model_case.c, which adds /c and /c_ref):
  root attributes (all scalars unless noted)
    N, K, D, L, G (int32); groups (int32, (G)); obs, link, nonlin (int32,
    the enum codes of model.h: gaussian 0 / poisson 1, softplus 0 / exp 1,
    tanh 0 / identity 1); psi_learned (int32); psi (float64, (L), the fixed
    kernel, ignored when learned); encoder_std (float64, <= 0 = auto);
    beta (float64); n_train (int64); M (int32); description (string)
  /params  (P)        flat parameters in the model layout
  /x       (M, N)     x_t rows
  /sx      (M, L, N)  sigma(x_{t-l}), l = 1..L
  /u       (M, D)     inputs (only when D > 0)
  /eps     (M, K)     standard normal noise
  /ref/terms (3)      [nll sum, kl sum, pc sum]
  /ref/loss  (1)
  /ref/grad  (P)

Usage: make_case.py OUT.h5 [--obs poisson --link exp --groups 3,2,1 ...]
"""
import argparse
import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import facrnn_ref as ref  # noqa: E402


def random_case(spec, M, seed):
    """Random but well-scaled parameters and a minibatch for `spec`.
    Returns (flat (P), x (M, N), sx (M, L, N), u (M, D) or None, eps (M, K))."""
    rng = np.random.default_rng(seed)
    N, K, D, L = spec.N, spec.K, spec.D, spec.L
    parts = []
    for name, _off, shape in ref.layout(spec)[0]:
        size = int(np.prod(shape))
        if name in ("A", "B"):
            parts.append(rng.uniform(-0.8, 0.8, size))
        elif name in ("c", "d"):
            parts.append(rng.uniform(-0.3, 0.3, size))
        elif name == "s":
            parts.append(-1.0 + rng.uniform(-0.3, 0.3, size))
        elif name == "E":
            parts.append(rng.uniform(-0.5, 0.5, size))
        elif name == "psi":
            parts.append(rng.normal(0.0, 1.0, size))
        else:
            raise AssertionError(name)
    flat = np.concatenate(parts)
    # One window of L+1 consecutive bins per sample: history then target.
    if spec.obs == "poisson":
        xs = rng.poisson(1.5, size=(M, L + 1, N)).astype(np.float64)
    else:
        xs = rng.normal(0.0, 1.0, size=(M, L + 1, N))
    x = xs[:, L, :].copy()
    sx = ref.history(spec, torch.as_tensor(xs)).numpy().copy()
    u = rng.normal(0.0, 1.0, size=(M, D)) if D > 0 else None
    eps = rng.normal(0.0, 1.0, size=(M, K))
    return flat, x, sx, u, eps


def write_case(path, spec, M, seed):
    """Build a case, evaluate the reference and write everything to `path`.
    Returns (terms dict, grad (P))."""
    flat, x, sx, u, eps = random_case(spec, M, seed)
    terms, grad = ref.loss_and_grad(spec, flat, x, sx, u, eps)
    with h5py.File(path, "w") as f:
        a = f.attrs
        for key in ("N", "K", "D", "L", "G"):
            a[key] = np.int32(getattr(spec, key))
        a["groups"] = np.asarray(spec.groups, dtype=np.int32)
        a["obs"] = np.int32(ref.OBS[spec.obs])
        a["link"] = np.int32(ref.LINK[spec.link])
        a["nonlin"] = np.int32(ref.NONLIN[spec.nonlin])
        a["psi_learned"] = np.int32(1 if spec.psi_learned else 0)
        a["psi"] = np.asarray(spec.fixed_psi(), dtype=np.float64)
        a["encoder_std"] = np.float64(spec.encoder_std)
        a["beta"] = np.float64(spec.beta)
        a["n_train"] = np.int64(spec.n_train)
        a["M"] = np.int32(M)
        a["description"] = "facrnn model equivalence case (seed %d)" % seed
        f["params"] = flat
        f["x"] = x
        f["sx"] = sx
        if u is not None:
            f["u"] = u
        f["eps"] = eps
        g = f.create_group("ref")
        g["terms"] = np.array([terms["nll"], terms["kl"], terms["pc"]])
        g["loss"] = np.array([terms["loss"]])
        g["grad"] = grad
    return terms, grad


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--N", type=int, default=7)
    p.add_argument("--groups", default="3,3")
    p.add_argument("--D", type=int, default=0)
    p.add_argument("--L", type=int, default=1)
    p.add_argument("--obs", default="gaussian", choices=sorted(ref.OBS))
    p.add_argument("--link", default="softplus", choices=sorted(ref.LINK))
    p.add_argument("--nonlin", default="tanh", choices=sorted(ref.NONLIN))
    p.add_argument("--psi-learned", action="store_true")
    p.add_argument("--encoder-std", type=float, default=0.0)
    p.add_argument("--beta", type=float, default=20.0)
    p.add_argument("--n-train", type=int, default=1000)
    p.add_argument("--M", type=int, default=16)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    spec = ref.Spec(N=a.N, groups=[int(g) for g in a.groups.split(",")], D=a.D, L=a.L, obs=a.obs,
                    link=a.link, nonlin=a.nonlin, psi_learned=a.psi_learned,
                    encoder_std=a.encoder_std, beta=a.beta, n_train=a.n_train)
    terms, _ = write_case(a.out, spec, a.M, a.seed)
    print(terms)


if __name__ == "__main__":
    main()
