"""LLaVA-OneVision through r1video's GRPO trainer: vision once and exact under TRL's buffering and shuffling.

Clips of different lengths (fps sampling: 4, 8, 12 and 6 frames, so every clip has its own token count and a row
paired with another clip cannot even run), each row's prompt naming its clip ("Clip N."). Every policy and reference
log-prob pass is recorded with a forward hook and compared, in the same batch layout, with the model's own vision path
on the clip each row's prompt names (decoded anew by the oracle): per-token log-probs equal to 1e-6 in fp32. The SigLIP
tower's calls are counted with a hook.
"""

import pytest
import torch
from family_grpo_fixtures import Oracle, clip_dataset, make_trainer

from r1video.policies.llava_onevision import LlavaOnevisionPolicy

POLICY = LlavaOnevisionPolicy()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return clip_dataset(tmp_path_factory.mktemp("clips"))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("ov")
    POLICY.build_tiny(out)
    return str(out)


def oracle_of(trainer, data):
    """The shared oracle, counting frames through a tower in the trainer's own calls."""
    return Oracle(trainer, POLICY, data, encoded_by=lambda args, kwargs: args[0].shape[0])


def test_grpo_steps_reuse_the_tower_output_exactly(model_dir, data, tmp_path):
    """2 GRPO steps on one generation batch (steps_per_generation 2, TRL's shuffle), β > 0, the connector training
    (lr 1e-3, so the policy's and the reference's projectors differ after the first update): every policy and
    reference pass equals the model's own vision path with each row's clip (<= 1e-6, fp32), and the tower runs once
    per generation batch, on each distinct clip's frames once."""
    torch.manual_seed(0)
    trainer = make_trainer(model_dir, data, tmp_path, steps_per_generation=2, max_steps=2)
    assert POLICY.frozen_modules(trainer.model) == ["vision"]  # the connector and the LLM train
    with oracle_of(trainer, data) as oracle:
        trainer.train()
    assert trainer.state.global_step == 2
    assert oracle.check(min_passes=4) == 0.0  # exact, not just within 1e-6
    # one generation batch of 8 rows (4 prompts x 2) for the 2 steps: its 4 distinct clips (4 + 8 + 12 + 6 frames)
    # through the tower in one call
    assert (oracle.calls, oracle.encoded) == (1, 4 + 8 + 12 + 6)
    projector = dict(trainer.model.model.multi_modal_projector.named_parameters())
    ref_projector = dict(trainer.ref_model.model.multi_modal_projector.named_parameters())
    assert any(not torch.equal(projector[name], ref_projector[name]) for name in projector)  # the connector trained
