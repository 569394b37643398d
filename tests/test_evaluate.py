"""Tests for sslbook.evaluate.

features / few_label_accuracy / fine_tune: encoder outputs in eval mode, label subsets averaged
over seeds, end-to-end fine-tuning that leaves the given encoder untouched.
"""

from __future__ import annotations

import copy

import pytest
import torch

from sslbook import data, evaluate, models


# --------------------------------------------------------------------------- features
def tiny_encoder():
    torch.manual_seed(0)
    return models.create("convnet", channels=1, width=4)


def test_features_eval_mode_float32_cpu_and_mode_restored():
    encoder = tiny_encoder()
    images = torch.randint(0, 256, (10, 1, 28, 28), dtype=torch.uint8)
    stats = copy.deepcopy(encoder.state_dict())
    out = evaluate.features(encoder, images, batch_size=3)  # 4 batches, the last of 1 image
    assert out.dtype == torch.float32 and out.device.type == "cpu"
    assert out.shape == (10, encoder.feature_dim)
    assert encoder.training  # train mode restored
    assert all(torch.equal(v, stats[k]) for k, v in encoder.state_dict().items())  # BN untouched
    with torch.no_grad():
        expected = copy.deepcopy(encoder).eval()(images.float() / 255)
    torch.testing.assert_close(out, expected)  # eval-mode BN: batch size does not matter
    torch.testing.assert_close(evaluate.features(encoder, images.float() / 255), out)
    encoder.eval()
    evaluate.features(encoder, images)
    assert not encoder.training  # eval mode stays eval


