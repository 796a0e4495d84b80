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
    "read_sa1b": "amodal.adiw.sa1b",
    "write_sa1b": "amodal.adiw.sa1b",
    "decode_mask": "amodal.adiw.sa1b",
    "encode_mask": "amodal.adiw.sa1b",
    "annotation_from_mask": "amodal.adiw.sa1b",
    "load_masks": "amodal.adiw.sa1b",
    "evaluate_sample": "amodal.metrics",
    "render": "amodal.scenes.synth",
    "random_scene": "amodal.scenes.synth",
    "select_complete_objects": "amodal.adiw.objects",
    "ObjectFilter": "amodal.adiw.objects",
    "paste_occluder": "amodal.adiw.composite",
    "OracleDepth": "amodal.adiw.depth",
    "DAV2Depth": "amodal.adiw.depth",
    "load_estimator": "amodal.adiw.depth",
    "AdiwSample": "amodal.adiw.sample",
    "pseudo_label": "amodal.adiw.sample",
    "build": "amodal.adiw.build",
    "find_sources": "amodal.adiw.build",
    "BuildConfig": "amodal.adiw.build",
    "AdiwDataset": "amodal.adiw.dataset",
    "import_release": "amodal.adiw.pix2gestalt",
    "label_quality": "amodal.adiw.quality",
    "write_sam_masks": "amodal.adiw.sam_masks",
    "DepthFM": "amodal.models.depthfm",
    "AmodalDepthFM": "amodal.models.depthfm",
    "DepthSamples": "amodal.models.depthfm",
    "flow_matching_loss": "amodal.models.flow_matching",
    "euler_sample": "amodal.models.flow_matching",
    "ensemble_statistics": "amodal.models.flow_matching",
    "DepthAnythingV2": "amodal.models.amodal_dav2",
    "AmodalDAV2": "amodal.models.amodal_dav2",
    "DAV2Config": "amodal.models.configs",
    "predict": "amodal.inference",
    "silog": "amodal.losses",
    "setup_run": "amodal.harness.notebook",
    "data_samples_dir": "amodal.utils.paths",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'amodal' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_PUBLIC))
