"""LLaVA-OneVision and SmolVLM2 through the user's entry points: `r1video sft` (the cold start) then `r1video grpo`
(HF generate) through the tiny recipes, an exact resume, `r1video eval` on the four benchmarks, `infer`,
`data validate --model`, and `use_vllm` refused (SmolVLM2); tiny random models with each family's real processor,
real mp4 clips.
"""

import json
from pathlib import Path

import pytest
import torch
from eval_fixtures import MAKERS, MVBENCH_TASKS, write_clip
from safetensors.torch import load_file

from r1video import grpo, sft
from r1video.data import cli as data_cli
from r1video.data.synth import generate_synthetic_dataset
from r1video.eval import cli as eval_cli
from r1video.eval import infer as infer_cli
from r1video.policies import load_policy, policy_for

REPO = Path(__file__).resolve().parents[1]
GRPO_RECIPE = str(REPO / "recipes/tiny/qwen_grpo_smoke.yaml")  # the tiny recipes name no family: the model does
SFT_RECIPE = str(REPO / "recipes/tiny/qwen_coldstart_smoke.yaml")
FAMILIES = ["llava_onevision", "smolvlm"]
# Saved key prefixes -> part (LLaVA-OneVision saves the llava-hf layout, SmolVLM its module names).
PARTS = {
    "vision_tower.": "vision",
    "multi_modal_projector.": "connector",
    "image_newline": "connector",
    "model.vision_model.": "vision",
    "model.connector.": "connector",
}
PROMPTS = {"llava_onevision": "<|im_start|>user <video>\n", "smolvlm": "<|im_start|>User: <video>"}


@pytest.fixture(scope="module", params=FAMILIES)
def model_dir(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param)
    policy_for(request.param).build_tiny(out)
    return str(out)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    return generate_synthetic_dataset(root, n=8, n_test=2, n_coldstart=4, size=32, beats=8, frames_per_beat=1)


def weights(path) -> dict[str, torch.Tensor]:
    return load_file(Path(path) / "model.safetensors")


def changed_parts(before: dict, after: dict) -> set[str]:
    changed = {name for name in after if not torch.equal(before[name], after[name])}
    return {next((part for prefix, part in PARTS.items() if n.startswith(prefix)), "language_model") for n in changed}


def test_coldstart_then_grpo_through_the_recipes(model_dir, synth, tmp_path):
    """The cold start trains the LLM and the connector (the vision encoder frozen); its output is the GRPO run's
    policy and reference model as it is; GRPO (HF generate) trains the same parts."""
    data = ["--video_root", synth.root]
    coldstart = str(tmp_path / "coldstart")
    assert sft.main(["--config", SFT_RECIPE, "--model_name_or_path", model_dir, "--train_file", synth.coldstart,
                     *data, "--output_dir", coldstart]) == 0  # fmt: skip
    assert changed_parts(weights(model_dir), weights(coldstart)) == {"language_model", "connector"}
    out = str(tmp_path / "grpo")
    assert grpo.main(["--config", GRPO_RECIPE, "--model_name_or_path", coldstart, "--train_file", synth.grpo_train,
                      *data, "--output_dir", out, "--max_steps", "2", "--save_strategy", "no"]) == 0  # fmt: skip
    assert changed_parts(weights(coldstart), weights(out)) == {"language_model", "connector"}
    policy, _, _ = load_policy(out)
    assert policy.name == policy_for(load_policy(model_dir)[1]).name
    history = json.loads((Path(out) / "trainer_state.json").read_text())["log_history"]
    assert any("rewards/tinyllava_r1_reward/mean" in entry for entry in history)


def test_grpo_resumes_exactly_from_a_checkpoint(model_dir, synth, tmp_path):
    """A run resumed from its step-1 checkpoint ends with the weights of the run that was not interrupted (for
    LLaVA-OneVision this needs its `load_checkpoint`: the checkpoint's llava-hf key names match no parameter)."""
    data = ["--video_root", synth.root, "--train_file", synth.grpo_train, "--model_name_or_path", model_dir]
    whole = str(tmp_path / "whole")
    argv = ["--config", GRPO_RECIPE, *data, "--max_steps", "2", "--save_strategy", "steps", "--save_steps", "1"]
    assert grpo.main([*argv, "--output_dir", whole]) == 0
    resumed = str(tmp_path / "resumed")
    assert grpo.main([*argv, "--output_dir", resumed, "--resume_from_checkpoint", f"{whole}/checkpoint-1"]) == 0
    final, again = weights(whole), weights(resumed)
    assert all(torch.equal(final[name], again[name]) for name in final)
    assert changed_parts(weights(f"{whole}/checkpoint-1"), final)  # step 2 did train


