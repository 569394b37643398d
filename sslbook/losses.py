"""Self-supervised losses as pure functions of tensors.

Every function follows its paper's equation and pseudocode; the shape comments copy the style of
the official MoCo code (``N`` batch, ``D`` embedding size, ``K`` queue length or number of
prototypes, ``B`` batch in SwAV's notation, ``T`` temperature).

Conventions:
- Contrastive and cosine losses L2-normalise their inputs themselves (``F.normalize``, dim=1), so
  the caller may pass raw projector/predictor outputs.
- Nothing here detaches the loss inputs. Stop-gradients belong to the methods (``z.detach()`` in
  SimSiam, the momentum encoder in MoCo and BYOL), where the reader can see them. The one
  exception is by definition: Sinkhorn-Knopp produces SwAV's *targets* (codes) and runs under
  ``torch.no_grad``, as in the official code.
- Inputs in bf16/fp16 are cast up to float32 and autocast is switched off inside, so a loss called
  under ``torch.autocast`` is computed (and returned) in float32. float64 inputs stay float64.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor

from sslbook import distributed

__all__ = [
    "info_nce",
    "info_nce_queue",
    "negative_cosine",
    "sinkhorn",
    "swav_loss",
    "swav_loss_multicrop",
]

_Fn = TypeVar("_Fn", bound=Callable[..., Tensor])


# ---------------------------------------------------------------- numerics and input checks


def _upcast(x):
    """bf16/fp16 tensors (also inside a list or tuple) -> float32; anything else unchanged."""
    if isinstance(x, Tensor) and x.dtype in (torch.float16, torch.bfloat16):
        return x.float()
    if isinstance(x, (list, tuple)):
        return type(x)(_upcast(v) for v in x)
    return x


def _first_tensor(args) -> Tensor | None:
    for a in args:
        if isinstance(a, Tensor):
            return a
        if isinstance(a, (list, tuple)):
            t = _first_tensor(a)
            if t is not None:
                return t
    return None


def _full_precision(loss_fn: _Fn) -> _Fn:
    """Run ``loss_fn`` with autocast off and its bf16/fp16 tensor arguments cast to float32.

    Under ``torch.autocast`` a matmul would otherwise run in bf16/fp16 (8 or 11 bits of
    mantissa); exponentials of similarities divided by a small temperature then lose accuracy.
    """

    @functools.wraps(loss_fn)
    def wrapper(*args, **kwargs):
        args = _upcast(args)
        kwargs = {name: _upcast(value) for name, value in kwargs.items()}
        t = _first_tensor((*args, *kwargs.values()))
        off = contextlib.nullcontext()
        if t is not None and torch.amp.is_autocast_available(t.device.type):
            off = torch.autocast(device_type=t.device.type, enabled=False)
        with off:
            return loss_fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _check_2d(fn: str, name: str, x: Tensor) -> None:
    if not isinstance(x, Tensor) or x.dim() != 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(
            f"{fn}: {name} must be a 2-D tensor (batch x features), got {shape}; "
            "flatten or pool the features first."
        )


def _check_same_shape(fn: str, a: str, x: Tensor, b: str, y: Tensor) -> None:
    _check_2d(fn, a, x)
    _check_2d(fn, b, y)
    if x.shape != y.shape:
        raise ValueError(
            f"{fn}: {a} and {b} must have the same shape N x D, got {tuple(x.shape)} and "
            f"{tuple(y.shape)}; pass the outputs of the same heads for the same batch of images."
        )


def _check_positive(fn: str, name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{fn}: {name} must be > 0, got {value}.")


# ---------------------------------------------------------------- contrastive losses


@_full_precision
def info_nce(z1: Tensor, z2: Tensor, temperature: float = 0.5,
             gather_distributed: bool = False) -> Tensor:
    """NT-Xent loss of SimCLR (Chen et al., arXiv:2002.05709, Eq. 1 and Algorithm 1).

    ``z1[i]`` and ``z2[i]`` are the projections of two views of image ``i``. Each of the 2N
    embeddings is an anchor; its positive is its partner view and the other 2N - 2 embeddings are
    its negatives (self-similarity is masked out). With cosine similarity ``s``,

        l(i, j) = -log( exp(s_ij / T) / sum_{k != i} exp(s_ik / T) ),

    averaged over all 2N anchors, i.e. both directions (z1 -> z2 and z2 -> z1). The default
    T = 0.5 is SimCLR's CIFAR-10 value (0.1 for ImageNet).

    Args:
        z1, z2: N x D embeddings of the two views (normalised here).
        temperature: T > 0.
        gather_distributed: in multi-process training, contrast this process's anchors with the
            embeddings of *all* processes (gathered with gradients), so the negatives are the
            global batch, as SimCLR trains on 128 TPU cores (Sec. 2.2). The mean of the
            processes' losses is then the one-process loss of the global batch. A no-op in one
            process.
    Returns:
        The scalar mean loss over this process's 2N anchors.
    """
    _check_same_shape("info_nce", "z1", z1, "z2", z2)
    _check_positive("info_nce", "temperature", temperature)
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2], dim=0), dim=1)  # 2N x D, the anchors
    world, offset = 1, 0
    keys = z  # 2N x D
    if gather_distributed and distributed.world_size() > 1:
        world, offset = distributed.world_size(), distributed.rank() * n
        keys = torch.cat([distributed.gather(z[:n]), distributed.gather(z[n:])])  # 2WN x D
    logits = z @ keys.T / temperature  # 2N x 2WN, cosine similarities / T
    # anchor i < N is column offset + i of the keys, anchor N + i is column WN + offset + i
    arange = torch.arange(n, device=z.device)  # built on the device: no host copy
    column = torch.cat([arange, arange + world * n]) + offset
    self_mask = F.one_hot(column, keys.shape[0]).bool()  # 2N x 2WN
    logits = logits.masked_fill(self_mask, float("-inf"))  # k != i
    labels = torch.cat([column[n:], column[:n]])  # 2N, each anchor's partner view
    return F.cross_entropy(logits, labels)


@_full_precision
def info_nce_queue(q: Tensor, k: Tensor, queue: Tensor, temperature: float = 0.2) -> Tensor:
    """InfoNCE with a queue of negatives, as in MoCo (He et al., arXiv:1911.05722, Eq. 1 and
    Algorithm 1):

        L_q = -log( exp(q.k+ / T) / (exp(q.k+ / T) + sum_i exp(q.k_i / T)) ),

    with logits ``[q.k (N x 1), q.queue^T (N x K)] / T`` and the positive at index 0. The
    default T = 0.2 is MoCo v2's (v1 used 0.07).

    Args:
        q: N x D queries (online encoder).
        k: N x D positive keys (momentum encoder; the method detaches them, not this loss).
        queue: K x D negative keys, one key per row (the official code stores it as D x K; pass
            ``queue.T`` in that case). Rows are L2-normalised here too: keys in the queue are
            usually normalised already, and normalising a unit vector again changes nothing.
        temperature: T > 0.
    Returns:
        The scalar cross-entropy, averaged over the N queries.
    """
    _check_same_shape("info_nce_queue", "q", q, "k", k)
    _check_2d("info_nce_queue", "queue", queue)
    _check_positive("info_nce_queue", "temperature", temperature)
    d = q.shape[1]
    if queue.shape[1] != d:
        hint = (
            " It looks transposed (D x K, as in the official MoCo code): pass queue.T."
            if queue.shape[0] == d
            else ""
        )
        raise ValueError(
            f"info_nce_queue: queue must be K x D with one key per row and D = {d} as in q, "
            f"got {tuple(queue.shape)}.{hint}"
        )
    q = F.normalize(q, dim=1)  # N x D
    k = F.normalize(k, dim=1)  # N x D
    queue = F.normalize(queue, dim=1)  # K x D
    l_pos = (q * k).sum(dim=1, keepdim=True)  # N x 1
    l_neg = q @ queue.T  # N x K
    logits = torch.cat([l_pos, l_neg], dim=1) / temperature  # N x (1+K)
    labels = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)  # N, positives at 0
    return F.cross_entropy(logits, labels)


# ---------------------------------------------------------------- non-contrastive loss


@_full_precision
def negative_cosine(p: Tensor, z: Tensor) -> Tensor:
    """Negative cosine similarity, averaged over the batch (SimSiam, Chen and He,
    arXiv:2011.10566, Eq. 1): ``D(p, z) = -(p / ||p||) . (z / ||z||)``.

    BYOL's loss (Grill et al., arXiv:2006.07733, Eq. 2) is the squared distance of the normalised
    vectors, ``||p/||p|| - z/||z|| ||^2 = 2 - 2 cos(p, z)``, i.e. ``2 + 2 * negative_cosine(p, z)``:
    the same gradient up to a factor 2. The stop-gradient on ``z`` (SimSiam) or the target
    network (BYOL) is the method's business; this function does not detach.

    Args:
        p, z: N x D predictions and targets (normalised here).
    Returns:
        The scalar mean of -cos(p_i, z_i), in [-1, 1].
    """
    _check_same_shape("negative_cosine", "p", p, "z", z)
    p = F.normalize(p, dim=1)  # N x D
    z = F.normalize(z, dim=1)  # N x D
    return -(p * z).sum(dim=1).mean()


# ---------------------------------------------------------------- SwAV


@torch.no_grad()
@_full_precision
def sinkhorn(scores: Tensor, epsilon: float = 0.05, iterations: int = 3,
             distributed_batch: bool = False) -> Tensor:
    """Sinkhorn-Knopp codes of SwAV (Caron et al., arXiv:2006.09882, Sec. 3.1, Eq. 3 and the
    official ``distributed_sinkhorn``, single process).

    ``Q = exp(scores / epsilon)`` is viewed as K x B (prototypes x samples), scaled to total 1,
    then rows are normalised to 1/K (each prototype gets an equal share of the batch) and
    columns to 1/B (each sample is one unit of mass), ``iterations`` times, ending with columns.
    The result is returned as B x K and multiplied by B, so each row (sample) sums to exactly 1
    and each column (prototype) to about B/K (exactly after enough iterations).

    The max score is subtracted before ``exp``; the total normalisation cancels it, so the codes
    are the official ones, but large scores no longer overflow. Scores are meant to be cosine
    similarities in [-1, 1]; with epsilon = 0.05 the exponent then spans 40, safe in float32.

    This runs under ``torch.no_grad`` because that is SwAV's definition: the codes are targets
    of the swapped prediction, not a detached copy of a loss input.

    Args:
        scores: B x K dot products between normalised features and normalised prototypes.
        epsilon: entropy regularisation (0.05 in the paper; 0.03 helps for small batches).
        iterations: Sinkhorn rounds (3 in the paper), at least 1.
        distributed_batch: in multi-process training, ``scores`` are this process's rows of
            the global batch and the equipartition is taken over the global batch: the max,
            the total and the per-prototype sums are all-reduced (the official
            ``distributed_sinkhorn``). A no-op in one process.
    Returns:
        Codes Q, B x K, non-negative, rows summing to 1 (float32, or float64 for float64 input).
    """
    _check_2d("sinkhorn", "scores", scores)
    _check_positive("sinkhorn", "epsilon", epsilon)
    if iterations < 1:
        raise ValueError(f"sinkhorn: iterations must be >= 1, got {iterations}.")
    reduce = distributed.all_reduce if distributed_batch else (lambda x, op="sum": x)
    B, K = scores.shape
    Q = torch.exp((scores - reduce(scores.max(), "max")) / epsilon).T  # K x B
    B = B * (distributed.world_size() if distributed_batch else 1)  # the global batch
    Q /= reduce(Q.sum())  # K x B, total mass 1
    for _ in range(iterations):
        Q /= reduce(Q.sum(dim=1, keepdim=True))  # K x B, each prototype (row) sums to 1 ...
        Q /= K  # ... then to 1/K
        Q /= Q.sum(dim=0, keepdim=True)  # K x B, each sample (column) sums to 1 ...
        Q /= B  # ... then to 1/B
    Q *= B  # K x B, columns sum to 1: each sample's code is a distribution over prototypes
    return Q.T  # B x K


def _check_swav_scores(fn: str, scores: Sequence[Tensor]) -> None:
    for i, s in enumerate(scores):
        _check_2d(fn, f"scores[{i}]", s)
        if s.shape != scores[0].shape:
            raise ValueError(
                f"{fn}: all scores must have the same shape B x K (same images, same "
                f"prototypes), got {tuple(scores[0].shape)} for scores[0] and "
                f"{tuple(s.shape)} for scores[{i}]."
            )


@_full_precision
def swav_loss(
    scores1: Tensor,
    scores2: Tensor,
    temperature: float = 0.1,
    epsilon: float = 0.05,
    iterations: int = 3,
) -> Tensor:
    """Swapped prediction of SwAV for two views (Caron et al., arXiv:2006.09882, Eq. 1-2).

    The codes of one view are predicted from the scores of the other:

        L = -1/2 * mean_b [ sum_k q2 log softmax(scores1 / T) + sum_k q1 log softmax(scores2 / T) ],

    with ``q1 = sinkhorn(scores1)`` and ``q2 = sinkhorn(scores2)`` (targets, no gradient).
    For more than two crops use :func:`swav_loss_multicrop`; with two crops both agree.

    Args:
        scores1, scores2: B x K dot products between the normalised features of each view and
            the normalised prototypes (computed by the method).
        temperature: T > 0 of the softmax (0.1 in the paper).
        epsilon, iterations: passed to :func:`sinkhorn`.
    Returns:
        The scalar loss; it equals log K when all scores are equal.
    """
    _check_swav_scores("swav_loss", [scores1, scores2])
    _check_positive("swav_loss", "temperature", temperature)
    q1 = sinkhorn(scores1, epsilon, iterations)  # B x K, codes of view 1 (targets)
    q2 = sinkhorn(scores2, epsilon, iterations)  # B x K, codes of view 2 (targets)
    log_p1 = F.log_softmax(scores1 / temperature, dim=1)  # B x K
    log_p2 = F.log_softmax(scores2 / temperature, dim=1)  # B x K
    loss12 = -(q2 * log_p1).sum(dim=1).mean()  # view 1 predicts the code of view 2
    loss21 = -(q1 * log_p2).sum(dim=1).mean()  # view 2 predicts the code of view 1
    return (loss12 + loss21) / 2


@_full_precision
def swav_loss_multicrop(
    scores: Sequence[Tensor],
    n_large: int = 2,
    temperature: float = 0.1,
    epsilon: float = 0.05,
    iterations: int = 3,
    codes: Sequence[Tensor] | None = None,
) -> Tensor:
    """SwAV's loss with multi-crop (Caron et al., arXiv:2006.09882, Sec. 3.2; official
    ``main_swav.py``).

    Codes are computed from the large crops only, ``scores[:n_large]`` (the official
    ``crops_for_assign = [0, 1]``). The code of each large crop is predicted by every *other*
    crop, large or small; the losses are averaged over the predicting crops, then over the
    large crops:

        L = 1/n_large * sum_{i < n_large} 1/(V - 1) * sum_{v != i} -mean_b sum_k q_i log p_v.

    With two crops this equals :func:`swav_loss`.

    Args:
        scores: V >= 2 tensors, each B x K, large crops first (all crops of the same B images).
        n_large: how many leading crops give codes, 1 <= n_large <= V.
        temperature, epsilon, iterations: as in :func:`swav_loss`.
        codes: the n_large codes (B x K each) when the caller computes them itself (SwAV with
            a queue, or with Sinkhorn over the global batch); default ``sinkhorn`` of
            ``scores[:n_large]``.
    Returns:
        The scalar loss.
    """
    fn = "swav_loss_multicrop"
    if isinstance(scores, Tensor) or len(scores) < 2:
        raise ValueError(f"{fn}: scores must be a list of at least 2 tensors (one per crop).")
    if not 1 <= n_large <= len(scores):
        raise ValueError(f"{fn}: n_large must be in [1, {len(scores)}], got {n_large}.")
    _check_swav_scores(fn, scores)
    _check_positive(fn, "temperature", temperature)
    if codes is not None and (len(codes) != n_large or codes[0].shape != scores[0].shape):
        raise ValueError(f"{fn}: codes must be n_large={n_large} tensors shaped like the scores.")
    log_p = [F.log_softmax(s / temperature, dim=1) for s in scores]  # V x (B x K)
    loss = scores[0].new_zeros(())
    for i in range(n_large):
        q = sinkhorn(scores[i], epsilon, iterations) if codes is None else codes[i]  # B x K
        subloss = scores[0].new_zeros(())
        for v in range(len(scores)):
            if v != i:
                subloss = subloss - (q * log_p[v]).sum(dim=1).mean()  # crop v predicts q
        loss = loss + subloss / (len(scores) - 1)
    return loss / n_large
