"""Checkers for Chapter 5 (supervised learning).

- :func:`check_cross_entropy`: cross-entropy with label smoothing (Szegedy et al. 2016,
  arXiv:1512.00567, Sec. 7), compared with ``F.cross_entropy(..., label_smoothing=eps)``.
- :func:`check_pair_noise`: class-conditional ("pair") label noise, an exact fraction of every
  class moved to one confusable class.
- :func:`check_confusion_matrix`: counts of (true class, predicted class), rows = true class.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from sslbook.exercises import CheckResult, close, run_check
from sslbook.exercises._reference.ch05 import confusion_reference as _confusion_reference


# --------------------------------------------------------------------------- Exercise 5.1
def _smoothing_hint(got: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor,
                    smoothing: float) -> str:
    """Name the usual mistake when the student's loss is off."""
    expected = F.cross_entropy(logits, targets, label_smoothing=smoothing)
    num_classes = logits.shape[1]
    log_p = F.log_softmax(logits, dim=1)  # B x C
    p = log_p.exp()  # B x C
    rows = torch.arange(len(targets))
    wrong_spread = (1 - smoothing) * F.one_hot(targets, num_classes) + smoothing / (
        num_classes - 1) * (1 - F.one_hot(targets, num_classes))  # B x C
    guesses = {
        "you summed over the batch; average it (the empirical risk is a mean)":
            expected * len(targets),
        "the sign is flipped: the loss is MINUS the log-probability":
            -expected,
        "you used probabilities p(y|x), not log-probabilities log p(y|x)":
            -((1 - smoothing) * p[rows, targets] + smoothing * p.mean(dim=1)).mean(),
        "smoothing spreads eps / C over ALL classes (the true one included), not eps / (C - 1) "
        "over the others": -(wrong_spread * log_p).sum(dim=1).mean(),
    }
    for hint, value in guesses.items():
        if torch.isfinite(got) and torch.allclose(got.double(), value.double(), rtol=1e-4,
                                                  atol=1e-5):
            return "; hint: " + hint
    return ""


def check_cross_entropy(fn: Callable, verbose: bool = True,
                        seed: int | None = None) -> CheckResult:
    """``fn(logits B x C, targets B (int64), smoothing float) -> scalar``: the mean over the
    batch of the cross-entropy between the smoothed target (1 - eps) one_hot + eps / C and
    softmax(logits). ``smoothing=0`` is the plain cross-entropy of the chapter; large logits
    must not overflow (subtract the row maximum)."""

    def test() -> tuple[bool, str]:
        generator = torch.Generator().manual_seed(5 if seed is None else seed + 5)
        cases = [(8, 10, 0.0, 1.0), (16, 10, 0.1, 3.0), (6, 4, 0.3, 2.0), (5, 10, 0.0, 40.0),
                 (7, 3, 0.2, 40.0)]
        for batch, num_classes, smoothing, scale in cases:
            logits = torch.randn(batch, num_classes, generator=generator) * scale  # B x C
            targets = torch.randint(0, num_classes, (batch,), generator=generator)  # B
            got = fn(logits.clone(), targets.clone(), smoothing)
            if not isinstance(got, torch.Tensor) or got.numel() != 1:
                return False, ("return one number, a scalar tensor (the mean over the batch), "
                               f"not {type(got).__name__}"
                               + (f" of shape {tuple(got.shape)}"
                                  if isinstance(got, torch.Tensor) else ""))
            got = got.detach().reshape(())
            where = f"(B={batch}, C={num_classes}, smoothing={smoothing}, logits up to " \
                    f"{logits.abs().max().item():.0f})"
            if not torch.isfinite(got):
                return False, (f"got {got.item()} {where}: exp of large logits overflows; "
                               "subtract each row's maximum before exp (log-sum-exp)")
            expected = F.cross_entropy(logits, targets, label_smoothing=smoothing)
            ok, message = close(got, expected)
            if not ok:
                return False, (f"{message} {where}"
                               + _smoothing_hint(got, logits, targets, smoothing))
        return True, ("matches F.cross_entropy(logits, targets, label_smoothing=eps), "
                      "large logits included")

    return run_check("Exercise 5.1 cross-entropy with label smoothing", test, verbose)


