"""seg_perception.training.losses: the Lovász-softmax term against IoU computed directly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seg_perception.errors import ConfigError
from seg_perception.training.losses import SegLoss, lovasz_grad, lovasz_softmax

IGN = 255


def _jaccard_losses(pred: np.ndarray, lab: np.ndarray, c: int) -> list[float]:
    keep = lab != IGN
    out = []
    for k in range(c):
        g, p = (lab == k) & keep, (pred == k) & keep
        if g.sum() == 0:
            continue  # "present" classes only
        out.append(1.0 - (g & p).sum() / (g | p).sum())
    return out


def _one_hot_logits(pred: np.ndarray, c: int, scale: float = 60.0) -> torch.Tensor:
    # softmax of these is one-hot to float precision, so the errors are exactly 0 or 1
    x = np.full((pred.shape[0], c, *pred.shape[1:]), -scale, np.float32)
    np.put_along_axis(x, pred[:, None], scale, axis=1)
    return torch.from_numpy(x)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_one_minus_iou_on_hard_predictions(seed):
    rng = np.random.default_rng(seed)
    c = 5
    lab = rng.integers(0, c - 1, size=(2, 12, 16))  # class 4 never present in labels
    lab[0, :3] = IGN
    pred = np.where(rng.random(lab.shape) < 0.6, lab, rng.integers(0, c, size=lab.shape))
    pred[lab == IGN] = 0  # predictions on ignored pixels must not count
    got = lovasz_softmax(_one_hot_logits(pred, c), torch.from_numpy(lab)).item()
    want = float(np.mean(_jaccard_losses(pred, lab, c)))
    assert got == pytest.approx(want, abs=1e-5)
    assert 0.05 < want < 0.95  # a real mix of hits and misses


def test_perfect_prediction_is_zero_and_ignored_pixels_do_not_count():
    rng = np.random.default_rng(3)
    lab = rng.integers(0, 4, size=(1, 10, 10))
    lab[0, :, :4] = IGN
    pred = np.where(lab == IGN, 3, lab)
    x = _one_hot_logits(pred, 4)
    assert lovasz_softmax(x, torch.from_numpy(lab)).item() == pytest.approx(0.0, abs=1e-6)
    x2 = x.clone()
    x2[..., :4] = torch.randn_like(x2[..., :4])  # change only the ignored columns
    assert lovasz_softmax(x2, torch.from_numpy(lab)).item() == pytest.approx(0.0, abs=1e-6)


def test_all_ignored_gives_zero_with_a_gradient():
    x = torch.randn(1, 3, 4, 4, requires_grad=True)
    loss = lovasz_softmax(x, torch.full((1, 4, 4), IGN))
    loss.backward()
    assert loss.item() == 0.0 and x.grad is not None and torch.count_nonzero(x.grad) == 0


def test_lovasz_grad_rows_match_single_rows():
    rng = np.random.default_rng(4)
    g = torch.from_numpy((rng.random((3, 50)) < 0.3).astype(np.float32))
    rows = lovasz_grad(g)
    for k in range(3):
        np.testing.assert_allclose(rows[k].numpy(), lovasz_grad(g[k]).numpy(), rtol=0, atol=1e-7)
    # the weights of one row sum to the Jaccard loss of predicting nothing: 1
    np.testing.assert_allclose(rows.sum(1).numpy(), 1.0, atol=1e-6)


def test_gradient_descent_on_the_surrogate_raises_iou():
    rng = np.random.default_rng(5)
    c = 4
    lab = torch.from_numpy(rng.integers(0, c, size=(1, 16, 16)))
    x = torch.randn(1, c, 16, 16, generator=torch.Generator().manual_seed(0), requires_grad=True)
    opt = torch.optim.Adam([x], lr=0.1)

    def hard_loss() -> float:
        pred = x.detach().argmax(1).numpy()
        return float(np.mean(_jaccard_losses(pred, lab.numpy(), c)))

    before, first = hard_loss(), lovasz_softmax(x, lab).item()
    for _ in range(60):
        opt.zero_grad()
        lovasz_softmax(x, lab).backward()
        opt.step()
    assert lovasz_softmax(x, lab).item() < 0.5 * first
    assert hard_loss() < 0.5 * before


def test_segloss_is_weighted_ce_plus_weighted_lovasz():
    rng = np.random.default_rng(6)
    w = torch.tensor([1.0, 2.0, 0.5])
    x = torch.randn(2, 3, 6, 7, generator=torch.Generator().manual_seed(1))
    lab = torch.from_numpy(rng.integers(0, 3, size=(2, 6, 7)))
    lab[0, 0] = IGN
    ce = torch.nn.functional.cross_entropy(x, lab, weight=w, ignore_index=IGN)
    assert SegLoss(w, IGN, 0.0)(x, lab).item() == pytest.approx(ce.item(), rel=1e-6)
    want = ce + 0.75 * lovasz_softmax(x, lab, IGN)
    assert SegLoss(w, IGN, 0.75)(x, lab).item() == pytest.approx(want.item(), rel=1e-6)


def test_bad_arguments_are_refused():
    with pytest.raises(ConfigError, match="lovasz_weight"):
        SegLoss(torch.ones(3), IGN, -1.0)
    with pytest.raises(ConfigError, match="expected"):
        lovasz_softmax(torch.randn(1, 3, 4, 4), torch.zeros(1, 4, 5, dtype=torch.long))


def test_from_config_reads_the_train_section():
    w = torch.ones(3)
    assert SegLoss.from_config({"loss": "weighted_ce"}, w).lovasz_weight == 0.0
    assert SegLoss.from_config({"loss": "weighted_ce", "lovasz_weight": 0.5}, w).lovasz_weight == 0.5
    with pytest.raises(ConfigError, match="unknown loss 'focal'"):
        SegLoss.from_config({"loss": "focal"}, w)
