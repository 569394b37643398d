"""Chapter 9 checkers accept the solutions and reject plausible wrong answers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F

from sslbook.exercises._reference import enqueue, moco_logits, momentum_update
from sslbook.exercises.ch09 import check_enqueue, check_moco_logits, check_momentum_update
from sslbook.losses import info_nce_queue
from sslbook.methods import MoCo
from sslbook.methods.momentum import copy_frozen, update_momentum
from sslbook.models import create

SOLUTIONS = Path(__file__).resolve().parents[1] / "chapters" / "solutions" / "ch09.py"


def load_solutions():
    spec = importlib.util.spec_from_file_location("solutions_ch09", SOLUTIONS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_references_agree_with_the_library():
    torch.manual_seed(0)
    q, k, queue = torch.randn(5, 8), torch.randn(5, 8), torch.randn(12, 8)
    logits = moco_logits(q, k, queue, 0.2)
    assert logits.shape == (5, 13)
    torch.testing.assert_close(F.cross_entropy(logits, torch.zeros(5, dtype=torch.long)),
                               info_nce_queue(q, k, queue, temperature=0.2))
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    ours, lib = copy_frozen(net), copy_frozen(net)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    momentum_update(net, ours, 0.9)
    update_momentum(net, lib, 0.9)
    for a, b in zip(ours.parameters(), lib.parameters()):
        torch.testing.assert_close(a, b)


def test_enqueue_matches_the_library_ring_buffer():
    torch.manual_seed(0)
    encoder = create("convnet", mean=(0.5,), std=(0.25,), width=4)
    method = MoCo(encoder, queue_size=10, bn_splits=1, symmetric=False)
    queue, ptr = method.queue.clone(), 0
    for _ in range(4):
        keys = F.normalize(torch.randn(4, method.queue.shape[1]), dim=1)
        method._dequeue_and_enqueue(keys)
        queue, ptr = enqueue(queue, ptr, keys.neg(), keys)
        torch.testing.assert_close(queue, method.queue)
        assert ptr == int(method.queue_ptr)


def test_solutions_pass():
    solutions = load_solutions()
    assert check_momentum_update(solutions.my_momentum_update, verbose=False).passed
    assert check_moco_logits(solutions.my_moco_logits, verbose=False).passed
    assert check_enqueue(solutions.my_enqueue, verbose=False).passed


def test_unfinished_stub_is_reported_not_raised():
    def stub(*args):
        raise NotImplementedError

    for check in (check_momentum_update, check_moco_logits, check_enqueue):
        result = check(stub, verbose=False)
        assert not result.passed and "not attempted" in result.message


@torch.no_grad()
def _swapped(encoder_q, encoder_k, m):
    for p_q, p_k in zip(encoder_q.parameters(), encoder_k.parameters()):
        p_k.mul_(1 - m).add_(p_q, alpha=m)


@torch.no_grad()
def _query_updated(encoder_q, encoder_k, m):
    for p_q, p_k in zip(encoder_q.parameters(), encoder_k.parameters()):
        p_q.mul_(m).add_(p_k, alpha=1 - m)


def _not_in_place(encoder_q, encoder_k, m):
    return [m * p_k + (1 - m) * p_q for p_q, p_k in
            zip(encoder_q.parameters(), encoder_k.parameters())]


def test_momentum_update_rejects_wrong_answers():
    for wrong, word in ((_swapped, "swapped"), (_query_updated, "query encoder"),
                        (_not_in_place, "did not change")):
        result = check_momentum_update(wrong, verbose=False)
        assert not result.passed and word in result.message, result.message


def test_moco_logits_rejects_wrong_answers():
    def positive_last(q, k, queue, t):
        logits = moco_logits(q, k, queue, t)
        return torch.cat([logits[:, 1:], logits[:, :1]], dim=1)

    def no_temperature(q, k, queue, t):
        return moco_logits(q, k, queue, 1.0)

    def no_normalisation(q, k, queue, t):
        return torch.cat([(q * k).sum(1, keepdim=True), q @ queue.T], dim=1) / t

    for wrong, word in ((positive_last, "column 0"), (no_temperature, "temperature"),
                        (no_normalisation, "normalise")):
        result = check_moco_logits(wrong, verbose=False)
        assert not result.passed and word in result.message, result.message


def test_enqueue_rejects_wrong_answers():
    def queries(queue, ptr, q, k):
        return enqueue(queue, ptr, k, q)

    def no_wrap(queue, ptr, q, k):
        queue[ptr:ptr + len(k)] = k[:len(queue[ptr:ptr + len(k)])]
        return queue, ptr + len(k)

    def pointer_stuck(queue, ptr, q, k):
        return enqueue(queue, ptr, q, k)[0], ptr

    for wrong, word in ((queries, "queries"), (no_wrap, "wrap"), (pointer_stuck, "advance")):
        result = check_enqueue(wrong, verbose=False)
        assert not result.passed and word in result.message, result.message


def test_references_are_not_in_the_student_facing_module():
    import sslbook.exercises.ch09 as ch09

    for name in ("momentum_update", "moco_logits", "enqueue"):
        assert not hasattr(ch09, name), name


def test_hidden_seeds_accept_the_solutions_and_reject_mutants():
    solutions = load_solutions()
    for seed in (1, 12345, 2**31 - 1):
        assert check_momentum_update(solutions.my_momentum_update, verbose=False, seed=seed)
        assert check_moco_logits(solutions.my_moco_logits, verbose=False, seed=seed).passed
        assert check_enqueue(solutions.my_enqueue, verbose=False, seed=seed).passed
    assert not check_momentum_update(_swapped, verbose=False, seed=3).passed

    def no_wrap(queue, ptr, q, k):
        queue[ptr:ptr + len(k)] = k[:len(queue[ptr:ptr + len(k)])]
        return queue, ptr + len(k)

    for seed in range(5):
        assert not check_enqueue(no_wrap, verbose=False, seed=seed).passed
