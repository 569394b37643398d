"""Tests for sslbook.downstream: scenes, heads, metrics, and training a DenseTask with pretrain.

The scene tests check every stated rule against an independent computation (torchvision's
``masks_to_boxes``, an exact search of Fashion-MNIST) and one case worked out by hand.
"""

from __future__ import annotations

import pytest
import torch
from torchvision.ops import masks_to_boxes

from sslbook import data, downstream, models, train


@pytest.fixture(scope="module")
def scenes():
    return downstream.fashion_scenes(40, size=64, seed=3)


# --------------------------------------------------------------------------- scenes
def test_compose_scene_by_hand():
    # A (class 2) 3 x 3 of 100 at (0, 0); C (class 0) one pixel at (2, 2); B (class 5) at (1, 1)
    A = torch.full((3, 3), 100, dtype=torch.uint8)
    C = torch.tensor([[50]], dtype=torch.uint8)
    B = torch.tensor([[0, 0, 0], [0, 200, 200], [0, 200, 10]], dtype=torch.uint8)
    image, mask, boxes, labels = downstream.compose_scene(
        [A, C, B], [2, 0, 5], [(0, 0), (2, 2), (1, 1)], size=5)
    assert image.shape == (1, 5, 5) and image.dtype == torch.uint8
    assert image[0].tolist() == [[100, 100, 100, 0, 0],
                                 [100, 100, 100, 0, 0],  # B's zeros do not erase A
                                 [100, 100, 200, 200, 0],  # B's mask overwrites A and C
                                 [0, 0, 200, 10, 0],  # B's faint 10 is painted, not masked
                                 [0, 0, 0, 0, 0]]
    assert mask.tolist() == [[3, 3, 3, 0, 0],
                             [3, 3, 3, 0, 0],
                             [3, 3, 6, 6, 0],
                             [0, 0, 6, 0, 0],
                             [0, 0, 0, 0, 0]]
    assert boxes.tolist() == [[0, 0, 3, 3], [2, 2, 4, 4]]  # C, wholly hidden, is dropped
    assert labels.tolist() == [2, 5]
    with pytest.raises(ValueError, match="leaves"):
        downstream.compose_scene([A], [0], [(3, 0)], size=5)


def test_scenes_are_deterministic_and_shaped(scenes):
    images, masks, boxes, labels = scenes
    again = downstream.fashion_scenes(40, size=64, seed=3)
    assert torch.equal(images, again[0]) and torch.equal(masks, again[1])
    assert all(torch.equal(a, b) for a, b in zip(boxes, again[2], strict=True))
    assert all(torch.equal(a, b) for a, b in zip(labels, again[3], strict=True))
    assert not torch.equal(images, downstream.fashion_scenes(40, size=64, seed=4)[0])
    assert images.shape == (40, 1, 64, 64) and images.dtype == torch.uint8
    assert masks.shape == (40, 64, 64) and masks.dtype == torch.int64
    assert all(1 <= len(b) <= 4 and b.shape[1] == 4 and b.dtype == torch.float32 for b in boxes)


def test_masks_follow_the_threshold(scenes):
    images, masks, _, _ = scenes
    # every pixel >= 32 came from some item's mask, and every mask pixel is >= 32
    assert torch.equal(masks > 0, images[:, 0] >= downstream.THRESHOLD)


def test_boxes_are_tight_around_visible_pixels(scenes):
    images, masks, boxes, labels = scenes
    for mask, b, c in zip(masks, boxes, labels, strict=True):
        assert sorted(set(mask.unique().tolist()) - {0}) == sorted(set((c + 1).tolist()))
        for box, label in zip(b, c, strict=True):
            x1, y1, x2, y2 = box.long().tolist()
            # the item's visible pixels are of its class, inside the box, touching every side
            inside = mask[y1:y2, x1:x2] == label + 1
            assert inside[0].any() and inside[-1].any()
            assert inside[:, 0].any() and inside[:, -1].any()
        if len(set(c.tolist())) == len(c):  # one item per class: recompute from the mask
            per_class = torch.stack([mask == label + 1 for label in c])
            expected = masks_to_boxes(per_class) + torch.tensor([0, 0, 1, 1])
            torch.testing.assert_close(b, expected)


def test_single_item_scenes_are_fashion_mnist_images_with_their_labels():
    pool, pool_labels = data.fashion_mnist("test")
    images, masks, boxes, labels = downstream.fashion_scenes(
        10, size=28, seed=0, split="test", items=(1, 1))  # the only position is (0, 0)
    flat = pool.flatten(1)
    for image, label in zip(images, labels, strict=True):
        found = torch.nonzero((flat == image.flatten()).all(1)).flatten()
        assert len(found) >= 1
        assert label.tolist() == [pool_labels[found[0]].item()]


