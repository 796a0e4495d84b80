"""The figures of a toy Amodal-DepthFM's model card: its training curve and its mode coverage.

Usage::

    python scripts/toy_depthfm_card.py RUN_FOLDER [--model FOLDER] [--png FILE]

``RUN_FOLDER`` is the ``--output`` of ``python -m amodal train --data bend ...``: its
``log.csv`` becomes a loss-against-step plot, and its ``model/`` (or ``--model``) is scored
on the held-out scenes of :func:`amodal.scenes.toy_occlusion.held_out_seeds` (48, or ``--scenes``),
8 samples each, as sampled, shift-aligned and least-squares aligned, at 4, 8 and 16 Euler
steps (:func:`amodal.scenes.toy_occlusion.mode_coverage`), for each ``--sample-seeds``.
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
    from amodal.scenes.toy_occlusion import held_out_seeds, mode_coverage

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the training run's --output folder")
    parser.add_argument("--model", type=Path, help="the model folder (default RUN/model)")
    parser.add_argument("--png", type=Path, help="where the curve goes (default RUN/training_curve.png)")
    parser.add_argument("--scenes", type=int, default=48, help="held-out scenes (default 48)")
    parser.add_argument("--sample-seeds", type=int, nargs="+", default=[0], help="seeds of the samples' noise (default 0)")
    args = parser.parse_args()
    plot_curve(args.run, args.png or args.run / "training_curve.png")
    model = AmodalDepthFM.from_pretrained(args.model or args.run / "model").eval()
    seeds = held_out_seeds(args.scenes)
    names = {False: "as sampled", "shift": "shift-aligned", True: "least-squares aligned"}
    print("| samples | Euler steps | noise seed | scenes with both shapes | away | towards "
          "| hidden RMSE, nearer shape | mean shape | ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for align in names:
        for steps in (4, 8, 16):
            for sample_seed in args.sample_seeds:
                c = mode_coverage(model, seeds, n=8, steps=steps, align=align, batch=48, sample_seed=sample_seed)
                print(f"| {names[align]} | {steps} | {sample_seed} | {c.both_modes:.3f} | {c.mode_fractions[0]:.3f} "
                      f"| {c.mode_fractions[1]:.3f} | {c.rmse_nearer:.4f} | {c.rmse_mean_shape:.4f} "
                      f"| {c.rmse_nearer / c.rmse_mean_shape:.3f} |", flush=True)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
