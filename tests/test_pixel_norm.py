"""Each full-config backbone receives frames in its publisher's pixel statistics (issue 24).

A clip of uint8 pixels goes through the loader's own normalisation (``data.frames.normalise`` with the full config's
data.mean / data.std), into the method built on the meta device; a hook stops the forward at the backbone's input.
De-normalising that input with the statistics the publisher's config states (written here as the publisher writes
them, 0-255 where it does) must give back the pixels. Tiny configs keep one shared normalisation: the identity.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import ravar_bench
from ravar_bench.config import load_config
from ravar_bench.data.frames import normalise
from ravar_bench.encoders.pixel_norm import PixelNorm
from ravar_bench.errors import UsageError

pytestmark = pytest.mark.filterwarnings("ignore:for .*copying from a non-meta parameter:UserWarning")


def _per255(mean, std):
    return tuple(m / 255 for m in mean), tuple(s / 255 for s in std)


# as the publishers' configs state them
MMACTION_IMAGENET = _per255((123.675, 116.28, 103.53), (58.395, 57.12, 57.375))  # i3d_r50.py, videomaev2 configs
MMACTION_X3D = _per255((114.75,) * 3, (57.38,) * 3)  # mmaction2 configs/_base_/models/x3d.py
MMACTION_MVIT_B = _per255((114.75,) * 3, (57.375,) * 3)  # mvit-base-p244_32x3x1_kinetics400-rgb.py
# hiera examples/inference.ipynb: "frames - 0.45", "/ [0.225, 0.225, 0.255]" (the last a typo of SlowFast's 0.225)
HIERA_VIDEO = ((0.45,) * 3, (0.225,) * 3)
SINGULARITY_BEIT = ((0.5,) * 3, (0.5,) * 3)  # jayleicn/singularity dataset/__init__.py, vit_type "beit"
TORCHVISION_IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # ImageNet ResNet-101 (su_vos)
SAM = _per255((123.675, 116.28, 103.53), (58.395, 57.12, 57.375))  # segment_anything Sam.pixel_mean / pixel_std
OPENAI_CLIP = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))  # clip/clip.py _transform


class _Reached(Exception):
    pass


def _stop_at(module: torch.nn.Module, seen: list):
    """Record the tensor reaching ``module`` (its first positional argument or ``pixel_values``) and stop."""
    def hook(_m, args, kwargs):
        seen.append(args[0] if args else kwargs["pixel_values"])
        raise _Reached
    return module.register_forward_pre_hook(hook, with_kwargs=True)


def _clip(cfg, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 frames (B, T, 3, H, W) and the loader's normalisation of them."""
    g = torch.Generator().manual_seed(0)
    n, s = cfg.data.num_frames, cfg.data.img_size
    raw = torch.randint(0, 256, (batch, n, 3, s, s), dtype=torch.uint8, generator=g)
    return raw, normalise(raw.clone(), cfg.data.mean, cfg.data.std)


def _assert_in(stats, x: torch.Tensor, raw: torch.Tensor, channel_dim: int = -3):
    mean, std = stats
    shape = [1] * x.dim()
    shape[channel_dim] = 3
    back = x * torch.tensor(std).view(shape) + torch.tensor(mean).view(shape)
    torch.testing.assert_close(back, raw.to(torch.float32) / 255, rtol=0, atol=1e-3)


def _reach(method, module, call) -> torch.Tensor:
    seen = []
    handle = _stop_at(module, seen)
    try:
        with pytest.raises(_Reached):
            call()
    finally:
        handle.remove()
    return seen[0]


AAL = [("i3d", MMACTION_IMAGENET), ("videomae2_b", MMACTION_IMAGENET), ("x3d", MMACTION_X3D),
       ("mvitv2_b", MMACTION_MVIT_B), ("hiera_b", HIERA_VIDEO)]


@pytest.mark.parametrize("name,stats", AAL, ids=[n for n, _ in AAL])
def test_aal_backbone_reads_its_publishers_statistics(name, stats):
    cfg = load_config(name, "full")
    method = ravar_bench.build_method(name, "full", device="meta").method
    raw, video = _clip(cfg)
    batch = {"video": video, "text_emb": torch.zeros(1, cfg.text_encoder.dim)}
    x = _reach(method, method.backbone, lambda: method(batch))  # (B, 3, T, H, W): channels at dim 1
    _assert_in(stats, x, raw.transpose(1, 2), channel_dim=1)


