"""The actor-centred second pass (ravar_bench/model/actor_crop.py, RavarModel with head.actor_pass): which pixels the
second instance sees, in training and in evaluation, and that it is a separate instance."""
import pytest
import torch

from ravar_bench.config import load_config
from ravar_bench.factory import actor_config, build_from_config
from ravar_bench.method import Method
from ravar_bench.model.actor_crop import ACTOR_SENTENCE, actor_batch, boxes_into, crop_frames, square_around
from ravar_bench.model.head import SharedHead
from ravar_bench.model.ravar_model import RavarModel
from ravar_bench.testing import ACTOR32


def _frame_with_square(b=1, t=2):
    """(B, T, 3, 64, 64) zeros with ones on x 16..31, y 32..47, i.e. the normalised box (0.25, 0.5, 0.5, 0.75)."""
    v = torch.zeros(b, t, 3, 64, 64)
    v[..., 32:48, 16:32] = 1.0
    return v


def test_square_is_centred_on_the_box_with_the_longer_side_expanded():
    sq = square_around(torch.tensor([[0.2, 0.1, 0.4, 0.9]]), expand=1.25)  # w 0.2, h 0.8 -> side 1.0
    assert torch.allclose(sq, torch.tensor([[-0.2, 0.0, 0.8, 1.0]]), atol=1e-6)
    assert torch.allclose(square_around(torch.tensor([[0.5, 0.5, 0.5, 0.5]])), torch.tensor([[0.45, 0.45, 0.55, 0.55]]))


def test_crop_resamples_the_square_to_the_full_size():
    v = _frame_with_square()
    exact = crop_frames(v, torch.tensor([[0.25, 0.5, 0.5, 0.75]]))  # the lit square itself fills the crop
    assert exact.shape == v.shape
    assert exact[..., 2:-2, 2:-2].min().item() == pytest.approx(1.0)
    double = crop_frames(v, torch.tensor([[0.125, 0.375, 0.625, 0.875]]))  # twice the side: lit in the middle half
    assert double[..., 20:44, 20:44].min().item() == pytest.approx(1.0)
    assert double[..., :12, :].abs().max().item() == 0.0 and double[..., :, 52:].abs().max().item() == 0.0
    key = crop_frames(v[:, 0], torch.tensor([[0.25, 0.5, 0.5, 0.75]]))  # a key frame (B, 3, H, W) the same way
    assert key.shape == (1, 3, 64, 64) and key[..., 2:-2, 2:-2].min().item() == pytest.approx(1.0)
    small = crop_frames(v, torch.tensor([[0.125, 0.375, 0.625, 0.875]]), size=32)  # the crop's own resolution
    assert small.shape == (1, 2, 3, 32, 32)
    assert small[..., 10:22, 10:22].min().item() == pytest.approx(1.0) and small[..., :6, :].abs().max().item() == 0.0


def test_boxes_move_into_crop_coordinates_and_outside_ones_are_flagged():
    sq = torch.tensor([[0.2, 0.1, 0.6, 0.5]])
    moved, inside = boxes_into(torch.tensor([[[0.3, 0.3, 0.5, 0.7], [0.7, 0.7, 0.9, 0.9]]]), sq)
    assert torch.allclose(moved[0, 0], torch.tensor([0.25, 0.5, 0.75, 1.0]))  # the bottom clipped at the crop's edge
    assert inside.tolist() == [[True, False]]
    one, _ = boxes_into(torch.tensor([[0.2, 0.1, 0.6, 0.5]]), sq)  # a (B, 4) box: the square itself is the whole crop
    assert torch.allclose(one, torch.tensor([[0.0, 0.0, 1.0, 1.0]]))


def test_actor_batch_reads_the_fixed_sentence_and_names_its_crop():
    b = {"video": _frame_with_square(2), "text": ["the man on the left", "the tall woman"], "key": ["a___1___0", "a___1___1"],
         "clip_key": ["a___1", "a___1"], "text_emb": torch.ones(2, 4), "box": torch.tensor([[0.25, 0.5, 0.5, 0.75]] * 2),
         "actor_text": {"text_emb": torch.full((2, 4), 7.0)},
         "detections": {"boxes": torch.tensor([[[0.25, 0.5, 0.5, 0.75], [0.9, 0.0, 1.0, 0.1]]] * 2),
                        "mask": torch.ones(2, 2, dtype=torch.bool)}}
    out = actor_batch(b, torch.tensor([[0.25, 0.5, 0.5, 0.75], [0.0, 0.0, 0.2, 0.2]]))
    assert out["text"] == [ACTOR_SENTENCE] * 2 and (out["text_emb"] == 7.0).all() and "actor_text" not in out
    assert out["detections"]["mask"].tolist() == [[True, False], [False, False]]
    assert out["clip_key"][0] != out["clip_key"][1] and all(k.startswith("a___1___") for k in out["clip_key"])
    assert b["text"][0] == "the man on the left" and b["detections"]["mask"].all()  # the input batch is not changed
    del b["actor_text"]  # frozen text features of the reference, none of the fixed sentence: an error, not a leak
    with pytest.raises(ValueError, match="actor_text"):
        actor_batch(b, b["box"])


