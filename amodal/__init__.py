"""amodal: amodal depth estimation (Amodal Depth Anything, ICCV 2025), taught and reproduced.

The library is cut into layers, one folder each, lowest first (README, "Where things live")::

    utils < core maths < models < scenes < adiw < data < evaluation < training < inference < app < harness < cli

The names below are its public API, in tiers; ``from amodal import predict`` works as well
as ``from amodal.inference import predict``. They are imported lazily so that
``import amodal`` stays cheap (no torch until a torch-based name is used).
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# tier → {public name: module that defines it}
TIERS = {
    "core maths": {
        "scale_shift": "amodal.align",
        "align": "amodal.align",
        "align_shift": "amodal.align",
        "sample_metrics": "amodal.metrics",
        "evaluate_sample": "amodal.metrics",
        "aggregate_metrics": "amodal.metrics",
        "visible_ratio_bucket": "amodal.metrics",
        "BUCKET_BOUNDS": "amodal.metrics",
        "PAPER_TABLE": "amodal.metrics",
        "silog": "amodal.losses",
        "BASELINES": "amodal.baselines",
        "write_depth": "amodal.export",
        "read_image": "amodal.utils.images",
    },
    "models": {
        "DepthAnythingV2": "amodal.models.amodal_dav2",
        "AmodalDAV2": "amodal.models.amodal_dav2",
        "DAV2Config": "amodal.models.configs",
        "export_onnx": "amodal.models.onnx_model",
        "OnnxAmodalDAV2": "amodal.models.onnx_model",
        "DepthFM": "amodal.models.depthfm",
        "AmodalDepthFM": "amodal.models.depthfm",
        "DepthSamples": "amodal.models.depthfm",
        "Pix2Gestalt": "amodal.models.pix2gestalt",
        "MaskCompleter": "amodal.models.mask_completer",
        "flow_matching_loss": "amodal.models.flow_matching",
        "euler_sample": "amodal.models.flow_matching",
        "ensemble_statistics": "amodal.models.flow_matching",
    },
    "data": {
        "render": "amodal.scenes.synth",
        "random_scene": "amodal.scenes.synth",
        "read_sa1b": "amodal.adiw.sa1b",
        "write_sa1b": "amodal.adiw.sa1b",
        "decode_mask": "amodal.adiw.sa1b",
        "encode_mask": "amodal.adiw.sa1b",
        "annotation_from_mask": "amodal.adiw.sa1b",
        "load_masks": "amodal.adiw.sa1b",
        "select_complete_objects": "amodal.adiw.objects",
        "ObjectFilter": "amodal.adiw.objects",
        "paste_occluder": "amodal.adiw.composite",
        "OracleDepth": "amodal.adiw.depth",
        "DAV2Depth": "amodal.adiw.depth",
        "load_estimator": "amodal.adiw.depth",
        "AdiwSample": "amodal.adiw.sample",
        "pseudo_label": "amodal.adiw.sample",
        "find_sources": "amodal.adiw.sources",
        "build": "amodal.adiw.build",
        "BuildConfig": "amodal.adiw.build",
        "AdiwDataset": "amodal.adiw.dataset",
        "import_release": "amodal.adiw.pix2gestalt",
        "label_quality": "amodal.adiw.quality",
        "write_sam_masks": "amodal.adiw.sam_masks",
        "SynthStream": "amodal.data.streams",
        "evaluation_items": "amodal.data.items",
        "training_data": "amodal.data.items",
    },
    "evaluation and training": {
        "fill_predictor": "amodal.evaluation.predictors",
        "model_predictor": "amodal.evaluation.predictors",
        "evaluate_items": "amodal.evaluation.scoring",
        "summarise": "amodal.evaluation.scoring",
        "summary_with_ci": "amodal.evaluation.intervals",
        "write_evaluation": "amodal.evaluation.tables",
        "Recipe": "amodal.training.recipes",
        "get_recipe": "amodal.training.recipes",
        "build_model": "amodal.training.setup",
        "train": "amodal.training.loop",
    },
    "inference and app": {
        "predict": "amodal.inference",
        "load_model": "amodal.inference",
        "load_predictor": "amodal.inference",
        "Explorer": "amodal.app.explorer",
        "explorer_app": "amodal.app.widgets",
        "complete_amodal_mask": "amodal.app.amodal_masks",
        "setup_run": "amodal.harness.notebook",
        "data_samples_dir": "amodal.utils.paths",
    },
}
_PUBLIC = {name: module for names in TIERS.values() for name, module in names.items()}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'amodal' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_PUBLIC))