def test_singularity_beit_reads_half_half():
    cfg = load_config("singularity", "full")
    method = ravar_bench.build_method("singularity", "full", device="meta").method
    raw, video = _clip(cfg)
    x = _reach(method, method.vision_encoder, lambda: method.encode_frames(video))
    _assert_in(SINGULARITY_BEIT, x, raw.flatten(0, 1))


def test_su_vos_resnet_reads_imagenet():
    cfg = load_config("su_vos", "full")
    method = ravar_bench.build_method("su_vos", "full", device="meta").method
    raw, video = _clip(cfg)
    x = _reach(method, method.backbone, lambda: method.encode_frames(video.flatten(0, 1)))
    _assert_in(TORCHVISION_IMAGENET, x, raw.flatten(0, 1))


def test_clip_towers_read_openai_clip_statistics():
    """The data's statistics are CLIP's: the CLIP tower reads the loader's frames as they are."""
    cfg = load_config("clip4clip", "full")
    method = ravar_bench.build_method("clip4clip", "full", device="meta").method
    raw, video = _clip(cfg)
    x = _reach(method, method.clip.visual, lambda: method.encode_video(video))
    _assert_in(OPENAI_CLIP, x, raw.flatten(0, 1))


def test_blip2_vision_reads_openai_clip_statistics():
    """BLIP-2's image processor normalises with OpenAI CLIP's statistics, the data's own (refatomnet's ViT-g)."""
    cfg = load_config("refatomnet", "full")
    method = ravar_bench.build_method("refatomnet", "full", device="meta").method
    raw, video = _clip(cfg)
    x = _reach(method, method.visual.vision_model, lambda: method.encode_visual({"video": video}))
    _assert_in(OPENAI_CLIP, x, raw.flatten(0, 1))


def test_clip_sam_gives_sam_its_statistics():
    cfg = load_config("clip_sam", "full")
    method = ravar_bench.build_method("clip_sam", "full", device="meta").method
    raw, video = _clip(cfg)
    kf, raw_kf = video[:, 0], raw[:, 0]
    x = _reach(method, method.sam, lambda: method.propose(kf))
    size = x.shape[-1]  # SAM's 1024 px: the renormalised key frame is resized after (a per-channel affine map)
    want = F.interpolate(raw_kf.to(torch.float32), size=(size, size), mode="bilinear", align_corners=False)
    back = x * torch.tensor(SAM[1]).view(1, 3, 1, 1) + torch.tensor(SAM[0]).view(1, 3, 1, 1)
    torch.testing.assert_close(back, want / 255, rtol=0, atol=1e-3)


def test_tiny_configs_share_one_normalisation():
    """Tiny AAL configs state no backbone statistics: the frames reach the backbone exactly as decoded."""
    cfg = load_config("x3d", "tiny")
    method = ravar_bench.build_method("x3d", "tiny").method
    assert method.pixel_norm.identity
    _, video = _clip(cfg)
    batch = {"video": video, "text_emb": torch.zeros(1, cfg.text_encoder.dim)}
    x = _reach(method, method.backbone, lambda: method(batch))
    assert torch.equal(x, video.transpose(1, 2))


def test_pixel_norm_is_identity_for_the_datas_own_statistics():
    norm = PixelNorm(OPENAI_CLIP[0], OPENAI_CLIP[1], OPENAI_CLIP[0], OPENAI_CLIP[1])
    x = torch.randn(2, 3, 4, 4)
    assert norm.identity and norm(x) is x


@pytest.mark.parametrize("opts,fragment", [
    ({"model.backbone_mean": (114.75, 114.75, 114.75)}, "model.backbone_mean=(114.75"),
    ({"model.backbone_std": (0.2, 0.0, 0.2)}, "model.backbone_std="),
    ({"model.backbone_mean": (0.45, 0.45)}, "3 numbers"),
    ({"data.std": (0.2, -0.1, 0.2)}, "data.std="),
])
def test_wrong_statistics_are_one_line(opts, fragment):
    with pytest.raises(UsageError, match="is not allowed") as e:
        load_config("x3d", "full", opts)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_half_given_statistics_are_refused_before_anything_starts(tmp_path):
    from ravar_bench.runner.preflight import preflight

    bert = tmp_path / "bert"  # the full configs' BERT folder, so that the preflight reaches the builds
    bert.mkdir()
    (bert / "config.json").write_text("{}")
    with pytest.raises(UsageError, match="backbone_mean and model.backbone_std, or neither") as e:
        preflight(["x3d"], "full", {"model.backbone_std": None, "text_encoder.path": str(bert)})
    assert "\n" not in str(e.value)
