"""Rubrics for the written parts of the exercises ("then answer ...", "then explain ...") and for
the open exercises: what a full answer contains and how to split the points. They go into the
instructor copy only, as a markdown cell after each exercise (never into the student notebook or
the autograder). Points are suggestions for hand grading; the auto-graded points of the code are
in :mod:`sslbook.teach.spec`. The instructor copy of a ``--lang zh`` release carries the Chinese
text of :mod:`sslbook.teach.rubrics_zh` (same points, same numbers).
"""

from __future__ import annotations

import copy

from sslbook.teach.rubrics_zh import RUBRICS_ZH

RUBRICS: dict[str, str] = {
    "1.1": "Full (2): without leaving the example out, its most similar example is itself "
           "(cosine 1, the largest possible), so with k = 1 every training image votes for its "
           "own label and the accuracy is 100% (up to exact duplicates with other labels) "
           "whatever the features; the number measures nothing about them. Half (1): 100% "
           "without the reason, or the reason without the number.",
    "1.2": "Full (2): the 60-label probe run with three seeds of the student's sampler, the three "
           "accuracies (or mean and spread) reported from their own run, and the spread compared "
           "with the gaps between rows of the chapter's table: a gap smaller than the spread "
           "between draws says nothing. Half (1): the numbers without the comparison, or a "
           "single seed.",
    "1.3": "Full (2): the probe is a function fixed on the training set; standardising the test "
           "set with its own statistics applies a different function to it (shifts and scales "
           "learned from test data, a leak), and it breaks on a single test image or a test set "
           "whose mean has shifted, exactly where the features should be judged. Half (1): "
           "'it leaks information' without saying what changes for the classifier.",
    "2.3": "Full (2): a Gaussian kernel is an outer product, exp(-(a^2 + b^2) / (2 sigma^2)) = "
           "exp(-a^2 / (2 sigma^2)) exp(-b^2 / (2 sigma^2)), so a row pass followed by a column "
           "pass gives the 2-D blur; per pixel and channel that is 2k multiplications instead of "
           "k^2: 46 instead of 529 for k = 23, a factor of 11.5 (k / 2). Half (1): the factor "
           "without the outer-product argument, or k^2 vs 2k without the number.",
    "2.4": "Full (1): on a single image, a mean over the whole batch equals the image's own mean, "
           "and a factor applied to all images (or broadcast the wrong way) cannot be told from "
           "one per image; without the clamp nothing overflows while f <= 1 (a blend of two values "
           "in [0, 1]). Any two of these, with the reason, earn the point.",
    "6.1": "Full (2): with the rate 1 / v, each centroid is exactly the running mean of all the "
           "points it has absorbed so far (the points assigned to it in every batch, by the "
           "centroids of that time); a centroid with counts = 0 gets the rate 1 / 1 = 1 for its "
           "first point, so it moves all the way onto it: its initial position carries no "
           "weight in the mean. Half (1): one of the two parts.",
    "6.3": "Full (2): purity only asks that each cluster be pure; with one point per cluster "
           "every cluster is pure and purity is 1, so splitting clusters never lowers it. ARI "
           "counts pairs of points: two points of the same class put in different clusters count "
           "against it, and it is adjusted for chance (0 for random or all-singleton "
           "clusterings, 1 for a perfect match). Half (1): the singleton case without how ARI "
           "differs, or vice versa.",
    "7.1": "Full (2): a collapsed batch has every z_i equal, so every distance is 0, every "
           "exp(-t * 0) = 1 and the loss is log 1 = 0, its largest possible value; a lower value "
           "means larger pairwise distances on the sphere, points spread out (uniformly, in the "
           "limit), which keeps more information about the images (Wang and Isola 2020, "
           "Sec. 4.1). Half (1): 0 without the reason, or 'lower is more spread' without the "
           "collapsed value.",
    "7.2": "Full (2): images are spatially redundant: a missing patch can be largely recovered "
           "from its neighbours by interpolation, so a low masking ratio gives an easy task that "
           "needs little understanding; masking 75% forces the encoder to reason about the whole "
           "object. Words are dense in meaning, so predicting 15% of them is already hard (MAE "
           "Sec. 1 and Fig. 5, where 75% is best). Half (1): 'images have more pixels' without "
           "the redundancy argument.",
    "7.3": "Full (2): the batch whose rows all point the same way has rank one: one non-zero "
           "singular value, p = (1, 0, ...) (plus epsilon), effective rank about 1; the "
           "isotropic batch has singular values of similar size, effective rank close to D (a "
           "little below, since a finite random matrix's singular values spread). A SimSiam "
           "encoder without the stop-gradient collapses to a constant output (SimSiam Sec. 4.1, "
           "Fig. 2), so its effective rank falls towards 1. Half (1): two of the three values "
           "with reasons.",
    "9.1": "Full (2): each step multiplies the gap between the two encoders by m (new gap = m "
           "old gap), so after n steps it is m^n of the original; m^n = 1/2 gives n = ln 2 / "
           "-ln 0.99 = 68.97, about 69 steps. Half (1): the right equation with an arithmetic "
           "slip, or 'about 70' without the derivation.",
    "9.2": "Full (1): the positive logit is always placed in column 0, so the (1 + K)-way "
           "classification has the same right answer, class 0, for every query (Algorithm 1: "
           "labels = zeros(N)); the negatives from the queue fill the other K columns.",
    "9.3": "Full (2): the keys k: the queue is the dictionary of keys, encoded by the slowly "
           "moving key encoder so that its entries stay consistent with each other (Sec. 3.2); "
           "queries come from the query encoder, which changes fast with every gradient step, and "
           "they carry the gradient, whereas the dictionary holds detached keys. Half (1): 'the "
           "keys' without the consistency argument.",
    "3.1": "Full (2): nn.Conv2d computes a cross-correlation, so every learned kernel must be "
           "flipped in both spatial dimensions (`weight.flip(-2, -1)`) before a library that "
           "flips kernels uses it; biases, channel order and strides stay as they are. "
           "Half (1): 'flip the kernel' without saying both axes, or flipping the channels too.",
    "3.2": "Full (2): the three sides with the working: 32 -> 16 -> 8, 96 -> 48 -> 24, "
           "224 -> 112 -> 56 (conv: floor((n + 6 - 7) / 2) + 1, pool: floor((n + 2 - 3) / 2) + "
           "1); 224 -> 56 is the 56 x 56 of ResNet's Table 1. Half (1): right formula, one "
           "arithmetic slip; 0: sides that are not whole numbers.",
    "3.3": "Full (2): the patch embedding is `patches @ E.T` with E = conv_proj.weight.reshape(D, "
           "-1), flattened as (C, p, p); if the patch is flattened in another order each weight "
           "multiplies the wrong pixel: still a linear map, but not the trained layer (outputs "
           "differ from conv_proj). Half (1): 'the shapes must match' without the pixel-to-weight "
           "argument.",
    "3.4": "Full (2): the softmax of a score of 0 is exp(0) = 1 before normalising, so a masked "
           "key still gets weight; a masked score must be -inf (or the weight set to 0 after the "
           "softmax and renormalised) to get exactly 0. Bonus: a row with every key masked gives "
           "NaN (0/0) and needs a convention. Half (1): 'zero is not small enough' without exp.",
    "4.1": "Full (2): PyTorch keeps lr out of the buffer (b <- mu b + g, p <- p - lr b); writing "
           "b <- mu b + lr g gives the same steps only while lr is constant; under a schedule "
           "the buffer still holds gradients scaled by the old lr, so the step reacts to a new lr "
           "only gradually. Half (1): notices that the two differ under a schedule without why.",
    "4.3": "Full (2): restarts (the rate jumps back to base_lr) at steps 10, 30, 70, 150 "
           "(cycles of 10, 20, 40, 80: the chapter's Figure 4.4); at the end of a cycle the rate "
           "is at its minimum, so the weights have settled and the model there is a good one "
           "(SGDR's 'anytime' models; snapshots before each restart). Half (1): the steps or the "
           "reason, not both.",
    "5.2": "Full (2): among the images of class c the true label keeps 1 - r and pairs[c] gets "
           "all of r, so the true label stops being the most frequent one at r = 0.5; symmetric "
           "noise spreads r over C - 1 = 9 classes, each getting r / 9, so the threshold is "
           "(C - 1) / C = 0.9. Half (1): the 0.5 without the comparison, or only the 0.9.",
    "5.3": "Full (2): the matrix of full_model on the test set; trace / sum equals the accuracy "
           "the chapter reports; the largest off-diagonal entries named as class pairs from the "
           "student's own matrix (typically among T-shirt/top, Shirt, Pullover and Coat) and "
           "proposed as `pairs` for Exercise 5.2. Half (1): matrix without the accuracy check or "
           "without naming pairs.",
    "8.1": "Full (2): each row has 2N - 2 negatives (2N entries, minus the anchor itself, minus "
           "its positive); positives fill 2N of the (2N)^2 entries, a fraction 1 / (2N) = "
           "1 / 8192, about 0.012%, for N = 4096. Half (1): 2N - 1 negatives (the anchor counted "
           "as a negative) or the fraction without N = 4096.",
    "8.2": "Full (2): shuffling rows and mask together only renumbers the anchors; each anchor's "
           "term depends on its similarities to the other rows and on which row is its positive, "
           "both unchanged, and the loss is a mean over anchors. A loss that changes reads the "
           "positive from a position (i + N) instead of the mask. Half (1): 'it is a mean' "
           "without the per-anchor argument.",
    "8.3": "Open exercise (suggested 6 points). Setup (2): rotate half of a fixed set of images, "
           "label rotated / not rotated, probe h_net and z_net with linear_probe on the same "
           "split (same training and test images for both). Results (2): both accuracies "
           "reported, with the random-guess level (0.5) and, ideally, several seeds or a note on "
           "the noise. Interpretation (2): in the paper's Table 3 (SimCLR, arXiv:2002.05709, "
           "Sec. 4.2) rotation, Gaussian noise and Sobel filtering were added as augmentations "
           "during pretraining (its caption), and g(h) falls to about chance on them (rotation "
           "25.6% from g(h) against 67.6% from h, chance 25%; corruption 59.6 vs 99.5, Sobel "
           "56.3 vs 96.6, chance 50) while colour vs grayscale stays readable from both (97.4 vs "
           "99.3, chance 80). Here rotation is not among the augmentations, so the loss never "
           "asks z to be invariant to it: if z still loses it, g discards more than the "
           "augmented factors; if z keeps it, the result agrees with the claim. A full answer "
           "notes this difference of setting and compares it with the student's own numbers, "
           "whichever way they came out. Do not reward a direction of the result, reward a sound "
           "comparison.",
    "10.1": "Full (2): with a constant 0.99 the newest n networks carry 1 - 0.99^n, half at "
            "n = 69; at the end of the cosine schedule (tau_base 0.99, K = 1000) the last 100 "
            "online networks carry about 0.8% of the target (half of its weight is in networks "
            "older than about 450 steps): late in training tau is close to 1, the target "
            "hardly moves and averages over a long past, which smooths its noise as lr decay "
            "does. Half (1): the numbers without the interpretation, or vice versa.",
    "10.2": "Full (2): row by row, g . p = -2 / (B |p|) (|p| cos - cos |p|) = 0; a gradient step "
            "p - lr g is then the hypotenuse of a right triangle, |p|^2 grows by lr^2 |g|^2, so "
            "|p| never shrinks and grows over training; since g scales as 1 / |p|, later steps "
            "change the direction of p less and less (an implicit decay of the step; weight "
            "decay counteracts it). Half (1): orthogonality shown, consequence missing.",
    "10.3": "Full (2): without the predictor the online and target networks have the same "
            "architecture; a network that maps every image to the same vector gives p/|p| = "
            "z/|z| for every pair and the loss is 0 (collapse); nothing in the loss (no "
            "negatives) forbids it. Half (1): 'it can collapse' without the constant output.",
    "11.1": "Full (1): z is the target that the prediction p = h(z) must move to; with the "
            "stop-gradient on z the gradient flows through p into the predictor and encoder, "
            "whereas a stop-gradient on p would make the targets chase the predictions (SimSiam "
            "Sec. 5 reads z as the fixed variable of an alternating optimisation).",
    "11.2": "Full (2): the smaller epsilon, the harder (closer to one-hot) the codes: 0.001 is "
            "nearly one-hot, 0.5 nearly uniform; the unliked prototype still receives about "
            "B / K samples after the iterations (equipartition), fewer with fewer iterations; "
            "the numbers come from the student's own run. Half (1): direction right, no numbers "
            "or no word on the unliked prototype.",
    "11.3": "Full (2): a sample's gradient is (softmax(s / T) - q_other) / (2 B T), zero when "
            "its prediction equals the other view's code; halving T doubles the factor 1 / T "
            "and sharpens the softmax, so gradients grow (up to about twice as large): the "
            "temperature acts like a change of learning rate. Half (1): one of the two parts.",
}

