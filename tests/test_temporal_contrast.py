"""Temporal contrast (T-GRPO): the rule, the seeded shuffles, and the shuffled rollouts on both engines."""

import math

import pytest
import torch
from grpo_fixtures import FRAMES, tiny_grpo_config
from test_vllm_rollouts import HFEngineTrainer

import r1video  # noqa: F401
from r1video.data.loaders import load_grpo_dataset
from r1video.data.synth import generate_synthetic_dataset
from r1video.model import build_tiny_model, load_pretrained
from r1video.model.templates import REASON_INSTRUCTION
from r1video.trainer import VideoGRPOTrainer
from r1video.trainer.grpo_config import VideoGRPOConfig
from r1video.trainer.grpo_trainer import _Scope
from r1video.trainer.temporal_contrast import (
    ShuffledGroup,
    answer_judge,
    frame_permutation,
    permute_frames,
    temporal_bonus,
)
from rewards import SafeReward, get_reward_funcs

NAN = float("nan")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    dataset = generate_synthetic_dataset(root, n=4, n_test=2, n_coldstart=2, size=32, beats=8, frames_per_beat=1)
    return load_grpo_dataset(dataset.grpo_train, dataset.root, question_template="{Question} " + REASON_INSTRUCTION)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    build_tiny_model(out)
    return str(out)


def config(tmp_path, **overrides) -> VideoGRPOConfig:
    return tiny_grpo_config(tmp_path, **{"beta": 0.01, "temporal_contrast": True, **overrides})


def make_trainer(model_dir, dataset, args, trainer_class=VideoGRPOTrainer, rewards=("tinyllava_r1",)):
    model, processor = load_pretrained(model_dir)
    return trainer_class(
        model=model,
        reward_funcs=[SafeReward(f) for f in get_reward_funcs(rewards)],
        args=args,
        train_dataset=dataset,
        processing_class=processor,
    )


# ---- the rule -----------------------------------------------------------------------------------------------------


def test_bonus_goes_to_correct_ordered_rollouts_of_groups_that_beat_mu_times_the_shuffled_accuracy():
    ordered = torch.tensor(
        [
            [1.0, 1.0, 0.0, 0.0],  # p = 0.5, p̃ = 0.5: 0.5 >= 0.4, bonus to the two correct ones
            [1.0, 0.0, 0.0, 0.0],  # p = 0.25, p̃ = 0.5: 0.25 < 0.4, no bonus
            [0.0, 0.0, 0.0, 0.0],  # p = 0 = p̃: granted, but nothing is correct
            [NAN, NAN, NAN, NAN],  # a text-only prompt: not contrasted
            [1.0, NAN, 1.0, 0.0],  # a rollout without a gold answer stays unjudged; p = 2/3 >= 0.8 · 0.5
        ]
    )
    result = temporal_bonus(
        ordered.flatten(),
        shuffled_correct=torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0]),
        shuffled_count=torch.tensor([2.0, 2.0, 2.0, 0.0, 2.0]),
        group_size=4,
        alpha=0.3,
        mu=0.8,
    )
    expected = [
        [0.3, 0.3, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],
        [NAN, NAN, NAN, NAN],
        [0.3, NAN, 0.3, 0.0],
    ]
    torch.testing.assert_close(result.bonus, torch.tensor(expected).flatten(), equal_nan=True)
    assert result.contrasted.tolist() == [True, True, True, False, True]
    assert result.granted.tolist() == [True, False, True, False, True]
    torch.testing.assert_close(result.shuffled_accuracy, torch.tensor([0.5, 0.5, 0.0, NAN, 0.5]), equal_nan=True)


def test_permutations_are_seeded_never_the_identity_and_differ_across_steps_and_groups():
    draw = dict(seed=3, step=7, process=1, group=2)
    first = frame_permutation(16, **draw)
    assert torch.equal(first, frame_permutation(16, **draw))  # a resumed run draws the same order
    assert sorted(first.tolist()) == list(range(16))
    others = [frame_permutation(16, **{**draw, key: draw[key] + 1}) for key in draw]
    assert all(not torch.equal(first, other) for other in others)
    assert all(frame_permutation(2, seed=0, step=step, process=0, group=0).tolist() == [1, 0] for step in range(20))
    with pytest.raises(ValueError, match="1 frame"):
        frame_permutation(1, seed=0, step=0, process=0, group=0)


