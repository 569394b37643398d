"""Tests for ``python -m sslbook``: pretrain -> history.json -> evaluate, and clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from sslbook import data
from sslbook.__main__ import main

HISTORY_KEYS = {"method", "arch", "dataset", "args", "loss", "lr", "knn", "monitor",
                "images_per_second", "wall_seconds", "epochs_done", "world_size"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One SimCLR epoch on 512 Fashion-MNIST images (2 steps of 256)."""
    out = tmp_path_factory.mktemp("run")
    code = main(["pretrain", "--method", "simclr", "--dataset", "fashion-mnist", "--arch",
                 "convnet", "--epochs", "1", "--batch-size", "256", "--subset", "512",
                 "--device", "cpu", "--out", str(out), "--no-progress"])
    assert code == 0
    return out


def test_pretrain_writes_history_and_checkpoint(run_dir):
    history = json.loads((run_dir / "history.json").read_text())
    assert set(history) == HISTORY_KEYS
    assert (history["method"], history["arch"], history["dataset"]) == \
        ("simclr", "convnet", "fashion-mnist")
    assert history["args"]["subset"] == 512 and history["epochs_done"] == 1
    assert len(history["loss"]) == len(history["lr"]) == 2
    assert [k["epoch"] for k in history["knn"]] == [1]
    assert 0.1 < history["knn"][0]["accuracy"] <= 1
    ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert ckpt["meta"]["dataset"] == "fashion-mnist" and ckpt["encoder_config"]["arch"] == \
        "convnet"
    assert ckpt["encoder_config"]["mean"] == pytest.approx(data.STATS["fashion-mnist"][0])


@pytest.mark.parametrize("protocol, extra", [("knn", []), ("linear", []),
                                             ("linear", ["--labels-per-class", "2",
                                                         "--seeds", "2"])])
def test_evaluate_prints_one_json_line(run_dir, capsys, protocol, extra):
    code = main(["evaluate", "--checkpoint", str(run_dir / "checkpoint.pt"), "--protocol",
                 protocol, "--subset", "512", "--device", "cpu", *extra])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["protocol"] == protocol and 0.1 < result["accuracy"] <= 1  # above chance
    assert result["train_size"] == result["test_size"] == 512
    assert result["labels_per_class"] == (2 if extra else None)
    assert result["seeds"] == (2 if extra else 1)
    assert result["checkpoint"].endswith("checkpoint.pt")


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("argv, message", [
    (["pretrain", "--method", "simclr", "--epochs", "1", "--batch-size", "1"], "batch-size"),
    (["pretrain", "--method", "simclr", "--epochs", "1", "--subset", "100"], "larger than"),
    (["pretrain", "--method", "simclr", "--epochs", "1", "--device", "tpu9"], "device"),
    (["evaluate", "--checkpoint", "missing.pt"], "no checkpoint"),
    (["evaluate", "--checkpoint", "garbage.pt"], "cannot be read as an sslbook checkpoint"),
])
def test_bad_arguments_exit_2_with_one_error_line(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "garbage.pt").write_bytes(b"\x80\x02 not a checkpoint")
    argv = [*argv, "--out", "out"] if argv[0] == "pretrain" else argv
    assert main(argv) == 2
    err = error_line(capsys)
    assert err.startswith("error:") and message in err and len(err.strip().splitlines()) == 1


def test_resume_with_another_method_is_refused(run_dir, capsys):
    argv = ["pretrain", "--method", "byol", "--epochs", "1", "--subset", "512", "--out",
            str(run_dir), "--resume"]
    assert main(argv) == 2
    err = error_line(capsys)
    assert "cannot resume" in err and "method: checkpoint 'simclr', now 'byol'" in err


def test_resume_with_another_length_is_refused_unless_extended(run_dir, capsys, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    argv = ["pretrain", "--method", "simclr", "--epochs", "2", "--batch-size", "256", "--subset",
            "512", "--device", "cpu", "--out", str(run), "--resume", "--no-progress"]
    assert main(argv) == 2
    err = error_line(capsys)
    assert "epochs: checkpoint 1, now 2" in err and "--extend" in err
    assert main([*argv, "--extend"]) == 0
    history = json.loads((run / "history.json").read_text())
    assert history["epochs_done"] == 2 and len(history["loss"]) == 4  # 2 steps per epoch


@pytest.mark.parametrize("pair, message", [
    ("temperature", "KEY=VALUE"), ("queue=5", "temperature"), ("tau=0.1", "hidden_dim")])
def test_set_is_checked_against_the_method(tmp_path, capsys, pair, message):
    argv = ["pretrain", "--method", "simclr", "--epochs", "1", "--out", str(tmp_path / "x"),
            "--set", pair]
    assert main(argv) == 2
    err = error_line(capsys)
    assert message in err and "--help-method" in err


def test_help_method_lists_settings_and_paper_optimizer(capsys):
    assert main(["pretrain", "--method", "swav", "--help-method"]) == 0
    out = capsys.readouterr().out
    assert "epsilon = 0.05" in out and "n_prototypes = 3000" in out and "lars" in out


def test_missing_data_set_is_an_error_line(tmp_path, capsys, monkeypatch):
    def not_found(name, split="train", root=None):
        raise data.DataNotFoundError(f"{name} ({split}) was not found.\nFix it: make data")

    monkeypatch.setattr(data, "load", not_found)
    assert main(["data", "--dataset", "cifar10"]) == 2
    err = error_line(capsys)
    assert err.startswith("error: cifar10 (train) was not found.") and "make data" in err


def test_data_command_prints_shapes(capsys):
    assert main(["data"]) == 0
    out = capsys.readouterr().out
    assert "(60000, 1, 28, 28)" in out and "(10000, 1, 28, 28)" in out


def test_unknown_choices_are_argparse_errors(capsys):
    for argv in (["pretrain", "--method", "dino", "--epochs", "1", "--out", "x"],
                 ["pretrain", "--method", "simclr", "--arch", "vgg", "--epochs", "1",
                  "--out", "x"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_module_entry_point_errors_without_traceback(tmp_path):
    done = subprocess.run([sys.executable, "-m", "sslbook", "evaluate", "--checkpoint",
                           str(tmp_path / "no.pt")], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)
    assert done.returncode == 2 and done.stderr.startswith("error: no checkpoint")
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_parser_choices_match_the_library():
    from sslbook import __main__ as cli
    from sslbook import augment, data, methods, models

    assert cli.DATASETS == tuple(data.DATASETS) and cli.ARCHS == tuple(models.ARCHS)
    assert cli.METHODS == tuple(methods.METHODS) and cli.PRESETS == tuple(augment.PRESETS)


def test_help_does_not_import_torch():
    code = "import sys; from sslbook.__main__ import build_parser; build_parser(); " \
           "print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_pretrain_into_another_runs_folder_is_refused(run_dir, capsys):
    before = (run_dir / "checkpoint.pt").read_bytes()
    argv = ["pretrain", "--method", "byol", "--epochs", "1", "--subset", "512", "--out",
            str(run_dir), "--no-progress"]
    assert main(argv) == 2
    err = error_line(capsys)
    assert "already holds a run" in err and "--resume" in err and "--overwrite" in err
    assert (run_dir / "checkpoint.pt").read_bytes() == before


def test_evaluate_a_file_that_is_not_a_checkpoint(tmp_path, capsys):
    (tmp_path / "README.md").write_text("# not a checkpoint\n")
    assert main(["evaluate", "--checkpoint", str(tmp_path / "README.md")]) == 2
    err = error_line(capsys)
    assert "cannot be read as an sslbook checkpoint" in err and "delete" not in err
