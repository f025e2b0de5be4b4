"""Qwen2.5-VL through r1video's GRPO trainer: vision once and exact under TRL's buffering, shuffling and reuse.

Clips of different lengths and sizes (fps sampling: 4, 6, 8 and 12 frames; every clip has its own `video_grid_thw` and
token count, so a row paired with another clip cannot even run), each row's prompt naming its clip ("Clip N."). Every policy and reference log-prob pass is recorded with a forward hook
and compared, in the same batch layout, with the pixel path given the clip each row's prompt names (the clips decoded
anew by the oracle): per-token log-probs equal to 1e-6 in fp32. The ViT's calls are counted with a hook.
"""

import pytest
import torch
from family_grpo_fixtures import Oracle, clip_dataset, make_trainer

from r1video.policies.qwen2_5_vl import Qwen2_5_VLPolicy

POLICY = Qwen2_5_VLPolicy()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return clip_dataset(tmp_path_factory.mktemp("clips"))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("qwen")
    POLICY.build_tiny(out)
    return str(out)


def oracle_of(trainer, data):
    """The shared oracle, counting clips through a ViT in the trainer's own calls."""
    return Oracle(trainer, POLICY, data, encoded_by=lambda args, kwargs: len(kwargs["grid_thw"]))


def test_reuse_is_exact_under_num_iterations_steps_per_generation_and_shuffling(model_dir, data, tmp_path):
    """num_iterations 2, steps_per_generation 2, TRL's shuffle, β > 0, the merger training (lr 1e-3, so the policy's
    and the reference's mergers differ after the first update): every policy and reference pass equals the pixel path
    with each row's own clip (<= 1e-6, fp32), and the ViT sees each distinct clip once per generation batch."""
    torch.manual_seed(0)
    trainer = make_trainer(model_dir, data, tmp_path, steps_per_generation=2, num_iterations=2, max_steps=8)
    assert POLICY.frozen_modules(trainer.model) == ["vision"]  # the merger and the LLM train
    with oracle_of(trainer, data) as oracle:
        trainer.train()
    assert trainer.state.global_step == 8
    assert oracle.check(min_passes=16) == 0.0  # exact, not just within 1e-6
    # one generation batch of 8 rows (4 prompts x 2) for the 4 steps: its 4 distinct clips encoded once
    assert oracle.encoded == 8
    merger = dict(trainer.model.model.visual.merger.named_parameters())
    ref_merger = dict(trainer.ref_model.model.visual.merger.named_parameters())
    assert any(not torch.equal(merger[name], ref_merger[name]) for name in merger)  # the merger trained