class _Brightness(Method):
    """Its feature is the mean brightness of the clip it is given; remembers the last clip."""
    needs = frozenset({"video"})

    def __init__(self):
        super().__init__()
        self.feat_dim = 3
        self.scale = torch.nn.Parameter(torch.ones(1))
        self.seen = None

    def forward(self, batch):
        self.seen = batch["video"]
        return batch["video"].mean(dim=(1, 3, 4)) * self.scale


def _rigged_model():
    """A candidate-mode head rigged to choose the RIGHTMOST person, never the fallback."""
    head = SharedHead(3, cls_hidden=(8,), box_hidden=(8,), dropout=0.0, box_mode="candidates", actor_pass=True)
    with torch.no_grad():
        head.cand_q.weight.zero_(); head.cand_q.bias.fill_(1.0)
        head.cand_g.weight.zero_(); head.cand_g.weight[:, 11] = 100.0  # geometry column 11: rightmost person
        head.cand_out.weight.fill_(1.0); head.cand_out.bias.zero_()
        head.fallback.weight.zero_(); head.fallback.bias.fill_(-100.0)
    return RavarModel(_Brightness(), head, _Brightness())


def test_actor_pass_crops_the_true_person_in_training_and_the_chosen_one_in_evaluation():
    v = _frame_with_square()  # the true person is the lit square on the left; a dark person stands on the right
    dets = {"boxes": torch.tensor([[[0.25, 0.5, 0.5, 0.75], [0.7, 0.5, 0.95, 0.75]]]), "scores": torch.ones(1, 2),
            "mask": torch.ones(1, 2, dtype=torch.bool), "cat_ids": torch.ones(1, 2, dtype=torch.long)}
    batch = {"video": v, "detections": dets, "box": torch.tensor([[0.25, 0.5, 0.5, 0.75]]), "key": ["m___1___0"],
             "clip_key": ["m___1"], "text": ["the person on the left"]}
    model = _rigged_model()
    model.train()
    out = model(batch)
    lit = model.actor.seen.mean().item()
    assert lit > 0.5  # trained on the true person's crop, whatever the head chose
    assert model.method.seen is v  # the first instance saw the whole clip
    model.eval()
    with torch.no_grad():
        out = model(batch)
    assert torch.allclose(out["boxes"], dets["boxes"][0, 1:2])  # the head chose the right-hand person ...
    assert model.actor.seen.abs().max().item() == 0.0  # ... and the actions were read from that (dark) crop


def test_actor_config_sets_every_input_size_of_the_model():
    cfg = load_config("clip4clip", "tiny", ACTOR32)
    small = actor_config(cfg, 32)
    assert small.data.img_size == small.data.keyframe_size == 32 and small.model.clip.vision.image_size == 32
    assert cfg.data.img_size == 64 and cfg.model.clip.vision.image_size == 64  # the whole-clip instance's is kept
    assert small.model.clip.vision.patch_size == 16 and actor_config(cfg, None) is cfg
    model = build_from_config(cfg)
    assert model.actor.clip.visual.image_size[0] == 32 and model.method.clip.visual.image_size[0] == 64


def test_the_option_builds_a_separate_actor_instance():
    model = build_from_config(load_config("x3d", "tiny", ACTOR32))
    assert model.head.actor_pass and isinstance(model.actor, type(model.method))
    assert not {id(p) for p in model.method.parameters()} & {id(p) for p in model.actor.parameters()}
    assert "actor_text" in model.needs  # x3d reads frozen text features: the engine adds the fixed sentence's
    with pytest.raises(ValueError, match="actor"):
        RavarModel(_Brightness(), SharedHead(3, actor_pass=True))


