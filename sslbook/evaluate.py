"""Evaluation protocols on frozen features: weighted kNN and a linear probe.

Raw pixels are features too, so the book's first baselines (Chapter 1) use exactly the protocol
that later chapters use for self-supervised encoders. :func:`features` turns images into
encoder features; :func:`few_label_accuracy` repeats a protocol on a few labels per class;
:func:`fine_tune` trains a copy of the encoder with a linear head end to end;
:func:`calibrate_batchnorm` prepares a randomly initialised encoder as a baseline;
:func:`collapse_stats` measures whether a network's outputs collapsed.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F


def _as_tensor(x, dtype=torch.float32) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    return x.to(dtype)


def _flat_features(x) -> torch.Tensor:
    """N x ... features as float32 N x D (uint8 images become [0, 1] pixels)."""
    x = torch.as_tensor(x)
    if x.dtype == torch.uint8:
        x = x.float() / 255
    return x.reshape(len(x), -1).float()


@torch.no_grad()
def knn_predict(train_features, train_labels, test_features, k: int = 200,
                temperature: float | None = 0.1, chunk_size: int = 1024) -> torch.Tensor:
    """Predicted labels by a k-nearest-neighbour vote under cosine similarity.

    With ``temperature`` each of the k neighbours votes with weight exp(sim / T): the monitor of
    InstDisc (Wu et al. 2018, arXiv:1805.01978, Sec. 3.4) that MoCo's CIFAR demo and lightly's
    benchmarks use (k = 200, T = 0.1). With ``temperature=None`` every neighbour gets one vote.
    """
    train = F.normalize(_flat_features(train_features), dim=1)  # N x D
    test = F.normalize(_flat_features(test_features), dim=1)  # M x D
    labels = torch.as_tensor(train_labels).long()  # N
    if len(train) != len(labels):
        raise ValueError(f"{len(train)} training features but {len(labels)} labels")
    num_classes = int(labels.max()) + 1
    k = min(k, len(train))
    predictions = []
    for start in range(0, len(test), chunk_size):
        sim = test[start:start + chunk_size] @ train.T  # m x N
        top_sim, top_idx = sim.topk(k, dim=1)  # m x k
        weights = (top_sim / temperature).exp() if temperature else torch.ones_like(top_sim)
        votes = torch.zeros(len(sim), num_classes)  # m x C
        votes.scatter_add_(1, labels[top_idx], weights)
        predictions.append(votes.argmax(dim=1))
    return torch.cat(predictions)


def knn_accuracy(train_features, train_labels, test_features, test_labels, k: int = 200,
                 temperature: float | None = 0.1) -> float:
    """Accuracy (a fraction) of :func:`knn_predict` on the test set."""
    predicted = knn_predict(train_features, train_labels, test_features, k, temperature)
    return (predicted == torch.as_tensor(test_labels).long()).float().mean().item()


def _fit_logistic(X: torch.Tensor, y: torch.Tensor, num_classes: int, C: float,
                  max_iter: int, init: tuple[torch.Tensor, torch.Tensor] | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression by full-batch L-BFGS, optionally warm-started.

    Minimises the objective of scikit-learn's ``LogisticRegression(C=C)`` divided by C*N:
    mean cross-entropy + ||W||^2 / (2 C N) (the bias is not penalised).
    """
    if init is None:
        init = torch.zeros(X.shape[1], num_classes), torch.zeros(num_classes)
    W = init[0].clone().to(X.dtype).requires_grad_()  # D x C
    b = init[1].clone().to(X.dtype).requires_grad_()  # C
    optimizer = torch.optim.LBFGS([W, b], lr=1, max_iter=max_iter, history_size=20,
                                  tolerance_grad=1e-6, tolerance_change=1e-9,
                                  line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(X @ W + b, y) + (W * W).sum() / (2 * C * len(X))
        loss.backward()
        return loss

    optimizer.step(closure)
    return W.detach(), b.detach()


def linear_probe(train_features, train_labels, test_features, test_labels,
                 Cs: tuple[float, ...] = (0.01, 0.1, 1.0), val_fraction: float = 0.1,
                 max_iter: int = 100, seed: int = 0, return_info: bool = False):
    """Accuracy (a fraction) of multinomial logistic regression on frozen features.

    Features are standardised with the training set's statistics. The inverse regularisation
    strength ``C`` (scikit-learn's convention) is chosen on a validation split carved from the
    training set (``val_fraction``, stratified), fitting from the strongest regularisation to the
    weakest, each fit warm-started from the last; the model is then refitted on the whole training
    set with that C, and the test set is used exactly once. With ``return_info=True`` it returns
    ``(accuracy, info)``; info holds the chosen C and the validation accuracies.
    """
    X = _flat_features(train_features)
    y = torch.as_tensor(train_labels).long()
    X_test = _flat_features(test_features)
    y_test = torch.as_tensor(test_labels).long()
    if len(X) != len(y) or len(X_test) != len(y_test):
        raise ValueError("features and labels differ in length: "
                         f"{len(X)} vs {len(y)} (train), {len(X_test)} vs {len(y_test)} (test)")
    num_classes = int(max(y.max(), y_test.max())) + 1

    best_C, val_scores, (W, b, mean, std) = _fit_probe(X, y, num_classes, Cs, val_fraction,
                                                       max_iter, seed)
    test_accuracy = ((((X_test - mean) / std) @ W + b).argmax(1) == y_test).float().mean().item()
    if return_info:
        return test_accuracy, {"C": best_C, "val_accuracy": val_scores}
    return test_accuracy


def _fit_probe(X, y, num_classes, Cs, val_fraction, max_iter, seed):
    """linear_probe's fit: ``(C, validation accuracies, (W, b, mean, std))``, the logits being
    ``((X - mean) / std) @ W + b``."""
    def fit(C, X_fit, y_fit, init=None):
        mean, std = X_fit.mean(0), X_fit.std(0).clamp_min(1e-6)
        return _fit_logistic((X_fit - mean) / std, y_fit, num_classes, C, max_iter, init), mean, std

    val_scores, init, best_C = {}, None, Cs[0]
    if len(Cs) > 1:
        generator = torch.Generator().manual_seed(seed)
        val = torch.zeros(len(y), dtype=torch.bool)
        for c in y.unique():  # stratified: val_fraction of every class, at least one
            idx = torch.nonzero(y == c).flatten()
            idx = idx[torch.randperm(len(idx), generator=generator)]
            val[idx[:max(1, round(val_fraction * len(idx)))]] = True
        if (~val).sum() == 0:
            raise ValueError("too few training examples to carve a validation split")
        solutions = {}
        for C in sorted(Cs):
            init, mean, std = fit(C, X[~val], y[~val], init)
            predicted = (((X[val] - mean) / std) @ init[0] + init[1]).argmax(1)
            val_scores[C] = (predicted == y[val]).float().mean().item()
            solutions[C] = init
        best_C = max(Cs, key=lambda C: (val_scores[C], -C))
        init = solutions[best_C]
    (W, b), mean, std = fit(best_C, X, y, init)
    return best_C, val_scores, (W, b, mean, std)


# --------------------------------------------------------------------------- encoders
def _device_of(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device


@torch.no_grad()
def features(encoder: torch.nn.Module, images: torch.Tensor, batch_size: int = 512,
             device: str | torch.device | None = None, progress: bool = False) -> torch.Tensor:
    """Encoder outputs (float32 CPU N x D, not normalised) for uint8 or [0, 1] float images.

    Runs in eval mode (BatchNorm uses running statistics) and puts the encoder back in the mode
    it had. Batches go to ``device`` (default: the encoder's; a given device moves the encoder
    there); on CUDA the forward pass runs under bf16 autocast and the output is cast to float32.
    ``progress=True`` shows a progress bar (tqdm).
    """
    from tqdm.auto import tqdm

    device = torch.device(device) if device is not None else _device_of(encoder)
    encoder.to(device)
    was_training = encoder.training
    encoder.eval()
    out = []
    try:
        for start in tqdm(range(0, len(images), batch_size), disable=not progress,
                          desc="features", unit="batch", leave=False):
            x = images[start:start + batch_size].to(device, non_blocking=True)
            x = x.float() / 255 if x.dtype == torch.uint8 else x.float()  # B x C x H x W
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                out.append(encoder(x).float().cpu())  # B x D
    finally:
        encoder.train(was_training)
    return torch.cat(out)  # N x D


def effective_rank(x: torch.Tensor) -> float:
    """exp(entropy) of the normalised singular values of the centred N x D ``x`` (the effective
    rank of Roy and Vetterli, 2007): D when the variation around the mean uses every direction
    equally, 1 when the points lie on a line. RankMe (Garrido et al., ICML 2023,
    arXiv:2210.02885, Eq. 1; Exercise 7.3) applies it to the uncentred embeddings; centring
    makes it the effective rank of their covariance spectrum, the spectrum in which Jing et al.
    (ICLR 2022, arXiv:2110.09348) see dimensional collapse. It catches a collapse to a few
    directions, which the mean per-dimension spread misses (points at +v and -v keep a spread
    of the order of 1/sqrt(D)); after a complete collapse (spread 0) only rounding noise is
    left, whose rank means nothing, so read it together with the spread."""
    s = torch.linalg.svdvals(x.float() - x.float().mean(0))
    p = s / s.sum().clamp_min(1e-12) + 1e-12
    return torch.exp(-(p * p.log()).sum()).item()


@torch.no_grad()
def collapse_stats(method: torch.nn.Module, images: torch.Tensor) -> dict:
    """For the encoder (``h``), the projector (``z``) and the predictor (``p``) where ``method``
    has them, in eval mode on uint8 ``images``: ``spread_*``, the std over the images of each
    l2-normalised output dimension averaged over dimensions (SimSiam, arXiv:2011.10566, Fig. 2:
    0 when every image gives the same vector, about 1/sqrt(dim) when spread out), and
    ``rank_*``, the :func:`effective_rank` of the l2-normalised outputs."""
    was = method.training
    method.eval()
    x = images.to(_device_of(method)).float() / 255
    outputs = {"h": method.encoder(x)}
    if hasattr(method, "projector"):
        outputs["z"] = method.projector(outputs["h"])
        predictor = getattr(method, "predictor", None)
        if predictor is not None and not isinstance(predictor, torch.nn.Identity):
            outputs["p"] = predictor(outputs["z"])
    out = {}
    for key, value in outputs.items():
        unit = F.normalize(value.float(), dim=1)
        out[f"spread_{key}"] = unit.std(0).mean().item()
        out[f"rank_{key}"] = effective_rank(unit)
    method.train(was)
    return out


@torch.no_grad()
def calibrate_batchnorm(encoder: torch.nn.Module, images: torch.Tensor, batches: int = 16,
                        batch_size: int = 256, device: str | torch.device | None = None
                        ) -> torch.nn.Module:
    """Set every BatchNorm's running statistics to their average over ``batches`` batches of
    ``images`` (uint8 or [0, 1]), without any gradient step, and return ``encoder``.

    A randomly initialised encoder's BatchNorm layers hold mean 0 and variance 1, which in eval
    mode scale its features arbitrarily; a fair "random encoder" baseline measures them first.
    The statistics are reset and averaged cumulatively (``momentum=None``), so the result does
    not depend on the initial values; the encoder's mode and momenta are restored.
    """
    device = torch.device(device) if device is not None else _device_of(encoder)
    norms = [m for m in encoder.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta, was_training = [m.momentum for m in norms], encoder.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    encoder.to(device).train()
    try:
        for start in range(0, min(len(images), batches * batch_size), batch_size):
            x = images[start:start + batch_size].to(device)
            encoder(x.float() / 255 if x.dtype == torch.uint8 else x.float())
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        encoder.train(was_training)
    return encoder


def few_label_accuracy(train_features, train_labels, test_features, test_labels, per_class: int,
                       seeds: int = 3, protocol: str = "linear", **kw) -> tuple[float, float]:
    """Mean and standard deviation (over ``seeds`` label draws) of the accuracy with only
    ``per_class`` labelled training examples of each class (``sslbook.data.few_labels``).

    The semi-supervised protocol of SimCLR (arXiv:2002.05709, Sec. 6 and Table 7: 1% and 10%
    of the labels), here by class count. ``protocol`` is ``"linear"`` (:func:`linear_probe`;
    with one label per class no validation split exists, so C = 1) or ``"knn"``
    (:func:`knn_accuracy`); ``kw`` goes to it. The std is the sample std (0 for one seed).
    """
    from sslbook.data import few_labels

    if protocol not in ("linear", "knn"):
        raise ValueError(f"protocol must be 'linear' or 'knn', not {protocol!r}")
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, not {seeds}")
    X, y = torch.as_tensor(train_features), torch.as_tensor(train_labels)
    scores = []
    for seed in range(seeds):
        idx = few_labels(y, per_class, seed=seed)
        if protocol == "knn":
            scores.append(knn_accuracy(X[idx], y[idx], test_features, test_labels, **kw))
        else:
            options = {"Cs": (1.0,)} if per_class < 2 else {}
            scores.append(linear_probe(X[idx], y[idx], test_features, test_labels,
                                       **{**options, "seed": seed, **kw}))
    scores_t = torch.tensor(scores, dtype=torch.float64)
    std = scores_t.std().item() if seeds > 1 else 0.0
    return scores_t.mean().item(), std


def fine_tune(encoder: torch.nn.Module, train_images: torch.Tensor, train_labels: torch.Tensor,
              test_images: torch.Tensor, test_labels: torch.Tensor, epochs: int = 10,
              batch_size: int = 256, lr: float = 1e-3, weight_decay: float = 1e-4,
              augment=None, device: str | torch.device | None = None, seed: int = 0,
              encoder_lr: float | None = None, probe_init: bool = False,
              return_model: bool = False):
    """Test accuracy after training a copy of ``encoder`` plus a linear head end to end.

    The fine-tuning protocol (SimCLR arXiv:2002.05709, Sec. 6 / App. B.5) kept small: AdamW
    (lr, weight_decay), cosine decay over ``epochs``, cross-entropy; ``augment`` (a preset, of
    which the first view is used, or any ``aug(x, generator) -> tensor``) is applied to the
    training batches. ``encoder`` itself is not modified (a deep copy is trained).

    ``encoder_lr`` (default: ``lr``) is the encoder's own, usually smaller, learning rate, the
    head keeping ``lr``: our choice, in the spirit of ULMFiT's discriminative fine-tuning
    (arXiv:1801.06146, Sec. 3.2) and layer-wise lr decay (BEiT, arXiv:2106.08254). With
    ``encoder_lr=0`` the encoder is frozen: no gradients, and eval mode, so that BatchNorm's
    running statistics stay as they were (as MoCo's ``main_lincls.py``); this is a linear probe
    trained by AdamW.

    ``probe_init=True`` starts the head from the linear probe (``linear_probe``'s fit on the
    frozen features of the training images, its standardisation folded into the head; C = 1 when
    a class has a single example, too few for a validation split): LP-FT (Kumar et al.,
    "Fine-Tuning can Distort Pretrained Features and Underperform Out-of-Distribution", ICLR 2022,
    arXiv:2202.10054): fine-tuning starts where the probe ends, and the encoder is not moved by
    the gradients of a head that is still random (their Sec. 3). ``return_model=True`` returns
    ``(accuracy, net)``, ``net`` being ``nn.Sequential(encoder copy, linear head)``.
    """
    from sslbook.optim import warmup_cosine

    device = torch.device(device) if device is not None else _device_of(encoder)
    cuda = device.type == "cuda"
    y, y_test = torch.as_tensor(train_labels).long(), torch.as_tensor(test_labels).long()
    num_classes = int(max(y.max(), y_test.max())) + 1
    net = torch.nn.Sequential(copy.deepcopy(encoder),
                              torch.nn.Linear(encoder.feature_dim, num_classes)).to(device)
    if probe_init:
        X = features(net[0], train_images, batch_size=512, device=device)
        Cs = (1.0,) if torch.bincount(y).min() < 2 else (0.01, 0.1, 1.0)
        _, _, (W, b, mean, std) = _fit_probe(X, y, num_classes, Cs, 0.1, 100, seed)
        with torch.no_grad():
            net[1].weight.copy_((W / std[:, None]).T)
            net[1].bias.copy_(b - (mean / std) @ W)
    steps_per_epoch = max(1, len(y) // batch_size)
    encoder_lr = lr if encoder_lr is None else encoder_lr
    frozen = encoder_lr == 0
    net[0].requires_grad_(not frozen)
    groups = [{"params": net[1].parameters(), "lr": lr}]
    if not frozen:
        groups.append({"params": net[0].parameters(), "lr": encoder_lr})
    optimizer = torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    scheduler = warmup_cosine(optimizer, 0, epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(seed)
    net.train()
    net[0].train(not frozen)
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator)
        for i in range(steps_per_epoch):
            idx = order[i * batch_size:(i + 1) * batch_size]
            x = train_images[idx].to(device)
            x = x.float() / 255 if x.dtype == torch.uint8 else x.float()  # B x C x H x W
            if augment is not None:
                x = augment(x, generator=generator)
                x = x[0] if isinstance(x, (list, tuple)) else x
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                loss = F.cross_entropy(net(x).float(), y[idx].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
    logits = features(net, test_images, batch_size=512, device=device)  # M x classes
    accuracy = (logits.argmax(1) == y_test).float().mean().item()
    return (accuracy, net) if return_model else accuracy


def read_outs(encoder: torch.nn.Module | None, train: tuple, test: tuple, per_class: int = 60,
              seeds: int = 3, device: str | torch.device | None = None) -> dict:
    """The book's three read-outs of a frozen encoder (``None``: raw pixels), as on every
    pretrained card: weighted kNN (k = 200, T = 0.1; InstDisc, arXiv:1805.01978), the linear
    probe on all labels, and the linear probe with ``per_class`` labels per class (mean and std
    over ``seeds`` draws). ``train`` and ``test`` are (images, labels) pairs."""
    if encoder is None:
        f_train, f_test = _flat_features(train[0]), _flat_features(test[0])
    else:
        f_train = features(encoder, train[0], device=device)
        f_test = features(encoder, test[0], device=device)
    mean, std = few_label_accuracy(f_train, train[1], f_test, test[1], per_class, seeds=seeds)
    return {"knn": knn_accuracy(f_train, train[1], f_test, test[1]),
            "linear": linear_probe(f_train, train[1], f_test, test[1]),
            f"linear_{per_class}": mean, f"linear_{per_class}_std": std}
