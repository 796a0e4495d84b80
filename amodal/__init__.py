"""amodal: amodal depth estimation (Amodal Depth Anything, ICCV 2025), taught and reproduced.

The public names are imported lazily so that ``import amodal`` stays cheap (no torch
until a torch-based name is used).
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_PUBLIC = {
    "scale_shift": "amodal.align",
    "align": "amodal.align",
    "sample_metrics": "amodal.metrics",
    "aggregate_metrics": "amodal.metrics",
    "visible_ratio_bucket": "amodal.metrics",
    "read_sa1b": "amodal.sa1b",
    "write_sa1b": "amodal.sa1b",
    "decode_mask": "amodal.sa1b",
    "encode_mask": "amodal.sa1b",
    "annotation_from_mask": "amodal.sa1b",
    "load_masks": "amodal.sa1b",
    "evaluate_sample": "amodal.metrics",
    "render": "amodal.synth",
    "random_scene": "amodal.synth",
    "select_complete_objects": "amodal.objects",
    "ObjectFilter": "amodal.objects",
    "paste_occluder": "amodal.composite",
    "OracleDepth": "amodal.depth",
    "DAV2Depth": "amodal.depth",
    "load_estimator": "amodal.depth",
    "AdiwSample": "amodal.adiw.sample",
    "pseudo_label": "amodal.adiw.sample",
    "build": "amodal.adiw.build",
    "find_sources": "amodal.adiw.build",
    "BuildConfig": "amodal.adiw.build",
    "AdiwDataset": "amodal.adiw.dataset",
    "import_release": "amodal.adiw.pix2gestalt",
    "label_quality": "amodal.adiw.quality",
    "write_sam_masks": "amodal.masks",
    "DepthFM": "amodal.models.depthfm",
    "AmodalDepthFM": "amodal.models.depthfm",
    "DepthSamples": "amodal.models.depthfm",
    "flow_matching_loss": "amodal.flow_matching",
    "euler_sample": "amodal.flow_matching",
    "ensemble_statistics": "amodal.flow_matching",
    "DepthAnythingV2": "amodal.models.amodal_dav2",
    "AmodalDAV2": "amodal.models.amodal_dav2",
    "DAV2Config": "amodal.models.configs",
    "predict": "amodal.inference",
    "silog": "amodal.losses",
    "setup_run": "amodal.notebook",
    "data_samples_dir": "amodal.paths",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'amodal' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_PUBLIC))