# --------------------------------------------------------------------------- Exercise 5.2
def _class_counts(seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Shuffled labels with unequal class sizes 20, 40, 60, 80, 100, and a pair map."""
    generator = torch.Generator().manual_seed(52 if seed is None else seed + 52)
    labels = torch.cat([torch.full((n,), c, dtype=torch.long)
                        for c, n in enumerate((20, 40, 60, 80, 100))])
    labels = labels[torch.randperm(len(labels), generator=generator)]
    pairs = torch.tensor([1, 0, 3, 2, 0])  # 0 <-> 1, 2 <-> 3, 4 -> 0
    return labels, pairs


def check_pair_noise(fn: Callable, verbose: bool = True,
                     seed: int | None = None) -> CheckResult:
    """``fn(labels N (int64), fraction float, pairs C (int64), generator) -> noisy N``: in every
    class c, exactly ``round(fraction * n_c)`` examples chosen at random get the label
    ``pairs[c]``; all others keep theirs; ``labels`` is not modified."""

    def test() -> tuple[bool, str]:
        labels, pairs = _class_counts(seed)
        masks = []
        offset = 0 if seed is None else seed
        for fraction, s in ((0.25, 0), (0.5, 1), (0.5, 2), (0.0, 3), (1.0, 4)):
            before = labels.clone()
            noisy = fn(labels, fraction, pairs, torch.Generator().manual_seed(offset + s))
            if not torch.equal(labels, before):
                return False, "you modified `labels` in place; work on a copy (labels.clone())"
            noisy = torch.as_tensor(noisy)
            if noisy.shape != labels.shape or noisy.dtype != torch.long:
                return False, (f"return an int64 tensor of shape {tuple(labels.shape)}, got "
                               f"{noisy.dtype} of shape {tuple(noisy.shape)}")
            changed = noisy != labels
            if not torch.equal(noisy[changed], pairs[labels[changed]]):
                return False, ("a changed label must become pairs[its class]; some became "
                               "another class (this is pair noise, not symmetric noise)")
            for c in range(len(pairs)):
                in_class = labels == c
                want = round(fraction * int(in_class.sum()))
                have = int(changed[in_class].sum())
                if have != want:
                    return False, (f"fraction={fraction}: class {c} has {int(in_class.sum())} "
                                   f"examples, so exactly {want} must change, but {have} did; "
                                   "choose an exact number per class, not a coin flip per "
                                   "example or a count over the whole set")
            masks.append(changed)
        for c in range(len(pairs)):
            positions = torch.nonzero(labels == c).flatten()
            first = positions[:round(0.5 * len(positions))]
            if bool(masks[1][first].all()) and bool(masks[2][first].all()):
                return False, (f"in class {c} the first examples are always the ones changed; "
                               "choose them at random (torch.randperm with the generator)")
        if torch.equal(masks[1], masks[2]):
            return False, ("two different generators changed the same examples; draw the "
                           "random choice from the `generator` argument")
        return True, "exact count per class, right target class, random choice, input untouched"

    return run_check("Exercise 5.2 pair label noise", test, verbose)


# --------------------------------------------------------------------------- Exercise 5.3


def check_confusion_matrix(fn: Callable, verbose: bool = True,
                           seed: int | None = None) -> CheckResult:
    """``fn(predicted N, labels N, num_classes) -> C x C`` counts, rows = true class,
    columns = predicted class, every class present even when it never occurs."""

    def test() -> tuple[bool, str]:
        generator = torch.Generator().manual_seed(53 if seed is None else seed + 53)
        for n, num_classes, seen in ((50, 4, 4), (200, 6, 4), (1, 3, 3)):
            labels = torch.randint(0, seen, (n,), generator=generator)  # classes >= seen absent
            predicted = torch.randint(0, num_classes - 1, (n,), generator=generator)
            got = fn(predicted.clone(), labels.clone(), num_classes)
            got = torch.as_tensor(got)
            expected = _confusion_reference(predicted, labels, num_classes)
            if got.shape != expected.shape:
                return False, (f"shape {tuple(got.shape)}, expected {tuple(expected.shape)}: "
                               "size it from num_classes, not from the labels that occur")
            if got.shape[0] > 1 and torch.allclose(got.double(), expected.T.double()) \
                    and not torch.equal(expected, expected.T):
                return False, "rows and columns are swapped: row = true class, column = predicted"
            has_examples = expected.sum(1) > 0  # rows of classes that occur
            if bool((expected.sum(1) > 1).any()) and torch.allclose(
                    got.double().sum(1)[has_examples], torch.ones(int(has_examples.sum()),
                                                                  dtype=torch.float64)):
                return False, "return counts, not rates: each entry is a number of examples"
            ok, message = close(got, expected)
            if not ok:
                return False, message
        return True, "matches the reference counts (rows = true class)"

    return run_check("Exercise 5.3 confusion matrix", test, verbose)


__all__ = ["check_confusion_matrix", "check_cross_entropy", "check_pair_noise"]
