"""Solutions to the exercises of Chapter 9 (MoCo)."""

import torch
import torch.nn.functional as F


@torch.no_grad()
def my_momentum_update(encoder_q, encoder_k, m):
    """theta_k <- m theta_k + (1 - m) theta_q, in place, for every parameter (Eq. 2)."""
    for p_q, p_k in zip(encoder_q.parameters(), encoder_k.parameters(), strict=True):
        p_k.mul_(m).add_(p_q, alpha=1 - m)


def my_moco_logits(q, k, queue, temperature=0.2):
    """N x (1+K) logits: column 0 the positive q.k / T, then q.queue_j / T (Algorithm 1)."""
    q, k, queue = F.normalize(q, dim=1), F.normalize(k, dim=1), F.normalize(queue, dim=1)
    l_pos = (q * k).sum(dim=1, keepdim=True)  # N x 1
    l_neg = q @ queue.T  # N x K
    return torch.cat([l_pos, l_neg], dim=1) / temperature  # N x (1+K)


def my_enqueue(queue, ptr, q, k):
    """Replace the oldest rows of the queue (K x D) by the keys k (N x D); return (queue, ptr)."""
    size = queue.shape[0]
    idx = (ptr + torch.arange(len(k))) % size  # N row indices, wrapping around the end
    queue[idx] = k  # the queue stores keys, never queries
    return queue, (ptr + len(k)) % size
