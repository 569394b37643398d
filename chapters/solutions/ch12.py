"""Solutions to the exercises of Chapter 12 (transfer to downstream tasks)."""

import torch


def my_mean_iou(pred, true, num_classes):
    """Per-class IoU = TP / (TP + FP + FN) over all pixels (nan where absent) and its mean."""
    p, t = pred.flatten().long(), true.flatten().long()
    iou = []
    for c in range(num_classes):
        tp = ((p == c) & (t == c)).sum()
        union = ((p == c) | (t == c)).sum()  # TP + FP + FN
        iou.append(tp / union if union > 0 else torch.tensor(float("nan")))
    iou = torch.stack(iou).double()
    return iou, iou.nanmean().item()


def my_tight_box(mask):
    """[x1, y1, x2, y2] in pixel edges: x from the columns, y from the rows, ends + 1."""
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return [xs.min().item(), ys.min().item(), xs.max().item() + 1.0, ys.max().item() + 1.0]


def my_box_iou(boxes1, boxes2):
    """N x M IoU of xyxy boxes: intersection / (area1 + area2 - intersection)."""
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])  # N
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])  # M
    lt = torch.maximum(boxes1[:, None, :2], boxes2[None, :, :2])  # N x M x 2
    rb = torch.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])  # N x M x 2
    inter = (rb - lt).clamp_min(0).prod(dim=2)  # N x M
    return inter / (area1[:, None] + area2[None, :] - inter)