def test_permuted_tower_features_equal_the_tower_on_permuted_frames(model_dir):
    model, _ = load_pretrained(model_dir)
    pixels = torch.randn(FRAMES, 3, 32, 32)
    permutation = frame_permutation(FRAMES, seed=0, step=0, process=0, group=0)
    with torch.no_grad():
        (features,) = model.model.get_video_tower_features([pixels])
        (expected,) = model.model.get_video_tower_features([pixels[permutation]])
    torch.testing.assert_close(permute_frames(features, permutation), expected)
    assert torch.equal(permute_frames(pixels, permutation), pixels[permutation])


def test_answer_judge_is_the_recipes_accuracy_rule():
    (accuracy,) = get_reward_funcs(["accuracy"], {"accuracy": {"rule": "original"}})
    (combined,) = get_reward_funcs(["tinyllava_r1"])
    assert answer_judge([SafeReward(accuracy)]) is accuracy
    assert answer_judge([SafeReward(combined), SafeReward(accuracy)]) is combined.accuracy  # the recipe's first
    assert answer_judge([combined, accuracy], "accuracy_reward") is accuracy
    (fmt,) = get_reward_funcs(["format"])
    with pytest.raises(ValueError, match="not among the reward functions"):
        answer_judge([fmt])
    with pytest.raises(ValueError, match="no answer rule"):
        answer_judge([fmt], "format_reward")


def test_config_defaults_are_the_papers(tmp_path):
    args = config(tmp_path, num_generations=8, per_device_train_batch_size=8)
    assert (args.temporal_contrast_alpha, args.temporal_contrast_mu) == (0.3, 0.8)
    assert args.temporal_contrast_generations == 4
    with pytest.raises(ValueError, match="at least one shuffled rollout"):
        config(tmp_path, temporal_contrast_generations=0)


def test_a_recipe_without_an_accuracy_reward_is_refused(model_dir, data, tmp_path):
    with pytest.raises(ValueError, match="temporal_contrast reads correctness"):
        make_trainer(model_dir, data, config(tmp_path), rewards=("format",))


# ---- the trainer --------------------------------------------------------------------------------------------------


def _record_inputs(module, calls):
    return module.register_forward_hook(lambda m, args, out: calls.append(args[0].detach().clone()))


def _check_connector_saw_shuffled_clips(trainer, tower_features, connector_calls):
    """Generation runs the connector on the ordered clips, then on the shuffled ones, in the logged frame orders."""
    orders = list(trainer._logs["extra"]["temporal_permutation"])
    assert len(orders) == 4 and orders[0] == orders[1] and orders[2] == orders[3] and orders[0] != orders[2]
    permutations = [torch.tensor([int(f) for f in orders[row].split()]) for row in (0, 2)]
    ordered = torch.stack(tower_features)
    shuffled = torch.stack([permute_frames(f, p) for f, p in zip(tower_features, permutations, strict=True)])
    assert torch.equal(connector_calls[0], ordered)
    assert torch.equal(connector_calls[1], shuffled)
    assert not torch.equal(shuffled, ordered)
    return permutations


