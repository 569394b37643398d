"""Dense downstream tasks: scenes of Fashion-MNIST items, segmentation and detection heads.

Transfer beyond classification (MoCo, arXiv:1911.05722, Sec. 4.2, fine-tunes on detection and
segmentation) needs images with several objects. :func:`fashion_scenes` pastes Fashion-MNIST
items onto a black canvas and returns per-pixel masks and boxes. :class:`SegmentationHead`
(FCN) and :class:`CenterNetHead` (CenterNet) read the encoder's last feature map
(:func:`feature_map`); :class:`DenseTask` turns encoder + head into a loss that
:func:`sslbook.train.pretrain` trains with ``labels=`` (masks, or :func:`pack_boxes`);
:func:`mean_iou` and :func:`detection_map` score the predictions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sslbook import data, optim

THRESHOLD = 32  # a pixel belongs to an item's mask when its value is >= 32 (of 255)


# --------------------------------------------------------------------------- scenes
def compose_scene(items: list[torch.Tensor], classes: list[int], positions: list[tuple[int, int]],
                  size: int, threshold: int = THRESHOLD):
    """Paste uint8 ``items`` (each h x w) in order at ``positions`` (top, left) on a black
    size x size canvas; returns (image 1 x size x size, mask size x size, boxes K x 4, labels K).

    An item's mask is its pixels >= ``threshold``. Where masks overlap, the later item wins: its
    mask pixels overwrite image and mask; its fainter pixels only brighten (``max``). So
    ``mask > 0`` exactly where ``image >= threshold``. The mask stores class c as c + 1 (0 is
    background). Boxes are xyxy in pixel edges, tight around an item's *visible* mask pixels
    (a box of a single pixel (x, y) is [x, y, x + 1, y + 1]); hidden items are dropped.
    """
    image = torch.zeros(size, size, dtype=torch.uint8)
    mask = torch.zeros(size, size, dtype=torch.int64)
    instance = torch.full((size, size), -1, dtype=torch.int64)  # which item each pixel shows
    for k, (item, (top, left)) in enumerate(zip(items, positions, strict=True)):
        h, w = item.shape
        if not (0 <= top <= size - h and 0 <= left <= size - w):
            raise ValueError(f"item {k} ({h} x {w}) at {(top, left)} leaves the {size} canvas")
        on = item >= threshold  # h x w
        window = (slice(top, top + h), slice(left, left + w))
        image[window] = torch.where(on, item, torch.maximum(image[window], item))
        mask[window][on] = classes[k] + 1
        instance[window][on] = k
    boxes, labels = [], []
    for k in range(len(items)):
        ys, xs = torch.nonzero(instance == k, as_tuple=True)
        if len(ys):  # visible
            boxes.append([xs.min() + 0.0, ys.min() + 0.0, xs.max() + 1.0, ys.max() + 1.0])
            labels.append(classes[k])
    return (image[None], mask, torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            torch.tensor(labels, dtype=torch.int64))


def fashion_scenes(n: int, size: int = 64, seed: int = 0, split: str = "train",
                   items: tuple[int, int] = (2, 4), root=None):
    """``n`` scenes of ``items[0]`` to ``items[1]`` (inclusive) Fashion-MNIST items, 28 x 28
    each, pasted by :func:`compose_scene` at uniform positions inside a size x size canvas:
    an item's mask is its pixels >= ``THRESHOLD`` (32 of 255), the later-pasted item wins
    where masks overlap, boxes are tight around the visible mask pixels and items hidden by
    later ones are dropped.

    Items come from Fashion-MNIST's ``split`` (train scenes from the train images, test scenes
    from the test images); everything is drawn from one generator seeded with ``seed``, so a
    seed gives the same scenes. Returns ``images`` (uint8 N x 1 x size x size), ``masks``
    (int64 N x size x size, class c as c + 1), ``boxes`` (list of float K x 4, xyxy) and
    ``labels`` (list of int64 K).
    """
    if size < 28 or not 1 <= items[0] <= items[1]:
        raise ValueError(f"need size >= 28 and 1 <= items[0] <= items[1]; got {size}, {items}")
    pool, pool_labels = data.fashion_mnist(split, root=root)
    g = torch.Generator().manual_seed(seed)
    scenes = []
    for _ in range(n):
        k = int(torch.randint(items[0], items[1] + 1, (), generator=g))
        idx = torch.randint(len(pool), (k,), generator=g)
        where = torch.randint(size - 28 + 1, (k, 2), generator=g)
        scenes.append(compose_scene(list(pool[idx, 0]), pool_labels[idx].tolist(),
                                    where.tolist(), size))
    images, masks, boxes, labels = zip(*scenes, strict=True)
    return torch.stack(images), torch.stack(masks), list(boxes), list(labels)


def pack_boxes(boxes: list[torch.Tensor], labels: list[torch.Tensor]) -> torch.Tensor:
    """Ragged boxes and labels as one N x K_max x 5 tensor of rows (class, x1, y1, x2, y2),
    padded with class -1, so that ``pretrain(..., labels=...)`` can index it by batch."""
    packed = torch.full((len(boxes), max(len(b) for b in boxes), 5), -1.0)
    for i, (b, c) in enumerate(zip(boxes, labels, strict=True)):
        packed[i, :len(b)] = torch.cat([c[:, None].float(), b], dim=1)
    return packed


# --------------------------------------------------------------------------- heads
def feature_map(encoder: nn.Module) -> nn.Sequential:
    """The encoder up to its last feature map, B x feature_dim x H/s x W/s, before pooling.

    For ``convnet`` (an ``nn.Sequential`` ending in AdaptiveAvgPool2d, Flatten; stride 4) and
    ``resnet18`` (children ending in avgpool, fc; stride 8 with the CIFAR stem) it drops the
    last two layers. The modules are shared, not copied: training the result trains
    ``encoder``. A ViT has tokens, not a map, and is refused.
    """
    children = list(encoder.backbone.children())
    if not isinstance(children[-2], nn.AdaptiveAvgPool2d):
        raise ValueError(f"{type(encoder.backbone).__name__} has no pooled feature map; "
                         "feature_map supports convnet and resnet18")
    return nn.Sequential(encoder.normalize, *children[:-2])


class SegmentationHead(nn.Module):
    """FCN-32s (Long, Shelhamer, Darrell, arXiv:1411.4038, Sec. 4.1): "a 1 x 1 convolution with
    channel dimension 21 to predict scores for each of the PASCAL classes", then upsampling to
    the input size (bilinear here; a deconvolution initialised to bilinear in the paper)."""

    def __init__(self, in_channels: int, num_classes: int = 11) -> None:
        super().__init__()
        self.classifier = nn.Conv2d(in_channels, num_classes, 1)

    def forward(self, f: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        logits = self.classifier(f)  # B x classes x h x w
        return F.interpolate(logits, size=image_size, mode="bilinear", align_corners=False)

    def loss(self, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), masks)  # per-pixel, masks B x H x W

    def decode(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.argmax(1)  # B x H x W


class CenterNetHead(nn.Module):
    """CenterNet, "Objects as Points" (Zhou, Wang, Krähenbühl, arXiv:1904.07850, Sec. 3): at
    every cell of the feature map (stride R), a heat-map per class Y, a box size S (in cells)
    and a sub-cell offset O of the centre. One shared 3 x 3 conv + ReLU, then a 1 x 1 conv to
    num_classes + 4 channels; the heat-map bias starts at -2.19 (prior 0.1, as the paper's code
    after focal loss, arXiv:1708.02002 Sec. 4.1)."""

    def __init__(self, in_channels: int, num_classes: int = 10, hidden: int = 64,
                 size_weight: float = 0.1, offset_weight: float = 1.0) -> None:
        super().__init__()
        self.num_classes, self.size_weight, self.offset_weight = num_classes, size_weight, \
            offset_weight
        self.body = nn.Sequential(nn.Conv2d(in_channels, hidden, 3, padding=1),
                                  nn.ReLU(inplace=True), nn.Conv2d(hidden, num_classes + 4, 1))
        nn.init.constant_(self.body[-1].bias[:num_classes], -2.19)

    def forward(self, f: torch.Tensor, image_size: tuple[int, int]) -> dict:
        out = self.body(f).float()  # B x (classes + 4) x h x w
        return {"heat": out[:, :self.num_classes], "size": out[:, -4:-2],
                "offset": out[:, -2:], "stride": image_size[0] / f.shape[-2]}

    def targets(self, packed: torch.Tensor, shape: tuple[int, int], stride: float) -> dict:
        """Heat-maps with a Gaussian at each centre p / R (its cell = floor, peak exactly 1;
        sigma = max(w, h) / 12 cells, at least 0.5: our simple size-adaptive rule), and the
        size and offset of every box at its centre cell."""
        B, (h, w) = len(packed), shape
        heat = torch.zeros(B, self.num_classes, h, w, device=packed.device)
        ys, xs = torch.arange(h, device=packed.device), torch.arange(w, device=packed.device)
        b, k = torch.nonzero(packed[..., 0] >= 0, as_tuple=True)
        c, box = packed[b, k, 0].long(), packed[b, k, 1:] / stride  # M, M x 4 (cells)
        centre, wh = (box[:, :2] + box[:, 2:]) / 2, box[:, 2:] - box[:, :2]  # M x 2 (x, y)
        cell = centre.floor().long().clamp_max(torch.tensor([w - 1, h - 1], device=box.device))
        sigma = (wh.max(1).values / 12).clamp_min(0.5)  # M
        for j in range(len(b)):
            d2 = (xs[None] - cell[j, 0]) ** 2 + (ys[:, None] - cell[j, 1]) ** 2  # h x w
            heat[b[j], c[j]] = heat[b[j], c[j]].maximum((-d2 / (2 * sigma[j] ** 2)).exp())
        return {"heat": heat, "batch": b, "cell": cell, "size": wh, "offset": centre - cell}

    def loss(self, out: dict, packed: torch.Tensor) -> torch.Tensor:
        """Focal loss on the heat-map (Eq. 1, alpha 2, beta 4) + 0.1 x L1 size (Eq. 3) + L1
        offset (Eq. 2), each divided by the number of objects N."""
        t = self.targets(packed, out["heat"].shape[-2:], out["stride"])
        p = out["heat"].sigmoid().clamp(1e-4, 1 - 1e-4)
        peak = t["heat"] == 1
        focal = torch.where(peak, (1 - p) ** 2 * p.log(),
                            (1 - t["heat"]) ** 4 * p ** 2 * (1 - p).log())
        n = max(1, len(t["batch"]))
        b, x, y = t["batch"], t["cell"][:, 0], t["cell"][:, 1]
        size = out["size"][b, :, y, x]  # M x 2
        offset = out["offset"][b, :, y, x]  # M x 2
        return (-focal.sum() + self.size_weight * (size - t["size"]).abs().sum()
                + self.offset_weight * (offset - t["offset"]).abs().sum()) / n

    @torch.no_grad()
    def decode(self, out: dict, k: int = 20) -> list[dict]:
        """Peaks (a cell that equals its 3 x 3 max-pool, the paper's NMS) with the top-``k``
        scores, as boxes (xyxy pixels) = (cell + offset -+ size / 2) x R; one dict of boxes,
        scores, labels per image, the format of :func:`detection_map`."""
        heat = out["heat"].sigmoid()  # B x C x h x w
        heat = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat)
        B, C, h, w = heat.shape
        scores, idx = heat.flatten(1).topk(min(k, C * h * w), dim=1)  # B x k
        labels, y, x = idx // (h * w), idx % (h * w) // w, idx % w
        results = []
        for i in range(B):
            centre = torch.stack([x[i], y[i]], 1) + out["offset"][i][:, y[i], x[i]].T  # k x 2
            half = out["size"][i][:, y[i], x[i]].T.clamp_min(0) / 2  # k x 2
            boxes = torch.cat([centre - half, centre + half], 1) * out["stride"]
            results.append({"boxes": boxes, "scores": scores[i], "labels": labels[i]})
        return results


# --------------------------------------------------------------------------- training
class DenseTask(nn.Module):
    """``head(feature_map(encoder)(x))`` as a loss, ``forward(views, labels)``, so that
    :func:`sslbook.train.pretrain` trains it with ``labels=masks`` (segmentation) or
    ``labels=pack_boxes(boxes, labels)`` (detection). Give ``pretrain`` an ``augment`` that
    keeps geometry, e.g. :func:`no_augment`: a crop or flip would move the targets.
    ``encoder_lr_scale=0`` freezes the encoder (no gradients, BatchNorm in eval mode) and
    trains the head alone; :meth:`make_optimizer` gives the encoder that fraction of the head's
    learning rate."""

    name = "dense"
    default_optimizer = {  # lr per 256 images, scaled by pretrain to the batch size
        "name": "adamw", "lr": 1e-2, "weight_decay": 1e-4, "warmup_epochs": 10,
        "source": "our choice: from scratch (convnet width 16, 1024 scenes, batch 64, 20 "
        "epochs, 1 CPU thread, about 1 min) lr 1e-2 gave test mIoU 0.31; for CenterNet "
        "4e-3 / 1.6e-2 gave mAP 0.30 / 0.33 (mAP@0.5 0.56 / 0.60), 2.0 only 0.01"}

    def __init__(self, encoder: nn.Module, head: nn.Module, encoder_lr_scale: float = 1.0
                 ) -> None:
        super().__init__()
        if encoder_lr_scale < 0:
            raise ValueError(f"encoder_lr_scale must be >= 0 (0 freezes), not {encoder_lr_scale}")
        self.encoder, self.head = encoder, head
        self.features = feature_map(encoder)
        self.encoder_lr_scale = encoder_lr_scale
        self.frozen = encoder_lr_scale == 0
        self.encoder.requires_grad_(not self.frozen)
        self.config = {"head": type(head).__name__, "encoder_lr_scale": encoder_lr_scale}

    def train(self, mode: bool = True) -> DenseTask:
        """As ``nn.Module.train``, but a frozen encoder stays in eval mode: its BatchNorm layers
        keep the running statistics they had (a frozen encoder is not changed at all)."""
        super().train(mode)
        if self.frozen:
            self.encoder.eval()
        return self

    def make_optimizer(self, batch_size: int, lr: float | None = None) -> torch.optim.Optimizer:
        """AdamW of :attr:`default_optimizer` (``lr``: per 256 images, scaled to the batch as
        ``pretrain`` does): the head at lr, the encoder at ``encoder_lr_scale`` x lr (not at all
        when frozen). Pass it to ``pretrain(..., optimizer=...)``. A smaller lr for pretrained
        layers than for a new head is our choice, after ULMFiT's discriminative fine-tuning
        (arXiv:1801.06146, Sec. 3.2), as in :func:`sslbook.evaluate.fine_tune`."""
        spec = self.default_optimizer
        head_lr = optim.scaled_lr(spec["lr"] if lr is None else lr, batch_size)
        groups = [{"params": list(self.head.parameters()), "lr": head_lr}]
        if not self.frozen:
            groups.append({"params": list(self.encoder.parameters()),
                           "lr": head_lr * self.encoder_lr_scale})
        return optim.create_optimizer(spec["name"], groups, head_lr,
                                      weight_decay=spec["weight_decay"])

    def predict(self, x: torch.Tensor):
        return self.head(self.features(x), x.shape[-2:])

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        return self.head.loss(self.predict(views[0]), labels)

    def on_before_step(self, step: int, total_steps: int) -> None:
        """Nothing to do before the optimizer step."""

    def on_step_end(self, step: int, total_steps: int) -> None:
        """Nothing to do after the optimizer step."""


def no_augment(x: torch.Tensor, generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """One view, the images themselves as floats in [0, 1]."""
    return [x.float() / 255 if x.dtype == torch.uint8 else x]


# --------------------------------------------------------------------------- grids of runs
def cached(folder, key: str, compute):
    """``compute()``'s JSON-able result, stored as ``folder/key.json`` the first time and read
    back from there afterwards; ``folder=None`` computes without storing. A grid of runs whose
    cells go through ``cached`` resumes after an interruption: finished cells are read, the
    rest computed (as ``benchmarks/checkpoints.py`` does under ``runs/checkpoints/``). The file
    is written to a temporary name and renamed, so a cell killed while writing is computed
    again, not read half-written."""
    import json
    import os
    import re
    from pathlib import Path

    if not re.fullmatch(r"[A-Za-z0-9_.=-]+", key):
        raise ValueError(f"cache key {key!r} must be letters, digits and _ . = - only")
    if folder is None:
        return compute()
    path = Path(folder) / f"{key}.json"
    if path.is_file():
        return json.loads(path.read_text())
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)
    return json.loads(path.read_text())


# --------------------------------------------------------------------------- metrics
def mean_iou(pred_masks: torch.Tensor, true_masks: torch.Tensor, num_classes: int):
    """Per-class IoU = TP / (TP + FP + FN), counted over all pixels of all images (PASCAL VOC's
    convention, background included as class 0), and their mean over the classes present in
    the prediction or the truth (an absent class has IoU nan and is left out)."""
    p, t = pred_masks.flatten().long(), true_masks.flatten().long()
    confusion = torch.bincount(t * num_classes + p, minlength=num_classes ** 2).reshape(
        num_classes, num_classes)  # true x predicted
    tp = confusion.diag().double()
    union = confusion.sum(0) + confusion.sum(1) - confusion.diag()
    iou = tp / union.double()  # nan where union = 0
    return iou, iou.nanmean().item()


def detection_map(preds: list[dict], targets: list[dict]) -> dict:
    """COCO mAP@[.5:.95] and mAP@0.5 (torchmetrics' ``MeanAveragePrecision``, pycocotools
    backend) of xyxy ``preds`` (boxes, scores, labels) against ``targets`` (boxes, labels)."""
    from torchmetrics.detection import MeanAveragePrecision

    metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", backend="pycocotools")
    metric.update([{k: v.detach().cpu() for k, v in p.items()} for p in preds],
                  [{k: v.detach().cpu() for k, v in t.items()} for t in targets])
    result = metric.compute()
    return {"map": result["map"].item(), "map_50": result["map_50"].item()}