def test_pack_boxes_pads_with_minus_one():
    packed = downstream.pack_boxes([torch.tensor([[1., 2, 3, 4]]), torch.zeros(0, 4)],
                                   [torch.tensor([7]), torch.zeros(0, dtype=torch.int64)])
    assert packed.tolist() == [[[7, 1, 2, 3, 4]], [[-1, -1, -1, -1, -1]]]


# --------------------------------------------------------------------------- heads
def test_feature_map_shares_the_encoders_layers():
    torch.manual_seed(0)
    encoder = models.create("convnet", width=4)
    body = downstream.feature_map(encoder)
    x = torch.rand(2, 1, 64, 64)
    f = body.eval()(x)
    assert f.shape == (2, encoder.feature_dim, 16, 16)  # stride 4
    torch.testing.assert_close(f.mean((2, 3)), encoder.eval()(x))  # pooling gives the features
    assert body[1] is encoder.backbone[0]
    resnet = models.create("resnet18", channels=1).eval()
    x = torch.rand(1, 1, 32, 32)
    f = downstream.feature_map(resnet)(x)
    assert f.shape == (1, 512, 4, 4)  # stride 8 with the CIFAR stem
    torch.testing.assert_close(f.mean((2, 3)), resnet(x))
    with pytest.raises(ValueError, match="feature map"):
        downstream.feature_map(models.create("vit_tiny", channels=1, image_size=28,
                                             num_layers=1))


def test_segmentation_head_upsamples_to_the_input():
    head = downstream.SegmentationHead(8, num_classes=11)
    logits = head(torch.rand(2, 8, 16, 16), (64, 64))
    assert logits.shape == (2, 11, 64, 64)
    assert head.decode(logits).shape == (2, 64, 64)


def test_centernet_perfect_maps_decode_to_the_true_boxes(scenes):
    _, _, boxes, labels = scenes
    head = downstream.CenterNetHead(8, num_classes=10)
    packed = downstream.pack_boxes(boxes[:8], labels[:8])
    t = head.targets(packed, (16, 16), 4.0)
    assert (t["heat"] == 1).sum() <= len(t["batch"]) and t["heat"].max() == 1
    out = {"heat": torch.logit(t["heat"].clamp(1e-6, 1 - 1e-6)), "stride": 4.0,
           "size": torch.zeros(8, 2, 16, 16), "offset": torch.zeros(8, 2, 16, 16)}
    b, x, y = t["batch"], t["cell"][:, 0], t["cell"][:, 1]
    out["size"][b, :, y, x], out["offset"][b, :, y, x] = t["size"], t["offset"]
    preds = head.decode(out, k=20)
    targets = [{"boxes": bx, "labels": lb} for bx, lb in zip(boxes[:8], labels[:8], strict=True)]
    for p, target in zip(preds, targets, strict=True):
        keep = p["scores"] > 0.99  # the peaks
        assert sorted(p["labels"][keep].tolist()) == sorted(target["labels"].tolist())
    pytest.importorskip("torchmetrics")
    assert downstream.detection_map(preds, targets)["map"] == pytest.approx(1.0)
    # sizes 1 cell too wide and too tall add 0.1 x (1 + 1) per object to the mean loss
    wrong = {**out, "size": out["size"] + 1}
    torch.testing.assert_close(head.loss(wrong, packed) - head.loss(out, packed),
                               torch.tensor(0.2), atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- metrics
def test_mean_iou_by_hand():
    true = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1]])
    pred = torch.tensor([[0, 1, 1, 1], [0, 0, 1, 2]])
    iou, mean = downstream.mean_iou(pred, true, num_classes=4)
    # class 0: TP 3, FP 0, FN 1 -> 3/4; class 1: TP 3, FP 1, FN 1 -> 3/5; class 2: 0/1;
    # class 3 absent everywhere: nan, left out of the mean
    torch.testing.assert_close(iou[:3], torch.tensor([0.75, 0.6, 0.0], dtype=torch.float64))
    assert torch.isnan(iou[3]) and mean == pytest.approx((0.75 + 0.6 + 0.0) / 3)