def test_hf_generate_shuffled_rollouts_see_permuted_features_and_the_tower_no_extra_frame(model_dir, data, tmp_path):
    trainer = make_trainer(model_dir, data, config(tmp_path))
    tower_frames, tower_out, connector_calls, generate_rows = [], [], [], []
    backbone = trainer.model.model

    def record_tower(module, args, out):
        tower_frames.append(args[0].shape[0])
        tower_out.append(out.detach().clone())

    hooks = [
        backbone.vision_tower.register_forward_hook(record_tower),
        _record_inputs(backbone.connector, connector_calls),
        trainer.model.register_forward_hook(
            lambda m, args, kwargs, out: generate_rows.append(kwargs["input_ids"].shape[0]), with_kwargs=True
        ),
    ]
    try:
        trainer.train()
    finally:
        for hook in hooks:
            hook.remove()
    assert tower_frames == [2 * FRAMES]  # as without the option: 2 distinct clips, once
    tower_features = list(tower_out[0].unflatten(0, (2, FRAMES)).flatten(1, 2))
    _check_connector_saw_shuffled_clips(trainer, tower_features, connector_calls)
    assert len(connector_calls) == 3  # ordered generation, shuffled generation, the policy pass of the loss
    assert generate_rows[0] == 4 and 2 in generate_rows  # 2 prompts × 1 shuffled rollout (num_generations // 2)
    logged = trainer.state.log_history[0]
    for key in (
        "rewards/temporal/mean",
        "temporal/ordered_accuracy",
        "temporal/shuffled_accuracy",
        "temporal/bonus_group_fraction",
        "temporal/bonus_mean",
    ):
        assert key in logged and math.isfinite(logged[key]), key


def test_without_vision_reuse_the_shuffled_rollouts_get_permuted_pixels(model_dir, data, tmp_path):
    trainer = make_trainer(model_dir, data, config(tmp_path, reuse_vision=False))
    tower_inputs = []
    hook = _record_inputs(trainer.model.model.vision_tower, tower_inputs)
    try:
        trainer.train()
    finally:
        hook.remove()
    orders = list(trainer._logs["extra"]["temporal_permutation"])
    ordered, shuffled = tower_inputs[0], tower_inputs[1]  # generation: the 4 ordered rows, then the 2 shuffled ones
    assert ordered.shape[0] == 4 * FRAMES and shuffled.shape[0] == 2 * FRAMES
    for clip, row in enumerate((0, 2)):
        permutation = torch.tensor([int(f) for f in orders[row].split()])
        frames = ordered[row * FRAMES : (row + 1) * FRAMES]
        assert torch.equal(shuffled[clip * FRAMES : (clip + 1) * FRAMES], frames[permutation])


def test_vllm_prompt_embeddings_of_shuffled_rollouts_hold_the_permuted_video(model_dir, data, tmp_path):
    trainer = make_trainer(model_dir, data, config(tmp_path, use_vllm=True, beta=0.0), trainer_class=HFEngineTrainer)
    backbone = trainer.model.model
    tower_out = []
    hook = backbone.vision_tower.register_forward_hook(lambda m, args, out: tower_out.append(out.detach().clone()))
    try:
        trainer.train()
    finally:
        hook.remove()
    (ordered_prompts, _), (shuffled_prompts, _) = trainer.vllm_generation.llm.requests
    assert len(ordered_prompts) == 4 and len(shuffled_prompts) == 2
    tower_features = list(tower_out[0].unflatten(0, (2, FRAMES)).flatten(1, 2))
    orders = list(trainer._logs["extra"]["temporal_permutation"])
    placeholder = trainer.processing_class.video_token_id
    for clip, row in enumerate((0, 2)):
        permutation = torch.tensor([int(f) for f in orders[row].split()])
        ordered, shuffled = ordered_prompts[row]["prompt_embeds"], shuffled_prompts[clip]["prompt_embeds"]
        with torch.no_grad():
            video = backbone.get_video_features(video_tower_features=[tower_features[clip]])[0]
            permuted = backbone.get_video_features(
                video_tower_features=[permute_frames(tower_features[clip], permutation)]
            )[0]
        mask = _placeholder_rows(trainer, row, placeholder)
        torch.testing.assert_close(ordered[mask], video)
        torch.testing.assert_close(shuffled[mask], permuted)
        assert not torch.allclose(permuted, video)
        torch.testing.assert_close(ordered[~mask], shuffled[~mask])  # the same text around the video


def _placeholder_rows(trainer, row, placeholder) -> torch.Tensor:
    """`[prompt_len]` bool: the video placeholder positions of the step's row `row` (its prompt, as logged)."""
    text = trainer.processing_class.apply_chat_template(
        trainer._logs["prompt"][row],
        chat_template=trainer.chat_template,
        add_generation_prompt=True,
        tokenize=False,
        **trainer.chat_template_kwargs,
    )
    (ids,) = trainer.processing_class.tokenize_prompts([text])
    return torch.tensor(ids) == placeholder