def test_use_vllm_is_refused_at_start_up_in_one_line(model_dir, tmp_path):
    from grpo_fixtures import tiny_grpo_config, varied_reward

    from r1video.trainer import VideoGRPOTrainer

    policy, model, processor = load_policy(model_dir)
    if policy.vllm_route is not None:  # LLaVA-OneVision: tests/test_vllm_native_onevision_smolvlm.py
        pytest.skip(f"{policy.name} has vLLM's {policy.vllm_route} route")
    args = tiny_grpo_config(tmp_path)
    args.use_vllm = True  # set after construction: TRL's config checks that vLLM is installed
    with pytest.raises(NotImplementedError, match=rf"^use_vllm is not supported for {policy.name} models") as error:
        VideoGRPOTrainer(model, [varied_reward], args, processing_class=processor)
    assert "\n" not in str(error.value)


def test_eval_runs_the_four_benchmarks_with_the_familys_chat_template(model_dir, tmp_path_factory, tmp_path):
    """`r1video eval` scores each benchmark with the family's model; the prompt is the benchmark's question through
    the family's chat template, the video before the text."""
    from r1video.eval import EvalConfig, build_prompt, get_benchmark, load_samples

    policy, _, processor = load_policy(model_dir)
    root = tmp_path_factory.mktemp("benchmarks")
    for name, make in MAKERS.items():
        data_dir, out = make(root / name), tmp_path / name
        argv = ["--benchmark", name, "--data-dir", data_dir, "--model", model_dir, "--output-dir", str(out),
                "--max-new-tokens", "3", "--frames", "4", "--batch-size", "2", "--no-progress"]  # fmt: skip
        if name == "mvbench":
            argv += ["--tasks", ",".join(MVBENCH_TASKS), "--prompt", "option"]
        assert eval_cli.main(argv) == 0, name
        records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
        # LongVideoBench reads its own frame count per clip (up to --frames): clips of different lengths per batch
        assert records and all(0 < len(r["frame_indices"]) <= 4 for r in records)
        assert json.loads((out / "results.json").read_text())["counts"]["questions"] == len(records)
        tasks = MVBENCH_TASKS if name == "mvbench" else None
        sample = load_samples(EvalConfig(name, data_dir, "tiny", tasks=tasks))[0]
        text = build_prompt(sample, "reason", get_benchmark(name).layouts, policy, processor)
        assert text.startswith(PROMPTS[policy.name]) and "<think> </think>" in text, text


def test_infer_and_data_validate(model_dir, synth, tmp_path, capsys):
    policy, _, _ = load_policy(model_dir)
    video = write_clip(str(tmp_path / "clip.mp4"))
    argv = ["--model", model_dir, "--video", video, "--question", "Which way does the square move?", "--options",
            "left", "right", "--frames", "4", "--max-new-tokens", "4", "--show-prompt"]  # fmt: skip
    assert infer_cli.main(argv) == 0
    out = capsys.readouterr()
    assert PROMPTS[policy.name] + "Which way does the square move?\nOptions:\nA. left\nB. right" in out.out
    assert data_cli.main(["validate", synth.grpo_train, "--video-root", synth.root, "--model", model_dir]) == 0


def test_temporal_contrast_shuffles_frames_at_no_extra_vision_cost(model_dir, synth, tmp_path):
    """The shuffled rollouts see their clip's cached encoder output with its frames permuted: the encoder runs once
    per distinct clip, as without the option, and the temporal reward is logged."""
    from grpo_fixtures import tiny_grpo_config

    from r1video.data.loaders import load_grpo_dataset
    from r1video.model.templates import QUESTION_TEMPLATES
    from r1video.trainer import VideoGRPOTrainer
    from rewards import SafeReward, get_reward_funcs

    policy, model, processor = load_policy(model_dir)
    rows = load_grpo_dataset(synth.grpo_train, synth.root, question_template=QUESTION_TEMPLATES["r1"])
    args = tiny_grpo_config(tmp_path, beta=0.01, temporal_contrast=True, num_frames=4)
    trainer = VideoGRPOTrainer(model, [SafeReward(f) for f in get_reward_funcs(["tinyllava_r1"])], args,
                               processing_class=processor, train_dataset=rows)  # fmt: skip
    frames = []

    def count(module, args, kwargs, output):
        frames.append((kwargs["pixel_values"] if "pixel_values" in kwargs else args[0]).shape[0])

    handle = policy.vision_module(trainer.model).register_forward_hook(count, with_kwargs=True)
    try:
        trainer.train()
    finally:
        handle.remove()
    assert frames == [2 * 4]  # 2 distinct clips (4 rows, groups of 2) of 4 frames, once, shuffled rollouts included
    logged = trainer.state.log_history[0]
    assert "rewards/temporal/mean" in logged and "temporal/shuffled_accuracy" in logged
    orders = {order for order in trainer._logs["extra"]["temporal_permutation"] if order}
    assert orders and all(len(order.split()) == 4 for order in orders)  # frames are the unit
