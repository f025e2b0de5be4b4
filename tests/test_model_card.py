"""Every save writes a model card; no local path or token ends up in what would be pushed to the Hub."""

import fnmatch
import json
import os
from pathlib import Path

import pytest

import r1video.model  # noqa: F401  (registers TinyLLaVA-Video with the Auto classes)
from r1video.data.synth import generate_synthetic_dataset
from r1video.grpo import main as grpo_main
from r1video.model import build_tiny_model
from r1video.trainer.model_card import load_path, public_name

REPO = Path(__file__).resolve().parents[1]
SECRET = "hf_NotARealTokenButLooksLikeOne123"


@pytest.fixture()
def run_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)  # output_dir is relative, as in the recipes
    build_tiny_model(tmp_path / "tiny-model")
    data = generate_synthetic_dataset(tmp_path / "synth", n=8, n_test=2, n_coldstart=2, size=32, beats=8)
    out = tmp_path / "runs" / "grpo-smoke"
    grpo_main(
        [
            "--config", str(REPO / "recipes/tiny/grpo_smoke.yaml"),
            "--model_name_or_path", str(tmp_path / "tiny-model"),
            "--train_file", data.grpo_train,
            "--video_root", data.root,
            "--output_dir", "runs/grpo-smoke",
            "--max_steps", "1", "--save_steps", "1", "--max_completion_length", "4",
            "--hub_token", SECRET,
        ]
    )  # fmt: skip
    assert os.environ.pop("HF_TOKEN") == SECRET  # handed to huggingface_hub through the environment
    return tmp_path, out


def test_card_describes_the_run_and_how_to_load_it(run_dir):
    _, out = run_dir
    for card_path in (out / "README.md", out / "checkpoint-1" / "README.md"):
        card = card_path.read_text()
        assert "trained with GRPO by r1video" in card and "| `lr_scheduler_type` | constant |" in card
        assert "| `tinyllava_r1_reward` | 1.0 |" in card
        assert "| `beta` | 0.01 |" in card and "| `num_generations` | 4 |" in card
        assert "`rewards/tinyllava_r1_reward/mean`" in card
        assert "load_pretrained(" in card and "r1video infer --model" in card
        assert "**Started from:** `tiny-model`" in card and "**Training data:** `grpo_train.jsonl`" in card


def test_how_to_use_names_the_folder_the_user_has(run_dir):
    _, out = run_dir
    card = (out / "README.md").read_text()
    assert "r1video infer --model runs/grpo-smoke --video" in card and 'load_pretrained("runs/grpo-smoke")' in card
    card = (out / "checkpoint-1" / "README.md").read_text()
    assert (
        "--model runs/grpo-smoke/checkpoint-1 " in card and 'load_pretrained("runs/grpo-smoke/checkpoint-1")' in card
    )


@pytest.mark.parametrize(
    ("output_dir", "hub_model_id", "checkpoint", "shown"),
    [
        ("runs/grpo-smoke", None, None, "runs/grpo-smoke"),
        ("./runs/grpo-smoke/", None, "checkpoint-4", "runs/grpo-smoke/checkpoint-4"),
        ("/home/me/runs/grpo", None, None, "path/to/grpo"),
        ("/home/me/runs/grpo", None, "checkpoint-4", "path/to/grpo/checkpoint-4"),
        ("runs/grpo", "me/tinyllava-r1", "checkpoint-4", "me/tinyllava-r1"),
    ],
)
def test_load_path(output_dir, hub_model_id, checkpoint, shown):
    assert load_path(output_dir, hub_model_id, checkpoint) == shown


def test_nothing_pushed_holds_a_local_path_or_the_token(run_dir):
    tmp_path, out = run_dir
    # What Trainer.push_to_hub uploads: the output directory minus checkpoints and private files.
    pushed = [p for p in out.iterdir() if not any(fnmatch.fnmatch(p.name, pat) for pat in ("_*", "checkpoint-*"))]
    names = {p.name for p in pushed}
    assert {"README.md", "config.json", "model.safetensors", "processor_config.json", "tokenizer.json"} <= names
    for path in pushed + list((out / "checkpoint-1").iterdir()):
        if path.is_file():
            data = path.read_bytes()
            assert SECRET.encode() not in data, f"{path.name} holds the hub token"
            if path.suffix in (".json", ".md", ".jinja"):
                assert str(tmp_path).encode() not in data, f"{path.name} holds a local path"
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "tinyllava"


@pytest.mark.parametrize(
    ("name", "shown"),
    [("Zhang199/TinyLLaVA-Video-R1", "Zhang199/TinyLLaVA-Video-R1"), ("/home/me/runs/cold", "cold"), (None, None)],
)
def test_public_name_keeps_hub_ids_and_hides_local_paths(name, shown):
    assert public_name(name) == shown
