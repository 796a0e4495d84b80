"""GPU readiness in one table: the released weights against the official code, a bf16 training run, notebook 04.

Run it once on a CUDA machine with the real weights (about 5 minutes on one H100; the budget is
10). Three stages, each a group of rows with a tolerance or budget and pass or fail:

1. **Parity with the released weights.** Depth Anything V2 (``depth_anything_v2_vitl.pth``) and
   the released Amodal-DAV2 (``model.safetensors``) go into the official networks, imported
   from your clones (``--dav2``, ``--official``; ``scripts/official_code.py``, shared with
   ``compare_official.py``), and into ours through our official-layout loaders. The input is a
   real photo of ``data_samples/`` (default the coffee cup) and the mask of one of its objects
   from its SA-1B JSON as the amodal mask. DAV2 sees the photo as the official ``infer_image``
   does (short side 518, aspect kept, sides multiples of 14: 518 × 784, so the position
   embedding is resampled); the official output, squashed to 518² and min-max normalised, is
   ``D_o`` for both amodal networks, which see everything squashed to 518² (as the official
   demo does). Each row is the largest difference from the official fp32 output, divided by
   the largest official value: ours in exact and fast mode in fp32 (TF32 off), and under bf16
   autocast ours (fast) and, as the yardstick of what bf16 does, the official network itself.
2. **Training.** 200 steps of the recipe ``amodal-dav2-s-paper`` (518², 4 micro-batches of 8 a
   step, bf16 autocast, fp32 weights and Adam), from ``--dav2-s-checkpoint`` if given, else
   random, on a pool of 64 synthetic scenes rendered once (6,400 fresh 518² scenes would take
   the CPU longer than the GPU takes to train on them). Samples/s from the run's ``log.csv``
   over the steps after the first tenth (rendering, cuDNN's autotuning); peak memory from
   ``torch.cuda.max_memory_allocated``, beside what ``benchmarks/memory.py`` computes for the
   same run (the method of the README's memory table, checked here).
3. **Notebook 04** through :func:`amodal.harness.run_notebooks.run_notebook` with
   ``DEVICE=cuda``: its quick profile, or its full one when ``--depthfm-checkpoint``, ``--vae``
   and ``--amodal-depthfm-checkpoint`` are all given; its wall time.

==========================  ==============================================================
row                         passes when
==========================  ==============================================================
parity, exact, fp32         relative gap ≤ 1e-5 (the same arithmetic as the official code)
parity, fast, fp32          ≤ 1e-4 (fused attention, channels-last convolutions)
parity, bf16 autocast       ≤ 3e-2, ours and the official network alike
training losses             every loss finite
training samples/s          ≥ 100 (200 × 32 samples in about a minute)
training peak memory        ≤ 1.25 × the computed figure
notebook 04                 it ran, within 90 s (quick) or 300 s (full)
the whole check             within 600 s
==========================  ==============================================================

Without a GPU the script says so in one line and exits 2. ``--device cpu --tiny`` runs every
stage at tiny sizes instead (the DAV2 input's short side 56; training 3 steps of 4 samples at
56² on 4 scenes; the notebook's quick profile on the CPU), with stand-in clones and weights
where no real ones are at hand; there only the parity tolerances and the losses are judged,
not speed, memory or time. The tests run that mode. Exit status: 0 when every row passes, 1
when one fails, 2 when the check cannot run.

    python scripts/gpu_check.py --dav2 ../Depth-Anything-V2 --official ../Amodal-Depth-Anything \\
        --dav2-checkpoint /weights/depth_anything_v2_vitl.pth \\
        --amodal-dav2-checkpoint /weights/Amodal-Depth-Anything-DAV2/model.safetensors \\
        --dav2-s-checkpoint /weights/depth_anything_v2_vits.pth
"""
from __future__ import annotations

import argparse
import csv
import gc
import math
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from amodal.adiw.sa1b import load_masks
from amodal.data.items import training_data
from amodal.harness.run_notebooks import run_notebook
from amodal.models import checkpoints
from amodal.models.amodal_dav2 import AmodalDAV2, DepthAnythingV2, image_to_tensor, keep_aspect_size
from amodal.training.logs import LOG_NAME
from amodal.training.loop import train
from amodal.training.recipes import get_recipe
from amodal.training.setup import build_model
from amodal.utils.images import read_image
from amodal.utils.paths import checkout_module, data_samples_dir, repo_root

official_code = checkout_module("scripts/official_code.py")
costs = checkout_module("benchmarks/costs.py")
memory = checkout_module("benchmarks/memory.py")

