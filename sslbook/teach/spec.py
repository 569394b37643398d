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
)

# Exercises left to the teacher (open questions, no automatic check): graded by hand.
OPEN_EXERCISES = {"01": (), "06": (), "07": (), "08": ("8.3",), "09": ()}


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
