"""ravar_bench.scoring.metrics against scikit-learn, torchmetrics and torchvision (independent implementations)."""
import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score
from torchmetrics.classification import MultilabelAUROC, MultilabelAveragePrecision
from torchvision.ops import box_iou as tv_box_iou

from ravar_bench.scoring.metrics import evaluate, per_class_ap


def _boxes(rng, n):
    xy = rng.uniform(0, 0.6, (n, 2))
    wh = rng.uniform(0.05, 0.4, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1)


def _sk(scores, labels, average):
    keep = labels.sum(0) > 0
    ap = average_precision_score(labels[:, keep], scores[:, keep], average=average)
    keep2 = keep & (labels.sum(0) < len(labels))
    auc = roc_auc_score(labels[:, keep2], scores[:, keep2], average=average) if keep2.any() else np.nan
    return 100 * ap, 100 * auc


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("average", ["weighted", "macro"])
@pytest.mark.parametrize("ties", [False, True])
def test_against_sklearn(seed, average, ties):
    rng = np.random.default_rng(seed)
    n, c = 300, 80
    labels = (rng.random((n, c)) < rng.uniform(0.01, 0.3, c)).astype(int)
    labels[:, 5] = 0  # a class with no positives (dropped)
    labels[:, 6] = 1  # a class with all positives (AP 1; no ROC curve)
    scores = rng.normal(size=(n, c)) + labels
    if ties:
        scores = np.round(scores, 1)
    pb, gb = _boxes(rng, n), _boxes(rng, n)
    res = evaluate(scores, labels, pb, gb, average=average)
    ap, auc = _sk(scores, labels, average)
    assert res["mAP"] == pytest.approx(ap, abs=1e-6)
    assert res["AUROC"] == pytest.approx(auc, abs=1e-6)
    iou = torch.diag(tv_box_iou(torch.tensor(pb), torch.tensor(gb))).numpy()
    assert res["mIoU"] == pytest.approx(100 * iou.mean(), abs=1e-6)


def test_per_class_against_torchmetrics():
    rng = np.random.default_rng(11)
    n, c = 200, 12
    labels = (rng.random((n, c)) < 0.3).astype(int)
    scores = np.round(rng.normal(size=(n, c)) + labels, 1)
    tm_ap = MultilabelAveragePrecision(num_labels=c, average=None, thresholds=None)(
        torch.tensor(scores, dtype=torch.float64), torch.tensor(labels))
    tm_auc = MultilabelAUROC(num_labels=c, average=None, thresholds=None)(
        torch.tensor(scores, dtype=torch.float64), torch.tensor(labels))
    np.testing.assert_allclose(per_class_ap(scores, labels) / 100, tm_ap.numpy(), atol=1e-6)
    from ravar_bench.scoring.metrics import roc_auc_per_class

    np.testing.assert_allclose(roc_auc_per_class(scores, labels), tm_auc.numpy(), atol=1e-6)


def test_one_sample():
    labels = np.zeros((1, 80), dtype=int)
    labels[0, [3, 10]] = 1
    scores = np.linspace(-1, 1, 80)[None]
    box = np.array([[0.1, 0.1, 0.5, 0.5]])
    res = evaluate(scores, labels, box, box)
    assert res["mAP"] == pytest.approx(100.0)  # one positive per scored class, ranked first
    assert np.isnan(res["AUROC"])  # no class has a negative: AUROC undefined, not invented
    assert res["mIoU"] == pytest.approx(100.0)


def test_weighted_is_support_weighted_not_macro():
    rng = np.random.default_rng(3)
    labels = np.zeros((100, 80), dtype=int)
    labels[:50, 0] = 1  # frequent class
    labels[:2, 1] = 1  # rare class
    scores = rng.normal(size=(100, 80))
    scores[:, 0] += 3 * labels[:, 0]  # frequent class easy
    w, m = evaluate(scores, labels, _boxes(rng, 100), _boxes(rng, 100))["mAP"], \
        evaluate(scores, labels, _boxes(rng, 100), _boxes(rng, 100), average="macro")["mAP"]
    ap = per_class_ap(scores, labels)[:2]
    assert w == pytest.approx((50 * ap[0] + 2 * ap[1]) / 52, abs=1e-9)
    assert m == pytest.approx(ap.mean(), abs=1e-9)


def test_iou_gate_zeroes_scores_like_the_authors_script():
    """Boxes built with a known IoU per instance (dyadic coordinates, so exact in floating point): 1, 1/3, exactly
    the gate 0.5 (kept: the script zeroes IoU < 0.5 only), 0. The expectation zeroes rows by that construction,
    not by any IoU computation, and is scored by scikit-learn."""
    rng = np.random.default_rng(5)
    n = 120
    labels = (rng.random((n, 80)) < 0.2).astype(int)
    scores = rng.normal(size=(n, 80)) + labels
    gb, pb, kept = np.zeros((n, 4)), np.zeros((n, 4)), np.zeros(n, dtype=bool)
    for i in range(n):
        x, y = rng.integers(0, 4, 2) / 8
        w, h = rng.integers(2, 5, 2) / 8
        gb[i] = [x, y, x + w, y + h]
        kind = i % 4
        if kind == 0:  # the same box: IoU 1
            pb[i], kept[i] = gb[i], True
        elif kind == 1:  # shifted by half its width: IoU (w/2) / (3w/2) = 1/3
            pb[i] = [x + w / 2, y, x + 3 * w / 2, y + h]
        elif kind == 2:  # the top half: IoU exactly 0.5, on the gate
            pb[i], kept[i] = [x, y, x + w, y + h / 2], True
        else:  # beside it: IoU 0
            pb[i] = [x + w, y, x + 2 * w, y + h]
    gated = scores.copy()
    gated[~kept] = 0.0
    ap, auc = _sk(gated, labels, "weighted")
    res = evaluate(scores, labels, pb, gb, iou_gate=0.5)
    assert res["mAP"] == pytest.approx(ap, abs=1e-6)
    assert res["AUROC"] == pytest.approx(auc, abs=1e-6)
    assert res["mIoU"] == pytest.approx(100 * (1 + 1 / 3 + 0.5 + 0) / 4, abs=1e-9)
    assert abs(evaluate(scores, labels, pb, gb)["mAP"] - ap) > 1  # the gate changes the result here


def test_groups_and_bad_input():
    rng = np.random.default_rng(0)
    labels = (rng.random((50, 80)) < 0.3).astype(int)
    scores = rng.normal(size=(50, 80))
    b = _boxes(rng, 50)
    res = evaluate(scores, labels, b, b, class_groups={"PM": list(range(14))})
    keep = labels[:, :14].sum(0) > 0
    assert res["mAP_PM"] == pytest.approx(100 * average_precision_score(labels[:, :14][:, keep], scores[:, :14][:, keep],
                                                                        average="weighted"), abs=1e-6)
    with pytest.raises(ValueError, match="non-finite"):
        evaluate(np.full((50, 80), np.nan), labels, b, b)
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        evaluate(scores[:, :10], labels, b, b)
    with pytest.raises(ValueError, match="average"):
        evaluate(scores, labels, b, b, average="micro")