GiB = 2**30
TOLERANCE = {"exact": 1e-5, "fast": 1e-4, "bf16": 3e-2}  # largest |ours − official| / largest |official|
MIN_SAMPLES_PER_S = 100.0
MEMORY_SLACK = 1.25  # measured peak ≤ this × the computed figure
NOTEBOOK_SECONDS = {"quick": 90.0, "full": 300.0}
TOTAL_SECONDS = 600.0
NOTEBOOK = "04_amodal_depthfm"
RECIPE = "amodal-dav2-s-paper"


@dataclass(frozen=True)
class Sizes:
    """The sizes of one mode: the full check, or the tiny one that runs on a CPU."""

    short_side: int  # DAV2's input, aspect kept
    amodal_side: int  # Amodal-DAV2's input, squashed
    steps: int
    overrides: dict  # recipe fields beside max_steps
    judged: bool  # whether speed, memory and time are held to their budgets


FULL = Sizes(518, 518, 200, {"synth_pool": 64}, judged=True)
TINY = Sizes(56, 56, 3, {"synth_pool": 4, "input_size": 56, "batch_size": 4, "batch_per_device": 2}, judged=False)


@dataclass
class Row:
    check: str
    measured: str
    budget: str
    passed: bool


# ------------------------------------------------------------------------------ input


