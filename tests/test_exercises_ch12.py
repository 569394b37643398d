"""Chapter 12 checkers accept the solutions and reject plausible wrong answers, naming them."""

from __future__ import annotations

import torch
from solutions_loader import load_solutions, not_attempted

from sslbook.exercises.ch12 import check_box_iou, check_mean_iou, check_tight_box

s = load_solutions("ch12")


def test_solutions_pass():
    assert check_mean_iou(s.my_mean_iou, verbose=False).passed
    assert check_tight_box(s.my_tight_box, verbose=False).passed
    assert check_box_iou(s.my_box_iou, verbose=False).passed


def test_unfinished_stub_is_reported_not_raised():
    for check in (check_mean_iou, check_tight_box, check_box_iou):
        result = check(not_attempted, verbose=False)
        assert not result.passed and "not attempted" in result.message


def _per_class(pred, true, num_classes, precision=False):
    out = []
    for c in range(num_classes):
        tp = ((pred == c) & (true == c)).sum()
        fp = ((pred == c) & (true != c)).sum()
        fn = ((pred != c) & (true == c)).sum()
        d = tp + fp if precision else tp + fp + fn
        out.append(tp / d if d > 0 else torch.tensor(float("nan")))
    return torch.stack(out).double()


def test_mean_iou_rejects_wrong_answers():
    def no_background(pred, true, k):
        iou = _per_class(pred, true, k)
        return iou, iou[1:].nanmean().item()

    def per_image(pred, true, k):
        iou = _per_class(pred, true, k)
        return iou, torch.stack([_per_class(p, t, k).nanmean() for p, t in zip(pred, true)]
                                ).mean().item()

    def absent_as_zero(pred, true, k):
        iou = _per_class(pred, true, k)
        return iou, iou.nan_to_num(0).mean().item()

    def precision(pred, true, k):
        iou = _per_class(pred, true, k, precision=True)
        return iou, iou.nanmean().item()

    def absent_not_nan(pred, true, k):
        iou = _per_class(pred, true, k).nan_to_num(0)
        return iou, _per_class(pred, true, k).nanmean().item()

    expected = {no_background: "background", per_image: "image by image",
                absent_as_zero: "absent classes", precision: "precision",
                absent_not_nan: "undefined (nan)"}
    for wrong, words in expected.items():
        result = check_mean_iou(wrong, verbose=False)
        assert not result.passed, wrong.__name__
        assert words in result.message, (wrong.__name__, result.message)


def test_tight_box_rejects_wrong_answers():
    def no_plus_one(mask):
        ys, xs = torch.nonzero(mask, as_tuple=True)
        return [xs.min(), ys.min(), xs.max(), ys.max()]

    def swapped(mask):
        ys, xs = torch.nonzero(mask, as_tuple=True)
        return [ys.min(), xs.min(), ys.max() + 1, xs.max() + 1]

    def whole_canvas(mask):
        return [0, 0, mask.shape[1], mask.shape[0]]

    expected = {no_plus_one: "one past", swapped: "swapped", whole_canvas: "whole canvas"}
    for wrong, words in expected.items():
        result = check_tight_box(wrong, verbose=False)
        assert not result.passed, wrong.__name__
        assert words in result.message, (wrong.__name__, result.message)


def test_box_iou_rejects_wrong_answers():
    def parts(b1, b2, plus=0):
        a1 = (b1[:, 2] - b1[:, 0] + plus) * (b1[:, 3] - b1[:, 1] + plus)
        a2 = (b2[:, 2] - b2[:, 0] + plus) * (b2[:, 3] - b2[:, 1] + plus)
        lt = torch.maximum(b1[:, None, :2], b2[None, :, :2])
        rb = torch.minimum(b1[:, None, 2:], b2[None, :, 2:])
        return a1, a2, rb - lt + plus

    def union_twice(b1, b2):
        a1, a2, wh = parts(b1, b2)
        return wh.clamp_min(0).prod(2) / (a1[:, None] + a2[None])

    def no_clamp(b1, b2):
        a1, a2, wh = parts(b1, b2)
        inter = wh.prod(2)
        return inter / (a1[:, None] + a2[None] - inter)

    def plus_one(b1, b2):
        a1, a2, wh = parts(b1, b2, plus=1)
        inter = wh.clamp_min(0).prod(2)
        return inter / (a1[:, None] + a2[None] - inter)

    expected = {union_twice: "twice", no_clamp: "clamped", plus_one: "+ 1"}
    for wrong, words in expected.items():
        result = check_box_iou(wrong, verbose=False)
        assert not result.passed, wrong.__name__
        assert words in result.message, (wrong.__name__, result.message)
