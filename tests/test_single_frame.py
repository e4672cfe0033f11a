"""Single-frame (CLIP+SAM, CLIP+DETR, CLIP+RefCLIP) and VOS (Su et al.) baselines: build, train step, gradients,
differentiable region selection, the no-detection fallback, local-weight round trips and full-size counts."""
from __future__ import annotations

import pytest
import torch

from ravar_bench.encoders.regions import boxes_from_binary_masks, crop_regions, fallback_to_frame, masked_softmax
from ravar_bench.factory import build_method
from ravar_bench.model.head import ravar_loss
from ravar_bench.testing import with_actor_text

torch.set_num_threads(2)

B, NO, L = 4, 16, 12
TEXTS = ["a man in a red shirt on the left", "the woman with long hair", "an old man wearing glasses",
         "the child near the door"]


# another architecture than the shipped pretrained tiny files fit: random weights (tests/test_text_video.py); a
# publisher's file made for the clip's 64 px does not fit the actor pass's 32 px instance: no actor pass
VARIANT = {"init.weights": "scratch"}
NO_ACTOR = {**VARIANT, "head.actor_pass": False, "head.cand_appearance": False}


def make_batch(b: int = B, seed: int = 0, size: int = 64, n_det: int = NO, det_frac: float = 0.7) -> dict:
    """A hand-made batch, with the actor pass's fixed-sentence features that the engine's text cache adds."""
    return with_actor_text(_raw_batch(b=b, seed=seed, size=size, n_det=n_det, det_frac=det_frac))


def _raw_batch(b: int = B, seed: int = 0, size: int = 64, n_det: int = NO, det_frac: float = 0.7) -> dict:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(b, n_det, 2, generator=g) * 0.6
    wh = torch.rand(b, n_det, 2, generator=g) * 0.35 + 0.05
    mask = torch.rand(b, n_det, generator=g) < det_frac
    mask[:, 0] = True
    cats = torch.randint(1, 4, (b, n_det), generator=g)
    cats[:, 0] = 1  # at least one person per frame
    text_mask = torch.zeros(b, L, dtype=torch.bool)
    text_mask[:, :8] = True
    return {
        "key": [f"v___{i}___0" for i in range(b)], "text": (TEXTS * b)[:b],
        "labels": (torch.rand(b, 80, generator=g) < 0.1).float(),
        "box": torch.tensor([[0.1, 0.2, 0.5, 0.9]]).repeat(b, 1),
        "video": torch.randn(b, 8, 3, size, size, generator=g),
        "keyframe": torch.randn(b, 3, size, size, generator=g),
        "text_emb": torch.randn(b, 384, generator=g),
        "text_tokens": torch.randn(b, L, 384, generator=g), "text_mask": text_mask,
        "detections": {"boxes": torch.cat([xy, xy + wh], -1), "scores": torch.rand(b, n_det, generator=g),
                       "mask": mask, "cat_ids": cats, "cat_emb": torch.randn(b, n_det, 384, generator=g)},
    }


def train_step(model, batch):
    model.train()
    model.zero_grad(set_to_none=True)
    out = model(batch)
    losses = ravar_loss(out["logits"], out["boxes"], batch["labels"], batch["box"])
    losses["loss"].backward()
    return out, losses


def has_grad(module) -> bool:
    return any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def no_grad(module) -> bool:
    return all(p.grad is None or p.grad.abs().sum() == 0 for p in module.parameters())


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {n: build_method(n, "tiny") for n in ("clip_sam", "clip_detr", "clip_refclip", "su_vos")}


# ---------------------------------------------------------------- build, train step, gradients
@pytest.mark.parametrize("name", ["clip_sam", "clip_detr", "clip_refclip", "su_vos"])
def test_builds_and_trains(models, name):
    model = models[name]
    batch = make_batch()
    out, losses = train_step(model, batch)
    assert out["logits"].shape == (B, 80) and out["boxes"].shape == (B, 4)
    assert torch.isfinite(losses["loss"])
    assert has_grad(model.head)
    m = model.method
    if name == "su_vos":
        assert model.method.needs == {"video", "text_tokens"}
        for part in (m.backbone, m.convert, m.text_resizer, m.mutan, m.layers[0].filter, m.layers[-1].time):
            assert has_grad(part)
    else:
        assert "keyframe" in model.needs and "text" in model.needs
        clip = m.selector.clip
        assert has_grad(clip.visual) and has_grad(clip.transformer)
    if name == "clip_sam":
        assert no_grad(m.sam) and not m.sam.training  # the frozen proposer
    if name == "clip_refclip":
        for part in (m.linear_vs, m.linear_ts, m.anchor_head.neck, m.anchor_head.pred, m.backbone):
            assert has_grad(part)  # tiny config trains the detector (freeze_detector=False)