_TEXTS = {"en": RUBRICS, "zh": RUBRICS_ZH}
_HEADINGS = {"en": "### Exercise {id} ", "zh": "### 练习 {id} "}
_TITLE = {"en": "**Rubric (instructor copy only): the written part of Exercise {id}.** ",
          "zh": "**评分细则（仅教师版）：练习 {id} 的文字部分。** "}


def with_rubrics(instructor, exercise_ids: list[str], lang: str):
    """A copy of the instructor notebook with a rubric cell after each listed exercise that has
    one: after its code cell, or after its heading when it has no code cell (open exercises)."""
    import nbformat

    texts = _TEXTS[lang]
    nb = copy.deepcopy(instructor)
    for ex_id in exercise_ids:
        if ex_id not in texts:
            continue
        heading = _HEADINGS[lang].format(id=ex_id)
        start = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"
                      and heading in c.source), None)
        if start is None:
            continue
        at = start
        for i in range(start + 1, len(nb.cells)):
            cell = nb.cells[i]
            if cell.cell_type == "markdown" and cell.source.lstrip().startswith("#"):
                break
            if cell.cell_type == "code" and "exercise-setup" not in cell.metadata.get("tags", []):
                at = i
                break
        rubric = nbformat.v4.new_markdown_cell(_TITLE[lang].format(id=ex_id) + texts[ex_id])
        rubric.metadata["tags"] = ["rubric", f"rubric-{ex_id}"]
        rubric["id"] = f"rubric-{ex_id.replace('.', '-')}"
        nb.cells.insert(at + 1, rubric)
    return nb
