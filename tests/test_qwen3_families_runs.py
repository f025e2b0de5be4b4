"""Qwen3-VL and Qwen3.5 through the entry points: the real-size recipes parsed and built at tiny size, the cold start
then GRPO through `r1video sft` / `r1video grpo`, a resume that loads every weight, and temporal contrast, on tiny
random models with the real `Qwen3VLProcessor` and real mp4 clips."""

import json
from pathlib import Path

import pytest
import torch
from family_fixtures import check_paper_recipe
from safetensors.torch import load_file
from video_fixtures import moving_square_frames

from r1video import grpo, sft
from r1video.data.synth import generate_synthetic_dataset
from r1video.policies import load_policy
from r1video.policies.registry import policy_for_model_type

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"
FAMILIES = {"qwen3_vl": "Qwen3-VL-2B", "qwen3_5": "Qwen3.5-2B"}


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    return generate_synthetic_dataset(root, n=8, n_test=2, n_coldstart=4, size=32, beats=8, frames_per_beat=1)


@pytest.fixture(scope="module", params=list(FAMILIES))
def family_dir(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param)
    policy_for_model_type(request.param).build_tiny(out)
    return request.param, str(out)


@pytest.mark.parametrize("stage", ["coldstart_sft", "grpo_nextqa"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_recipes_keep_the_paper_settings_and_build_at_tiny_size(family, stage, tmp_path):
    policy = policy_for_model_type(family)
    _, _, args, model_args = check_paper_recipe(FAMILIES[family], stage)
    if stage == "coldstart_sft":  # the cold start's policy is the Hub checkpoint of the family
        assert model_args.model_name_or_path == {"qwen3_vl": "Qwen/Qwen3-VL-2B-Instruct",
                                                  "qwen3_5": "Qwen/Qwen3.5-2B"}[family]  # fmt: skip
    # the model at tiny size, frozen as the recipe says: the ViT frozen, the mergers and the LLM trained
    model, processor = policy.build_tiny(tmp_path / "tiny")
    policy.freeze(model, vision=args.freeze_vision_tower)
    assert policy.frozen_modules(model) == ["vision"]
    clip = policy.clip_from_frames(processor, moving_square_frames(args.num_frames, 32, 48), fps=25)
    assert policy.temporal_units(clip) == args.num_frames // 2 == len(clip.inputs["video_timestamps"])
    (encoding,) = policy.encode(model, [clip])
    assert encoding["hidden"].shape[0] == int(clip.inputs["video_grid_thw"].prod())  # pre-merger: the merger trains


def weights(path) -> dict[str, torch.Tensor]:
    return load_file(Path(path) / "model.safetensors")


def changed_parts(before: dict, after: dict) -> set[str]:
    parts = {"model.visual.merger": "merger", "model.visual.deepstack": "merger", "model.visual.": "vision"}
    changed = {name for name in after if not torch.equal(before[name], after[name])}
    return {next((part for prefix, part in parts.items() if n.startswith(prefix)), "language_model") for n in changed}


def test_coldstart_then_grpo_through_the_recipes_and_resume(family_dir, synth, tmp_path):
    """The cold start trains the LLM and the mergers (ViT frozen) and is GRPO's policy and reference as it is; GRPO
    (HF generate) trains the same parts; a checkpoint loads back through the trainer's resume path into the initial
    model, every weight equal to the saved one (the family saves under its module names: no mapping needed)."""
    family, model_dir = family_dir
    data = ["--video_root", synth.root]
    coldstart = str(tmp_path / "coldstart")
    assert sft.main(["--config", str(RECIPES / "tiny/qwen_coldstart_smoke.yaml"), "--model_name_or_path", model_dir,
                     "--train_file", synth.coldstart, *data, "--output_dir", coldstart]) == 0  # fmt: skip
    assert changed_parts(weights(model_dir), weights(coldstart)) == {"language_model", "merger"}
    out = str(tmp_path / "grpo")
    assert grpo.main(["--config", str(RECIPES / "tiny/qwen_grpo_smoke.yaml"), "--model_name_or_path", coldstart,
                      "--train_file", synth.grpo_train, *data, "--output_dir", out, "--max_steps", "2",
                      "--save_steps", "2"]) == 0  # fmt: skip
    assert changed_parts(weights(coldstart), weights(out)) == {"language_model", "merger"}
    policy, model, processor = load_policy(out)
    assert policy.name == family
    history = json.loads((Path(out) / "trainer_state.json").read_text())["log_history"]
    assert any("rewards/tinyllava_r1_reward/mean" in entry for entry in history)
    # resume: the trainer's own load path (r1video's ResumeMixin -> the policy -> transformers) on the initial model
    from grpo_fixtures import tiny_grpo_config, varied_reward

    from r1video.trainer import VideoGRPOTrainer

    checkpoint = Path(out) / "checkpoint-2"
    _, initial, processor = load_policy(coldstart)
    from r1video.data.loaders import load_grpo_dataset

    rows = load_grpo_dataset(synth.grpo_train, synth.root)
    trainer = VideoGRPOTrainer(initial, [varied_reward], tiny_grpo_config(tmp_path / "resume"),
                               processing_class=processor, train_dataset=rows)  # fmt: skip
    trainer._load_from_checkpoint(str(checkpoint))
    saved = weights(checkpoint)
    state = trainer.model.state_dict()
    assert set(saved) <= set(state)
    assert all(torch.equal(state[name], tensor) for name, tensor in saved.items())


def test_temporal_contrast_keeps_the_timeline_and_encodes_once(family_dir, synth, tmp_path):
    """The shuffled rollouts see their clip's cached ViT output with its temporal patches permuted (the ViT runs once
    per distinct clip) under the original timestamps: every prompt the step tokenizes, shuffled or not, is one of the
    unshuffled prompts."""
    from grpo_fixtures import tiny_grpo_config

    from r1video.data.loaders import load_grpo_dataset
    from r1video.model.templates import QUESTION_TEMPLATES
    from r1video.trainer import VideoGRPOTrainer
    from rewards import SafeReward, get_reward_funcs

    family, model_dir = family_dir
    policy, model, processor = load_policy(model_dir)
    rows = load_grpo_dataset(synth.grpo_train, synth.root, question_template=QUESTION_TEMPLATES["r1"])
    args = tiny_grpo_config(tmp_path, beta=0.01, temporal_contrast=True, num_frames=8)
    trainer = VideoGRPOTrainer(model, [SafeReward(f) for f in get_reward_funcs(["tinyllava_r1"])], args,
                               processing_class=processor, train_dataset=rows)  # fmt: skip
    vit_clips, prompts = [], []
    original = policy.tokenize_prompts

    class Recording(type(policy)):
        def tokenize_prompts(self, processor, texts, clips):
            ids = original(processor, texts, clips)
            prompts.append([(tuple(row), clip) for row, clip in zip(ids, clips, strict=True)])
            return ids

    trainer.policy = Recording()
    hook = policy.vision_module(trainer.model).register_forward_hook(
        lambda m, a, kw, o: vit_clips.append(len(kw["grid_thw"])), with_kwargs=True
    )
    try:
        trainer.train()
    finally:
        hook.remove()
    assert vit_clips == [2]  # 2 distinct clips (4 rows, groups of 2), encoded once, shuffled rollouts included
    logged = trainer.state.log_history[0]
    assert "rewards/temporal/mean" in logged and "temporal/shuffled_accuracy" in logged
    assert len(prompts) == 2  # the rollouts' prompts, then the shuffled ones
    plain, shuffled = ({ids for ids, _ in call} for call in prompts)
    assert shuffled == plain  # the same text: the timestamps stay in place
    shuffled_clips = [clip for _, clip in prompts[1]]
    assert all(clip.frame_indices != sorted(clip.frame_indices) for clip in shuffled_clips if clip is not None)


def test_eval_infer_and_data_validate(family_dir, synth, tmp_path_factory, tmp_path, capsys):
    """`r1video eval` on the four benchmarks, `infer` and `data validate --model` with the family's tiny model: the
    prompts are the family's chat template with the video before the text (Qwen3.5: ending in its empty think block)."""
    from eval_fixtures import MAKERS, MVBENCH_TASKS, write_clip

    from r1video.data import cli as data_cli
    from r1video.eval import cli as eval_cli
    from r1video.eval import infer as infer_cli

    family, model_dir = family_dir
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
        expected = (lambda n: 0 < n <= 4) if name == "longvideobench" else (lambda n: n == 4)
        assert records and all(expected(len(r["frame_indices"])) for r in records)
    video = write_clip(str(tmp_path / "clip.mp4"))
    argv = ["--model", model_dir, "--video", video, "--question", "Which way does the square move?", "--options",
            "left", "right", "--frames", "4", "--max-new-tokens", "4", "--show-prompt"]  # fmt: skip
    capsys.readouterr()
    assert infer_cli.main(argv) == 0
    shown = capsys.readouterr().out
    assert "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>Which way does the square move?" in shown
    generation_prompt = "<|im_start|>assistant\n" + ("<think>\n\n</think>\n\n" if family == "qwen3_5" else "")
    assert generation_prompt in shown
    assert data_cli.main(["validate", synth.grpo_train, "--video-root", synth.root, "--model", model_dir]) == 0


@pytest.mark.slow  # ~110 s a family on 2 shared cores: three subprocess runs
@pytest.mark.parametrize("family", list(FAMILIES))
def test_sigkill_inside_a_generation_cycle_then_resume_ends_with_the_same_weights(family, tmp_path):
    """Killed once checkpoint-3 is written, under num_iterations 2 (step 4 trains on rollouts buffered at step 3, with
    their clips, timestamps and cached ViT outputs): the resumed run ends with the uninterrupted run's weights."""
    import signal
    import subprocess
    import sys
    import time

    from smoke_runs import SMOKE_ENV

    from r1video.trainer.checkpoints import incomplete_reason

    for command in (
        [sys.executable, "-m", "r1video.policies.qwen3_vl_tiny", "--family", family, "--out", "runs/tiny"],
        [sys.executable, "-m", "r1video", "data", "synth", "--out", "runs/synth", "--n", "16", "--n-test", "4"],
    ):
        subprocess.run(command, cwd=tmp_path, env=SMOKE_ENV, check=True, capture_output=True, timeout=300)

    def train(output_dir, *extra):
        return [sys.executable, "-m", "r1video.grpo", "--config", str(RECIPES / "tiny/qwen_grpo_smoke.yaml"),
                "--model_name_or_path", "runs/tiny", "--output_dir", output_dir, "--max_steps", "6",
                "--save_strategy", "steps", "--save_steps", "1", "--num_iterations", "2", "--logging_steps", "1",
                *extra]  # fmt: skip

    run = dict(cwd=tmp_path, env=SMOKE_ENV, timeout=600)
    subprocess.run(train("runs/straight"), check=True, capture_output=True, **run)
    victim = subprocess.Popen(train("runs/killed"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              cwd=tmp_path, env=SMOKE_ENV)  # fmt: skip
    checkpoint = tmp_path / "runs/killed/checkpoint-3"
    deadline = time.time() + 300
    while incomplete_reason(checkpoint) is not None and victim.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    resumed = subprocess.run(train("runs/killed", "--resume_from_checkpoint", "true"), capture_output=True,
                             text=True, **run)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    straight, after_kill = weights(tmp_path / "runs/straight"), weights(tmp_path / "runs/killed")
    assert straight.keys() == after_kill.keys()
    for name, tensor in straight.items():
        assert torch.equal(tensor, after_kill[name]), name
    first = weights(tmp_path / "runs/straight/checkpoint-2")
    assert any(not torch.equal(first[k], straight[k]) for k in straight), "training did not change the weights"
