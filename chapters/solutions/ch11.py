"""Solutions to the exercises of Chapter 11 (SimSiam and SwAV)."""

import torch
import torch.nn.functional as F


def my_simsiam_loss(p1, p2, z1, z2):
    """SimSiam Eq. 4: D(p1, sg(z2)) / 2 + D(p2, sg(z1)) / 2 with D the negative cosine."""
    def D(p, z):
        return -(F.normalize(p, dim=1) * F.normalize(z.detach(), dim=1)).sum(dim=1).mean()

    return D(p1, z2) / 2 + D(p2, z1) / 2


def my_sinkhorn(scores, epsilon=0.05, iterations=3):
    """B x K scores -> B x K codes: rows (samples) sum to 1, columns to about B / K."""
    B, K = scores.shape
    Q = torch.exp(scores / epsilon).T  # K x B
    Q = Q / Q.sum()
    for _ in range(iterations):
        Q = Q / Q.sum(dim=1, keepdim=True) / K  # each prototype gets 1 / K of the mass
        Q = Q / Q.sum(dim=0, keepdim=True) / B  # each sample gets 1 / B of the mass
    return (Q * B).T


def my_swapped_prediction(scores1, scores2, temperature=0.1, epsilon=0.05, iterations=3):
    """SwAV Eq. 1-2: view 1 predicts the code of view 2 and vice versa."""
    with torch.no_grad():
        q1 = my_sinkhorn(scores1, epsilon, iterations)
        q2 = my_sinkhorn(scores2, epsilon, iterations)
    log_p1 = F.log_softmax(scores1 / temperature, dim=1)
    log_p2 = F.log_softmax(scores2 / temperature, dim=1)
    return -((q2 * log_p1).sum(dim=1).mean() + (q1 * log_p2).sum(dim=1).mean()) / 2
