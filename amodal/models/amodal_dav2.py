"""Depth Anything V2 and Amodal-DAV2 (paper Sec. 4.1, Fig. 3).

Depth Anything V2 (DAV2) = DINOv2 encoder (:mod:`amodal.models.dinov2`) + DPT head
(:mod:`amodal.models.dpt`). It maps an RGB image to relative disparity (larger = nearer).

Amodal-DAV2 conditions the same network on two more maps, the amodal mask ``M_a`` of the
target object and the observed depth ``D_o`` of the whole image (from DAV2, min-max
normalised):

    tokens = PatchEmbed(RGB) + PatchEmbed_guidance([2·M_a − 1, 2·D_o − 1])      (Eq. 1)

then class token, position embedding, the ViT blocks, and a DPT head whose four inputs pass
through Conv3×3 + LayerNorm + ReLU. A Sigmoid gives normalised disparity in [0, 1], the
space of ``D_o``. The guidance embedding starts at zero, so at step 0 the encoder computes
exactly what the pretrained DAV2 encoder computes: training starts from DAV2's knowledge.

Both models take ``image`` RGB in [0, 1] and apply ImageNet normalisation inside.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

from amodal.baselines import harmonic_batch
from amodal.models import checkpoints
from amodal.models.configs import CONFIGS, TINY, DAV2Config, resolve_config, standard_size
from amodal.models.dinov2 import PATCH_SIZE, DINOv2
from amodal.models.dpt import DPTHead
from amodal.utils.atomic import atomic_write, atomic_write_json
from amodal.utils.hub import resolve

# The configs live in amodal.models.configs; they are importable from here as before.
__all__ = ["CONFIGS", "TINY", "DAV2Config", "DepthAnythingV2", "AmodalDAV2", "keep_aspect_size", "image_to_tensor"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_SIZE = 518  # the training resolution of DAV2 and Amodal-DAV2


class _DepthNetwork(nn.Module):
    """What DAV2 and Amodal-DAV2 share: encoder + head, normalisation, files."""

    amodal = False
    checkpoint_name = "checkpoint"  # what messages call a file of this class

    def __init__(self, size: str | DAV2Config = "s", exact: bool = False):
        super().__init__()
        self.config = resolve_config(size)
        c = self.config
        if c.fill_residual and not self.amodal:
            raise ValueError("fill_residual is a setting of Amodal-DAV2; Depth Anything V2 has no fill to correct")
        self.encoder = DINOv2(c.encoder(), guidance_channels=2 if self.amodal else 0)
        self.head = DPTHead(c.embed_dim, c.features, c.out_channels, input_projection=self.amodal,
                            output="sigmoid" if self.amodal else "relu")
        self.set_exact(exact)
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def size_name(self) -> str:
        """``"ViT-S"`` ... for the standard sizes, else a short shape summary."""
        name = standard_size(self.config)
        return f"ViT-{name.upper()}" if name else f"dim {self.config.embed_dim}, {self.config.depth} blocks"

    def set_fused_attention(self, enabled: bool) -> None:
        """SDPA (``True``, default, fast) or the official step-by-step attention."""
        self.encoder.set_fused_attention(enabled)

    def set_gradient_checkpointing(self, enabled: bool) -> None:
        """Recompute the encoder blocks' activations in the backward pass (training L and G)."""
        self.encoder.gradient_checkpointing = bool(enabled)

    def set_exact(self, exact: bool) -> None:
        """Bit-exact with the official code (``True``) or fast (``False``, the default).

        Fast = timm's fused attention (SDPA) in the encoder and channels-last convolution
        weights in the head. The head's token maps arrive channels-last anyway (a free view
        of (B, h·w, C)), so this spares oneDNN / cuDNN their layout reorders. Together they
        change outputs by a few 1e-6. Loading weights keeps the layout chosen here.
        """
        self.set_fused_attention(not exact)
        layout = torch.contiguous_format if exact else torch.channels_last
        self.head.to(memory_format=layout)

    def _features(self, image: torch.Tensor, guidance: torch.Tensor | None) -> list[torch.Tensor]:
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be (B, 3, H, W) RGB in [0, 1], got {tuple(image.shape)}")
        return self.encoder.forward_taps((image - self.pixel_mean) / self.pixel_std, guidance)

    def _run(self, image: torch.Tensor, guidance: torch.Tensor | None) -> torch.Tensor:
        features = self._features(image, guidance)
        return self.head(features, image.shape[-2] // PATCH_SIZE, image.shape[-1] // PATCH_SIZE)

    @classmethod
    def from_pretrained(cls, path: str | Path, config: DAV2Config | str | None = None, exact: bool = False):
        """Build the network from an official checkpoint, a ``transformers`` one or one of ours, by path or hub id.

        Args:
            path: official DAV2 ``.pth``, released Amodal-DAV2 ``model.safetensors`` (or its
                folder), a ``transformers`` ``DepthAnythingForDepthEstimation`` folder
                (``config.json`` + ``model.safetensors``; :mod:`amodal.models.transformers_format`),
                or a folder written by :meth:`save_pretrained`; or a Hugging Face Hub id
                (``depth-anything/Depth-Anything-V2-Large``, ``depth-anything/Depth-Anything-V2-Large-hf``,
                ``zhyever/Amodal-Depth-Anything-DAV2``, ``ORG/NAME@REVISION:FILE``;
                :func:`amodal.utils.hub.resolve`).
            config: the shape; by default ours and ``transformers``' come with theirs and official
                files are sized from their tensors (S/B/L/G).
            exact: see :meth:`set_exact`.

        Raises:
            FileNotFoundError: no such file; a hub id not in the cache and not downloadable.
            ValueError: a file of no known format, a ``transformers`` checkpoint of another model
                or of metric depth (:func:`amodal.models.checkpoints.checkpoint_format` says which);
                a file that does not fit this class, strictly (names the keys).
        """
        if path is not None:  # None: read_checkpoint says what to pass
            path = resolve(path, fallback=checkpoints.HUB_FOLDER, what=cls.checkpoint_name)
        found = checkpoints.open_checkpoint(path)
        if found.model not in (None, cls.__name__):
            raise ValueError(f"{path} holds an {found.model}, not a {cls.__name__}: load it with {found.model}.from_pretrained")
        config = found.config if config is None else config
        if config is None:
            shape = checkpoints.infer_shape(found.state)
            if shape["size"] is None:
                raise ValueError(f"{path}: {found.format.description} matches no known size; pass config=")
            config = shape["size"]
        model = cls(config, exact=exact)
        checkpoints.load_strict(model, found.state, found.source, found.format.description, hint=cls._hint(found.state))
        return model.eval()

    @classmethod
    def _hint(cls, state: dict) -> str:
        has_guidance = "encoder.patch_embed_guidance.proj.weight" in state
        if cls.amodal and not has_guidance:
            return "It is a Depth Anything V2 file: start Amodal-DAV2 from it with AmodalDAV2.from_dav2(path)."
        if not cls.amodal and has_guidance:
            return "It is an Amodal-DAV2 file: load it with AmodalDAV2.from_pretrained(path)."
        return ""

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (ours) into ``directory``.

        Each file is written atomically (:func:`amodal.utils.atomic.atomic_write`: temporary name,
        fsync, rename), so neither is ever seen half-written. Two files cannot be replaced
        in one step without swapping the whole folder (``atomic_directory``), which would
        delete whatever else the folder holds; instead the weights carry their own config
        in their metadata, and that copy is the one :meth:`from_pretrained` reads.
        ``config.json`` (for people and other tools) is written *first*: a save killed in
        between leaves the old weights with their own config and a ``config.json`` that is
        already new — never new weights described by an old config.
        """
        directory = Path(directory)
        record = {"model": type(self).__name__, "config": asdict(self.config)}
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        atomic_write_json(directory / checkpoints.CONFIG_NAME, record, indent=2)
        metadata = {"amodal_config": json.dumps(record)}
        atomic_write(directory / checkpoints.WEIGHTS_NAME, lambda path: save_file(state, str(path), metadata=metadata))
        return directory


class DepthAnythingV2(_DepthNetwork):
    """Depth Anything V2: RGB → relative disparity (official weights load strictly).

    Args:
        size: ``"s"``, ``"b"``, ``"l"``, ``"g"`` or a :class:`DAV2Config` (e.g. ``TINY``).
        exact: bit-exact with the official code, or fast (default; see :meth:`set_exact`).
    """

    checkpoint_name = "Depth Anything V2 checkpoint"

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Args:
            image: (B, 3, H, W) RGB in [0, 1], H and W multiples of 14.

        Returns:
            (B, 1, H, W) relative disparity (≥ 0, unnormalised).
        """
        return self._run(image, None)

    def features(self, image: torch.Tensor) -> list[torch.Tensor]:
        """The encoder tokens the head reads: one (B, h·w, C) tensor per tapped block."""
        return self._features(image, None)

    @torch.no_grad()
    def infer_image(self, rgb, input_size: int = INPUT_SIZE) -> np.ndarray:
        """Disparity of one photo at its own resolution, with DAV2's preprocessing.

        The official ``infer_image``, for one photo: see :meth:`infer_images`. Unlike the
        official one, the input is **RGB**: the official function takes OpenCV's BGR and
        converts it.

        Args:
            rgb: (H, W, 3) numpy array, uint8 or float in [0, 1]; or a torch tensor
                (3, H, W) / (1, 3, H, W) in [0, 1].
            input_size: short side the network sees.

        Returns:
            (H, W) float32 numpy disparity (unnormalised; larger = nearer).
        """
        return self.infer_images([rgb], input_size)[0]

    @torch.no_grad()
    def infer_images(self, images, input_size: int = INPUT_SIZE, batch_size: int = 4) -> list[np.ndarray]:
        """Disparity of each photo at its own resolution, photos of one size class batched.

        As the official ``infer_image``: each photo is resized keeping its aspect ratio so
        that the short side is ``input_size`` and both sides are multiples of 14 (bicubic,
        :func:`keep_aspect_size`), predicted, and the prediction resized back (bilinear,
        corners aligned). That network size is the photo's *bucket*: photos of different
        sizes but one bucket run in the same batch, and a compiled model
        (``model.compile()``) builds one graph per bucket — plus one for a batch of one,
        which ``torch.compile`` always specialises — not one per photo size.

        The network runs in the model's dtype and device (e.g. a model cast to bfloat16);
        resizing is done in float32 and the results are float32.

        Args:
            images: photos as :meth:`infer_image` takes them; sizes may differ.
            input_size: short side the network sees.
            batch_size: photos per forward pass.

        Returns:
            one (H, W) float32 numpy disparity per photo, in order.
        """
        parameter = next(self.parameters())
        tensors = [image_to_tensor(image) for image in images]
        buckets: dict[tuple[int, int], list[int]] = {}
        for i, image in enumerate(tensors):
            buckets.setdefault(keep_aspect_size(*image.shape[-2:], input_size), []).append(i)
        out: list[np.ndarray | None] = [None] * len(tensors)
        for size, indices in buckets.items():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start : start + batch_size]
                batch = torch.cat([
                    F.interpolate(tensors[i].to(parameter.device), size, mode="bicubic", align_corners=False) for i in chunk
                ]).to(parameter.dtype)
                torch._dynamo.maybe_mark_dynamic(batch, 0)  # one graph for every batch size > 1
                depth = self(batch).float()  # self(), not self.forward(): a compiled model is used
                for j, i in enumerate(chunk):
                    back = F.interpolate(depth[j : j + 1], tensors[i].shape[-2:], mode="bilinear", align_corners=True)
                    out[i] = back[0, 0].cpu().numpy()
        return out  # type: ignore[return-value]