def test_wrong_input_size_is_a_clear_error(models):
    batch = make_batch(size=48)
    for name in ("clip_sam", "clip_detr", "clip_refclip"):
        with pytest.raises(ValueError, match="keyframe"):
            models[name](batch)
    # the clip has the right length (8) and the wrong size: the error names data.img_size only
    with pytest.raises(ValueError, match=r"has shape \(\d+, 8, 3, 48, 48\).*; set data\.img_size in"):
        models["su_vos"](batch)


# ---------------------------------------------------------------- soft selection is differentiable
@pytest.mark.parametrize("name", ["clip_sam", "clip_detr", "clip_refclip"])
def test_region_selection_receives_gradients(models, name):
    model = models[name]
    model.train()
    model.zero_grad(set_to_none=True)
    m = model.method
    batch = make_batch(seed=1)
    out = model(batch)
    scores = m.selector.last_scores
    scores.retain_grad()
    ravar_loss(out["logits"], out["boxes"], batch["labels"], batch["box"])["loss"].backward()
    assert scores.grad is not None and scores.grad.abs().sum() > 0
    if name == "clip_refclip":
        assert m.linear_vs.weight.grad.abs().sum() > 0  # RefCLIP's scorer learns from the RAVAR loss alone
    else:
        assert m.selector.clip.logit_scale.grad.abs() > 0  # reaches CLIP's temperature only through the selection


def test_selection_follows_the_text():
    # The selector weights the region whose CLIP feature matches the text: put a text-aligned region in slot 2.
    from ravar_bench.encoders.regions import ClipRegionSelector

    torch.manual_seed(0)
    m = build_method("clip_detr", "tiny").method.eval()
    sel: ClipRegionSelector = m.selector
    batch = make_batch(seed=2)
    kf = batch["keyframe"]
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.5, 0.0, 1.0, 0.5], [0.0, 0.5, 0.5, 1.0], [0.5, 0.5, 1.0, 1.0]])
    boxes = boxes.expand(B, -1, -1)
    with torch.no_grad():
        regions = sel.clip.encode_image(crop_regions(kf, boxes, sel.size), normalize=True).view(B, 4, -1)
        out = sel(kf, boxes, torch.ones(B, 4, dtype=torch.bool), regions[:, 2])
    assert (out["weights"].argmax(-1) == 2).all()
    assert torch.allclose(out["box"], (out["weights"].unsqueeze(-1) * boxes).sum(1), atol=1e-6)


# ---------------------------------------------------------------- no detections: whole frame, counted, finite
def test_clip_detr_no_detections_falls_back_and_counts(models):
    model = models["clip_detr"]
    m = model.method
    batch = make_batch(seed=3)
    batch["detections"]["mask"][:2] = False  # two frames without any detection
    batch["detections"]["cat_ids"][2] = 3  # a frame with detections but no person (cars)
    before = m.no_detection_count
    out, losses = train_step(model, batch)
    assert m.no_detection_count - before == 3
    assert torch.isfinite(losses["loss"]) and torch.isfinite(out["logits"]).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.eval()
    with torch.no_grad():
        feats = m(batch)
    assert torch.equal(feats[:3, -4:], torch.tensor([[0.0, 0.0, 1.0, 1.0]]).repeat(3, 1))  # the whole frame
    assert not torch.equal(feats[3, -4:], torch.tensor([0.0, 0.0, 1.0, 1.0]))


def test_clip_detr_runs_frozen_detr_without_cache():
    torch.manual_seed(0)
    # random DETR weights rarely rank "person" first, so every class counts here (person_only=False)
    model = build_method("clip_detr", "tiny", cfg_options={"model.detector": "detr", "model.score_threshold": 0.0,
                                                           "model.person_only": False, **VARIANT})
    assert "detections" not in model.method.needs  # the method reads no cache (the shared head's candidates may)
    batch = make_batch(seed=4)
    del batch["detections"]
    out, losses = train_step(model, batch)
    assert torch.isfinite(losses["loss"])
    assert no_grad(model.method.detr) and not model.method.detr.training
    assert model.method.no_detection_count == 0
    # a threshold no score reaches: every frame falls back to the whole frame and is counted
    model.method.score_threshold = 1.01
    out, losses = train_step(model, batch)
    assert torch.isfinite(losses["loss"]) and model.method.no_detection_count == B


def test_clip_sam_empty_masks_fall_back(models):
    model = models["clip_sam"]
    m = model.method
    batch = make_batch(seed=5)
    before, thr = m.no_detection_count, m.mask_threshold
    m.mask_threshold = 1e9  # no pixel passes: every mask is empty
    try:
        out, losses = train_step(model, batch)
    finally:
        m.mask_threshold = thr
    assert m.no_detection_count - before == B
    assert torch.isfinite(losses["loss"])


