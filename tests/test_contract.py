"""The method contract (sslbook.methods.base) and the promise that it moved no number.

``tests/reference_losses.json`` holds the per-step losses and learning rates of a short
one-process CPU run of each method, written by the code before issue 18 (its ``commit``). The
refactored methods must give the same numbers, and their ``config`` the same keys and values
(the checkpoint cards and the "same run" check of a resume compare them).
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
import torch

from sslbook import augment, data, methods, models
from sslbook.methods.base import Method, encode_views
from sslbook.train import pretrain

REFERENCE = json.loads((Path(__file__).parent / "reference_losses.json").read_text())
MEAN, STD = data.STATS["fashion-mnist"]
# SwAV's knobs now count epochs (paper: prototypes frozen for the first epoch; official code:
# the queue starts at epoch 15); the reference runs used steps and a queue used once full.
THEN = {"swav": {"queue_start_epochs": 0}, "swav-multicrop": {"freeze_prototypes_steps": 313}}


@pytest.fixture(scope="module")
def images():
    return data.fashion_mnist("train")[0][: REFERENCE["images"]]


@pytest.fixture
def one_thread():
    """The references were recorded with one CPU thread: with two, float sums are reordered and
    the losses move by more than the tolerance."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("key", list(REFERENCE["runs"]))
def test_one_process_losses_are_those_recorded_before_the_refactor(images, key, one_thread):
    run = REFERENCE["runs"][key]
    torch.manual_seed(0)
    encoder = models.create("convnet", channels=1, mean=MEAN, std=STD, width=REFERENCE["width"])
    method = methods.create(run["method"], encoder, **run["kwargs"], **THEN.get(key, {}))
    views = (augment.preset("swav", 28, 1, small_crops=2) if run["augment"] == "swav+2"
             else augment.preset(run["augment"], 28, 1))
    history = pretrain(method, images, epochs=REFERENCE["epochs"],
                       batch_size=REFERENCE["batch_size"], augment=views, device="cpu",
                       warmup_epochs=0.1 * REFERENCE["epochs"],  # the warm-up of the record
                       progress=False)
    assert history["loss"] == pytest.approx(run["loss"], rel=1e-5, abs=1e-6)
    assert history["lr"] == pytest.approx(run["lr"], rel=1e-12)
    assert history["world_size"] == 1
    config = {k: v for k, v in method.config.items() if k in run["config"]}
    assert config == run["config"]
    if run["method"] != "swav":  # no new setting: the cards and resumes compare these dicts
        assert method.config == run["config"]
        default = methods.create(run["method"], models.create("convnet", channels=1, width=8))
        assert default.config == run["default_config"]


@pytest.mark.parametrize("name", list(methods.METHODS))
def test_config_is_read_from_the_signature(name):
    cls = methods.METHODS[name]
    method = cls(models.create("convnet", channels=1, width=8))
    assert isinstance(method, Method)
    names = [p for p in inspect.signature(cls).parameters if p != "encoder"]
    assert list(method.config) == names  # a new argument is recorded without editing a dict
    rebuilt = methods.create(name, models.create("convnet", channels=1, width=8),
                             **method.config)
    assert rebuilt.config == method.config


def test_a_setting_missing_from_config_would_be_caught():
    class Forgetful(Method):  # records its config by hand and forgets an argument
        def __init__(self, encoder, alpha: float = 1.0, beta: float = 2.0):
            super().__init__(encoder)
            self.config = {"alpha": alpha}

    with pytest.raises(ValueError, match="beta"):
        Forgetful(models.create("convnet", channels=1, width=8)).check_config()


def test_progress_is_given_to_the_method_and_counts_epochs():
    method = methods.create("simclr", models.create("convnet", channels=1, width=8))
    with pytest.raises(ValueError, match="steps_per_epoch"):
        method.epochs_to_steps(1.5)
    method.set_progress(step=7, total_steps=40, steps_per_epoch=4)
    assert (method.step, method.total_steps, method.steps_per_epoch) == (7, 40, 4)
    assert method.epoch == pytest.approx(1.75) and method.epochs_to_steps(1.5) == 6


def test_encode_views_groups_views_of_one_size_into_one_batch():
    calls = []

    class Count(torch.nn.Module):
        def forward(self, x):
            calls.append(x.shape[0])
            return x.flatten(1)[:, :3]

    big, small = torch.rand(4, 1, 8, 8), torch.rand(4, 1, 4, 4)
    h = encode_views(Count(), [big, big + 1, small, small + 1, small + 2])
    assert calls == [8, 12] and h.shape == (20, 3)
    torch.testing.assert_close(h[4:8], (big + 1).flatten(1)[:, :3])  # order kept


def test_swav_freezes_prototypes_for_an_epoch_and_starts_its_queue_late():
    swav = methods.create("swav", models.create("convnet", channels=1, width=8), hidden_dim=16,
                          out_dim=8, n_prototypes=5, queue_length=8,
                          freeze_prototypes_epochs=1, queue_start_epochs=2)
    views = [torch.rand(4, 1, 28, 28), torch.rand(4, 1, 28, 28)]
    used = []
    for step in range(12):  # 4 steps per epoch
        swav.set_progress(step, 12, steps_per_epoch=4)
        swav.prototypes.weight.grad = None
        swav(views).backward()
        swav.on_before_step(step, 12)
        used.append((swav.prototypes.weight.grad is not None, swav.used_queue))
    assert [g for g, _ in used] == [False] * 4 + [True] * 8  # frozen for the first epoch
    assert [q for _, q in used] == [False] * 8 + [True] * 4  # queue from epoch 2 (and full)
    legacy = methods.create("swav", models.create("convnet", channels=1, width=8),
                            freeze_prototypes_steps=313)  # a config written before epochs
    assert legacy.freeze_steps() == 313
