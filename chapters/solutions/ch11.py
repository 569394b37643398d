"""Solutions to the exercises of Chapter 11 (SimSiam and SwAV)."""

import math

import torch
import torch.nn.functional as F


def my_simsiam_loss(p1, p2, z1, z2):
    """SimSiam Eq. 4: D(p1, sg(z2)) / 2 + D(p2, sg(z1)) / 2 with D the negative cosine."""
    def D(p, z):
        return -(F.normalize(p, dim=1) * F.normalize(z.detach(), dim=1)).sum(dim=1).mean()

    return D(p1, z2) / 2 + D(p2, z1) / 2


def my_log_sinkhorn(scores, epsilon=0.05, iterations=3):
    """Sinkhorn-Knopp on log Q: B x K scores -> B x K codes, finite for any epsilon."""
    B, K = scores.shape
    log_q = scores.T / epsilon  # K x B, log of exp(scores / epsilon)
    log_q = log_q - torch.logsumexp(log_q.flatten(), dim=0)  # total mass 1
    for _ in range(iterations):
        log_q = log_q - torch.logsumexp(log_q, dim=1, keepdim=True) - math.log(K)  # rows: 1/K
        log_q = log_q - torch.logsumexp(log_q, dim=0, keepdim=True) - math.log(B)  # cols: 1/B
    return torch.exp(log_q + math.log(B)).T  # B x K, each row sums to 1


def my_swav_grad(scores1, scores2, temperature=0.1, epsilon=0.05, iterations=3):
    """d swav_loss / d scores1 and d scores2, by hand: the codes are constants."""
    from sslbook.losses import sinkhorn

    B = len(scores1)
    q1 = sinkhorn(scores1, epsilon, iterations)  # B x K, code of view 1
    q2 = sinkhorn(scores2, epsilon, iterations)  # B x K, code of view 2
    # loss = -(mean_b q2 . log softmax(s1 / T) + mean_b q1 . log softmax(s2 / T)) / 2, and
    # d/ds of -q . log softmax(s / T) = (softmax(s / T) - q) / T for a code q summing to 1
    g1 = (F.softmax(scores1 / temperature, dim=1) - q2) / (2 * B * temperature)
    g2 = (F.softmax(scores2 / temperature, dim=1) - q1) / (2 * B * temperature)
    return g1, g2
