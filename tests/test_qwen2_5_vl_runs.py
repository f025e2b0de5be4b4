"""Qwen2.5-VL through every entry point: `r1video sft` (the cold start), `r1video grpo` (HF generate, temporal
contrast), `r1video eval` on the four benchmarks, `infer`, `data validate --model`, a SIGKILL resume and a 2-process
`accelerate` run, on a tiny random Qwen2.5-VL with the real Qwen2.5-VL processor and real mp4 clips."""

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from eval_fixtures import MAKERS, MVBENCH_TASKS, write_clip
from safetensors.torch import load_file
from smoke_runs import SMOKE_ENV

from r1video import grpo, sft
from r1video.data import cli as data_cli
from r1video.data.synth import generate_synthetic_dataset
from r1video.eval import cli as eval_cli
from r1video.eval import infer as infer_cli
from r1video.policies import load_policy
from r1video.policies.qwen2_5_vl import Qwen2_5_VLPolicy
from r1video.trainer.checkpoints import incomplete_reason
from r1video.trainer.rollout_buffer import load_rollout_buffer

REPO = Path(__file__).resolve().parents[1]
GRPO_RECIPE = str(REPO / "recipes/tiny/qwen_grpo_smoke.yaml")
SFT_RECIPE = str(REPO / "recipes/tiny/qwen_coldstart_smoke.yaml")
POLICY = Qwen2_5_VLPolicy()
QWEN_PROMPT = "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>"


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny-qwen")
    POLICY.build_tiny(out)
    return str(out)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    return generate_synthetic_dataset(root, n=8, n_test=2, n_coldstart=4, size=32, beats=8, frames_per_beat=1)


def weights(path) -> dict[str, torch.Tensor]:
    return load_file(Path(path) / "model.safetensors")


def changed_parts(before: dict, after: dict) -> set[str]:
    """The parts whose saved weights differ (the released checkpoints' key names: `visual.*`, `model.*` for the LM)."""
    parts = {"visual.blocks": "vision", "visual.patch_embed": "vision", "visual.merger": "merger"}
    changed = {name for name in after if not torch.equal(before[name], after[name])}
    return {next((part for prefix, part in parts.items() if n.startswith(prefix)), "language_model") for n in changed}


def test_coldstart_then_grpo_through_the_recipes(qwen_dir, synth, tmp_path):
    """The cold start trains the LLM and the merger (ViT frozen), and its output is the GRPO run's policy and
    reference model as it is; GRPO (HF generate) trains the same parts."""
    data = ["--video_root", synth.root]
    coldstart = str(tmp_path / "coldstart")
    assert sft.main(["--config", SFT_RECIPE, "--model_name_or_path", qwen_dir, "--train_file", synth.coldstart,
                     *data, "--output_dir", coldstart]) == 0  # fmt: skip
    assert changed_parts(weights(qwen_dir), weights(coldstart)) == {"language_model", "merger"}
    out = str(tmp_path / "grpo")
    assert grpo.main(["--config", GRPO_RECIPE, "--model_name_or_path", coldstart, "--train_file", synth.grpo_train,
                      *data, "--output_dir", out, "--max_steps", "2", "--save_strategy", "no"]) == 0  # fmt: skip
    assert changed_parts(weights(coldstart), weights(out)) == {"language_model", "merger"}
    policy, model, processor = load_policy(out)
    assert policy.name == "qwen2_5_vl" and type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    history = json.loads((Path(out) / "trainer_state.json").read_text())["log_history"]
    assert any("rewards/tinyllava_r1_reward/mean" in entry for entry in history)