def test_what_the_actor_instance_cannot_train_is_frozen():
    """tests/test_all_methods.py checks that a gradient reaches every trainable parameter; these are the two
    parts that the 32 px actor instance cannot train, and they stay trainable in the whole-clip instance."""
    i3d = build_from_config(load_config("i3d", "tiny", ACTOR32))
    # ResNet3d-50 strides 32 px by 32 and 8 frames by 8: a 1x1x1 map, on which the attention pool's weight is 1
    assert i3d.actor.map_positions() == 1 and i3d.method.map_positions() == 4
    assert not i3d.actor.fusion.query.weight.requires_grad and i3d.method.fusion.query.weight.requires_grad
    refclip = build_from_config(load_config("clip_refclip", "tiny", ACTOR32))
    for name in refclip.actor.objective_only:  # only RefCLIP's anchor contrast trains them; the actor drops it
        assert not any(p.requires_grad for p in refclip.actor.get_submodule(name).parameters())
        assert all(p.requires_grad for p in refclip.method.get_submodule(name).parameters())


def test_weights_load_into_both_instances_or_the_error_names_the_fix(tmp_path):
    torch.manual_seed(3)
    src = build_from_config(load_config("clip4clip", "tiny")).method
    path = tmp_path / "clip.pt"
    torch.save(src.clip.state_dict(), path)
    opts = {"head.actor_pass": True, "model.clip.pretrained": str(path)}
    # CLIP's position embedding is made for 64 px: a 32 px actor instance cannot take it
    with pytest.raises(ValueError, match=r"head\.actor_size=32 .*positional_embedding(.|\n)*set head\.actor_size=None"):
        build_from_config(load_config("clip4clip", "tiny", {**opts, "head.actor_size": 32}))
    model = build_from_config(load_config("clip4clip", "tiny", {**opts, "head.actor_size": None}))
    for instance in (model.method, model.actor):
        got = instance.clip.state_dict()
        assert all(torch.equal(v, got[k]) for k, v in src.clip.state_dict().items())


def test_the_crop_is_made_from_the_frames_as_stored_when_the_batch_has_them():
    """head.actor_source="stored": the pixels come from ``video_full`` / ``keyframe_full`` (here 120 x 160 with
    one lit rectangle), not from the 64 px clip (here all zeros), and are resampled to the instance's size."""
    full = torch.zeros(1, 2, 3, 120, 160)
    full[..., 60:90, 40:80] = 1.0  # the normalised box (0.25, 0.5, 0.5, 0.75)
    b = {"video": torch.zeros(1, 2, 3, 64, 64), "video_full": full, "keyframe": torch.zeros(1, 3, 64, 64),
         "keyframe_full": full[:, 1], "text": ["x"], "key": ["a___1___0"], "clip_key": ["a___1"],
         "box": torch.tensor([[0.25, 0.5, 0.5, 0.75]])}
    out = actor_batch(b, b["box"], expand=1.0, size=32)
    assert out["video"].shape == (1, 2, 3, 32, 32) and out["keyframe"].shape == (1, 3, 32, 32)
    assert out["video"][..., 2:-2, 2:-2].min().item() == pytest.approx(1.0)
    assert out["keyframe"][..., 2:-2, 2:-2].min().item() == pytest.approx(1.0)
    assert "video_full" not in out and "keyframe_full" not in out  # the instance reads only what it asked for
    low = actor_batch({k: v for k, v in b.items() if not k.endswith("_full")}, b["box"], expand=1.0, size=32)
    assert low["video"].abs().max().item() == 0.0  # without them: the clip itself


def test_the_model_asks_for_the_stored_frames_only_with_the_stored_actor_pass():
    m = build_from_config(load_config("x3d", "tiny", ACTOR32))
    assert "video_full" in m.needs and "keyframe_full" not in m.needs
    clip = build_from_config(load_config("x3d", "tiny", {**ACTOR32, "head.actor_source": "clip"}))
    assert "video_full" not in clip.needs
    single = build_from_config(load_config("clip_sam", "tiny", ACTOR32))
    assert "keyframe_full" in single.needs and "video_full" not in single.needs


def test_the_static_control_freezes_the_stored_clip_too():
    from ravar_bench.engine.diagnostics import KeyFrameClip

    seen = {}

    class Probe(torch.nn.Module):
        needs = frozenset({"video"})

        def forward(self, batch):
            seen.update(batch)
            return batch

    v = torch.arange(3.0).view(1, 3, 1, 1, 1).expand(1, 3, 3, 4, 4)
    KeyFrameClip(Probe())({"video": v, "video_full": v * 10, "clip_key": ["a___1"]})
    assert (seen["video"] == 1.0).all() and (seen["video_full"] == 10.0).all()


