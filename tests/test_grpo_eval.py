"""`r1video grpo` with an `eval_file`: TRL evaluates the held-out prompts during training and once after it, with the
reward and accuracy metrics of every reward in the logs and in `trainer_state.json`."""

import json
from pathlib import Path

import r1video.model  # noqa: F401  (registers TinyLLaVA-Video with the Auto classes)
from r1video import grpo
from r1video.data.synth import generate_synthetic_dataset
from r1video.model import build_tiny_model

REPO = Path(__file__).resolve().parents[1]


def test_grpo_recipe_with_an_eval_file_logs_eval_rewards_per_reward(tmp_path):
    synth = generate_synthetic_dataset(tmp_path / "synth", n=4, n_test=2, n_coldstart=1, size=32, beats=8)
    build_tiny_model(tmp_path / "model")
    out = tmp_path / "out"
    argv = ["--config", str(REPO / "recipes/tiny/grpo_smoke.yaml"), "--model_name_or_path", str(tmp_path / "model"),
            "--train_file", synth.grpo_train, "--eval_file", synth.test, "--video_root", synth.root,
            "--output_dir", str(out), "--max_steps", "2", "--eval_strategy", "steps", "--eval_steps", "1",
            "--per_device_eval_batch_size", "4", "--save_strategy", "no", "--max_completion_length", "6",
            "--reward_funcs", "accuracy", "format"]  # fmt: skip
    assert grpo.main(argv) == 0

    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    evals = [entry for entry in history if "eval_loss" in entry]
    assert [entry["step"] for entry in evals] == [1, 2]
    for entry in evals:
        for reward in ("accuracy_reward", "format_reward"):
            assert 0.0 <= entry[f"eval_rewards/{reward}/mean"] <= 1.0
        assert "eval_reward" in entry and "eval_completions/mean_length" in entry
    final = json.loads((out / "eval_results.json").read_text())
    assert "eval_rewards/accuracy_reward/mean" in final
    assert (out / "model.safetensors").exists() and (out / "README.md").exists()


def test_the_final_eval_with_one_generation_per_prompt_writes_its_results(tmp_path):
    # trl#3566: with one generation per eval prompt the reward stds are None; on 666becb the run trained and saved,
    # then stopped with a TypeError in `log_metrics` and never wrote eval_results.json.
    synth = generate_synthetic_dataset(tmp_path / "synth", n=4, n_test=2, n_coldstart=1, size=32, beats=8)
    build_tiny_model(tmp_path / "model")
    out = tmp_path / "out"
    argv = ["--config", str(REPO / "recipes/tiny/grpo_smoke.yaml"), "--model_name_or_path", str(tmp_path / "model"),
            "--train_file", synth.grpo_train, "--eval_file", synth.test, "--video_root", synth.root,
            "--output_dir", str(out), "--max_steps", "1", "--do_eval", "true", "--per_device_eval_batch_size", "1",
            "--num_generations_eval", "1", "--save_strategy", "no", "--max_completion_length", "4",
            "--reward_funcs", "accuracy", "format"]  # fmt: skip
    assert grpo.main(argv) == 0
    final = json.loads((out / "eval_results.json").read_text())
    assert 0.0 <= final["eval_rewards/accuracy_reward/mean"] <= 1.0 and "eval_reward" in final
    assert "eval_reward_std" not in final and None not in final.values()