class AmodalDAV2(_DepthNetwork):
    """Amodal-DAV2: (image, amodal mask, observed depth) → depth of the whole object.

    Args:
        size: ``"s"``, ``"b"``, ``"l"``, ``"g"`` or a :class:`DAV2Config`.
        exact: bit-exact with the official code, or fast (default; see :meth:`set_exact`).
    """

    amodal = True
    checkpoint_name = "Amodal-DAV2 checkpoint"

    def forward(self, image: torch.Tensor, amodal_mask: torch.Tensor, observed_depth: torch.Tensor,
                visible_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Args:
            image: (B, 3, H, W) RGB in [0, 1], H and W multiples of 14 (trained at 518²).
            amodal_mask: (B, 1, H, W) in {0, 1}, the whole target object.
            observed_depth: (B, 1, H, W) in [0, 1], min-max normalised DAV2 disparity ``D_o``.
            visible_mask: (B, 1, H, W) in {0, 1}, ``M_vis``; read only by a network with
                ``config.fill_residual`` (which needs it), ignored by the paper's.

        Returns:
            (B, 1, H, W) normalised disparity in [0, 1].
        """
        if not self.config.fill_residual:
            return self._run(image, self.guidance(image, amodal_mask, observed_depth))
        return self.correct_fill(image, amodal_mask, self.fill(amodal_mask, observed_depth, visible_mask))

    def correct_fill(self, image: torch.Tensor, amodal_mask: torch.Tensor, filled_depth: torch.Tensor) -> torch.Tensor:
        """A ``fill_residual`` network's output from the fill: ``fill + fill_residual · (sigmoid − 0.5)``.

        The part of :meth:`forward` after :meth:`fill` (the fill is a sparse solve on the
        CPU; an exported graph starts here, see :mod:`amodal.models.onnx_model`).

        Args:
            image: (B, 3, H, W) RGB in [0, 1].
            amodal_mask: (B, 1, H, W) in {0, 1}.
            filled_depth: (B, 1, H, W), :meth:`fill` of ``D_o``.

        Returns:
            (B, 1, H, W) normalised disparity in [0, 1].
        """
        correction = self._run(image, self.guidance(image, amodal_mask, filled_depth)) - 0.5
        return (filled_depth + self.config.fill_residual * correction).clamp(0, 1)

    def features(self, image: torch.Tensor, amodal_mask: torch.Tensor, observed_depth: torch.Tensor,
                 visible_mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        """The encoder tokens the head reads: one (B, h·w, C) tensor per tapped block."""
        if self.config.fill_residual:
            observed_depth = self.fill(amodal_mask, observed_depth, visible_mask)
        return self._features(image, self.guidance(image, amodal_mask, observed_depth))

    @property
    def needs_visible_mask(self) -> bool:
        """Whether :meth:`forward` needs ``visible_mask`` (a ``fill_residual`` network)."""
        return bool(self.config.fill_residual)

    @staticmethod
    def fill(amodal_mask: torch.Tensor, observed_depth: torch.Tensor, visible_mask: torch.Tensor | None) -> torch.Tensor:
        """``D_o`` with the hidden part harmonically filled from the visible object, (B, 1, H, W).

        A static method: the ONNX form of a ``fill_residual`` network computes its fill
        with this same function before its graph runs.

        Raises:
            ValueError: no ``visible_mask``, or one of the wrong shape.
        """

        if visible_mask is None:
            raise ValueError("this Amodal-DAV2 (config.fill_residual > 0) needs visible_mask (M_vis) beside "
                             "amodal_mask: it corrects the harmonic fill of D_o from the visible object")
        if visible_mask.shape != amodal_mask.shape:
            raise ValueError(f"visible_mask must have amodal_mask's shape {tuple(amodal_mask.shape)}, "
                             f"got {tuple(visible_mask.shape)}")
        return harmonic_batch(amodal_mask, observed_depth, visible_mask)

    @staticmethod
    def guidance(image: torch.Tensor, amodal_mask: torch.Tensor, observed_depth: torch.Tensor) -> torch.Tensor:
        """``[2·M_a − 1, 2·D_o − 1]``, (B, 2, H, W) in [-1, 1]: mask first, as the official code.

        Only shapes are checked here: they are known when the graph is built, so the check
        costs no device sync and ``torch.compile(fullgraph=True)`` traces through it. The
        values (finite, in [0, 1], non-empty mask) are checked once at the API boundary
        (:func:`amodal.inference.predict`, the datasets) with :func:`amodal.models.checks.check_guidance`.

        Args:
            image: (B, 3, H, W), only its batch and size are read.
            amodal_mask: (B, 1, H, W) in {0, 1}.
            observed_depth: (B, 1, H, W) in [0, 1].

        Raises:
            ValueError: a map of the wrong shape.
        """
        for name, x in (("amodal_mask", amodal_mask), ("observed_depth", observed_depth)):
            if x.ndim != 4 or x.shape[1] != 1 or x.shape[-2:] != image.shape[-2:] or x.shape[0] != image.shape[0]:
                raise ValueError(f"{name} must be (B, 1, H, W) like image {tuple(image.shape)}, got {tuple(x.shape)}")
        return torch.cat([amodal_mask, observed_depth], dim=1).to(image.dtype) * 2 - 1

    @classmethod
    def from_dav2(cls, path: str | Path, config: DAV2Config | str | None = None, exact: bool = False):
        """Amodal-DAV2 initialised from Depth Anything V2 weights (how training starts).

        Encoder and DPT head come from the file; the guidance embedding is zero and the
        four input projections are freshly initialised. (The official training script
        has this load line commented out, so its models start from random weights.)

        Args:
            path: a DAV2 checkpoint (official ``.pth``, a ``transformers`` folder or ours), or its hub id
                (``depth-anything/Depth-Anything-V2-Small``, ``depth-anything/Depth-Anything-V2-Small-hf``).
        """
        dav2 = DepthAnythingV2.from_pretrained(path, config=config, exact=exact)
        model = cls(dav2.config, exact=exact)
        missing, unexpected = model.load_state_dict(dav2.state_dict(), strict=False)
        new = [k for k in missing if not k.startswith(("encoder.patch_embed_guidance.", "head.input_projection."))]
        if new or unexpected:
            raise ValueError(f"{path}: DAV2 weights do not cover AmodalDAV2: missing {new}, unexpected {unexpected}")
        return model


def keep_aspect_size(height: int, width: int, short_side: int = INPUT_SIZE) -> tuple[int, int]:
    """DAV2's resize target: short side ``short_side``, aspect kept, sides multiples of 14.

    Each side is ``round(scale · side / 14) · 14`` with ``scale = short_side / short``, and
    never below ``short_side`` (the official ``Resize(..., resize_method="lower_bound")``).
    """
    scale = max(short_side / height, short_side / width)

    def fit(x: float) -> int:
        y = int(np.round(x / PATCH_SIZE) * PATCH_SIZE)
        return y if y >= short_side else int(np.ceil(x / PATCH_SIZE) * PATCH_SIZE)

    return fit(scale * height), fit(scale * width)


def image_to_tensor(rgb) -> torch.Tensor:
    """(H, W, 3) uint8/float numpy or (3, H, W)/(1, 3, H, W) torch → (1, 3, H, W) float32 in [0, 1]."""
    if isinstance(rgb, np.ndarray):
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"a numpy image must be (H, W, 3) RGB, got {rgb.shape}")
        scale = 255.0 if rgb.dtype == np.uint8 else 1.0
        image = torch.from_numpy(np.ascontiguousarray(rgb).astype(np.float32) / scale).permute(2, 0, 1)[None]
    elif isinstance(rgb, torch.Tensor):
        image = rgb[None] if rgb.ndim == 3 else rgb
        if image.ndim != 4 or image.shape[:2] != (1, 3):
            raise ValueError(f"a torch image must be (3, H, W) or (1, 3, H, W), got {tuple(rgb.shape)}")
        image = image.float()
    else:
        raise ValueError(f"image must be a numpy array or torch tensor, got {type(rgb).__name__}")
    if (~torch.isfinite(image) | (image < 0) | (image > 1)).any():  # one read-back
        raise ValueError("image values must be finite and in [0, 1] (or uint8)")
    return image

