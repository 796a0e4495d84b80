"""Shapes of the Depth Anything V2 family: the standard sizes and a tiny one for tests.

A :class:`DAV2Config` says everything needed to build a DAV2 or Amodal-DAV2 network
(paper Sec. 4.1): the DINOv2 encoder (width, depth, heads, which blocks feed the head,
GELU or SwiGLU MLP, training resolution) and the DPT head (fusion width, pyramid widths).

The four standard sizes take their numbers from the official ``model_configs`` of Depth
Anything V2 (``features`` and ``out_channels``) and from its DINOv2 builders (the encoder,
see :data:`amodal.models.dinov2.ENCODERS`). This module holds data only and imports no
network code, so that both the networks (:mod:`amodal.models.amodal_dav2`) and the file
reader (:mod:`amodal.models.checkpoints`, which sizes official files from their tensors)
can import it without importing each other.
"""
from __future__ import annotations

from dataclasses import dataclass

from amodal.models.dinov2 import ENCODERS, EncoderConfig


@dataclass(frozen=True)
class DAV2Config:
    """All a DAV2-family network needs to be built; JSON-able.

    Attributes:
        embed_dim, depth, num_heads, taps, swiglu, img_size: the DINOv2 encoder.
        features: width of the DPT fusion path.
        out_channels: widths of the DPT pyramid levels.
        fill_residual: 0 for the paper's Amodal-DAV2. A positive value makes the network
            predict a *correction* of a classical guess instead of the depth itself (ours, for
            small models; see :data:`TINY_SYNTH`): ``D_o`` is first filled on the hidden part
            from the visible object (:func:`amodal.baselines.harmonic`), that fill is the
            guidance, and the output is ``fill + fill_residual · (sigmoid − 0.5)``. Such a
            network needs the visible mask ``M_vis`` beside ``M_a``.
    """

    embed_dim: int
    depth: int
    num_heads: int
    taps: tuple[int, ...]
    features: int
    out_channels: tuple[int, int, int, int]
    swiglu: bool = False
    img_size: int = 518
    fill_residual: float = 0.0

    def encoder(self) -> EncoderConfig:
        return EncoderConfig(self.embed_dim, self.depth, self.num_heads, self.taps, self.swiglu, self.img_size)

    @classmethod
    def from_dict(cls, data: dict) -> "DAV2Config":
        """The config a saved model's JSON describes, each field's type checked.

        Raises:
            ValueError: not a dict, an unknown or missing field, or a value of the wrong type
                (a file from elsewhere, or edited by hand: better refused here than a shape
                error deep inside the network).
        """
        if not isinstance(data, dict):
            raise ValueError(f"a DAV2 config must be a JSON object, got {type(data).__name__}")
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        required = {"embed_dim", "depth", "num_heads", "taps", "features", "out_channels"}
        missing = sorted(required - set(data))
        if unknown or missing:
            raise ValueError(f"config fields unknown {unknown} / missing {missing}")

        def whole(name, value):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"config field {name} must be a whole number ≥ 0, got {value!r}")
            return value

        out = {name: whole(name, data[name]) for name in ("embed_dim", "depth", "num_heads", "features")}
        for name, length in (("taps", None), ("out_channels", 4)):
            value = data[name]
            if not isinstance(value, (list, tuple)) or (length and len(value) != length):
                raise ValueError(f"config field {name} must be a list of {length or 'some'} whole numbers, got {value!r}")
            out[name] = tuple(whole(name, v) for v in value)
        if "img_size" in data:
            out["img_size"] = whole("img_size", data["img_size"])
        if "swiglu" in data:
            if not isinstance(data["swiglu"], bool):
                raise ValueError(f"config field swiglu must be true or false, got {data['swiglu']!r}")
            out["swiglu"] = data["swiglu"]
        if "fill_residual" in data:
            value = data["fill_residual"]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 10:
                raise ValueError(f"config field fill_residual must be a number in [0, 10), got {value!r}")
            out["fill_residual"] = float(value)
        return cls(**out)


def _config(encoder: EncoderConfig, features: int, out_channels: tuple[int, int, int, int]) -> DAV2Config:
    return DAV2Config(encoder.embed_dim, encoder.depth, encoder.num_heads, encoder.taps, features,
                      out_channels, encoder.swiglu, encoder.img_size)


CONFIGS = {
    "s": _config(ENCODERS["s"], 64, (48, 96, 192, 384)),
    "b": _config(ENCODERS["b"], 128, (96, 192, 384, 768)),
    "l": _config(ENCODERS["l"], 256, (256, 512, 1024, 1024)),
    "g": _config(ENCODERS["g"], 384, (1536, 1536, 1536, 1536)),
}

# A tiny network with every code path of the full ones (taps, position-embedding
# resampling, guidance, input projections); for tests and the quick notebook profile.
TINY = DAV2Config(embed_dim=32, depth=4, num_heads=2, taps=(0, 1, 2, 3), features=16,
                  out_channels=(8, 16, 32, 32), img_size=70)


# The shipped tiny model (checkpoints/amodal-dav2-tiny-synth), trained on a 2-core CPU
# at 112². A plain network of this size trained for minutes on synthetic scenes lands
# *behind* the harmonic fill (hidden RMSE×100 ≈ 2.0 against 1.1): its error is a
# per-object offset, which the fill does not make, as it starts from the visible depth.
# Predicting a bounded correction of that fill (``fill_residual``) keeps the fill's
# anchoring and learns what the fill cannot guess (corners, curvature): it beats every
# fill. It departs from the paper's architecture, so it has its own name.
TINY_SYNTH = DAV2Config(embed_dim=96, depth=6, num_heads=3, taps=(1, 3, 4, 5), features=48,
                        out_channels=(24, 48, 96, 96), img_size=112, fill_residual=0.2)

# Non-standard shapes that recipes may name (``size=`` of a recipe).
SMALL_CONFIGS = {"tiny": TINY, "tiny-synth": TINY_SYNTH}


def resolve_config(size: str | DAV2Config) -> DAV2Config:
    """``"s"``, ``"b"``, ``"l"``, ``"g"`` or a :class:`DAV2Config` → the config.

    Raises:
        ValueError: an unknown size name.
    """
    if isinstance(size, DAV2Config):
        return size
    if size not in CONFIGS:
        raise ValueError(f"size must be one of {sorted(CONFIGS)} or a DAV2Config, got {size!r}")
    return CONFIGS[size]


def standard_size(config: DAV2Config) -> str | None:
    """``"s"``, ``"b"``, ``"l"``, ``"g"`` when ``config`` is a standard size, else ``None``."""
    return next((name for name, c in CONFIGS.items() if c == config), None)
