"""Plot optimisers beside their continuous-time limits on one objective.

    python scripts/optimizer_limits.py --out optimizer_limits.png [--lr 0.05] [--steps 60]

Left: gradient descent and its gradient flow; middle: heavy ball and the damped oscillator
ẍ + γẋ + ∇f = 0; right: the error between each pair against time. The objective is
f(x) = Σ log cosh(x_i − 1) + ¼ (x₁ x₂)² (smooth, non-quadratic). The maths lives in
``mathml.sde.optimizer_limits``.
"""

from __future__ import annotations

import argparse

import torch


def _grad(x: torch.Tensor) -> torch.Tensor:
    g = torch.tanh(x - 1.0)
    cross = 0.5 * x[:, 0] * x[:, 1]
    return g + torch.stack([cross * x[:, 1], cross * x[:, 0]], dim=1)


def main(argv: list[str] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mathml.sde.optimizer_limits import side_by_side

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="optimizer_limits.png")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--momentum", type=float, default=0.8)
    args = parser.parse_args(argv)
    if args.lr <= 0 or args.steps < 1 or not 0 < args.momentum < 1:
        parser.error("need lr > 0, steps >= 1 and 0 < momentum < 1")
    x0 = torch.tensor([[2.0, -1.5]], dtype=torch.float64)
    gd = side_by_side(_grad, x0, lr=args.lr, n_steps=args.steps)
    hb = side_by_side(_grad, x0, lr=args.lr, n_steps=args.steps, momentum=args.momentum)
    fig, ax = plt.subplots(1, 3, figsize=(13, 4))
    for a, res, title in ((ax[0], gd, "gradient descent vs gradient flow"), (ax[1], hb, "heavy ball vs damped ODE")):
        a.plot(res["continuous"][:, 0, 0], res["continuous"][:, 0, 1], "-", label="continuous limit")
        a.plot(res["discrete"][:, 0, 0], res["discrete"][:, 0, 1], "o", ms=3, label="optimiser iterates")
        a.set_title(title)
        a.legend()
    ax[2].semilogy(gd["t"][1:], gd["error"][1:], label=f"GD, h = {args.lr}")
    ax[2].semilogy(hb["t"][1:], hb["error"][1:], label=f"heavy ball, h = √η = {args.lr ** 0.5:.3g}")
    ax[2].set_xlabel("t")
    ax[2].set_title("distance to the limit")
    ax[2].legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
