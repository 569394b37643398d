"""The committed pretrained networks match their cards; loading fails clearly on bad files."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

from sslbook import methods, models, pretrained
from sslbook.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
CARDS = sorted(p.stem for p in (ROOT / "checkpoints").glob("*.json"))
SSL = ("simclr", "moco", "byol", "simsiam", "swav")
REQUIRED = {"name", "method", "config", "arch", "dataset", "split", "images_seen", "epochs",
            "batch_size", "optimizer", "schedule", "seed", "wall_minutes", "machine", "torch",
            "commit", "command", "sha256", "evaluation", "ci"}


@pytest.fixture(scope="module")
def subset():
    return pretrained.ci_subset()


def test_every_file_has_a_card_and_the_files_fit():
    files = sorted(p.stem for p in (ROOT / "checkpoints").glob("*.pt"))
    assert files == CARDS, "every checkpoints/NAME.pt needs its card NAME.json and vice versa"
    total = sum((ROOT / "checkpoints" / f"{n}.pt").stat().st_size for n in files)
    assert total <= 30 * 2**20, f"checkpoints/ holds {total / 2**20:.1f} MB; the limit is 30 MB"


@pytest.mark.parametrize("name", CARDS)
def test_checkpoint_matches_its_card(name, subset):
    card = pretrained.card(name)
    assert REQUIRED <= set(card), f"{name}.json lacks {sorted(REQUIRED - set(card))}"
    encoder = pretrained.load(name, encoder_only=True)  # checks the sha256
    knn = pretrained.subset_knn(encoder, subset)
    assert abs(knn - card["ci"]["knn"]) <= pretrained.KNN_TOLERANCE, (
        f"{name}: kNN on the CI subset is {knn:.4f}, its card says {card['ci']['knn']:.4f}; "
        f"make it again with {card['command']}")


@pytest.mark.parametrize("name", [n for n in CARDS if n in SSL])
def test_every_method_beats_raw_pixels_by_a_point(name):
    ev = pretrained.card(name)["evaluation"]
    for read_out in ("knn", "linear"):
        assert ev[name][read_out] >= ev["raw pixels"][read_out] + 0.01, (
            f"{name}: {read_out} {ev[name][read_out]:.3f} is not 1 point above raw pixels "
            f"({ev['raw pixels'][read_out]:.3f})")


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A folder with one small pretrained file and its card, used as the checkout's."""
    torch.manual_seed(0)
    method = methods.create("byol", models.create("convnet", 1, [0.5], [0.5], 28, width=8),
                            hidden_dim=32, out_dim=16)
    pretrained.export(method, "tiny", tmp_path / "tiny.pt")
    digest = pretrained.sha256(tmp_path / "tiny.pt")
    (tmp_path / "tiny.json").write_text(json.dumps({"sha256": digest, "command": "x"}))
    monkeypatch.setattr(pretrained, "REPO_DIR", tmp_path)
    monkeypatch.setattr(pretrained, "CACHE", tmp_path / "cache")
    monkeypatch.delenv("SSLBOOK_CHECKPOINTS", raising=False)
    return tmp_path, method


def test_load_rebuilds_the_method_without_momentum_copies(store):
    folder, method = store
    saved = torch.load(folder / "tiny.pt", weights_only=True)
    assert not any(k.startswith("target_") for k in saved["state_dict"])
    loaded = pretrained.load("tiny")
    x = torch.rand(4, 1, 28, 28)
    method.eval()
    assert torch.equal(loaded.encoder(x), method.encoder(x))
    assert torch.equal(loaded.target_encoder(x), method.encoder(x))  # target = online
    assert not loaded.training
    encoder = pretrained.load("tiny", encoder_only=True)
    assert encoder.feature_dim == 32 and torch.equal(encoder(x), method.encoder(x))


