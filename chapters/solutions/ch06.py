"""Solutions to the exercises of Chapter 6 (unsupervised learning)."""

import torch


def my_kmeans_step(X, centroids):
    sq_dist = ((X * X).sum(1, keepdim=True) - 2 * X @ centroids.T
               + (centroids * centroids).sum(1))  # N x k
    assignment = sq_dist.argmin(1)  # N
    counts = torch.bincount(assignment, minlength=len(centroids))  # k
    sums = torch.zeros_like(centroids).index_add_(0, assignment, X)  # k x D
    new_centroids = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None],
                                centroids)  # k x D
    return assignment, new_centroids


def my_pca(X, k):
    centred = X - X.mean(0)  # N x D
    covariance = centred.T @ centred / (len(X) - 1)  # D x D
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending order
    top = eigenvectors[:, -k:].flip(1)  # D x k, largest variance first
    return centred @ top  # N x k


def my_purity(assignment, classes):
    assignment, classes = torch.as_tensor(assignment), torch.as_tensor(classes)
    correct = 0
    for cluster in assignment.unique():
        members = classes[assignment == cluster]
        correct += members.unique(return_counts=True)[1].max().item()
    return correct / len(classes)