# --------------------------------------------------------------------------- few labels
def clusters(n_per_class: int, noise: float, seed: int):
    """Three Gaussian clusters in 2-D: features and labels."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[0.0, 4.0], [4.0, -2.0], [-4.0, -2.0]])
    labels = torch.arange(3).repeat_interleave(n_per_class)
    return centres[labels] + noise * torch.randn(len(labels), 2, generator=g), labels


@pytest.mark.parametrize("protocol", ["linear", "knn"])
def test_few_label_accuracy_is_the_mean_over_label_draws(protocol):
    X, y = clusters(40, noise=3.0, seed=0)
    X_test, y_test = clusters(100, noise=3.0, seed=1)
    mean, std = evaluate.few_label_accuracy(X, y, X_test, y_test, per_class=3, seeds=4,
                                            protocol=protocol)
    scores = []
    for seed in range(4):
        idx = data.few_labels(y, 3, seed=seed)
        if protocol == "knn":
            scores.append(evaluate.knn_accuracy(X[idx], y[idx], X_test, y_test))
        else:
            scores.append(evaluate.linear_probe(X[idx], y[idx], X_test, y_test, seed=seed))
    scores = torch.tensor(scores, dtype=torch.float64)
    assert mean == pytest.approx(scores.mean().item())
    assert std == pytest.approx(scores.std().item()) and std > 0  # draws differ on noisy data
    assert 1 / 3 < mean <= 1


def test_few_label_accuracy_one_label_and_one_seed():
    X, y = clusters(20, noise=0.3, seed=0)
    mean, std = evaluate.few_label_accuracy(X, y, X, y, per_class=1, seeds=1)
    assert mean == 1.0 and std == 0.0  # well separated: one label per class suffices
    with pytest.raises(ValueError, match="protocol"):
        evaluate.few_label_accuracy(X, y, X, y, per_class=1, protocol="svm")


# --------------------------------------------------------------------------- fine-tuning
def test_fine_tune_beats_chance_and_leaves_the_encoder_alone():
    x, y = data.fashion_mnist("train")
    x_test, y_test = data.fashion_mnist("test")
    mean, std = data.STATS["fashion-mnist"]
    torch.manual_seed(0)
    encoder = models.create("convnet", channels=1, mean=mean, std=std, width=8)
    before = copy.deepcopy(encoder.state_dict())
    accuracy = evaluate.fine_tune(encoder, x[:512], y[:512], x_test[:500], y_test[:500],
                                  epochs=4, batch_size=64, lr=3e-3, device="cpu")
    assert accuracy > 0.25  # chance is 0.1 (measured: 0.37)
    assert all(torch.equal(v, before[k]) for k, v in encoder.state_dict().items())


def test_fine_tune_with_encoder_lr_zero_leaves_the_encoder_unchanged():
    x, y = data.fashion_mnist("train")
    torch.manual_seed(0)
    encoder = evaluate.calibrate_batchnorm(models.create("convnet", width=4), x[:256])
    accuracy, net = evaluate.fine_tune(encoder, x[:256], y[:256], x[256:356], y[256:356],
                                       epochs=10, batch_size=64, lr=3e-2, encoder_lr=0.0,
                                       device="cpu", return_model=True)
    before, after = encoder.state_dict(), net[0].state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running stats too
    assert accuracy > 0.2  # the head did learn (chance 0.1; measured 0.29)
    _, tuned = evaluate.fine_tune(encoder, x[:256], y[:256], x[:100], y[:100], epochs=1,
                                  batch_size=64, lr=1e-2, encoder_lr=1e-3, device="cpu",
                                  return_model=True)
    assert not torch.equal(tuned[0].backbone[0].weight, encoder.backbone[0].weight)


def test_calibrate_batchnorm_measures_the_data_and_restores_the_module():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4, momentum=0.3))
    net.eval()
    images = (torch.rand(600, 1, 8, 8) * 255).to(torch.uint8)
    out = evaluate.calibrate_batchnorm(net, images, batches=3, batch_size=200)
    assert out is net and not net.training and net[1].momentum == 0.3
    with torch.no_grad():
        acts = net[0](images.float() / 255)  # 600 x 4 x 6 x 6
    # the average of three batch means is the mean over all 600 images (equal batch sizes)
    torch.testing.assert_close(net[1].running_mean, acts.mean(dim=(0, 2, 3)))
    batch_vars = torch.stack([acts[i:i + 200].var(dim=(0, 2, 3)) for i in (0, 200, 400)])
    torch.testing.assert_close(net[1].running_var, batch_vars.mean(0))


def test_effective_rank_counts_the_directions_used():
    torch.manual_seed(0)
    assert evaluate.effective_rank(torch.randn(2048, 16)) > 15  # all 16 directions
    line = torch.randn(512, 1) * torch.randn(1, 16)  # points on one line through the origin
    assert abs(evaluate.effective_rank(line) - 1) < 1e-3
    plane = torch.randn(512, 2) @ torch.randn(2, 16)
    assert 1.2 < evaluate.effective_rank(plane) <= 2.0 + 1e-4


def test_collapse_stats_tell_a_collapsed_network_from_a_spread_one():
    from sslbook import methods, models

    torch.manual_seed(0)
    images = torch.randint(0, 256, (256, 1, 28, 28), dtype=torch.uint8)
    method = methods.create("simsiam", models.create("convnet", 1, [0.5], [0.5], 28, width=8),
                            dim=32, pred_dim=8)
    method.train()
    for layer in method.modules():  # BatchNorm statistics: those of one batch, exactly
        if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
            layer.momentum = None
    with torch.no_grad():
        method.predictor(method.projector(method.encoder(images.float() / 255)))
    spread = evaluate.collapse_stats(method, images)
    assert set(spread) == {f"{s}_{k}" for s in ("spread", "rank") for k in "hzp"}
    assert spread["spread_p"] > 1e-3 and spread["rank_p"] > 2
    assert method.training  # the mode it had
    with torch.no_grad():  # collapse the predictor: every image gives its bias
        for layer in method.predictor.modules():
            if isinstance(layer, torch.nn.Linear):
                layer.weight.zero_()
    collapsed = evaluate.collapse_stats(method, images)
    assert collapsed["spread_p"] < 1e-6 and collapsed["spread_z"] == spread["spread_z"]


def test_fine_tune_probe_init_starts_the_head_at_the_linear_probe():
    x, y = data.fashion_mnist("train")
    torch.manual_seed(0)
    encoder = evaluate.calibrate_batchnorm(models.create("convnet", width=4), x[:512])
    train, test = (x[:300], y[:300]), (x[300:700], y[300:700])
    probe = evaluate.linear_probe(evaluate.features(encoder, train[0]), train[1],
                                  evaluate.features(encoder, test[0]), test[1])
    # lr 0 everywhere: the head keeps its initial weights, so the accuracy is the start's
    started = evaluate.fine_tune(encoder, *train, *test, epochs=1, batch_size=100, lr=0.0,
                                 encoder_lr=0.0, probe_init=True, device="cpu")
    assert abs(started - probe) <= 1 / len(test[1]) and probe > 0.5  # chance 0.1
    random_head = evaluate.fine_tune(encoder, *train, *test, epochs=1, batch_size=100, lr=0.0,
                                     encoder_lr=0.0, device="cpu")
    assert random_head < probe - 0.2
    one_each = data.few_labels(y[:2000], 1, seed=0)  # one per class: C = 1, no split
    assert len(one_each) == 10 and evaluate.fine_tune(
        encoder, x[one_each], y[one_each], *test, epochs=2, batch_size=10, lr=1e-3,
        encoder_lr=1e-4, probe_init=True, device="cpu") > 0.2
