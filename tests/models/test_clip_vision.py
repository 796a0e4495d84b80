"""CLIP's image tower: OpenAI's names and sizes read off the weights, the forward against a
float64 re-derivation of ``clip/model.py``, and pix2gestalt's preprocessing against a numpy
bicubic resize."""
import numpy as np
import pytest
import torch

from amodal.models.clip_vision import CLIP_MEAN, CLIP_STD, CLIPVisionTower
from ldm_reference import bicubic_align_corners, clip_image_forward, clip_shapes, random_weights

SIZES = {"width": 128, "layers": 2, "patch": 4, "grid": 4, "output_dim": 48}


def visual_weights(seed=0):
    state = random_weights(clip_shapes(**SIZES), seed)
    return {k[len("visual."):]: v for k, v in state.items() if k.startswith("visual.")}


def test_vit_l14_has_openais_sizes_and_names():
    with torch.device("meta"):
        tower = CLIPVisionTower()
    state = tower.state_dict()
    # ViT-L/14 at 224²: width 1024, 24 blocks, 16 heads (width / 64), (224/14)² + 1 = 257 tokens, 768 out
    assert state["conv1.weight"].shape == (1024, 3, 14, 14) and "conv1.bias" not in state
    assert state["positional_embedding"].shape == (257, 1024) and state["proj"].shape == (1024, 768)
    assert state["transformer.resblocks.23.attn.in_proj_weight"].shape == (3072, 1024)
    assert state["transformer.resblocks.0.mlp.c_fc.weight"].shape == (4096, 1024)
    assert tower.transformer.resblocks[0].attn.num_heads == 16
    assert "transformer.resblocks.24.ln_1.weight" not in state and "mean" not in state
    assert set(state) == {k[len("visual."):] for k in clip_shapes(1024, 24, 14, 16, 768) if k.startswith("visual.")}


def test_sizes_are_read_off_the_weights_and_the_forward_matches_the_reference():
    weights = visual_weights()
    tower = CLIPVisionTower.from_state_dict(weights)
    assert (tower.image_size, tower.patch_size, tower.output_dim) == (16, 4, 48)
    assert len(tower.transformer.resblocks) == 2 and tower.transformer.resblocks[0].attn.num_heads == 2
    pixels = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = tower(pixels)
    reference = clip_image_forward(weights, pixels)
    assert ours.shape == (3, 48) and ours.dtype == torch.float32
    np.testing.assert_allclose(ours.double().numpy(), reference.numpy(), rtol=1e-5, atol=1e-5)


def test_preprocessing_is_pix2gestalts_bicubic_resize_and_clip_normalisation():
    tower = CLIPVisionTower.from_state_dict(visual_weights())
    image = torch.rand(2, 3, 24, 20, generator=torch.Generator().manual_seed(2)) * 2 - 1
    resized = bicubic_align_corners(image.double().numpy(), 16, 16)
    mean, std = np.array(CLIP_MEAN).reshape(1, 3, 1, 1), np.array(CLIP_STD).reshape(1, 3, 1, 1)
    expected = ((resized + 1) / 2 - mean) / std
    np.testing.assert_allclose(tower.preprocess(image).numpy(), expected, rtol=1e-5, atol=1e-5)
    # kornia's resize returns an image of the right size as it is
    same = torch.rand(1, 3, 16, 16) * 2 - 1
    np.testing.assert_allclose(tower.preprocess(same).numpy(), ((same.numpy() + 1) / 2 - mean) / std, atol=1e-6)
    with torch.no_grad():
        np.testing.assert_allclose(tower.embed(image).numpy(), tower(tower.preprocess(image)).numpy(), rtol=1e-6)
    assert CLIP_MEAN == (0.48145466, 0.4578275, 0.40821073) and CLIP_STD == (0.26862954, 0.26130258, 0.27577711)


def test_wrong_weights_fail_clearly():
    weights = visual_weights()
    with pytest.raises(ValueError, match="clip.ckpt: not CLIP vision weights; missing"):
        CLIPVisionTower.from_state_dict({k: v for k, v in weights.items() if k != "proj"}, "clip.ckpt")
    broken = dict(weights, **{"ln_post.weight": torch.ones(7)})
    with pytest.raises(ValueError, match="clip.ckpt: CLIP vision weights do not fit"):
        CLIPVisionTower.from_state_dict(broken, "clip.ckpt")
    with pytest.raises(ValueError, match="multiple"):
        CLIPVisionTower(image_size=225)
