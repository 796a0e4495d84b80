"""Amodal-DAV2 as an ONNX graph: written by ``torch.onnx``, run by onnxruntime.

An ONNX file lets the network run without PyTorch, and onnxruntime is often the faster
way to run it on a CPU (README, "Benchmarks"). The graph is the torch model's forward
(paper Fig. 3), traced by ``torch.export``:

=================  ===================  ==============================================
input / output     shape                values
=================  ===================  ==============================================
``image``          (B, 3, H, W) float   RGB in [0, 1]; the ImageNet normalisation is
                                        *inside* the graph, as in the torch model
``amodal_mask``    (B, 1, H, W) float   ``M_a`` in {0, 1}
``observed_depth`` (B, 1, H, W) float   ``D_o`` in [0, 1] (a paper model)
``filled_depth``   (B, 1, H, W) float   instead of ``observed_depth``, for a network with
                                        ``config.fill_residual``: ``D_o`` with the hidden
                                        part filled from the visible object
                                        (:meth:`AmodalDAV2.fill`)
``depth``          (B, 1, H, W) float   normalised disparity in [0, 1]
=================  ===================  ==============================================

B, H and W are free (H and W multiples of 14): the position embedding is resampled inside
the graph for the actual size (:func:`amodal.models.dinov2.dav2_pos_embed_traceable`).

The fill of a ``fill_residual`` network is a sparse linear solve on the CPU
(:func:`amodal.baselines.harmonic`), for which ONNX has no operator; it stays outside the
graph. :class:`OnnxAmodalDAV2` computes it with the same function as the torch model, so
it takes the visible mask ``M_vis`` like :class:`AmodalDAV2` and is called the same way:
:func:`amodal.inference.predict` runs either through one code path.

The file carries the network's config in its metadata (key ``amodal``), so the runner knows
its size and inputs; an ONNX file without it is refused. onnx, onnxscript and onnxruntime
are an optional extra: ``pip install 'amodal[onnx]'``.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn as nn

from amodal.models.amodal_dav2 import AmodalDAV2
from amodal.models.configs import DAV2Config
from amodal.models.dinov2 import PATCH_SIZE
from amodal.utils.atomic import atomic_file_set
from amodal.utils.optional import require

METADATA_KEY = "amodal"
OUTPUT_NAME = "depth"
MAX_GRID = 1024  # patches per side the graph accepts: sides up to 14 336 pixels


def input_names(config: DAV2Config) -> tuple[str, str, str]:
    """The graph's input names for a network of ``config`` (see the module's table)."""
    return ("image", "amodal_mask", "filled_depth" if config.fill_residual else "observed_depth")


class _Graph(nn.Module):
    """What the ONNX graph computes: :meth:`AmodalDAV2.forward`, or, for a ``fill_residual``
    network, its part after the fill (:meth:`AmodalDAV2.correct_fill`)."""

    def __init__(self, model: AmodalDAV2):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, amodal_mask: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        if self.model.config.fill_residual:
            return self.model.correct_fill(image, amodal_mask, depth)
        return self.model(image, amodal_mask, depth)


def export_onnx(model: AmodalDAV2, path: str | Path) -> Path:
    """Write ``model`` as an ONNX graph with free batch, height and width.

    The model is traced on the CPU in float32, in its current attention mode (fast SDPA by
    default, or exact: :meth:`AmodalDAV2.set_exact`), at a small example size that is
    neither square nor the training size, so that no size is taken for a constant. The file
    is written whole or not at all (:func:`amodal.utils.atomic.atomic_file_set`); a network
    over 2 GB (ViT-G) gets its weights in ``<name>.data`` beside it, as ONNX requires.

    Args:
        model: an :class:`AmodalDAV2`; one on another device or in another dtype is copied to
            the CPU in float32 (the model itself is left as it is).
        path: the ``.onnx`` file to write.

    Returns:
        ``path``.

    Raises:
        ValueError: ``path`` does not end in ``.onnx``, or ``model`` is not an Amodal-DAV2.
        MissingDependency: onnx or onnxscript is not installed.
    """
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise ValueError(f"{path}: an ONNX model's file name ends in .onnx")
    if not isinstance(model, AmodalDAV2):
        raise ValueError(f"export_onnx writes an AmodalDAV2, got {type(model).__name__}")
    require("onnxscript", "torch.onnx.export needs it to write the graph")
    require("onnx", "torch.onnx.export needs it to write the graph")
    device, dtype = placement(model)
    source = model if device.type == "cpu" and dtype == torch.float32 else _cpu_float_copy(model)
    training = source.training
    graph = _Graph(source).eval()
    names = input_names(model.config)
    batch = torch.export.Dim("batch", min=1, max=4096)
    rows = torch.export.Dim("patch_rows", min=1, max=MAX_GRID)
    cols = torch.export.Dim("patch_cols", min=1, max=MAX_GRID)
    sizes = {0: batch, 2: PATCH_SIZE * rows, 3: PATCH_SIZE * cols}
    example = _example_inputs(batch=2, height=3 * PATCH_SIZE, width=2 * PATCH_SIZE)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # the exporter notes that the three inputs share their axes' names: they do, by design
            warnings.filterwarnings("ignore", message="# The axis name")
            program = torch.onnx.export(graph, example, dynamo=True, input_names=list(names),
                                        output_names=[OUTPUT_NAME], dynamic_shapes=(sizes, sizes, sizes), verbose=False)
    finally:
        source.train(training)
    record = {"model": "AmodalDAV2", "config": asdict(model.config), "inputs": list(names),
              "output": OUTPUT_NAME, "image": "RGB in [0, 1], normalised inside the graph"}
    program.model.metadata_props[METADATA_KEY] = json.dumps(record)
    program.model.doc_string = "Amodal-DAV2 (Amodal Depth Anything, ICCV 2025), written by amodal export-onnx"
    with atomic_file_set(path.parent, path.name, replaces=[path.name, f"{path.name}.data"]) as scratch:
        program.save(scratch / path.name)
    return path


def _cpu_float_copy(model: AmodalDAV2) -> AmodalDAV2:
    """A copy of ``model`` on the CPU in float32, its attention mode kept."""
    copy = type(model)(model.config)
    copy.load_state_dict({k: v.detach().float().cpu() for k, v in model.state_dict().items()})
    fused = all(block.attn.fused_attn for block in model.encoder.blocks)
    copy.set_exact(not fused)
    return copy.eval()


def _example_inputs(batch: int, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(batch, 3, height, width, generator=generator)
    amodal_mask = (torch.rand(batch, 1, height, width, generator=generator) > 0.5).float()
    depth = torch.rand(batch, 1, height, width, generator=generator)
    return image, amodal_mask, depth


class OnnxAmodalDAV2:
    """An Amodal-DAV2 written by :func:`export_onnx`, run by onnxruntime on the CPU.

    Called like :class:`AmodalDAV2` (torch tensors in, a torch tensor out), so
    :func:`amodal.inference.predict` takes either. A ``fill_residual`` network's fill is
    computed here, by :meth:`AmodalDAV2.fill`, before the graph runs.

    Args:
        path: the ``.onnx`` file.
        threads: onnxruntime's intra-op threads; ``None`` takes torch's
            (``torch.get_num_threads()``), so both backends use the same number.

    Attributes:
        config: the network's :class:`DAV2Config`, read from the file.
        device, dtype: where and in what its inputs are taken: the CPU, float32.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a file onnxruntime cannot load, or one without amodal's metadata.
        MissingDependency: onnxruntime is not installed.
    """

    device = torch.device("cpu")
    dtype = torch.float32

    def __init__(self, path: str | Path, threads: int | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {self.path} (write one with python -m amodal export-onnx)")
        ort = require("onnxruntime", "it runs ONNX models")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime's load errors (Fail, InvalidProtobuf, ...) share no public base class
            raise ValueError(f"{self.path}: onnxruntime cannot load it: {str(error).strip().splitlines()[0]}") from None
        record = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if record is None:
            raise ValueError(f"{self.path}: an ONNX file without amodal's metadata (key {METADATA_KEY!r}); write the "
                             "model with python -m amodal export-onnx")
        try:
            self.config = DAV2Config.from_dict(json.loads(record).get("config"))
        except (ValueError, AttributeError) as error:
            raise ValueError(f"{self.path}: its amodal metadata is damaged: {error}") from None
        self.input_names = input_names(self.config)
        found = tuple(i.name for i in self.session.get_inputs())
        if found != self.input_names:
            raise ValueError(f"{self.path}: graph inputs {found}, expected {self.input_names} for its config")

    @property
    def needs_visible_mask(self) -> bool:
        """Whether a call needs ``visible_mask`` (a ``fill_residual`` network), as :class:`AmodalDAV2`."""
        return bool(self.config.fill_residual)

    def eval(self) -> "OnnxAmodalDAV2":
        """Itself: an ONNX graph is always in inference mode (for code written for torch modules)."""
        return self

    def __call__(self, image: torch.Tensor, amodal_mask: torch.Tensor, observed_depth: torch.Tensor,
                 visible_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Args and returns as :meth:`AmodalDAV2.forward`: (B, 3, H, W) RGB in [0, 1], (B, 1, H, W)
        maps, H and W multiples of 14 → (B, 1, H, W) float32 CPU tensor.

        Raises:
            ValueError: maps of the wrong shape, sides not multiples of 14, a missing ``visible_mask``.
        """
        _check_shapes(image, amodal_mask, observed_depth)
        depth = AmodalDAV2.fill(amodal_mask, observed_depth, visible_mask) if self.needs_visible_mask else observed_depth
        feeds = {name: x.detach().to("cpu", torch.float32).contiguous().numpy()
                 for name, x in zip(self.input_names, (image, amodal_mask, depth))}
        return torch.from_numpy(self.session.run([OUTPUT_NAME], feeds)[0])


def _check_shapes(image: torch.Tensor, amodal_mask: torch.Tensor, observed_depth: torch.Tensor) -> None:
    if image.ndim != 4 or image.shape[1] != 3 or image.shape[-2] % PATCH_SIZE or image.shape[-1] % PATCH_SIZE:
        raise ValueError(f"image must be (B, 3, H, W) with H and W multiples of {PATCH_SIZE}, got {tuple(image.shape)}")
    for name, x in (("amodal_mask", amodal_mask), ("observed_depth", observed_depth)):
        if tuple(x.shape) != (image.shape[0], 1, *image.shape[-2:]):
            raise ValueError(f"{name} must be (B, 1, H, W) like image {tuple(image.shape)}, got {tuple(x.shape)}")


def placement(network) -> tuple[torch.device, torch.dtype]:
    """Where a network takes its inputs: a torch module's parameters' device and dtype, or the
    network's own ``device`` and ``dtype`` (:class:`OnnxAmodalDAV2`: the CPU, float32)."""
    if isinstance(network, nn.Module):
        parameter = next(network.parameters())
        return parameter.device, parameter.dtype
    return network.device, network.dtype
