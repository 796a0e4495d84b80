"""``python -m amodal export-onnx``: an Amodal-DAV2 checkpoint written as an ONNX graph.

The graph (:mod:`amodal.models.onnx_model`) takes ``image`` (B, 3, H, W) RGB in [0, 1],
``amodal_mask`` and ``observed_depth`` (or, for a ``fill_residual`` network such as
``checkpoints/amodal-dav2-tiny-synth``, ``filled_depth``) and gives ``depth``; batch,
height and width are free, the sides multiples of 14. ``predict`` runs such a file with
onnxruntime (``--model model.onnx``). After writing, the command runs the file once
beside the torch model on a random input at the network's own size and prints the largest
difference (``--no-check`` skips it).
"""
from __future__ import annotations

import argparse

import torch

from amodal.cli.arguments import onnx_file, weights
from amodal.models.amodal_dav2 import AmodalDAV2
from amodal.models.onnx_model import OnnxAmodalDAV2, export_onnx

EXPORT_EXAMPLES = """\
examples:
  python -m amodal export-onnx --model zhyever/Amodal-Depth-Anything-DAV2 --output amodal-dav2-l.onnx
  python -m amodal export-onnx --model checkpoints/amodal-dav2-tiny-synth --output tiny.onnx
  python -m amodal predict photo.jpg --mask photo_mask.png --model amodal-dav2-l.onnx --observed-depth d_o.npy --output out/

Needs the optional extra: pip install 'amodal[onnx]'. A network over 2 GB (ViT-G) gets its
weights in OUTPUT.data beside OUTPUT; keep the two together.
"""
AGREEMENT = 1e-3  # onnxruntime and torch agree to ~1e-6; more than this is a broken export


def add_export_onnx_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, type=weights,
                        help="an Amodal-DAV2: model.safetensors, a saved folder, the released checkpoint or its hub id "
                        "(zhyever/Amodal-Depth-Anything-DAV2)")
    parser.add_argument("--output", required=True, type=onnx_file, help="the .onnx file to write")
    parser.add_argument("--exact", action="store_true",
                        help="trace the official step-by-step attention instead of fused attention (SDPA)")
    parser.add_argument("--no-check", action="store_true",
                        help="skip running the file beside the torch model after writing it")


def run_export_onnx(args: argparse.Namespace) -> int:
    model = AmodalDAV2.from_pretrained(args.model, exact=args.exact)
    export_onnx(model, args.output)
    exported = OnnxAmodalDAV2(args.output)
    print(f"wrote {args.output} ({model.size_name}; inputs {', '.join(exported.input_names)}; batch, height and "
          "width free, sides multiples of 14)")
    if args.no_check:
        return 0
    gap, size = check_export(model, exported)
    print(f"checked at {size}×{size}: max |onnxruntime − torch| = {gap:.1e}")
    if gap > AGREEMENT:
        raise RuntimeError(f"{args.output} differs from the torch model by {gap:.1e} (more than {AGREEMENT:g})")
    return 0


def check_export(model: AmodalDAV2, exported: OnnxAmodalDAV2, seed: int = 0) -> tuple[float, int]:
    """Largest difference of the two on one random input at the network's size, and that size.

    The input is an image, a rectangle as ``M_a``, its lower half as ``M_vis`` and a random ``D_o``.
    """
    size = model.config.img_size
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(1, 3, size, size, generator=generator)
    observed_depth = torch.rand(1, 1, size, size, generator=generator)
    amodal_mask = torch.zeros(1, 1, size, size)
    amodal_mask[..., size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 1
    visible_mask = amodal_mask.clone()
    visible_mask[..., : size // 2, :] = 0
    with torch.no_grad():
        expected = model(image, amodal_mask, observed_depth, visible_mask)
    got = exported(image, amodal_mask, observed_depth, visible_mask)
    return (got.double() - expected.double()).abs().max().item(), size
