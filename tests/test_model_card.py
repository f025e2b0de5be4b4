"""Every save writes a model card; no local path or token ends up in what would be pushed to the Hub."""

import fnmatch
import json
import os
import re
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

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


# ---- the card of every other family: what the policy says, never TinyLLaVA-Video's text ---------------------------

HF_FAMILIES = {  # family -> the words the card must open with
    "qwen2_5_vl": "A [Qwen2.5-VL](https://arxiv.org/abs/2502.13923) model (transformers' "
    "`Qwen2_5_VLForConditionalGeneration`",
    "llava_onevision": "A [LLaVA-OneVision](https://arxiv.org/abs/2408.03326) model (transformers' "
    "`LlavaOnevisionForConditionalGeneration`",
    "smolvlm": "A [SmolVLM](https://arxiv.org/abs/2504.05299) model (transformers' `SmolVLMForConditionalGeneration`",
    "qwen3_vl": "A [Qwen3-VL](https://arxiv.org/abs/2511.21631) model (transformers' `Qwen3VLForConditionalGeneration`",
    "qwen3_5": "A Qwen3.5 model (transformers' `Qwen3_5ForConditionalGeneration`",
}


def family_trainer(name, tmp_path, **overrides):
    """A real `VideoGRPOTrainer` on a tiny random model of family `name` (saved to `tmp_path/tiny-model`), writing to
    the relative `runs/<name>` as the recipes do (the caller has changed into `tmp_path`)."""
    from family_grpo_fixtures import clip_dataset, make_trainer

    from r1video.policies import policy_named

    policy_named(name).build_tiny(tmp_path / "tiny-model")
    (tmp_path / "clips").mkdir()
    data = clip_dataset(tmp_path / "clips")
    return make_trainer(tmp_path / "tiny-model", data, tmp_path, output_dir=f"runs/{name}", **overrides)


def python_snippet(card: str) -> str:
    return re.search(r"```python\n(.*?)```", card, re.S)[1]


def check_family_card(card: str, name: str, folder: Path, policy, trained) -> None:
    """The card names the family and never TinyLLaVA-Video; its snippet loads `folder` into the family's own class
    with the saved weights; its key patterns are exactly those of the saved safetensors."""
    assert HF_FAMILIES[name] in card, card
    assert "tinyllava" not in card.lower() and "load_pretrained" not in card, card
    assert f"r1video infer --model {folder.as_posix()} --video" in card
    scope = {}
    exec(python_snippet(card), scope)  # the reader's own code, run where the folder is (the test's cwd)
    model, processor = scope["model"], scope["processor"]
    assert type(model).__name__ == policy.model_class_name and processor.tokenizer is not None
    saved = trained.state_dict()
    assert all(torch.equal(value, saved[key]) for key, value in model.state_dict().items())
    patterns = re.findall(r"`([^`]+)`", re.search(r"The weights are in safetensors.*?\((.*?)\)\.", card, re.S)[1])
    check_saved_keys(folder, patterns)


def check_saved_keys(folder, patterns) -> None:
    """Every key of `folder/model.safetensors` matches one of `patterns`, and every pattern some key."""
    with safe_open(str(Path(folder) / "model.safetensors"), "pt") as weights:
        keys = list(weights.keys())
    assert all(any(fnmatch.fnmatch(key, p) for p in patterns) for key in keys), (patterns, keys[:5])
    assert all(any(fnmatch.fnmatch(key, p) for key in keys) for p in patterns), (patterns, keys[:5])


def test_qwen_card_through_a_training_run_and_its_checkpoint(tmp_path, monkeypatch):
    """A tiny Qwen2.5-VL trained one step with a checkpoint save: both cards (the run's, the checkpoint's) describe
    Qwen2.5-VL, and their snippets load what was saved."""
    monkeypatch.chdir(tmp_path)
    trainer = family_trainer("qwen2_5_vl", tmp_path, save_strategy="steps", save_steps=1)
    trainer.train()
    trainer.save_model()
    trainer.create_model_card()
    out = Path("runs/qwen2_5_vl")
    for folder in (out, out / "checkpoint-1"):
        card = (folder / "README.md").read_text()
        check_family_card(card, "qwen2_5_vl", folder, trainer.policy, trainer.model)
        assert "trained with GRPO by r1video." in card and "| `varied_reward` | 1.0 |" in card
        assert "qwen2_5_vl" in card.split("---")[1]  # the family's tag


@pytest.mark.parametrize("name", ["llava_onevision", "smolvlm", "qwen3_vl", "qwen3_5"])
def test_other_family_cards(name, tmp_path, monkeypatch):
    """The card the trainer writes for each other transformers family: its name (and paper where one is known), its
    own class in the snippet, its saved key layout."""
    monkeypatch.chdir(tmp_path)
    trainer = family_trainer(name, tmp_path)
    trainer.save_model()
    trainer.create_model_card()
    folder = Path(f"runs/{name}")
    check_family_card((folder / "README.md").read_text(), name, folder, trainer.policy, trainer.model)


@pytest.mark.parametrize("name", ["qwen2_5_vl", "llava_onevision"])
def test_saved_key_patterns_follow_an_untied_head(name, tmp_path):
    """A model whose output head is not tied to the embeddings saves the head too (`lm_head.*`; LLaVA-OneVision
    under `language_model.*`); the card's layout says what `save_pretrained` wrote."""
    from r1video.policies import policy_named

    policy = policy_named(name)
    model, _ = policy.build_tiny()
    tied = policy.saved_key_patterns(model)
    for config in (model.config, model.config.get_text_config()):
        config.tie_word_embeddings = False
    head = model.get_output_embeddings()
    head.weight = torch.nn.Parameter(head.weight.detach().clone())
    model.save_pretrained(tmp_path)
    check_saved_keys(tmp_path, policy.saved_key_patterns(model))
    assert policy.saved_key_patterns(model) == tied + (("lm_head.*",) if name == "qwen2_5_vl" else ())


def test_a_family_without_its_own_card_text_is_loaded_with_load_policy(tmp_path, monkeypatch):
    """`VideoPolicy.model_card_facts`, for families registered from outside r1video: the family's name and r1video's
    own loader, whose snippet loads the folder."""
    from r1video.policies import VideoPolicy, policy_named

    monkeypatch.chdir(tmp_path)
    build_tiny_model(tmp_path / "runs" / "tiny")
    policy = policy_named("tinyllava_video")
    facts = VideoPolicy.model_card_facts(policy, None, "runs/tiny")
    assert facts.description == "A `tinyllava_video` model" and not facts.weights
    scope = {}
    exec(facts.python, scope)
    assert type(scope["policy"]) is type(policy) and scope["model"].config.model_type == "tinyllava"
