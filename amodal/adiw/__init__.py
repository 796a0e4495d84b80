"""ADIW, the Amodal Depth In the Wild dataset (paper §3.1): samples, labels, builder, loaders.

- :mod:`amodal.adiw.sample`: the sample format, the pseudo-label (fit + paste + clip), disk I/O.
- :mod:`amodal.adiw.sa1b`, :mod:`amodal.adiw.sam_masks`: SA-1B's JSON and RLE masks, and SAM's
  automatic masks written in that format for your own photos.
- :mod:`amodal.adiw.sources`, :mod:`amodal.adiw.objects`, :mod:`amodal.adiw.composite`: photos with
  their masks, the complete-object filter, and pasting an occluder.
- :mod:`amodal.adiw.depth`: relative depth for ``D_o`` and ``D_b`` (Depth Anything V2, stand-ins).
- :mod:`amodal.adiw.build`: sources + SA-1B JSON → shards, in parallel, resumable;
  :mod:`amodal.adiw.shards` keeps the shards' books (manifests, ranks, workers, report).
- :mod:`amodal.adiw.dataset`: a ``torch.utils.data.Dataset`` over built shards.
- :mod:`amodal.adiw.official`: the paper's own data layout (pix2gestalt + official labels).
- :mod:`amodal.adiw.pix2gestalt`: importer for pix2gestalt's released occlusion data.
- :mod:`amodal.adiw.synthetic`, :mod:`amodal.adiw.quality`: synthetic occlusions with
  exact hidden depth, and how good the labels are.
"""
from amodal.adiw.sample import AdiwSample, pseudo_label, read_manifest, read_sample, write_sample

__all__ = ["AdiwSample", "pseudo_label", "read_sample", "write_sample", "read_manifest"]
