"""One switch for a chapter's mode: SSLBOOK_MODE, with SSLBOOK_FAST kept as an alias."""

from __future__ import annotations

import pytest

import sslbook


@pytest.mark.parametrize(("env", "expected"), [
    ({}, "reader"),
    ({"SSLBOOK_MODE": "train"}, "train"),
    ({"SSLBOOK_MODE": " Record "}, "record"),
    ({"SSLBOOK_FAST": "1"}, "fast"),
    ({"SSLBOOK_FAST": "0"}, "reader"),
    ({"SSLBOOK_MODE": "reader", "SSLBOOK_FAST": "1"}, "reader"),  # the new switch wins
])
def test_mode(monkeypatch, env, expected):
    monkeypatch.delenv("SSLBOOK_MODE", raising=False)
    monkeypatch.delenv("SSLBOOK_FAST", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert sslbook.mode() == expected
    assert sslbook.fast_mode() == (expected == "fast")


def test_unknown_mode_names_the_valid_ones(monkeypatch):
    monkeypatch.setenv("SSLBOOK_MODE", "full")
    with pytest.raises(ValueError, match="fast, reader, train, record"):
        sslbook.mode()
