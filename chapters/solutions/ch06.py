"""Solutions to the exercises of Chapter 6 (unsupervised learning)."""

import torch


def my_minibatch_kmeans(X, centroids, counts):
    assignment = torch.cdist(X, centroids).argmin(1)  # B, nearest centroid as given
    new_centroids, new_counts = centroids.clone(), counts.clone()
    for i, x in enumerate(X):  # Sculley's Algorithm 1, point by point
        c = assignment[i]
        new_counts[c] += 1
        eta = 1.0 / new_counts[c]  # per-centroid learning rate
        new_centroids[c] = (1 - eta) * new_centroids[c] + eta * x
    return new_centroids, new_counts


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