def test_grpo_never_samples_the_video_placeholder(qwen_dir, synth, tmp_path):
    """TRL suppresses `config.image_token_id` only; a sampled `<|video_pad|>` in a completion would not match the video
    features in the next forward ("Video features and video tokens do not match")."""
    from grpo_fixtures import tiny_grpo_config, varied_reward

    from r1video.data.loaders import load_grpo_dataset
    from r1video.model.templates import QUESTION_TEMPLATES
    from r1video.trainer import VideoGRPOTrainer

    policy, model, processor = load_policy(qwen_dir)
    rows = load_grpo_dataset(synth.grpo_train, synth.root, question_template=QUESTION_TEMPLATES["r1"])
    trainer = VideoGRPOTrainer(model, [varied_reward], tiny_grpo_config(tmp_path), processing_class=processor,
                               train_dataset=rows)  # fmt: skip
    assert processor.video_token_id in trainer.generation_config.suppress_tokens
    assert processor.video_token_id in trainer.generation_kwargs["suppress_tokens"]


def test_temporal_contrast_shuffles_temporal_patches_at_no_extra_vision_cost(qwen_dir, synth, tmp_path):
    """The shuffled rollouts see their clip's cached ViT output with its temporal patches (frame pairs) permuted: the
    ViT runs once per distinct clip, as without the option; the merger of the shuffled generation gets the permuted
    encoding; the temporal reward is logged."""
    from grpo_fixtures import tiny_grpo_config

    from r1video.data.loaders import load_grpo_dataset
    from r1video.model.templates import QUESTION_TEMPLATES
    from r1video.trainer import VideoGRPOTrainer
    from rewards import SafeReward, get_reward_funcs

    _, model, processor = load_policy(qwen_dir)
    rows = load_grpo_dataset(synth.grpo_train, synth.root, question_template=QUESTION_TEMPLATES["r1"])
    args = tiny_grpo_config(tmp_path, beta=0.01, temporal_contrast=True, num_frames=8)
    trainer = VideoGRPOTrainer(model, [SafeReward(f) for f in get_reward_funcs(["tinyllava_r1"])], args,
                               processing_class=processor, train_dataset=rows)  # fmt: skip
    vit_clips, merger_inputs = [], []
    visual = POLICY.vision_module(trainer.model)
    hooks = [
        visual.register_forward_hook(lambda m, a, kw, o: vit_clips.append(len(kw["grid_thw"])), with_kwargs=True),
        visual.merger.register_forward_hook(lambda m, a, o: merger_inputs.append(a[0].detach().clone())),
    ]
    try:
        trainer.train()
    finally:
        for hook in hooks:
            hook.remove()
    assert vit_clips == [2]  # 2 distinct clips (4 rows, groups of 2), encoded once, shuffled rollouts included
    logged = trainer.state.log_history[0]
    assert "rewards/temporal/mean" in logged and "temporal/shuffled_accuracy" in logged
    orders = {order for order in trainer._logs["extra"]["temporal_permutation"] if order}
    permutations = [torch.tensor([int(u) for u in order.split()]) for order in orders]
    assert permutations and all(len(p) == 4 for p in permutations)  # 8 frames = 4 temporal patches
    clips = [POLICY.decode_clip(processor, path, num_frames=8) for path in dict.fromkeys(rows["video"])]
    encodings = POLICY.encode(trainer.model, clips)  # the ViT is frozen: the step's cached outputs
    for permutation in permutations:
        shuffled = [POLICY.permute_encoding(e, c, permutation) for e, c in zip(encodings, clips, strict=True)]
        assert any(torch.equal(x, s) for x in merger_inputs for s in shuffled if x.shape == s.shape), permutation