def sample_photo(name: str, object_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A photo of ``data_samples/images`` and the mask of one of its objects from its SA-1B JSON.

    Returns:
        ``image`` (1, 3, H, W) in [0, 1] and ``amodal_mask`` (1, 1, H, W) in {0, 1}.

    Raises:
        ValueError: no object of that id in the file (the ids are named).
    """
    image = image_to_tensor(read_image(data_samples_dir() / "images" / f"{name}.jpg"))
    annotations = data_samples_dir() / "sa1b" / f"{name}.json"
    _, masks = load_masks(annotations)
    chosen = [mask for annotation, mask in masks if annotation["id"] == object_id]
    if not chosen:
        raise ValueError(f"{annotations}: no object {object_id}; its ids: {[a['id'] for a, _ in masks]}")
    return image, torch.from_numpy(chosen[0]).float()[None, None]


# ----------------------------------------------------------------------------- parity


@contextmanager
def without_tf32():
    """Full fp32 matrix products and convolutions on CUDA for the fp32 rows."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def official_weights(path: Path, amodal: bool) -> tuple[dict, str]:
    """The state dict of an official file in the official network's names, and its encoder (``"vitl"``).

    The released Amodal-DAV2 file names its network ``encoder.*`` (``AmodalDAv2`` holds it as
    ``.encoder``); that prefix is dropped. The size is read from the tensors.

    Raises:
        ValueError: a file of the wrong kind or of no known size.
    """
    state, _ = checkpoints.read_checkpoint(path)
    if amodal:
        outside = [k for k in state if not k.startswith("encoder.")]
        if outside:
            raise ValueError(f"{path}: not the released Amodal-DAV2 layout (keys outside encoder.*: {outside[:4]})")
        state = {k[len("encoder."):]: v for k, v in state.items()}
    size = checkpoints.infer_shape(checkpoints.to_ours(dict(state), str(path)))["size"]
    if size is None:
        raise ValueError(f"{path}: {checkpoints.describe(state)} is no DAV2 ViT-S/B/L/G")
    return state, f"vit{size}"


def load_official(network: torch.nn.Module, state: dict, path: Path, device: str) -> torch.nn.Module:
    """``state`` into the official ``network``, strictly, on ``device``, in eval mode.

    Raises:
        ValueError: the file does not fit the official network (its error names the keys).
    """
    try:
        network.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(f"{path} does not load into the official network: {error}") from None
    return network.to(device).eval()


def parity_rows(name: str, official_fn, ours, inputs, device: str) -> list[Row]:
    """Rows of one network: ours exact and fast in fp32, then ours and the official one under bf16 autocast."""
    with torch.no_grad():
        with without_tf32():
            reference = official_fn()
            outputs = {}
            for mode in ("exact", "fast"):
                ours.set_exact(mode == "exact")
                outputs[f"ours {mode}, fp32"] = ours(*inputs)
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
            outputs["official, bf16 autocast"] = official_fn()
            outputs["ours fast, bf16 autocast"] = ours(*inputs)
    scale = max(reference.abs().max().item(), torch.finfo(torch.float32).tiny)  # an all-zero output is 0 apart
    rows = []
    for label, output in outputs.items():
        relative = official_code.max_gap(output.float(), reference) / scale
        limit = TOLERANCE["bf16" if "bf16" in label else label.split()[1].rstrip(",")]
        rows.append(Row(f"{name}: {label}", f"{relative:.1e}", f"≤ {limit:.0e} × max {scale:.3g}", relative <= limit))
    return rows


def check_parity(args, sizes: Sizes, device: str) -> tuple[list[Row], list[str]]:
    """Stage 1: DAV2 and Amodal-DAV2 with the given weights, ours against the official networks."""
    dav2_module = official_code.import_dav2_dpt("dav2", args.dav2)
    amodal_module = official_code.import_dav2_dpt("official", args.official)
    image, amodal_mask = sample_photo(args.photo, args.object)
    image, amodal_mask = image.to(device), amodal_mask.to(device)
    notes = [f"--{option}: {official_code.EXPECTED[option][1]} at {official_code.commit_of(getattr(args, option))}"
             for option in ("dav2", "official")]
    notes.append(f"input: data_samples/images/{args.photo}.jpg {image.shape[-1]}×{image.shape[-2]}, amodal mask: "
                 f"object {args.object} of data_samples/sa1b/{args.photo}.json ({int(amodal_mask.sum())} pixels)")

    rows, observed_depth = dav2_parity(dav2_module, args.dav2_checkpoint, image, sizes, device)
    _release()  # the networks of one comparison are gone before the next is built
    rows += amodal_parity(amodal_module, args.amodal_dav2_checkpoint, image, amodal_mask, observed_depth, sizes, device)
    _release()
    return rows, notes


def dav2_parity(module, path: Path, image: torch.Tensor, sizes: Sizes, device: str) -> tuple[list[Row], torch.Tensor]:
    """DAV2 rows, on the photo as ``infer_image`` resizes it; and ``D_o`` from the official fp32 output.

    Returns:
        the rows, and ``observed_depth`` (1, 1, S, S) in [0, 1] at the amodal network's side ``S``.
    """
    state, encoder = official_weights(path, amodal=False)
    official = load_official(official_code.official_dav2(module, encoder), state, path, device)
    ours = DepthAnythingV2.from_pretrained(path).to(device).eval()
    side = keep_aspect_size(*image.shape[-2:], sizes.short_side)
    photo = F.interpolate(image, side, mode="bicubic", align_corners=False).clamp(0, 1)
    normalised, = official_code.official_inputs(photo)
    label = f"DAV2 ViT-{encoder[-1].upper()} {side[1]}×{side[0]}"
    rows = parity_rows(label, lambda: official(normalised)[:, None].float(), ours, (photo,), device)
    with torch.no_grad(), without_tf32():
        disparity = F.interpolate(official(normalised)[:, None], (sizes.amodal_side,) * 2, mode="bilinear",
                                  align_corners=True)
    low, high = disparity.min(), disparity.max()
    if not high > low:
        raise ValueError(f"{path}: the official DAV2's depth of the photo is constant ({low.item():.3g}); "
                         "these are not working DAV2 weights")
    return rows, (disparity - low) / (high - low)


def amodal_parity(module, path: Path, image: torch.Tensor, amodal_mask: torch.Tensor, observed_depth: torch.Tensor,
                  sizes: Sizes, device: str) -> list[Row]:
    """Amodal-DAV2 rows, everything squashed to the network's square side as the official demo does."""
    state, encoder = official_weights(path, amodal=True)
    official = load_official(official_code.official_amodal_dav2(module, encoder), state, path, device)
    ours = AmodalDAV2.from_pretrained(path).to(device).eval()
    square = (sizes.amodal_side,) * 2
    photo = F.interpolate(image, square, mode="bicubic", align_corners=False).clamp(0, 1)
    mask = (F.interpolate(amodal_mask, square, mode="nearest") > 0.5).float()
    official_args = official_code.official_inputs(photo, mask, observed_depth)
    label = f"Amodal-DAV2 ViT-{encoder[-1].upper()} {square[1]}²"
    return parity_rows(label, lambda: official(*official_args).float(), ours, (photo, mask, observed_depth), device)


# --------------------------------------------------------------------------- training


def steady_samples_per_s(log_csv: Path, skip: int) -> float:
    """Samples per second over the steps after the first ``skip`` of a run's ``log.csv``.

    Each row holds ``samples_per_s = batch / seconds`` of its step; over several steps the
    rate is their samples over their seconds, the harmonic mean of the rows' rates.

    Raises:
        ValueError: no step after the first ``skip``.
    """
    with open(log_csv, newline="") as handle:
        rates = [float(row["samples_per_s"]) for row in csv.DictReader(handle) if int(row["step"]) > skip]
    if not rates:
        raise ValueError(f"{log_csv}: no step after the first {skip}")
    return len(rates) / sum(1 / rate for rate in rates)


def check_training(args, sizes: Sizes, device: str, output: Path) -> list[Row]:
    """Stage 2: the recipe's steps in bf16 on synthetic scenes; samples/s, peak memory and the computed figure."""
    recipe = get_recipe(RECIPE, max_steps=sizes.steps, **sizes.overrides)
    data = training_data("synth", recipe)
    init = str(args.dav2_s_checkpoint) if args.dav2_s_checkpoint else "none"
    module, objective, parameters = build_model(recipe, init)
    meter = costs.PeakMemory(device)
    result = train(module, objective, data, recipe, output, device=device, parameters=parameters, progress=False,
                   bf16=True)
    peak = meter.peak_mib() * 2**20
    del module, objective, parameters
    _release()
    computed = memory.recipe_memory(recipe, device).total(recipe.batch_per_device)
    _release()

    skip = max(1, sizes.steps // 10)
    rate = steady_samples_per_s(output / LOG_NAME, skip)
    start = "DAV2-S weights" if init != "none" else "random weights"
    name = f"train {recipe.name}, {result.step} steps of {recipe.batch_size} at {recipe.input_size}², bf16, {start}"
    finite = all(math.isfinite(loss) for loss in result.losses) and result.step == sizes.steps
    rows = [Row(f"{name}: losses", f"last {result.losses[-1]:.4f}" if result.losses else "none",
                f"{sizes.steps} steps, all finite", finite)]
    rows.append(Row(f"{name}: samples/s, steps {skip + 1}–{sizes.steps}", f"{rate:.1f}",
                    f"≥ {MIN_SAMPLES_PER_S:.0f}" if sizes.judged else "not judged here",
                    rate >= MIN_SAMPLES_PER_S or not sizes.judged))
    what = "max_memory_allocated" if meter.cuda else "peak RSS growth"
    rows.append(Row(f"{name}: peak memory ({what})", f"{peak / GiB:.2f} GiB (computed {computed / GiB:.2f})",
                    f"≤ {MEMORY_SLACK} × computed" if sizes.judged and meter.cuda else "not judged here",
                    peak <= MEMORY_SLACK * computed or not (sizes.judged and meter.cuda)))
    return rows


# --------------------------------------------------------------------------- notebook


def check_notebook(args, sizes: Sizes, device: str, output: Path) -> list[Row]:
    """Stage 3: notebook 04 on ``device``, quick profile, or full with the DepthFM weights."""
    parameters = {"DEVICE": device}
    profile = "full" if args.depthfm_checkpoint else "quick"
    if profile == "full":
        parameters.update(DEPTHFM_CHECKPOINT=str(args.depthfm_checkpoint), VAE=str(args.vae),
                          AMODAL_DEPTHFM_CHECKPOINT=str(args.amodal_depthfm_checkpoint))
    result = run_notebook(repo_root() / "notebooks" / f"{NOTEBOOK}.ipynb", profile, output, parameters)
    budget = NOTEBOOK_SECONDS[profile]
    within = result.seconds <= budget or not sizes.judged
    measured = f"{result.seconds:.1f} s" + ("" if result.ok else f", failed: {result.error}")
    limit = f"runs, ≤ {budget:.0f} s" if sizes.judged else "runs (time not judged here)"
    return [Row(f"notebook {NOTEBOOK} ({profile} profile, DEVICE={device}): wall time", measured, limit,
                result.ok and within)]


# ------------------------------------------------------------------------------ table


def machine_line(device: str) -> str:
    """The card (or CPU), its memory and the versions to quote with the table."""
    versions = f"torch {torch.__version__}"
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        cudnn = torch.backends.cudnn.version()
        return (f"{props.name}, {props.total_memory / GiB:.1f} GiB; {versions}, CUDA {torch.version.cuda}, "
                f"cuDNN {cudnn}")
    return f"CPU: {checkout_module('benchmarks/timing.py').cpu_name()}, {torch.get_num_threads()} threads; {versions}"


def print_table(rows: list[Row], header: list[str]) -> None:
    for line in header:
        print(line)
    width = max(len(row.check) for row in rows)
    print(f"\n{'check':<{width}}  {'measured':<26}  {'tolerance / budget':<30}  result")
    for row in rows:
        print(f"{row.check:<{width}}  {row.measured:<26}  {row.budget:<30}  {'pass' if row.passed else 'FAIL'}")
    failed = sum(not row.passed for row in rows)
    print(f"\n{len(rows) - failed} of {len(rows)} checks pass" + (f"; {failed} FAIL" if failed else ""))


def _release() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ----------------------------------------------------------------------------- driver


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dav2", type=Path, required=True, help="clone of DepthAnything/Depth-Anything-V2")
    parser.add_argument("--official", type=Path, required=True, help="clone of zhyever/Amodal-Depth-Anything")
    parser.add_argument("--dav2-checkpoint", type=Path, required=True, help="depth_anything_v2_vitl.pth")
    parser.add_argument("--amodal-dav2-checkpoint", type=Path, required=True,
                        help="the released Amodal-DAV2 model.safetensors (or its folder)")
    parser.add_argument("--dav2-s-checkpoint", type=Path, default=None,
                        help="depth_anything_v2_vits.pth: the training starts from it (default: random weights)")
    parser.add_argument("--depthfm-checkpoint", type=Path, default=None, help="depthfm-v1.ckpt (notebook 04, full)")
    parser.add_argument("--vae", type=Path, default=None, help="Stable Diffusion's VAE (notebook 04, full)")
    parser.add_argument("--amodal-depthfm-checkpoint", type=Path, default=None,
                        help="a trained Amodal-DepthFM folder (notebook 04, full)")
    parser.add_argument("--photo", default="coffee", help="a photo of data_samples/images (default coffee)")
    parser.add_argument("--object", type=int, default=3000027, help="its object id in data_samples/sa1b (default: the cup)")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--tiny", action="store_true", help="every stage at tiny sizes (the CPU test's mode)")
    parser.add_argument("--output", type=Path, default=None,
                        help="keep the training run and the executed notebook here (default: a temporary folder)")
    args = parser.parse_args(argv)
    if args.device == "cpu" and not args.tiny:
        parser.error("on a CPU only the tiny check runs: add --tiny")
    full = {"--depthfm-checkpoint": args.depthfm_checkpoint, "--vae": args.vae,
            "--amodal-depthfm-checkpoint": args.amodal_depthfm_checkpoint}
    if any(full.values()) and not all(full.values()):
        parser.error(f"notebook 04's full profile needs all of {', '.join(full)}; missing: "
                     f"{', '.join(k for k, v in full.items() if not v)}")
    for option, path in [("--dav2-checkpoint", args.dav2_checkpoint), ("--amodal-dav2-checkpoint", args.amodal_dav2_checkpoint),
                         ("--dav2-s-checkpoint", args.dav2_s_checkpoint), *full.items()]:
        if path is not None and not path.exists():
            parser.error(f"{option} {path}: no such file or folder")
    if args.output is not None and args.output.exists() and any(args.output.iterdir()):
        parser.error(f"--output {args.output} is not empty; give a new folder")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device on this machine; nothing was checked (--device cpu --tiny runs the tiny check)")
        return 2
    sizes = TINY if args.tiny else FULL
    start = time.perf_counter()
    header = [f"GPU readiness check ({'tiny' if args.tiny else 'full'} sizes) on {machine_line(args.device)}"]
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch:
        output = args.output or Path(scratch)
        stages = {}  # stage → seconds, for the header: where the budget goes
        try:
            rows, notes = check_parity(args, sizes, args.device)
            stages["parity"] = time.perf_counter() - start
        except (official_code.OfficialCodeError, ValueError, FileNotFoundError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        except ImportError as error:  # a requirement the official constructors import lazily
            print(f"error: building an official network failed ({error}); install that repository's requirements",
                  file=sys.stderr)
            return 2
        header += notes
        for name, check, folder in (("training", check_training, "train"), ("notebook", check_notebook, "notebooks")):
            begin = time.perf_counter()
            rows += check(args, sizes, args.device, output / folder)
            stages[name] = time.perf_counter() - begin
    seconds = time.perf_counter() - start
    header.append("stages: " + ", ".join(f"{name} {stage:.0f} s" for name, stage in stages.items())
                  + " (the training's includes rendering its pool of scenes on the CPU)")
    rows.append(Row("the whole check: wall time", f"{seconds:.0f} s",
                    f"≤ {TOTAL_SECONDS:.0f} s" if sizes.judged else "not judged here",
                    seconds <= TOTAL_SECONDS or not sizes.judged))
    print_table(rows, header)
    return 0 if all(row.passed for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