def test_bonus_of_a_step_follows_the_rule_with_the_accuracy_rewards_answers(model_dir, data, tmp_path):
    trainer = make_trainer(model_dir, data, config(tmp_path))
    trainer.model.train()
    right, wrong = "<think>x</think><answer>A. yes</answer>", "<answer>B</answer>"
    scope = _Scope(
        {"video_index": torch.tensor([0, 0, 1, 1, -1, -1])},
        bad_rows=torch.zeros(6, dtype=torch.bool),
        shuffled=[
            ShuffledGroup(group=0, row=0, permutation=[1, 0, 3, 2], completions=["A"]),  # p̃ = 1 > p = 0.5 / 0.8
            ShuffledGroup(group=1, row=2, permutation=[3, 2, 1, 0], completions=[wrong]),  # p̃ = 0
        ],
    )
    trainer._scope = scope
    try:
        bonus = trainer._temporal_bonus([right, wrong, right, right, right, right], {"solution": ["A"] * 6})
    finally:
        trainer._scope = None
    assert bonus[4:] == [None, None]
    assert bonus[:4] == pytest.approx([0.0, 0.0, 0.3, 0.3])
    metrics = trainer._metrics["train"]
    assert metrics["temporal/ordered_accuracy"] == [0.75]
    assert metrics["temporal/shuffled_accuracy"] == [0.5]
    assert metrics["temporal/bonus_group_fraction"] == [0.5]
    assert metrics["temporal/bonus_mean"] == [pytest.approx(0.15)]


def test_text_rows_get_no_shuffled_rollouts_and_no_bonus(model_dir, data, tmp_path):
    from datasets import Dataset

    text_row = {
        "prompt": [{"role": "user", "content": [{"type": "text", "text": "Say A or B."}]}],
        "video": None,
        "solution": "A",
    }
    video_row = {key: data[0][key] for key in ("prompt", "video", "solution")}
    trainer = make_trainer(model_dir, Dataset.from_list([video_row, text_row] * 2), config(tmp_path))
    trainer.model.train()
    batch = trainer._generate_and_score_completions([video_row, video_row, text_row, text_row])
    orders = list(trainer._logs["extra"]["temporal_permutation"])
    assert orders[0] is not None and orders[2:] == [None, None]
    temporal = list(trainer._logs["rewards"]["temporal"])
    assert not math.isnan(temporal[0]) and all(math.isnan(v) for v in temporal[2:])
    assert batch["advantages"].shape[0] == 4  # the shuffled rollouts are not in the batch


