"""A bank of wrong answers (mutants) and the synthetic submissions of the round-trip test.

Each mutant is the source of a plausible wrong answer to one exercise, with the slip it makes;
:func:`submission` turns an instructor notebook into a student's submission by replacing chosen
exercise functions with mutants, or by putting a crash or an infinite loop into a cell.
"""

from __future__ import annotations

import copy

from sslbook.teach.grading import defines
from sslbook.teach.release import with_solution

MUTANTS: dict[str, dict[str, str]] = {
    "8.1": {"diagonal": '''def my_positive_mask(n):
    return torch.eye(2 * n, dtype=torch.bool)  # slip: each embedding its own positive'''},
    "8.2": {"no self-mask": '''def my_nt_xent(z, pos_mask, temperature=0.5):
    z = F.normalize(z, dim=1)
    logits = z @ z.T / temperature  # slip: the diagonal is not masked
    return F.cross_entropy(logits, pos_mask.float().argmax(dim=1))''',
            "library call": '''def my_nt_xent(z, pos_mask, temperature=0.5):
    from sslbook.losses import info_nce  # slip: calls the library (rows assumed cat([z1, z2]))
    n = len(z) // 2
    return info_nce(z[:n], z[n:], temperature)'''},
    "9.1": {"m swapped": '''@torch.no_grad()
def my_momentum_update(encoder_q, encoder_k, m):
    for p_q, p_k in zip(encoder_q.parameters(), encoder_k.parameters()):
        p_k.mul_(1 - m).add_(p_q, alpha=m)  # slip: m and 1 - m swapped'''},
    "9.2": {"positive last": '''def my_moco_logits(q, k, queue, temperature=0.2):
    q, k, queue = F.normalize(q, dim=1), F.normalize(k, dim=1), F.normalize(queue, dim=1)
    return torch.cat([q @ queue.T, (q * k).sum(1, keepdim=True)], dim=1) / temperature'''},
    "9.3": {"stores queries": '''def my_enqueue(queue, ptr, q, k):
    idx = (ptr + torch.arange(len(q))) % len(queue)
    queue[idx] = q  # slip: the queries are stored
    return queue, (ptr + len(q)) % len(queue)'''},
}

FUNCTIONS = {"8.1": "my_positive_mask", "8.2": "my_nt_xent", "9.1": "my_momentum_update",
             "9.2": "my_moco_logits", "9.3": "my_enqueue"}


def submission(instructor, mutants: dict[str, str] | None = None,
               prepend: dict[str, str] | None = None):
    """A copy of ``instructor`` with ``{exercise: mutant name}`` answers swapped in and
    ``{exercise: code}`` put at the top of the cell that defines the exercise's function."""
    nb = copy.deepcopy(instructor)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for ex, name in (mutants or {}).items():
            if defines(cell.source, FUNCTIONS[ex]):
                cell.source = with_solution(cell.source, FUNCTIONS[ex], MUTANTS[ex][name])
        for ex, code in (prepend or {}).items():
            if defines(cell.source, FUNCTIONS[ex]):
                cell.source = code + "\n" + cell.source
    return nb


def round_trip_submissions(instructor) -> dict[str, object]:
    """The four submissions of ``make test-teach``: file name -> notebook."""
    return {
        "solutions.ipynb": submission(instructor),
        "partly-wrong.ipynb": submission(instructor, {"8.2": "no self-mask",
                                                      "9.1": "m swapped"}),
        "crashes.ipynb": submission(instructor, prepend={
            "8.2": 'import sys\nsys.exit("giving up")',
            "9.1": 'raise RuntimeError("a crash at the top of the cell")'}),
        "loops-forever.ipynb": submission(instructor, prepend={"8.1": "while True:\n    pass"}),
    }
