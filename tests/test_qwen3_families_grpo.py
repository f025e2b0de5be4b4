"""Qwen3-VL and Qwen3.5 through r1video's GRPO trainer (HF generation, TRL's buffering and shuffling): 2 real steps on
a tiny random model with the real processor and mp4 clips of different lengths; every policy and reference log-prob
pass equals, in the same batch layout, the pixel path with the clip each row's prompt names (<= 1e-6, fp32); the ViT
sees each distinct clip once per generation batch."""

import pytest
import torch
from family_grpo_fixtures import Oracle, clip_dataset, make_trainer


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return clip_dataset(tmp_path_factory.mktemp("clips"))


@pytest.mark.parametrize("family", ["qwen3_vl", "qwen3_5"])
def test_two_grpo_steps_are_exact_and_encode_each_clip_once(family, data, tmp_path):
    """β > 0, num_iterations 2 (the old-policy pass runs), TRL's shuffle; the mergers and the LLM train."""
    from r1video.policies.registry import policy_for_model_type

    policy = policy_for_model_type(family)
    policy.build_tiny(tmp_path / "model")
    torch.manual_seed(0)
    trainer = make_trainer(str(tmp_path / "model"), data, tmp_path, steps_per_generation=2, num_iterations=2,
                           max_steps=2)  # fmt: skip
    assert policy.frozen_modules(trainer.model) == ["vision"]
    with Oracle(trainer, policy, data, encoded_by=lambda args, kwargs: len(kwargs["grid_thw"])) as oracle:
        trainer.train()
    assert trainer.state.global_step == 2
    assert {which for which, *_ in oracle.passes} == {"policy", "reference"}
    worst = max((logps - own).abs().max().item() for _, logps, own in oracle.passes)
    assert worst <= 1e-6, worst
    # one generation batch of 8 rows (4 prompts x 2) for the 2 steps: its 4 distinct clips encoded once
    assert oracle.encoded == 4
    print(f"{family}: {len(oracle.passes)} passes, max |dlogp| {worst:.2e}, clips encoded {oracle.encoded}")
