"""ADIW samples from synthetic scenes, where the hidden depth is exact.

The photo pipeline pastes a 2-D occluder and *estimates* ``D_o`` and ``D_b``. Here
the occlusion is made in 3-D instead: render a scene (the background ``I_b``), add a
floating object between the camera and a fully visible target, and render again (the
composite ``I_o``). Both renders come with exact depth, so an :class:`OracleDepth`
can play the depth model (exactly, or with an unknown affine/gamma map and noise), and
the target's full surface depth — what ADIW's label tries to guess — is known.

Frames: ``exact_target`` is the target's true disparity normalised with the true
composite's disparity range, the frame the exact oracle's ``D_o`` lives in.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
from scipy.ndimage import binary_fill_holes

from amodal.adiw.composite import BUCKET_RANGES
from amodal.adiw.depth import OracleDepth
from amodal.adiw.sample import AdiwSample, pseudo_label
from amodal.metrics import visible_ratio_bucket
from amodal.scenes.realism import Realism, camera_effects, photo_texture, random_light, realism_rng, with_holes
from amodal.scenes.synth import (
    Box,
    Cylinder,
    Render,
    Scene,
    Sphere,
    disparity_from_depth,
    disparity_range,
    random_scene,
    render,
)
from amodal.utils.crops import object_crop


@dataclass
class SynthOcclusion:
    """A background render, the composite render, and who is who.

    Attributes:
        scene: the background scene (without the occluder).
        background: its render (``I_b``).
        composite: the render with the occluder (``I_o``); the occluder is its last object.
        target: index of the target object.
        exact_target: ``(H, W)`` float64, the truth in ``D_o``'s exact frame: the target's full
            surface inside ``M_a``, the composite's visible depth elsewhere.
        filled_mask: ``(H, W)`` bool, with :class:`~amodal.scenes.realism.Realism` ``holes``: the
            target's mask with its holes filled, which is then ``M_a`` (``M_vis`` is it less the
            occluder); inside a hole ``exact_target`` is what the background render sees there.
    """

    scene: Scene = field(repr=False)
    background: Render = field(repr=False)
    composite: Render = field(repr=False)
    target: int
    exact_target: np.ndarray = field(repr=False)
    filled_mask: np.ndarray | None = field(default=None, repr=False)

    @property
    def amodal_mask(self) -> np.ndarray:
        if self.filled_mask is not None:
            return self.filled_mask
        return self.composite.amodal_masks[self.target]

    @property
    def visible_mask(self) -> np.ndarray:
        if self.filled_mask is not None:
            return self.filled_mask & ~self.occluder_mask
        return self.composite.visible_masks[self.target]

    @property
    def occluder_mask(self) -> np.ndarray:
        return self.composite.visible_masks[-1]

    @property
    def visible_ratio(self) -> float:
        if self.filled_mask is not None:
            return float(self.visible_mask.sum() / self.filled_mask.sum())
        return self.composite.visible_ratio(self.target)


def _complete_targets(r: Render, min_area_fraction: float = 0.01) -> list[int]:
    """Objects fully visible in the background and not cut by the frame."""
    out = []
    h, w = r.labels.shape
    for k in range(len(r.amodal_masks)):
        m = r.amodal_masks[k]
        area = m.sum()
        if area < min_area_fraction * h * w or r.visible_ratio(k) < 0.999:
            continue
        if m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any():
            continue
        out.append(k)
    return out


def _random_occluder(rng, scene: Scene, target_mask: np.ndarray, target_depth: np.ndarray, varied: bool = False):
    """A floating shape nearer than the target, aimed at a random pixel of the target.

    ``varied`` (:class:`~amodal.scenes.realism.Realism` ``occluders="varied"``): from a third to
    2.5 times the target's size and anywhere from just in front of it to far nearer, aimed at
    any of its pixels; otherwise 0.35–0.8 times its size, aimed off-centre.
    """
    cam = scene.camera
    rows, cols = np.nonzero(target_mask)
    z_front = float(target_depth[target_mask].min())
    z = z_front * (rng.uniform(0.25, 0.92) if varied else rng.uniform(0.45, 0.8))
    pick = rng.integers(rows.size)
    # aim at a pixel of the target, pushed outwards from its centre so partial overlaps occur
    spread = 0.15 if varied else 0.3
    v = rows[pick] + rng.normal(0, spread) * (rows.max() - rows.min() + 1)
    u = cols[pick] + rng.normal(0, spread) * (cols.max() - cols.min() + 1)
    x = (u + 0.5 - cam.centre[0]) * z / cam.focal
    y = (v + 0.5 - cam.centre[1]) * z / cam.focal
    # world size that covers about the target's image size at depth z, times a random factor
    factor = math.exp(rng.uniform(math.log(0.33), math.log(2.5))) if varied else rng.uniform(0.35, 0.8)
    extent = math.sqrt(target_mask.sum()) * z / cam.focal * factor
    # keep the whole occluder in front of the target's nearest point
    extent = min(extent, 0.9 * (z_front - z))
    tex = int(rng.integers(len(scene.textures)))
    kind = rng.integers(3)
    if kind == 0:
        return Sphere((x, y, z), extent, texture=tex)
    if kind == 1:
        return Box((x, y, z), (extent * 0.8, extent * 0.8, extent * 0.5), yaw=rng.uniform(-0.7, 0.7), texture=tex)
    return Cylinder((x, y, z), extent * 0.6, extent * 0.9, texture=tex)


def synth_occlusion(
    seed: int,
    size: int = 128,
    visible_range: tuple[float, float] = BUCKET_RANGES["mid"],
    textures: Sequence[np.ndarray] | None = None,
    silhouettes: Sequence[np.ndarray] = (),
    attempts: int = 40,
    shapes: str = "simple",
    realism: Realism = Realism(),
) -> SynthOcclusion:
    """A seeded synthetic occlusion whose target's visible ratio lies in ``visible_range``.

    Scenes without a complete target, or where no occluder lands in range after
    ``attempts`` tries, are replaced by the next scene of the same seed's stream.

    Args:
        seed: same seed, same result.
        size: image side.
        visible_range: ``(low, high)``: ``low < r ≤ high``.
        textures, silhouettes, shapes: see :func:`amodal.scenes.synth.random_scene`.
        realism: what the scene borrows from photos (:mod:`amodal.scenes.realism`); its draws
            come from their own generator, so the default gives the plain scenes of the seed.
    """
    rng = np.random.default_rng([seed, 7919])
    look = realism_rng(seed)
    if realism.textures == "photo":
        if textures:
            raise ValueError("give textures or a realism with photo textures, not both")
        textures = [photo_texture(look) for _ in range(6)]
    low, high = visible_range
    for _ in range(50):
        scene = random_scene(int(rng.integers(2**31)), size, textures, n_objects=(2, 4), silhouettes=silhouettes,
                             shapes=shapes)
        if realism.light:
            direction, ambient = random_light(look)
            scene = replace(scene, light_direction=tuple(direction), ambient=ambient)
        if realism.holes:
            scene = with_holes(scene, look)
        background = render(scene)
        targets = _complete_targets(background)
        if not targets:
            continue
        target = targets[int(rng.integers(len(targets)))]
        if realism.view == "object":
            # the view predict gives the network: the target's object-centred crop, rendered afresh
            box = object_crop(background.amodal_masks[target], float(look.uniform(0.05, 0.5)))
            scene = replace(scene, camera=scene.camera.crop(*box, size))
            background = render(scene)
            if target not in _complete_targets(background):
                continue
        shape = background.amodal_masks[target]
        mask = binary_fill_holes(shape) if realism.holes else shape
        for _ in range(attempts):
            occluder = _random_occluder(rng, scene, mask, background.amodal_depth[target],
                                        varied=realism.occluders == "varied")
            t, _, _ = occluder.hit(scene.camera.rays())
            covered = np.isfinite(t).reshape(mask.shape)
            ratio = float((mask & ~covered).sum() / mask.sum())
            if low < ratio <= high:
                composite = render(scene.with_object(occluder))
                between = abs(composite.visible_ratio(target) - float((shape & ~covered).sum() / shape.sum())) > 1e-9
                if realism.holes:  # nothing but the occluder may hide the holes either
                    between |= (mask & ~composite.visible_masks[-1]).sum() != (mask & ~covered).sum()
                if between:
                    continue  # another object stands between; keep the bookkeeping simple
                lo_hi = disparity_range(composite.depth)
                exact = disparity_from_depth(composite.depth, lo_hi)
                # the target's own surface and, in its holes, what the unoccluded scene shows there
                behind = np.where(shape, background.amodal_depth[target], background.depth)
                exact[mask] = disparity_from_depth(behind, lo_hi)[mask]
                if exact[mask].min() < 0:
                    # nothing in view lies behind the hidden part (a crop, a hole, an occluder over the far
                    # wall): its truth would lie past D_o's far end, a negative disparity SILog cannot take.
                    # None of the 1,500 plain or photo-like training scenes of seed 2024, nor of the first 240
                    # held-out simple and rich ones of seeds 2025 and 2026 (112²), meets it: they are as they were.
                    continue
                if realism.camera:
                    composite = replace(composite, image=camera_effects(composite.image, look))
                return SynthOcclusion(scene, background, composite, target, exact,
                                      filled_mask=mask if realism.holes else None)
    raise RuntimeError(f"seed {seed}: no synthetic occlusion with visible ratio in {visible_range} found")


def synth_sample(
    occlusion: SynthOcclusion,
    oracle: OracleDepth,
    fit: str = "visible",
    sample_id: str = "synth",
) -> AdiwSample:
    """Run ADIW's label construction on a synthetic occlusion.

    The oracle is told the true disparity of both renders, then asked for ``D_o`` and
    ``D_b`` exactly as a depth model would be; the label follows :func:`pseudo_label`.
    """
    comp, back = occlusion.composite, occlusion.background
    oracle.remember(comp.image, 1.0 / comp.depth)
    oracle.remember(back.image, 1.0 / back.depth)
    observed, background = oracle.predict([comp.image, back.image])
    target, scale, shift = pseudo_label(
        observed, background, occlusion.amodal_mask, occlusion.visible_mask, fit=fit, occluder_mask=occlusion.occluder_mask
    )
    ratio = occlusion.visible_ratio
    return AdiwSample(
        sample_id=sample_id,
        image=np.clip(np.rint(comp.image * 255), 0, 255).astype(np.uint8),
        observed_depth=observed,
        amodal_mask=occlusion.amodal_mask.copy(),
        visible_mask=occlusion.visible_mask.copy(),
        target_depth=target,
        bucket=visible_ratio_bucket(ratio),
        visible_ratio=ratio,
        provenance={"source": "synth", "estimator": oracle.name, "fit": fit, "scale": scale, "shift": shift},
    )
