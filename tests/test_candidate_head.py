"""The shared head's candidate mode (ravar_bench/model/head.py): geometry of the person candidates, the box as a
choice among them, the region feature, and the batch keys it adds."""
import pytest
import torch

from ravar_bench.config import load_config
from ravar_bench.factory import build_from_config
from ravar_bench.model.candidates import candidate_geometry, roi_features
from ravar_bench.model.head import SharedHead
from ravar_bench.testing import fake_batch


def _dets():
    # clip 0: three people (x centres 0.5, 0.1, 0.8; heights 0.5, 0.3, 0.7) and a cup; clip 1: one person + padding
    boxes = torch.tensor([[[0.4, 0.3, 0.6, 0.8], [0.0, 0.5, 0.2, 0.8], [0.7, 0.1, 0.9, 0.8], [0.45, 0.4, 0.5, 0.45]],
                          [[0.2, 0.2, 0.4, 0.9], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]])
    return {"boxes": boxes, "scores": torch.tensor([[0.9, 0.8, 0.7, 0.6], [0.95, 0, 0, 0]]),
            "mask": torch.tensor([[True, True, True, True], [True, False, False, False]]),
            "cat_ids": torch.tensor([[1, 1, 1, 47], [1, 0, 0, 0]])}  # COCO 1 = person, 47 = cup


def test_geometry_ranks_people_left_to_right_and_by_height():
    g, person = candidate_geometry(_dets())
    assert person.tolist() == [[True, True, True, False], [True, False, False, False]]
    # columns 9-15: x rank / (n-1), leftmost, rightmost, height rank / (n-1), shortest, tallest, n / 5
    assert g[0, :3, 9].tolist() == [0.5, 0.0, 1.0]
    assert g[0, :3, 10].tolist() == [0, 1, 0] and g[0, :3, 11].tolist() == [0, 0, 1]
    assert g[0, :3, 12].tolist() == [0.5, 0.0, 1.0]
    assert g[0, :3, 14].tolist() == [0, 0, 1] and g[0, 0, 15].item() == pytest.approx(3 / 5)
    assert g[1, 0, 10].item() == 1 and g[1, 0, 11].item() == 1  # alone: leftmost and rightmost
    assert (g[0, 3] == 0).all() and (g[1, 1:] == 0).all()  # the cup and the padding carry nothing


def test_box_is_a_choice_among_person_candidates():
    torch.manual_seed(0)
    head = SharedHead(8, cls_hidden=(16,), box_hidden=(8,), dropout=0.0, box_mode="candidates")
    with torch.no_grad():  # make the head prefer the leftmost person by a wide margin, never the fallback
        head.cand_q.weight.zero_(); head.cand_q.bias.fill_(1.0)
        head.cand_g.weight.zero_(); head.cand_g.weight[:, 10] = 100.0
        head.cand_out.weight.fill_(1.0); head.cand_out.bias.zero_()
        head.fallback.weight.zero_(); head.fallback.bias.fill_(-100.0)
    out = head(torch.randn(2, 8), _dets())
    logits, boxes = out["logits"], out["boxes"]
    assert logits.shape == (2, 80)
    assert torch.allclose(boxes[0], torch.tensor([0.0, 0.5, 0.2, 0.8]), atol=1e-5)
    assert torch.allclose(boxes[1], torch.tensor([0.2, 0.2, 0.4, 0.9]), atol=1e-5)
    head.eval()  # without detections only the fallback (the regressed box) is left
    feats = torch.randn(2, 8)
    assert torch.allclose(head(feats)["boxes"], head.box(feats).sigmoid())
    with pytest.raises(ValueError, match="box_mode"):
        SharedHead(8, box_mode="nearest")


def test_roi_features_read_the_box_region():
    fmap = torch.zeros(1, 1, 4, 4)
    fmap[0, 0, :, :2] = 1.0  # left half is 1, right half 0
    feats = roi_features(fmap, torch.tensor([[[0.0, 0.0, 0.5, 1.0], [0.5, 0.0, 1.0, 1.0]]]))
    # bilinear sampling at 2 x 2 points per bin: the sample next to the edge mixes 1/4 of the other half in
    assert feats[0, 0, 0].item() == pytest.approx(15 / 16) and feats[0, 1, 0].item() == pytest.approx(1 / 16)


def test_tiny_configs_choose_candidates_and_read_the_map():
    cfg = load_config("x3d", "tiny")
    model = build_from_config(cfg)
    assert model.head.box_mode == "candidates" and "detections" in model.needs
    assert model.head.map_dim == model.method.map_dim > 0
    out = model(fake_batch(cfg, 2))
    assert out["boxes"].shape == (2, 4) and model.method.spatial_map.dim() == 4
    chance = build_from_config(load_config("chance", "tiny"))
    assert chance.needs == {"detections"} and chance.head.map_dim == 0


def test_selection_loss_targets_the_best_overlapping_person_or_the_fallback():
    torch.manual_seed(0)
    head = SharedHead(8, cls_hidden=(16,), box_hidden=(8,), dropout=0.0, box_mode="candidates").train()
    dets = _dets()
    gt = torch.tensor([[0.72, 0.12, 0.9, 0.8], [0.6, 0.6, 0.9, 0.9]])  # clip 0: the right person; clip 1: nobody
    head(torch.randn(2, 8), dets, gt_boxes=gt)
    with torch.no_grad():
        feats = torch.randn(2, 8)
        head.cand_out.weight.zero_(); head.cand_out.bias.zero_(); head.fallback.bias.zero_()
        head.fallback.weight.zero_()
    out = head(feats, dets, gt_boxes=gt)
    # all logits 0: clip 0 has 1 fallback + 3 people to choose from, clip 1 has 1 fallback + 1 person
    expect = (torch.log(torch.tensor(4.0)) + torch.log(torch.tensor(2.0))) / 2
    assert out["select_loss"].item() == pytest.approx(expect.item(), rel=1e-5)
    head.eval()
    assert head(feats, dets, gt_boxes=gt)["select_loss"] is None  # only a training objective


def test_evaluation_scores_the_chosen_box_not_a_mean():
    torch.manual_seed(0)
    head = SharedHead(8, cls_hidden=(16,), box_hidden=(8,), dropout=0.0, box_mode="candidates")
    feats, dets = torch.randn(2, 8), _dets()
    soft = head.train()(feats, dets)["boxes"]
    hard = head.eval()(feats, dets)["boxes"]
    options = torch.cat([head.box(feats).sigmoid().unsqueeze(1), dets["boxes"]], dim=1)  # fallback + candidates
    for b in range(2):
        assert (options[b] - hard[b]).abs().sum(-1).min() < 1e-6  # exactly one option's box
    assert not torch.allclose(soft, hard)  # untrained: the training box is a mean of several