def test_region_helpers():
    scores = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    mask = torch.tensor([[True, False, True], [False, False, False]])
    w = masked_softmax(scores, mask)
    assert torch.isfinite(w).all() and w[0, 1] == 0 and torch.allclose(w[0].sum(), torch.tensor(1.0))
    assert torch.equal(w[1], torch.zeros(3))
    boxes, mask2, empty = fallback_to_frame(torch.rand(2, 3, 4), mask)
    assert empty.tolist() == [False, True] and mask2[1, 0] and torch.equal(boxes[1, 0], torch.tensor([0.0, 0, 1, 1]))
    masks = torch.zeros(2, 16, 32, dtype=torch.bool)
    masks[0, 4:12, 8:24] = True
    b, valid = boxes_from_binary_masks(masks)
    assert valid.tolist() == [True, False]
    assert torch.allclose(b[0], torch.tensor([8 / 32, 4 / 16, 24 / 32, 12 / 16]))


# ---------------------------------------------------------------- RefCLIP and SAW pieces
def test_refclip_contrastive_prefers_matching_pairs():
    from ravar_bench.baselines.clip_refclip import refclip_contrastive

    txt = torch.eye(4, 8) * 5
    vis = torch.randn(4, 6, 8) * 0.1
    matched = vis.clone()
    matched[torch.arange(4), 0] = txt  # each image holds one anchor matching its own sentence
    shuffled = matched[[1, 2, 3, 0]]
    assert refclip_contrastive(matched, txt) < 0.1 < refclip_contrastive(shuffled, txt)


def test_refclip_aux_loss_backpropagates(models):
    model = models["clip_refclip"]
    m = model.method
    model.train()
    model.zero_grad(set_to_none=True)
    model(make_batch(seed=6))
    assert m.aux_loss is not None and torch.isfinite(m.aux_loss)
    m.aux_loss.backward()
    assert m.linear_ts.weight.grad.abs().sum() > 0
    assert m.last_pick.shape == (B,)


def test_saw_circle_padding_matches_release():
    from ravar_bench.baselines.su_vos import circle_pad_time

    def release_index(t, pad):  # SAW's circle_padding (models/module/RefTransformer.py), index part only
        index = list(range(0, t)) + list(range(t - 2, 0, -1))
        num_c = pad // len(index)
        if num_c * len(index) < pad:
            num_c += 1
        start = num_c * len(index) - pad
        for _ in range(num_c):
            index = index + index + index
        return index[start:start + 2 * pad + t]

    x = torch.arange(8.0).view(1, 1, 8, 1, 1)
    for pad in (1, 2, 4, 8, 16, 32):
        got = circle_pad_time(x, pad).flatten().long().tolist()
        assert got == release_index(8, pad), pad


def test_su_vos_uses_text_and_ignores_padding(models):
    m = models["su_vos"].method.eval()
    batch = make_batch(seed=7)
    with torch.no_grad():
        ref = m(batch)
        padded = dict(batch, text_tokens=batch["text_tokens"].clone())
        padded["text_tokens"][:, 8:] = 100.0  # only padding positions change
        other = dict(batch, text_tokens=torch.randn_like(batch["text_tokens"]))
        assert torch.allclose(m(padded), ref, atol=1e-5)
        assert not torch.allclose(m(other), ref, atol=1e-3)


# ---------------------------------------------------------------- local weights through the config
def _save(sd: dict, path):
    torch.save({k: v.detach().clone() for k, v in sd.items()}, path)
    return str(path)


def test_clip_sam_weights_round_trip(models, tmp_path):
    src = models["clip_sam"].method.eval()
    sam = _save(src.sam.state_dict(), tmp_path / "sam.pt")
    clip = _save(src.selector.clip.state_dict(), tmp_path / "clip.pt")
    torch.manual_seed(123)
    dst = build_method("clip_sam", "tiny", cfg_options={"model.sam_pretrained": sam,
                                                         "model.clip.pretrained": clip, **NO_ACTOR}).method.eval()
    batch = make_batch(seed=8)
    with torch.no_grad():
        assert torch.equal(src(batch), dst(batch))