def test_the_normalised_actor_feature_makes_the_classifier_blind_to_its_scale():
    """head.actor_norm (e13): a pretrained actor feature 750 times the whole-clip one's scale, as I3D's, reaches the
    classifier at the scale of its LayerNorm; without the option the scale goes straight into its first layer."""
    torch.manual_seed(0)
    clip, actor = torch.randn(4, 8), torch.randn(4, 8)
    normed = SharedHead(8, cls_hidden=(16,), actor_pass=True, actor_norm=True).eval()
    plain = SharedHead(8, cls_hidden=(16,), actor_pass=True).eval()
    assert plain.actor_norm is None and isinstance(normed.actor_norm, torch.nn.LayerNorm)
    with torch.no_grad():
        torch.testing.assert_close(normed.classify(clip, actor), normed.classify(clip, 750 * actor + 3))
        assert not torch.allclose(plain.classify(clip, actor), plain.classify(clip, 750 * actor + 3))
    cfg = load_config("x3d", "tiny", {"head.actor_norm": True})
    assert build_from_config(cfg, device="meta").head.actor_norm is not None
    with pytest.raises(Exception, match="actor_norm"):
        load_config("x3d", "tiny", {"head.actor_norm": "yes"})


def test_the_chooser_reads_each_candidates_appearance_from_the_frozen_starting_actor():
    """head.cand_appearance (e14): every person candidate is cropped as the actor pass crops the chosen one and
    encoded by a frozen copy of the actor instance as it started (the shipped file); features of a (clip, box) are
    computed once; what a candidate looks like moves its score; training the model leaves the copy as it was."""
    from ravar_bench.model.candidates import CandidateAppearance
    from ravar_bench.testing import fake_batch

    torch.manual_seed(0)
    cfg = load_config("x3d", "tiny", {"head.cand_appearance": True})
    model = build_from_config(cfg)
    app = model.appearance
    assert isinstance(app, CandidateAppearance) and not any(p.requires_grad for p in app.parameters())
    start = {k: v.clone() for k, v in model.actor.state_dict().items()}
    assert all(torch.equal(v, app.encoder.state_dict()[k]) for k, v in start.items())
    batch = fake_batch(cfg, 2)
    batch["detections"]["cat_ids"][:, 3:] = 5  # three person candidates per clip, the rest other objects
    feats = app(batch)
    assert feats.shape == (2, 16, model.actor.feat_dim) and (feats[:, 3:] == 0).all()
    app.encoder.eval()
    box = batch["detections"]["boxes"][1, 2]
    with torch.no_grad():
        one = app.encoder(actor_batch({k: (v[1:] if torch.is_tensor(v) else v[1:] if isinstance(v, list) else v)
                                       for k, v in batch.items() if k not in ("detections", "actor_text")}
                                      | {"actor_text": {k: v[1:] for k, v in batch["actor_text"].items()}},
                                      box[None], size=32))
    torch.testing.assert_close(feats[1, 2], one[0], atol=1e-4, rtol=1e-4)
    hits = app.feature_cache.hits
    torch.testing.assert_close(app(batch), feats)
    assert app.feature_cache.hits == hits + 6  # the second call reads the cache
    # the chooser reads them: the (soft, training-mode) choice depends on every person candidate's appearance
    # feature and on nothing of the other detections'
    model.head.train()
    cf = feats.clone().requires_grad_(True)
    with torch.no_grad():
        fq = model.method(batch)
    smap = model.method.spatial_map if model.head.map_dim else None
    model.head.locate(fq, batch["detections"], smap, None, cf)[0].sum().backward()
    g = cf.grad.abs().sum(-1)
    assert (g[:, :3] > 0).all() and (g[:, 3:] == 0).all()
    model.train()
    assert not app.encoder.training  # frozen: no BatchNorm statistics drift while the model trains
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model(batch)["losses"]["loss"].backward()
    opt.step()
    assert all(torch.equal(v, app.encoder.state_dict()[k]) for k, v in start.items())
    assert any(not torch.equal(v, model.actor.state_dict()[k]) for k, v in start.items())
    with pytest.raises(Exception, match="cand_appearance"):
        build_from_config(load_config("x3d", "tiny", {"head.cand_appearance": True, "head.actor_pass": False}))