def test_eval_runs_the_four_benchmarks_with_qwens_chat_template(qwen_dir, tmp_path_factory, tmp_path):
    """`r1video eval` scores each benchmark with the Qwen model; its option and reason prompts are the benchmark's
    question through Qwen's chat template, the video before the text."""
    from r1video.eval import EvalConfig, build_prompt, get_benchmark, load_samples

    policy, _, processor = load_policy(qwen_dir)
    root = tmp_path_factory.mktemp("benchmarks")
    for name, make in MAKERS.items():
        data_dir, out = make(root / name), tmp_path / name
        argv = ["--benchmark", name, "--data-dir", data_dir, "--model", qwen_dir, "--output-dir", str(out),
                "--max-new-tokens", "3", "--frames", "4", "--batch-size", "2", "--no-progress"]  # fmt: skip
        if name == "mvbench":
            argv += ["--tasks", ",".join(MVBENCH_TASKS), "--prompt", "option"]
        assert eval_cli.main(argv) == 0, name
        records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
        # LongVideoBench reads its own frame count per clip (up to --frames): clips of different lengths per batch
        expected = (lambda n: 0 < n <= 4) if name == "longvideobench" else (lambda n: n == 4)
        assert records and all(expected(len(r["frame_indices"])) for r in records)
        results = json.loads((out / "results.json").read_text())
        assert results["counts"]["questions"] == len(records)
        sample = load_samples(EvalConfig(name, data_dir, "tiny", tasks=MVBENCH_TASKS if name == "mvbench" else None))[
            0
        ]
        for prompt_type, instruction in (("reason", "<think> </think>"), ("option", "option's letter")):
            text = build_prompt(sample, prompt_type, get_benchmark(name).layouts, policy, processor)
            assert text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" + QWEN_PROMPT)
            assert text.endswith("<|im_end|>\n<|im_start|>assistant\n") and instruction in text, text


def test_eval_clips_keep_their_timing(qwen_dir, tmp_path_factory, tmp_path):
    """The eval runner gives the model each clip with its real timing: 4 uniform frames of a 24-frame 8 fps clip are
    sampled at 4/24 * 8 fps, so a temporal patch spans 1.5 s (without the source fps they were taken as 2 fps: 1.0 s);
    in bf16 the seconds keep their fp32 value (the pixels alone take the model's dtype)."""
    from r1video.eval import EvalConfig, run_evaluation

    policy, model, processor = load_policy(qwen_dir)
    copy = MAKERS["videomme"](tmp_path_factory.mktemp("videomme"))
    seen = []
    hook = model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs.get("second_per_grid_ts")), with_kwargs=True
    )
    try:
        config = EvalConfig("videomme", copy, "tiny", output_dir=str(tmp_path / "out"), num_frames=4,
                            max_new_tokens=1, limit=1)  # fmt: skip
        run_evaluation(config, model.to(torch.bfloat16), processor, policy=policy, progress=False)
    finally:
        hook.remove()
        model.float()
    timings = [t for t in seen if t is not None]
    assert timings and all(t.dtype == torch.float32 for t in timings)
    assert torch.cat(timings).tolist() == pytest.approx([1.5] * sum(len(t) for t in timings))


def test_infer_and_data_validate_with_a_qwen_model(qwen_dir, synth, tmp_path, capsys):
    video = write_clip(str(tmp_path / "clip.mp4"))
    argv = ["--model", qwen_dir, "--video", video, "--question", "Which way does the square move?", "--options",
            "left", "right", "--frames", "4", "--max-new-tokens", "4", "--show-prompt"]  # fmt: skip
    assert infer_cli.main(argv) == 0
    out = capsys.readouterr()
    assert QWEN_PROMPT + "Which way does the square move?\nOptions:\nA. left\nB. right" in out.out
    assert "[4 frames of 24" in out.err
    assert data_cli.main(["validate", synth.grpo_train, "--video-root", synth.root, "--model", qwen_dir]) == 0


def _train(output_dir: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "r1video.grpo", "--config", GRPO_RECIPE, "--output_dir", output_dir,
        "--max_steps", "6", "--save_strategy", "steps", "--save_steps", "2", "--logging_steps", "1", *extra,
    ]  # fmt: skip


def _prepare(workdir: Path) -> None:
    for command in (
        [sys.executable, "-m", "r1video.policies.qwen2_5_vl_tiny", "--out", "runs/tiny-qwen"],
        [sys.executable, "-m", "r1video", "data", "synth", "--out", "runs/synth", "--n", "16", "--n-test", "4"],
    ):
        subprocess.run(command, cwd=workdir, env=SMOKE_ENV, check=True, capture_output=True, timeout=300)