@pytest.mark.slow
def test_two_processes_pool_a_group_that_spans_both(tmp_path):
    """2 processes × 2 rows with G = 4: every group spans both processes, each shuffles it; the run trains."""
    import subprocess
    import sys

    import yaml
    from smoke_runs import REPO, SMOKE_ENV, prepare_smoke_run

    prepare_smoke_run(tmp_path)
    launch = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(REPO / "recipes/accelerate_configs/cpu.yaml"),
        "-m", "r1video.grpo", "--config", str(REPO / "recipes/tiny/grpo_smoke.yaml"),
        "--max_steps", "2", "--save_steps", "2", "--per_device_train_batch_size", "2",
        "--temporal_contrast", "true", "--reward_funcs", "tinyllava_r1", "accuracy",
    ]  # fmt: skip
    result = subprocess.run(launch, cwd=tmp_path, env=SMOKE_ENV, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    state = yaml.safe_load((tmp_path / "runs/grpo-smoke/checkpoint-2/trainer_state.json").read_text())
    logged = [entry for entry in state["log_history"] if "temporal/bonus_group_fraction" in entry]
    assert len(logged) == 2
    for entry in logged:
        assert 0.0 <= entry["temporal/shuffled_accuracy"] <= 1.0
        assert entry["rewards/temporal/mean"] in (0.0, pytest.approx(0.3 * entry["temporal/ordered_accuracy"]))


_MIXED_RUN = """
import sys

from datasets import Dataset

import r1video  # noqa: F401
from r1video.data.loaders import load_grpo_dataset
from r1video.model import load_pretrained
from r1video.trainer import VideoGRPOConfig, VideoGRPOTrainer
from rewards import get_reward_funcs

joins = []


class Trainer(VideoGRPOTrainer):
    def _join_generation(self, prompts, batch):
        joins.append(self.state.global_step)
        super()._join_generation(prompts, batch)


videos = load_grpo_dataset("runs/synth/grpo_train.jsonl", "runs/synth", question_template="{Question}").to_list()[:4]
text = {**videos[0], "video": None, "prompt": [{"role": "user", "content": [{"type": "text", "text": "Say A."}]}]}
model, processor = load_pretrained("runs/tiny-model")
args = VideoGRPOConfig(
    output_dir="runs/mixed", use_cpu=True, bf16=False, per_device_train_batch_size=2, num_generations=2,
    max_completion_length=4, max_steps=4, logging_steps=1, save_strategy="no", report_to="none", num_frames=4,
    beta=0.0, seed=int(sys.argv[1]), temporal_contrast=True,
)
trainer = Trainer(
    model=model, reward_funcs=get_reward_funcs(["accuracy"]), args=args,
    train_dataset=Dataset.from_list(videos + [text] * 4), processing_class=processor,
)
trainer.train()
print(f"rank {trainer.accelerator.process_index} joined {len(joins)}")
"""


@pytest.mark.slow
def test_a_process_without_video_rows_joins_the_others_generation(tmp_path):
    """2 processes, one prompt each, half the prompts text-only: on a step where only one process holds a video, the
    other takes part in generation with a throwaway rollout (as ZeRO-3/FSDP need), and training goes on."""
    import re
    import subprocess
    import sys

    from smoke_runs import REPO, SMOKE_ENV, prepare_smoke_run

    prepare_smoke_run(tmp_path)
    (tmp_path / "mixed.py").write_text(_MIXED_RUN)
    launch = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(REPO / "recipes/accelerate_configs/cpu.yaml"), "mixed.py", "0",
    ]  # fmt: skip
    result = subprocess.run(launch, cwd=tmp_path, env=SMOKE_ENV, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    joins = [int(n) for n in re.findall(r"rank \d joined (\d+)", result.stdout)]
    assert len(joins) == 2 and sum(joins) >= 1, result.stdout[-2000:]


def test_ordered_rollouts_and_their_other_rewards_are_those_of_a_run_without_the_option(model_dir, data, tmp_path):
    rows = [data[0], data[0], data[1], data[1]]
    recipe_rewards = ("tinyllava_r1", "grpo_fixtures:varied_reward")  # the second varies with each completion
    batches, logged = {}, {}
    for contrast in (False, True):
        trainer = make_trainer(
            model_dir, data, config(tmp_path / str(contrast), temporal_contrast=contrast), rewards=recipe_rewards
        )
        trainer.model.train()
        torch.manual_seed(0)
        batches[contrast] = trainer._generate_and_score_completions([dict(row) for row in rows])
        logged[contrast] = {name: list(values) for name, values in trainer._logs["rewards"].items()}
        completions = list(trainer._logs["completion"])
    assert torch.equal(batches[True]["completion_ids"], batches[False]["completion_ids"])
    assert batches[True]["video_index"].tolist() == batches[False]["video_index"].tolist()
    # Each recipe reward of each ordered rollout is what that reward gives its completion, with the option or without.
    solution = [row["solution"] for row in rows]
    for func in get_reward_funcs(recipe_rewards):
        expected = SafeReward(func)(completions=completions, solution=solution)
        assert logged[True][func.__name__] == logged[False][func.__name__] == expected, func.__name__
    assert len(set(logged[True]["varied_reward"])) > 1
    assert set(logged[True]) == {"tinyllava_r1_reward", "varied_reward", "temporal"}