def test_modified_or_truncated_file_is_refused_with_both_hashes(store):
    folder, _ = store
    expected = json.loads((folder / "tiny.json").read_text())["sha256"]
    data = (folder / "tiny.pt").read_bytes()
    (folder / "tiny.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(pretrained.PretrainedError) as err:
        pretrained.load("tiny")
    found = hashlib.sha256(data[: len(data) // 2]).hexdigest()
    message = str(err.value)
    assert "tiny.pt" in message and expected in message and found in message
    assert "python benchmarks/checkpoints.py tiny" in message


def test_unknown_name_lists_the_known_ones(store):
    with pytest.raises(pretrained.PretrainedError, match="cards found: tiny"):
        pretrained.card("nope")


def test_environment_folder_and_download(store, tmp_path_factory, monkeypatch):
    folder, _ = store
    other = tmp_path_factory.mktemp("elsewhere")
    shutil.move(folder / "tiny.json", other / "tiny.json")
    shutil.move(folder / "tiny.pt", other / "tiny.pt")
    with pytest.raises(pretrained.PretrainedError):
        pretrained.card("tiny")
    monkeypatch.setenv("SSLBOOK_CHECKPOINTS", str(other))
    assert pretrained.path("tiny") == other / "tiny.pt"
    # a card without its file: the file is downloaded (here from a file:// URL) and verified
    server = tmp_path_factory.mktemp("server")
    shutil.move(other / "tiny.pt", server / "tiny.pt")
    got = pretrained.path("tiny", url=server.as_uri() + "/")
    assert got == folder / "cache" / "tiny.pt" and got.is_file()


def test_cli_verify_and_errors(store, capsys):
    assert main(["pretrained", "verify"]) == 0
    assert "tiny: ok" in capsys.readouterr().out
    assert main(["pretrained", "verify", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no pretrained network 'nope'") and err.count("\n") == 1


def test_quick_run_of_the_regeneration_tool(tmp_path, monkeypatch):
    """benchmarks/checkpoints.py trains, exports, writes a card and the README; a second call
    resumes (nothing left to train) and a changed recipe is refused."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import checkpoints as tool

    monkeypatch.setattr(tool, "QUICK", {"images": 512, "epochs": 1, "train": 1000, "test": 200})
    monkeypatch.setattr(sys, "argv", ["checkpoints.py", "rotation", "--quick", "--out",
                                      str(tmp_path), "--no-progress"])
    assert tool.main() == 0
    card = json.loads((tmp_path / "rotation.json").read_text())
    assert card["sha256"] == pretrained.sha256(tmp_path / "rotation.pt")
    assert card["epochs"] == 1 and card["images_seen"] == 512 and card["method"] == "rotation"
    assert {"rotation", "raw pixels", "random encoder"} <= set(card["evaluation"])
    assert "rotation" in (tmp_path / "README.md").read_text()
    recipe = tmp_path / ".quick-runs" / "rotation" / "recipe.json"
    recipe.write_text(json.dumps({"epochs": 99}))
    with pytest.raises(SystemExit, match="another recipe"):
        tool.main()


def test_ablation_reads_cards_measures_collapse_and_refuses_a_stranger(store, capsys):
    folder, method = store
    pretrained.export(method, "tiny-x", folder / "tiny-x.pt")

    def card(name, ablation_of, monitor):
        row = {"knn": 0.5, "linear": 0.6}
        return {"sha256": pretrained.sha256(folder / f"{name}.pt"), "command": "x",
                "ablation_of": ablation_of, "epochs": 2, "batch_size": 4, "images_seen": 16,
                "evaluation": {name: row, "raw pixels": row, "random encoder": row},
                "history": {"loss_curve": [{"step": 0, "loss": 1.0}, {"step": 2, "loss": 0.5}],
                            "monitor": monitor}}
    (folder / "tiny.json").write_text(json.dumps(card("tiny", None, [
        {"epoch": 1, "spread_p": 0.1}, {"epoch": 2, "spread_p": 0.2}])))
    (folder / "tiny-x.json").write_text(json.dumps(card("tiny-x", "tiny", [
        {"step": 2, "epoch": 0.5, "spread_p": 0.05, "rank_p": 3.0}, {"epoch": 1, "rank_p": 2.0,
                                                                    "spread_p": 0.01}])))
    result = pretrained.ablation("tiny", ["tiny-x"])
    assert result["curves"]["tiny"]["loss"] == ([0.0, 1.0], [1.0, 0.5])  # 2 steps an epoch
    assert result["curves"]["tiny-x"]["rank_p"] == ([0.5, 1], [3.0, 2.0])
    assert "rank_p" not in result["curves"]["tiny"]
    live = result["rows"]["tiny-x"]
    assert live["rank_p"] >= 1 and live["spread_p"] == result["rows"]["tiny"]["spread_p"]
    assert "tiny-x" in capsys.readouterr().out
    with pytest.raises(ValueError, match="not an ablation of tiny-x"):
        pretrained.ablation("tiny-x", ["tiny"])
    drifted = json.loads((folder / "tiny-x.json").read_text())
    drifted["collapse"] = {"spread_p": live["spread_p"] * 1.5 + 1e-3}  # the file no longer matches
    (folder / "tiny-x.json").write_text(json.dumps(drifted))
    with pytest.raises(pretrained.PretrainedError, match="spread_p .* its card says"):
        pretrained.ablation("tiny", ["tiny-x"])
