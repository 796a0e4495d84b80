"""The figures of a toy Amodal-DepthFM's model card: its training curve and its mode coverage.

Usage::

    python scripts/toy_depthfm_card.py RUN_FOLDER [--model FOLDER] [--png FILE]

``RUN_FOLDER`` is the ``--output`` of ``python -m amodal train --data bend ...``: its
``log.csv`` becomes a loss-against-step plot, and its ``model/`` (or ``--model``) is scored
on the 48 held-out scenes of :func:`amodal.toy_occlusion.held_out_seeds`, 8 samples each,
unaligned and aligned, at 4 and 16 Euler steps (:func:`amodal.toy_occlusion.mode_coverage`).
It prints a table of the numbers that ``checkpoints/*/MODEL_CARD.md`` quotes.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch


def plot_curve(run: Path, png: Path) -> None:
    """The run's loss against step (:func:`amodal.training.curves.plot_run`), on a log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from amodal.training.curves import plot_run

    fig, ax = plt.subplots(figsize=(6, 3.5))
    plot_run(run, ax=ax, window=100)
    ax.set_yscale("log")
    ax.set_ylabel("flow-matching MSE on M_a (latent)")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    print(f"wrote {png}")


def main() -> None:
    from amodal.models.depthfm import AmodalDepthFM
    from amodal.toy_occlusion import held_out_seeds, mode_coverage

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the training run's --output folder")
    parser.add_argument("--model", type=Path, help="the model folder (default RUN/model)")
    parser.add_argument("--png", type=Path, help="where the curve goes (default RUN/training_curve.png)")
    args = parser.parse_args()
    plot_curve(args.run, args.png or args.run / "training_curve.png")
    model = AmodalDepthFM.from_pretrained(args.model or args.run / "model").eval()
    seeds = held_out_seeds(48)
    print("| samples | Euler steps | scenes with both shapes | away | towards | hidden RMSE, nearer shape | mean shape |")
    print("|---|---|---|---|---|---|---|")
    for align in (False, True):
        for steps in (4, 16):
            c = mode_coverage(model, seeds, n=8, steps=steps, align=align, batch=48)
            print(f"| {'aligned' if align else 'as sampled'} | {steps} | {c.both_modes:.3f} | {c.mode_fractions[0]:.3f} "
                  f"| {c.mode_fractions[1]:.3f} | {c.rmse_nearer:.4f} | {c.rmse_mean_shape:.4f} |")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
