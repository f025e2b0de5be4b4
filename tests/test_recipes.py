"""Recipes parse with the real parser, carry no absolute paths, and the smoke recipe trains on 2 CPU processes."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from accelerate.commands.config.config_args import load_config_from_file
from safetensors import safe_open
from safetensors.torch import load_file
from smoke_runs import SMOKE_ENV, prepare_smoke_run
from transformers import AutoModelForCausalLM

import r1video.model  # noqa: F401  (registers TinyLLaVA-Video with the Auto classes)
from r1video import sft
from r1video.grpo import make_parser
from r1video.runs import LOCK_NAME
from r1video.trainer.checkpoints import incomplete_reason
from r1video.trainer.rollout_buffer import load_rollout_buffer

REPO = Path(__file__).resolve().parents[1]
# the demo's tiny-model arguments (model.yaml, a family's model_NAME.yaml), not training recipes; built in test_demo*.py
DEMO_MODELS = sorted((REPO / "recipes" / "demo").glob("model*.yaml"))
RECIPES = sorted(
    p for p in (REPO / "recipes").rglob("*.yaml") if "accelerate_configs" not in p.parts and p not in DEMO_MODELS
)
ACCELERATE_CONFIGS = sorted((REPO / "recipes" / "accelerate_configs").glob("*.yaml"))


def _is_sft(recipe: Path) -> bool:
    stages = ("sft", "coldstart", "pretrain", "finetune")  # the SFT entry point's stages
    demo_base = recipe.parent == REPO / "recipes" / "demo" and recipe.stem.split("_")[0] == "base"  # base[_NAME]
    return any(stage in recipe.stem for stage in stages) or demo_base


def _strings(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: str(p.relative_to(REPO)))
def test_recipe_parses_with_the_real_parser(recipe):
    config = yaml.safe_load(recipe.read_text())
    # GPU recipes ask for bf16, which TrainingArguments refuses on a CPU machine; everything else is checked as is.
    overrides = (
        ["--bf16", "false", "--fp16", "false", "--use_cpu", "true"] if config.get("bf16") or config.get("fp16") else []
    )
    parser = sft.make_parser() if _is_sft(recipe) else make_parser()
    script_args, training_args, model_args = parser.parse_args_and_config(["--config", str(recipe), *overrides])
    assert script_args.train_file and model_args.model_name_or_path
    assert _is_sft(recipe) or training_args.num_generations >= 2


@pytest.mark.parametrize(
    "recipe", [*RECIPES, *DEMO_MODELS, *ACCELERATE_CONFIGS], ids=lambda p: str(p.relative_to(REPO))
)
def test_recipe_has_no_absolute_paths(recipe):
    for value in _strings(yaml.safe_load(recipe.read_text())):
        assert not value.startswith(("/", "~")), f"{recipe.name}: absolute path {value!r}"


def test_unknown_recipe_key_is_an_error(tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text((REPO / "recipes/tiny/grpo_smoke.yaml").read_text() + "num_generatoins: 8\n")
    with pytest.raises(ValueError, match="num_generatoins"):
        make_parser().parse_args_and_config(["--config", str(recipe)])


@pytest.mark.parametrize("config", ACCELERATE_CONFIGS, ids=lambda p: p.name)
def test_accelerate_configs_load(config):
    loaded = load_config_from_file(str(config))
    assert loaded.num_processes >= 2


def test_paper_recipe_matches_the_original_settings():
    script_args, args, model_args = make_parser().parse_args_and_config(
        ["--config", str(REPO / "recipes/TinyLLaVA-Video-Qwen2.5-3B/grpo_nextqa.yaml"), "--bf16", "false"]
    )
    assert (args.num_generations, args.beta, args.loss_type, args.max_completion_length) == (8, 0.01, "grpo", 512)
    assert (args.learning_rate, args.lr_scheduler_type, args.warmup_steps) == (1e-6, "cosine", 0.03)
    assert (args.temperature, args.top_k, args.num_frames, args.advantage_noise_std) == (1.0, 50, 16, 0.02)
    assert args.freeze_vision_tower and args.num_iterations == 1 and args.scale_rewards == "group"
    assert args.kl_clamp == 100.0 and args.use_bias_correction_kl is False  # the original's loss (seed-facts §5.3)
    assert script_args.reward_funcs == ["tinyllava_r1"]


@pytest.mark.slow  # ~70-100 s; one-process runs of the same recipe stay in the default run (test_resume, test_sft)
def test_smoke_recipe_on_two_cpu_processes_saves_a_released_layout_checkpoint(tmp_path):
    env = SMOKE_ENV
    prepare_smoke_run(tmp_path)
    launch = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(REPO / "recipes/accelerate_configs/cpu.yaml"),
        "-m", "r1video.grpo", "--config", str(REPO / "recipes/tiny/grpo_smoke.yaml"),
        "--max_steps", "2", "--save_steps", "1", "--num_iterations", "2",
    ]  # fmt: skip
    result = subprocess.run(launch, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "runs" / "grpo-smoke"
    assert incomplete_reason(out / "checkpoint-2") is None  # rng_state_{0,1}.pth, rollout_buffer_{0,1} included
    assert not (out / LOCK_NAME).exists()  # only rank 0 took the lock, and released it

    # checkpoint-1 falls inside the two-step generation cycle: each rank resumes from its own buffered rollouts.
    buffers = [load_rollout_buffer(str(out / f"checkpoint-1/rollout_buffer_{rank}.safetensors")) for rank in (0, 1)]
    assert [step for step, _, _ in buffers] == [1, 1]
    assert not torch.equal(buffers[0][2][0]["prompt_ids"], buffers[1][2][0]["prompt_ids"])  # each rank's own rows
    shutil.copytree(
        out, tmp_path / "runs/mid-cycle", ignore=shutil.ignore_patterns("checkpoint-2", "model.safetensors")
    )
    mid_cycle = [*launch, "--output_dir", "runs/mid-cycle", "--resume_from_checkpoint", "true"]
    resumed = subprocess.run(mid_cycle, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    straight, after = load_file(out / "model.safetensors"), load_file(tmp_path / "runs/mid-cycle/model.safetensors")
    assert all(torch.equal(straight[name], after[name]) for name in straight)
    # Each rank checks the recipe against the checkpoint's (stored by rank 0) and finds nothing left to train.
    resumed = subprocess.run(
        [*launch, "--resume_from_checkpoint", "true"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "nothing left to train" in resumed.stderr
    state = yaml.safe_load((out / "checkpoint-2" / "trainer_state.json").read_text())
    # 2 processes × 1 prompt per step × 2 steps out of 16 prompts, each prompt's rollouts used twice (num_iterations)
    assert state["global_step"] == 2 and state["epoch"] == pytest.approx(2 * 2 / 16 / 2)
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert "language_model.model.embed_tokens.weight" in keys
    assert "vision_tower._vision_tower.vision_model.embeddings.patch_embedding.weight" in keys
    assert any(k.startswith("connector._connector.") for k in keys)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert type(model).__name__ == "TinyLlavaVideoForConditionalGeneration"