@pytest.mark.slow  # ~80 s: three subprocess runs
def test_sigkill_inside_a_generation_cycle_then_resume_ends_with_the_same_weights(tmp_path):
    """Killed once checkpoint-3 is written, under num_iterations 2 (step 4 trains on rollouts buffered at step 3, with
    their Qwen clips and cached ViT outputs): the resumed run ends with the uninterrupted run's weights."""
    _prepare(tmp_path)
    extra = ["--save_steps", "1", "--num_iterations", "2"]
    subprocess.run(_train("runs/straight", *extra), cwd=tmp_path, env=SMOKE_ENV, check=True, capture_output=True,
                   timeout=600)  # fmt: skip
    victim = subprocess.Popen(_train("runs/killed", *extra), cwd=tmp_path, env=SMOKE_ENV, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    checkpoint = tmp_path / "runs/killed/checkpoint-3"
    deadline = time.time() + 300
    while incomplete_reason(checkpoint) is not None and victim.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    resumed = subprocess.run(
        _train("runs/killed", *extra, "--resume_from_checkpoint", "true", "--log_level", "info"),
        cwd=tmp_path, env=SMOKE_ENV, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert re.search(r"resuming from runs/killed/checkpoint-3\b", resumed.stderr), resumed.stderr[-2000:]
    buffer = load_rollout_buffer(str(checkpoint / "rollout_buffer.safetensors"))[2]
    assert buffer is not None and buffer[0]["video_clip"][0] is not None  # Qwen clips travel in the buffer
    straight, after_kill = weights(tmp_path / "runs/straight"), weights(tmp_path / "runs/killed")
    assert straight.keys() == after_kill.keys()
    for name, tensor in straight.items():
        assert torch.equal(tensor, after_kill[name]), name
    first = weights(tmp_path / "runs/straight/checkpoint-2")
    assert any(not torch.equal(first[k], straight[k]) for k in straight), "training did not change the weights"


@pytest.mark.slow  # ~60 s: two CPU processes
def test_two_process_accelerate_run(tmp_path):
    _prepare(tmp_path)
    launch = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(REPO / "recipes/accelerate_configs/cpu.yaml"),
        "-m", "r1video.grpo", "--config", GRPO_RECIPE, "--max_steps", "2", "--save_steps", "2",
    ]  # fmt: skip
    result = subprocess.run(launch, cwd=tmp_path, env=SMOKE_ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "runs/qwen-grpo-smoke"
    assert incomplete_reason(out / "checkpoint-2") is None  # rng_state_{0,1}.pth, rollout_buffer_{0,1} included
    before, after = weights(tmp_path / "runs/tiny-qwen"), weights(out)
    assert changed_parts(before, after) == {"language_model", "merger"}
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2


def test_bench_vision_reuse_for_qwen_counts_vision_frames_on_three_sides(tmp_path):
    """`r1video bench vision-reuse --policy qwen2_5_vl --quick`: reuse on encodes the step's clip once; reuse off and
    TRL's own GRPOTrainer (the frames as images) encode it in every row of every pass."""
    from r1video.bench.cli import main as bench_main

    path = tmp_path / "bench.json"
    assert bench_main(["vision-reuse", "--policy", "qwen2_5_vl", "--quick", "--json", str(path)]) == 0
    (result,) = json.loads(path.read_text())["results"]
    assert result["name"] == "vision-reuse (qwen2_5_vl)"
    frames, g = result["settings"]["frames"], result["settings"]["num_generations"]
    seen = result["metrics"]["encoder_frames"]
    assert seen["reuse"] == {"policy": frames, "reference": 0}
    assert seen["no_reuse"] == {"policy": 2 * g * frames, "reference": g * frames}
    # An image is one temporal patch (its frame repeated): the ViT does two frames' work per image.
    assert seen["trl"] == {"policy": 4 * g * frames, "reference": 2 * g * frames}
    assert result["metrics"]["flops"]["real"]["vision_to_llm"] == pytest.approx(0.66, abs=0.01)
    assert set(result["metrics"]["median_seconds"]) == {"reuse", "no_reuse", "trl"}
