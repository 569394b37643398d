"""Checkers for the exercises of Chapter 12 (transfer to downstream tasks).

The dense tasks are scored with mean IoU (PASCAL VOC's convention, counted over all pixels;
:func:`sslbook.downstream.mean_iou`) and COCO mAP, which matches predicted and true boxes by
their IoU (``torchvision.ops.box_iou``); the scenes' boxes are tight around each item's mask
(:func:`sslbook.downstream.compose_scene`). The checkers compare a student's function with these
references on inputs chosen so that the classic mistakes give different answers, name the
mistake when they recognise it, return a :class:`~sslbook.exercises.CheckResult` and never raise.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchvision.ops import box_iou

from sslbook.downstream import mean_iou
from sslbook.exercises import CheckResult, close, run_check

__all__ = ["check_box_iou", "check_mean_iou", "check_tight_box"]


# --------------------------------------------------------------------------- Exercise 12.1
def _iou_variants(pred, true, num_classes) -> dict[str, torch.Tensor]:
    """Mean IoU as the usual mistakes compute it (each a float tensor)."""
    def per_class(p, t, classes, precision=False):
        out = []
        for c in classes:
            tp = ((p == c) & (t == c)).sum().double()
            fp = ((p == c) & (t != c)).sum().double()
            fn = ((p != c) & (t == c)).sum().double()
            denominator = tp + fp if precision else tp + fp + fn
            out.append(tp / denominator if denominator > 0 else torch.tensor(float("nan")))
        return torch.stack(out)

    classes = range(num_classes)
    per_image = torch.stack([per_class(p, t, classes).nanmean() for p, t in
                             zip(pred, true, strict=True)]).mean()
    return {
        "the background (class 0) is left out: PASCAL VOC's mean IoU includes it":
            per_class(pred, true, range(1, num_classes)).nanmean(),
        "the IoU is averaged image by image: count TP, FP and FN over all pixels of all "
        "images first": per_image,
        "absent classes count as IoU 0: a class in neither prediction nor truth has no IoU "
        "(nan) and is left out of the mean": per_class(pred, true, classes).nan_to_num(0).mean(),
        "this is the precision TP / (TP + FP): the IoU's denominator is TP + FP + FN":
            per_class(pred, true, classes, precision=True).nanmean(),
    }


def check_mean_iou(fn: Callable, verbose: bool = True) -> CheckResult:
    """Check ``fn(pred, true, num_classes) -> (per-class IoU, mean)`` against
    :func:`sslbook.downstream.mean_iou` on random masks of several images with an absent
    class, images of different class mixtures and a class predicted but never true."""

    def test() -> tuple[bool, str]:
        g = torch.Generator().manual_seed(12)
        for n, size, num_classes in [(3, 8, 5), (4, 6, 6)]:
            true = torch.randint(0, num_classes - 1, (n, size, size), generator=g)  # last absent
            true[0] = 0  # an image of background only: per-image means differ from pooled ones
            pred = torch.where(torch.rand(n, size, size, generator=g) < 0.6, true,
                               torch.randint(0, num_classes - 1, (n, size, size), generator=g))
            expected_iou, expected_mean = mean_iou(pred, true, num_classes)
            got = fn(pred.clone(), true.clone(), num_classes)
            if not (isinstance(got, (tuple, list)) and len(got) == 2):
                return False, "return a pair: (per-class IoU tensor, mean IoU)"
            iou, mean = torch.as_tensor(got[0], dtype=torch.float64), float(got[1])
            if iou.shape != (num_classes,):
                return False, (f"the per-class IoU has shape {tuple(iou.shape)}; expected "
                               f"({num_classes},), one value per class, background included")
            if not torch.isnan(iou[-1]):
                return False, (f"class {num_classes - 1} is in neither mask: its IoU is "
                               f"undefined (nan), not {iou[-1].item():.3g}")
            if not close(mean, expected_mean, atol=1e-6)[0]:
                for mistake, value in _iou_variants(pred, true, num_classes).items():
                    if close(mean, value, atol=1e-6)[0]:
                        return False, mistake
                return False, f"mean IoU {mean:.6g}, expected {expected_mean:.6g}"
            ok, hint = close(iou[:-1], expected_iou[:-1], atol=1e-6)
            if not ok:
                return False, f"per-class IoU: {hint}"
        return True, "IoU = TP / (TP + FP + FN) over all pixels, absent classes left out"

    return run_check("Exercise 12.1 - mean IoU", test, verbose)


# --------------------------------------------------------------------------- Exercise 12.2
def _tight_box(mask: torch.Tensor) -> list[float]:
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return [xs.min().item(), ys.min().item(), xs.max().item() + 1.0, ys.max().item() + 1.0]


def check_tight_box(fn: Callable, verbose: bool = True) -> CheckResult:
    """Check ``fn(mask) -> [x1, y1, x2, y2]`` (pixel edges) on a single pixel, a wide shape,
    a tall one and random masks inside a larger canvas."""

    def test() -> tuple[bool, str]:
        g = torch.Generator().manual_seed(1212)
        masks = []
        single = torch.zeros(7, 9, dtype=torch.bool)
        single[2, 5] = True  # row 2, column 5: the box [5, 2, 6, 3]
        masks.append(single)
        wide = torch.zeros(10, 12, dtype=torch.bool)
        wide[3:5, 1:11] = True
        masks.append(wide)
        masks.append(wide.T.contiguous())
        for _ in range(3):
            m = torch.zeros(16, 20, dtype=torch.bool)
            top, left = torch.randint(0, 6, (2,), generator=g).tolist()
            m[top:top + 10, left:left + 14] = torch.rand(10, 14, generator=g) > 0.6
            masks.append(m)
        for mask in masks:
            expected = _tight_box(mask)
            got = torch.as_tensor(fn(mask.clone()), dtype=torch.float64).flatten()
            if got.shape != (4,):
                return False, f"return 4 numbers [x1, y1, x2, y2], got shape {tuple(got.shape)}"
            if close(got, expected, atol=1e-6)[0]:
                continue
            x1, y1, x2, y2 = expected
            if close(got, [x1, y1, x2 - 1, y2 - 1], atol=1e-6)[0]:
                return False, ("x2 and y2 are the last pixel's index: in pixel edges the box "
                               "ends one past it (a single pixel at x is [x, x + 1])")
            if close(got, [y1, x1, y2, x2], atol=1e-6)[0]:
                return False, ("rows and columns are swapped: x is the column (dim 1) and y "
                               "the row (dim 0)")
            if close(got, [0, 0, mask.shape[1], mask.shape[0]], atol=1e-6)[0]:
                return False, "the box is the whole canvas: take the True pixels' extent"
            return False, f"box {got.tolist()}, expected {expected}"
        return True, "tight boxes in pixel edges, x from columns and y from rows"

    return run_check("Exercise 12.2 - a tight box around a mask", test, verbose)


# --------------------------------------------------------------------------- Exercise 12.3
def check_box_iou(fn: Callable, verbose: bool = True) -> CheckResult:
    """Check ``fn(boxes1, boxes2) -> N x M IoU`` against ``torchvision.ops.box_iou`` on
    overlapping, nested, touching and disjoint boxes."""

    def test() -> tuple[bool, str]:
        g = torch.Generator().manual_seed(123)
        fixed = torch.tensor([[0., 0, 10, 10], [2, 0, 12, 10], [20, 20, 30, 25],
                              [10, 0, 20, 10], [3, 3, 5, 5]])  # shifted, far, touching, nested
        corner = torch.rand(6, 2, generator=g) * 20
        random = torch.cat([corner, corner + 1 + torch.rand(6, 2, generator=g) * 10], dim=1)
        for b1, b2 in [(fixed, fixed), (fixed, random), (random[:4], random)]:
            expected = box_iou(b1, b2).double()
            got = fn(b1.clone(), b2.clone())
            ok, hint = close(got, expected, atol=1e-6)
            if ok:
                continue
            got = torch.as_tensor(got, dtype=torch.float64)
            if got.shape != expected.shape:
                return False, f"expected the N x M matrix {tuple(expected.shape)}: {hint}"
            area = lambda b: ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])).double()  # noqa: E731
            lt = torch.maximum(b1[:, None, :2], b2[None, :, :2])
            rb = torch.minimum(b1[:, None, 2:], b2[None, :, 2:])
            raw = (rb - lt).double()
            inter = raw.clamp_min(0).prod(2)
            union = area(b1)[:, None] + area(b2)[None]
            if close(got, inter / union, atol=1e-6)[0]:
                return False, ("the union counts the intersection twice: it is "
                               "area1 + area2 - intersection")
            if close(got, raw.prod(2) / (union - raw.prod(2)), atol=1e-6)[0]:
                return False, ("the overlap is not clamped at 0: disjoint boxes must have "
                               "intersection 0 (clamp width and height before multiplying)")
            plus = lambda b: ((b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)).double()  # noqa: E731
            inter1 = (rb - lt + 1).double().clamp_min(0).prod(2)
            if close(got, inter1 / (plus(b1)[:, None] + plus(b2)[None] - inter1), atol=1e-6)[0]:
                return False, ("this is old PASCAL code's '+ 1' pixel convention: boxes here "
                               "are in pixel edges, width = x2 - x1")
            return False, hint
        return True, "IoU = intersection / (area1 + area2 - intersection), as box_iou"

    return run_check("Exercise 12.3 - IoU of boxes", test, verbose)
