"""The exercises an assignment can hold, with their points: the one place to change them.

Each auto-graded exercise names the function the student writes in the exercise cell, the checker
of :mod:`sslbook.exercises` that grades it, its points, the library modules whose code the
answer must not call (the exercise asks the student to write that code) and one line on what it
assesses (docs/teaching.md lists them). ``--points 8.2=4`` at release time overrides a value
for one assignment; the release records the points it used in ``autograder/assignment.json``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

REFERENCE = "sslbook.exercises._reference"  # the checkers' answers: never callable by a student


@dataclass(frozen=True)
class Exercise:
    id: str  # "8.1"
    chapter: str  # "08"
    function: str  # the function the student writes
    checker: str  # a check_* function of sslbook.exercises.chNN
    points: float
    forbidden: tuple[str, ...]  # modules whose functions the answer must not call
    assesses: str

    @property
    def question(self) -> str:
        """The name of the question on Otter / Gradescope ("q8_1")."""
        return "q" + self.id.replace(".", "_")

    def to_dict(self) -> dict:
        return asdict(self)


EXERCISES: tuple[Exercise, ...] = (
    Exercise("1.1", "01", "loo_knn_votes", "check_loo_knn", 3,
             (REFERENCE, "sslbook.evaluate"),
             "the weighted kNN vote of Sec. 3.4 (InstDisc) turned into leave-one-out: cosine "
             "similarity, the example itself left out, weights exp(s / T), votes per class"),
    Exercise("1.2", "01", "stratified_subset", "check_few_labels", 2,
             (REFERENCE, "sslbook.data"),
             "a stratified few-label sample: per class, without replacement, unlabelled "
             "examples skipped, reproducible from a seed"),
    Exercise("1.3", "01", "standardise", "check_standardise", 2,
             (REFERENCE, "sslbook.evaluate"),
             "standardising features for the linear probe with the training statistics only, "
             "constant features kept finite"),
    Exercise("2.1", "02", "my_resized_crop", "check_resized_crop", 2,
             (REFERENCE, "sslbook.augment"),
             "crop-and-resize of a batch without a loop: grid_sample's normalised coordinates "
             "and the (x, y) order of the grid"),
    Exercise("2.2", "02", "my_crop_params", "check_crop_params", 3,
             (REFERENCE, "sslbook.augment"),
             "the random-resized-crop sampler: area and log-ratio distributions, retries, the "
             "fallback, a seeded generator (checked by KS tests)"),
    Exercise("2.3", "02", "my_gaussian_blur", "check_gaussian_blur", 2,
             (REFERENCE, "sslbook.augment"),
             "SimCLR's Gaussian blur with one sigma per image: a normalised kernel, separable, "
             "reflect padding, grouped convolution"),
    Exercise("2.4", "02", "my_adjust_contrast", "check_adjust_contrast", 1,
             (REFERENCE, "sslbook.augment"),
             "torchvision's contrast jitter: blend with the mean of each image's own grayscale, "
             "clamp"),
    Exercise("3.1", "03", "conv2d", "check_conv2d", 3, (REFERENCE,),
             "a convolution with stride, padding and bias from tensor operations (no F.conv2d or "
             "unfold), images not square"),
    Exercise("3.2", "03", "conv_output_size", "check_conv_output_size", 1, (REFERENCE,),
             "the output side of a convolution or max-pool with dilation (floor)"),
    Exercise("3.3", "03", "patchify_reshape", "check_patchify", 2, (REFERENCE,),
             "ViT patches with reshape and permute only, in unfold's order (row by row, "
             "channel first inside a patch)"),
    Exercise("3.4", "03", "masked_attention", "check_attention", 2, (REFERENCE,),
             "scaled dot-product attention with a boolean mask: masked keys get exactly zero "
             "weight"),
    Exercise("4.1", "04", "momentum_step", "check_momentum_step", 3, (REFERENCE,),
             "torch.optim.SGD's update: first-step buffer, dampening, Nesterov, weight decay, a "
             "learning rate that changes between steps"),
    Exercise("4.2", "04", "adam_step", "check_adam_step", 3, (REFERENCE,),
             "Adam and AdamW: bias correction, where eps goes, L2 penalty versus decoupled "
             "weight decay"),
    Exercise("4.3", "04", "sgdr_lr", "check_sgdr", 2,
             (REFERENCE, "torch.optim.lr_scheduler"),
             "SGDR's warm restarts (Loshchilov & Hutter 2017) in closed form: which cycle a "
             "step is in when cycles grow by T_mult, the cosine from base_lr to eta_min within "
             "it, the restart before the minimum"),
    Exercise("5.1", "05", "my_cross_entropy", "check_cross_entropy", 2, (REFERENCE,),
             "cross-entropy with label smoothing, numerically stable for large logits"),
    Exercise("5.2", "05", "my_pair_noise", "check_pair_noise", 2, (REFERENCE,),
             "pair label noise: exactly round(fraction * n_c) random examples per class, a "
             "seeded generator, input not modified"),
    Exercise("5.3", "05", "my_confusion_matrix", "check_confusion_matrix", 1, (REFERENCE,),
             "a confusion matrix with rows = true class, classes that never occur included"),
    Exercise("6.1", "06", "my_minibatch_kmeans", "check_minibatch_kmeans", 3,
             (REFERENCE,),
             "Sculley's mini-batch K-means step: assignment with the given centroids, a "
             "per-centroid rate 1 / v (a running mean), counts updated, empty centroids kept"),
    Exercise("6.2", "06", "my_pca", "check_pca", 2,
             (REFERENCE, "sklearn.decomposition._pca"),
             "PCA coordinates from the covariance matrix and eigh: centring, the order of "
             "eigh's eigenvalues, coordinates rather than directions"),
    Exercise("6.3", "06", "my_purity", "check_purity", 2,
             (REFERENCE, "sklearn.metrics.cluster._supervised"),
             "cluster purity in plain PyTorch: majority class per cluster, weighted by cluster "
             "size, any cluster ids (DBSCAN's -1 included)"),
    Exercise("7.1", "07", "my_uniformity", "check_uniformity", 2,
             (REFERENCE,),
             "Wang and Isola's uniformity loss: unit-sphere embeddings, pairs i != j only, the "
             "Gaussian kernel of the squared distance, the log of the mean"),
    Exercise("7.2", "07", "my_random_masking", "check_random_masking", 3,
             (REFERENCE,),
             "MAE's random masking with given noise: len_keep rounded down, the smallest noise "
             "kept in order, the 0/1 mask in the original order, the inverse permutation"),
    Exercise("7.3", "07", "my_effective_rank", "check_effective_rank", 2,
             (REFERENCE,),
             "RankMe, a label-free measure of dimensional collapse: singular values (not their "
             "squares) of the uncentred embeddings, normalised, exp of the entropy"),
    Exercise("8.1", "08", "my_positive_mask", "check_positive_mask", 2,
             (REFERENCE,),
             "the layout of a SimCLR batch: which of the 2N embeddings are positives, for any N"),
    Exercise("8.2", "08", "my_nt_xent", "check_nt_xent", 3,
             (REFERENCE, "sslbook.losses"),
             "NT-Xent (Eq. 1) from scratch: cosine similarity, self-mask, temperature, both "
             "views as anchors, positives read from a mask in any row order"),
    Exercise("9.1", "09", "my_momentum_update", "check_momentum_update", 2,
             (REFERENCE, "sslbook.methods.momentum"),
             "MoCo's momentum update (Eq. 2) in place on the key encoder only"),
    Exercise("9.2", "09", "my_moco_logits", "check_moco_logits", 2,
             (REFERENCE, "sslbook.losses", "sslbook.methods.moco"),
             "the N x (1+K) logits of Algorithm 1: normalisation, temperature, positive in "
             "column 0"),
    Exercise("9.3", "09", "my_enqueue", "check_enqueue", 3,
             (REFERENCE, "sslbook.methods.moco"),
             "the queue as a ring buffer: keys (not queries) replace the oldest entries, the "
             "pointer wraps"),
    Exercise("10.1", "10", "my_ema_weights", "check_ema_weights", 3,
             (REFERENCE,),
             "the target as a weighted average of past online networks: w_0 = prod tau_j, "
             "w_k = (1 - tau_k) prod_{j > k} tau_j, for any schedule of tau (0 and 1 included)"),
    Exercise("10.2", "10", "my_byol_grad", "check_byol_grad", 3,
             (REFERENCE, "sslbook.losses", "sslbook.methods.byol"),
             "the gradient of BYOL's loss with respect to the prediction, by hand (autograd "
             "raises): the Jacobian of p/|p|, the 1 / |p| factor, the batch mean; orthogonal "
             "to p"),
    Exercise("10.3", "10", "my_byol_loss", "check_byol_loss", 3,
             (REFERENCE, "sslbook.losses", "sslbook.methods.byol"),
             "the symmetrised BYOL loss: normalisation, stop-gradient on the targets, each "
             "prediction against the other view"),
    Exercise("11.1", "11", "my_simsiam_loss", "check_simsiam_loss", 2,
             (REFERENCE, "sslbook.losses", "sslbook.methods.simsiam"),
             "SimSiam's Eq. 4: negative cosine, symmetrised, stop-gradient on z"),
    Exercise("11.2", "11", "my_log_sinkhorn", "check_log_sinkhorn", 3,
             (REFERENCE, "sslbook.losses", "sslbook.methods.swav"),
             "Sinkhorn-Knopp in the log domain: logsumexp normalisations, prototypes then "
             "samples, exp and the factor B at the end; finite where exp(scores / epsilon) "
             "underflows"),
    Exercise("11.3", "11", "my_swav_grad", "check_swav_grad", 3,
             (REFERENCE, "sslbook.methods.swav"),
             "the gradient of SwAV's swapped prediction by hand (autograd raises): (softmax(s / "
             "T) - the other view's code) / (2 B T); sslbook.losses.sinkhorn is allowed for the "
             "codes"),
)

# Exercises left to the teacher (open questions, no automatic check): graded by hand.
OPEN_EXERCISES = {ch: () for ch in ("01", "02", "03", "04", "05", "06", "07", "09", "10",
                                       "11")} | {"08": ("8.3",)}


def exercises(chapters: list[str] | tuple[str, ...],
              points: dict[str, float] | None = None) -> list[Exercise]:
    """The auto-graded exercises of these chapters, with ``points`` overriding the defaults."""
    points = dict(points or {})
    known = {ex.id for ex in EXERCISES}
    unknown = set(points) - known
    if unknown:
        raise ValueError(f"--points names unknown exercise(s) {sorted(unknown)}; known: "
                         f"{sorted(known)}")
    chosen = []
    for chapter in chapters:
        found = [ex for ex in EXERCISES if ex.chapter == chapter]
        if not found:
            ready = sorted({ex.chapter for ex in EXERCISES})
            raise ValueError(f"chapter {chapter} has no gradable exercises yet; chapters ready "
                             f"for assignments: {', '.join(ready)}")
        chosen += found
    return [Exercise(**{**ex.to_dict(), "points": float(points.get(ex.id, ex.points))})
            for ex in chosen]


def from_dicts(rows: list[dict]) -> list[Exercise]:
    """Exercises as recorded in a release's assignment.json."""
    return [Exercise(**{**row, "forbidden": tuple(row["forbidden"])}) for row in rows]