def test_clip_detr_weights_round_trip(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    src = build_method("clip_detr", "tiny", cfg_options={"model.detector": "detr", "model.score_threshold": 0.0,
                                                          **VARIANT}).method.eval()
    folder = tmp_path / "detr-tiny"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in src.detr.state_dict().items()}, str(folder / "model.safetensors"))
    clip = _save(src.selector.clip.state_dict(), tmp_path / "clip.pt")
    torch.manual_seed(321)
    dst = build_method("clip_detr", "tiny", cfg_options={
        "model.detector": "detr", "model.score_threshold": 0.0, "model.detr_pretrained": str(folder),
        "model.clip.pretrained": clip, **NO_ACTOR}).method.eval()
    batch = make_batch(seed=9)
    with torch.no_grad():
        assert torch.equal(src(batch), dst(batch))
    with pytest.raises(FileNotFoundError, match="model.pretrained|local file"):
        build_method("clip_detr", "tiny", cfg_options={"model.clip.pretrained": str(tmp_path / "missing.pt")})


def test_clip_refclip_weights_round_trip(models, tmp_path):
    src = models["clip_refclip"].method.eval()
    path = _save(src.state_dict(), tmp_path / "refclip.pt")
    torch.manual_seed(77)
    dst = build_method("clip_refclip", "tiny", cfg_options={"model.pretrained": path}).method.eval()
    batch = make_batch(seed=10)
    with torch.no_grad():
        assert torch.equal(src(batch), dst(batch))


def test_su_vos_backbone_weights_round_trip(models, tmp_path):
    src = models["su_vos"].method.eval()
    path = _save(src.backbone.state_dict(), tmp_path / "resnet.pt")
    torch.manual_seed(99)
    dst = build_method("su_vos", "tiny", cfg_options={"model.pretrained": path}).method.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(torch.cat([f.flatten() for f in src.backbone(x)]),
                           torch.cat([f.flatten() for f in dst.backbone(x)]))
        assert not torch.equal(src.convert.weight, dst.convert.weight)  # only the backbone was loaded


# ---------------------------------------------------------------- full configs = published sizes (meta device)
def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def close(n: int, published: float, tol: float = 0.05) -> bool:
    return abs(n - published) / published <= tol


# CLIP ViT-B/16: 149.62M parameters (open_clip's docs/model_profile.csv, row ViT-B-16: 86.19M image + 63.43M text).
CLIP_B16 = 149.62e6


def test_full_clip_sam_size():
    m = build_method("clip_sam", "full", device="meta").method
    # SAM ViT-B: 93.7M parameters in the released sam_vit_b checkpoint (facebook/sam-vit-base model card);
    # its image encoder: "ViT-B, 91M" (Kirillov et al., Segment Anything, ICCV'23, image-encoder ablation).
    assert close(n_params(m.sam), 93.7e6)
    assert close(n_params(m.sam.vision_encoder), 91e6)
    assert close(n_params(m.selector.clip), CLIP_B16)
    assert m.points.shape == (64, 2) and m.sam_size == 1024


def test_full_clip_detr_size():
    m = build_method("clip_detr", "full", cfg_options={"model.detector": "detr"}, device="meta").method
    # DETR-R50: 41M parameters (Carion et al., End-to-End Object Detection with Transformers, ECCV'20, Table 1).
    assert close(n_params(m.detr), 41e6)
    assert m.detr.config.num_queries == 100
    assert close(n_params(m.selector.clip), CLIP_B16)
    assert "detections" in build_method("clip_detr", "full", device="meta").needs


def test_full_clip_refclip_size():
    m = build_method("clip_refclip", "full", device="meta").method
    # DarkNet-53: 41.6M parameters with its 1000-way classifier (timm darknet53 model card; Redmon & Farhadi,
    # YOLOv3, 2018); features_only drops the classifier (1024 * 1000 + 1000).
    assert close(n_params(m.backbone) + 1024 * 1000 + 1000, 41.6e6, tol=0.02)
    assert close(n_params(m.selector.clip), CLIP_B16)
    assert m.linear_vs.out_features == 512 and m.select_num == 17  # RefCLIP's HIDDEN_SIZE / SELECT_NUM
    assert all(not p.requires_grad for p in m.backbone.parameters())  # RefCLIP's VIS_FREEZE


def test_full_su_vos_size():
    m = build_method("su_vos", "full", device="meta").method
    # ResNet-101: 44,549,160 parameters (torchvision ResNet101_Weights.IMAGENET1K_V1 card), less the fc layer
    # (2048 * 1000 + 1000); frozen BatchNorm keeps its 105,344 affine values as buffers, not parameters.
    frozen_bn = sum(b.numel() for n, b in m.backbone.named_buffers() if n.endswith(("weight", "bias")))
    assert n_params(m.backbone) + frozen_bn == 44_549_160 - 2_049_000
    assert len(m.layers) == 6 and m.feat_dim == 512  # SAW: 6 Ref-Transformer layers, hidden 256
    assert all(not p.requires_grad for p in m.backbone.parameters())