def test_detection_map_by_hand():
    pytest.importorskip("torchmetrics")
    target = [{"boxes": torch.tensor([[0., 0, 10, 10]]), "labels": torch.tensor([1])}]
    perfect = [{"boxes": torch.tensor([[0., 0, 10, 10]]), "scores": torch.tensor([0.9]),
                "labels": torch.tensor([1])}]
    assert downstream.detection_map(perfect, target) == {"map": 1.0, "map_50": 1.0}
    # shifted by 2 pixels: IoU = 80 / 120 = 0.667, a match at thresholds .50 .55 .60 .65 and
    # a miss at .70 ... .95: mAP@[.5:.95] = 4/10, mAP@0.5 = 1
    shifted = [{**perfect[0], "boxes": torch.tensor([[2., 0, 12, 10]])}]
    result = downstream.detection_map(shifted, target)
    assert result["map_50"] == pytest.approx(1.0) and result["map"] == pytest.approx(0.4)
    wrong_class = [{**perfect[0], "labels": torch.tensor([2])}]
    assert downstream.detection_map(wrong_class, target)["map"] == 0.0


# --------------------------------------------------------------------------- training
@pytest.mark.parametrize("task", ["segmentation", "detection"])
def test_pretrain_trains_a_dense_task(scenes, task):
    images, masks, boxes, labels = scenes
    torch.manual_seed(0)
    encoder = models.create("convnet", width=8)
    head = downstream.SegmentationHead(32) if task == "segmentation" else \
        downstream.CenterNetHead(32, hidden=16)
    targets = masks if task == "segmentation" else downstream.pack_boxes(boxes, labels)
    method = downstream.DenseTask(encoder, head)
    history = train.pretrain(method, images, epochs=6, batch_size=20,
                             augment=downstream.no_augment, labels=targets, lr=0.1,
                             device="cpu", progress=False, warmup_epochs=0)
    loss = history["loss"]
    # the last two steps' loss against the first two: measured 0.54 and 0.79
    ratio = sum(loss[-2:]) / sum(loss[:2])
    assert len(loss) == 12 and ratio < {"segmentation": 0.7, "detection": 0.9}[task]


# --------------------------------------------------------------------------- frozen / lr
def test_frozen_dense_task_leaves_the_encoder_unchanged(scenes):
    images, masks, _, _ = scenes
    torch.manual_seed(0)
    encoder = models.create("convnet", width=4)
    before = {k: v.clone() for k, v in encoder.state_dict().items()}  # BN statistics included
    task = downstream.DenseTask(encoder, downstream.SegmentationHead(16), encoder_lr_scale=0)
    head_before = task.head.classifier.weight.clone()
    optimizer = task.make_optimizer(batch_size=20)
    assert sum(len(g["params"]) for g in optimizer.param_groups) == 2  # the head's weight, bias
    train.pretrain(task, images, epochs=1, batch_size=20, augment=downstream.no_augment,
                   labels=masks, optimizer=optimizer, device="cpu", progress=False)
    assert all(torch.equal(before[k], v) for k, v in encoder.state_dict().items())
    assert not torch.equal(head_before, task.head.classifier.weight)  # the head did learn
    assert not task.encoder.training and task.head.training


def test_dense_optimizer_gives_the_encoder_a_fraction_of_the_lr():
    encoder = models.create("convnet", width=4)
    task = downstream.DenseTask(encoder, downstream.SegmentationHead(16), encoder_lr_scale=0.1)
    optimizer = task.make_optimizer(batch_size=64, lr=0.02)  # 0.02 per 256 -> 0.005 at 64
    lrs = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            lrs[id(p)] = group["lr"]
    assert [lrs[id(p)] for p in task.head.parameters()] == pytest.approx([0.005] * 2)
    assert [lrs[id(p)] for p in encoder.parameters()] == pytest.approx([0.0005] * 9)
    assert all(p.requires_grad for p in encoder.parameters()) and task.train().encoder.training
    with pytest.raises(ValueError, match="encoder_lr_scale"):
        downstream.DenseTask(encoder, downstream.SegmentationHead(16), encoder_lr_scale=-1)


# --------------------------------------------------------------------------- cached cells
def test_cached_computes_once_and_resumes(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"accuracy": 0.5, "per_class": [1, 2]}

    first = downstream.cached(tmp_path / "grid", "finetune-simclr-10-seed0", compute)
    again = downstream.cached(tmp_path / "grid", "finetune-simclr-10-seed0", compute)
    assert first == again == {"accuracy": 0.5, "per_class": [1, 2]} and len(calls) == 1
    assert (tmp_path / "grid" / "finetune-simclr-10-seed0.json").is_file()
    # a half-written file of a killed run has the .part suffix and is not read back
    (tmp_path / "grid" / "other.part").write_text("{")
    assert downstream.cached(tmp_path / "grid", "other", compute) == first and len(calls) == 2
    assert downstream.cached(None, "x", compute) == first and len(calls) == 3  # not stored
    with pytest.raises(ValueError, match="cache key"):
        downstream.cached(tmp_path, "../escape", compute)
