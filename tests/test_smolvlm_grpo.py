"""SmolVLM2 through r1video's GRPO trainer: vision once and exact under TRL's buffering and shuffling.

Clips of different lengths (fps sampling: 4, 8, 12 and 6 frames, so every clip has its own token count and a row
paired with another clip cannot even run), each row's prompt naming its clip ("Clip N."). Every policy and reference
log-prob pass is recorded with a forward hook and compared, in the same batch layout, with the model's own vision path
on the clip each row's prompt names (decoded anew by the oracle): per-token log-probs equal to 1e-6 in fp32. The vision
encoder's calls are counted with a hook.
"""

import re

import pytest
import torch
from datasets import Dataset
from grpo_fixtures import tiny_grpo_config, varied_reward
from video_fixtures import write_clips_of_lengths

from r1video.policies import load_policy
from r1video.policies.smolvlm import SmolVLMPolicy
from r1video.trainer import VideoGRPOTrainer

POLICY = SmolVLMPolicy()
FPS = 5  # 0.8 s, 1.6 s, 2.4 s, 1.2 s clips -> 4, 8, 12, 6 frames


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    paths = write_clips_of_lengths(root, specs=((20, 32, 32), (40, 48, 32), (60, 32, 48), (30, 32, 32)))
    rows = [
        {
            "prompt": [
                {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": f"Clip {i}. What moves?"}]}
            ],
            "video": path,
            "solution": "<answer>A</answer>",
        }
        for i, path in enumerate(paths)
    ]
    return Dataset.from_list(rows)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("smol")
    POLICY.build_tiny(out)
    return str(out)


def make_trainer(model_dir, data, tmp_path, **overrides):
    _, model, processor = load_policy(model_dir)
    settings = dict(beta=0.01, loss_type="grpo", num_frames=None, fps=FPS, per_device_train_batch_size=4)
    settings.update(overrides)
    return VideoGRPOTrainer(
        model=model,
        reward_funcs=[varied_reward],
        args=tiny_grpo_config(tmp_path, **settings),
        train_dataset=data,
        processing_class=processor,
    )


def clip_number(text: str) -> int:
    return int(re.search(r"Clip (\d+)\.", text)[1])


class Oracle:
    """Records the log-prob passes of the policy and the reference model and, at that moment, the same batch through
    the model's own pixel input with the clips the prompts name; counts the frames the encoders see outside the
    oracle's own passes."""

    def __init__(self, trainer, data):
        self.trainer, self.processor = trainer, trainer.processing_class
        self.paths = [row["video"] for row in data]
        self.clips = [POLICY.decode_clip(self.processor, path, fps=FPS) for path in self.paths]
        self.passes = []  # (which model, the pass's log-probs, the pixel path's), at the scored tokens
        self.encoded = 0  # frames through an encoder in the trainer's own calls
        self.calls = 0
        self._busy = False

    def __enter__(self):
        models = {"policy": self.trainer.model, "reference": self.trainer.ref_model}
        self.hooks = []
        for which, model in models.items():
            self.hooks.append(model.register_forward_hook(self._record(which, model), with_kwargs=True))
            self.hooks.append(POLICY.vision_module(model).register_forward_hook(self._count, with_kwargs=True))
        return self

    def __exit__(self, *exc):
        for hook in self.hooks:
            hook.remove()

    def _count(self, module, args, kwargs, output):
        if not self._busy:
            self.encoded += kwargs["pixel_values"].shape[0]
            self.calls += 1

    def _record(self, which, model):
        def hook(module, args, kwargs, output):
            if self._busy or kwargs.get("labels") is None:  # generation, or the oracle's own pass
                return
            ids, mask = kwargs["input_ids"], kwargs["attention_mask"]
            tokenizer = self.processor.tokenizer
            numbers = [clip_number(tokenizer.decode(ids[row][mask[row].bool()])) for row in range(ids.size(0))]
            own = self.pixel_path(model, kwargs, numbers)
            scored = kwargs["labels"][:, -output.log_probs.size(1) :] != -100
            self.passes.append((which, output.log_probs.detach()[scored], own[scored]))

        return hook

    @torch.no_grad()
    def pixel_path(self, model, kwargs, numbers):
        """The pass's batch (same ids, mask, labels) with each row's clip given by pixels."""
        self._busy = True
        try:
            ids = kwargs["input_ids"]
            clips = [self.clips[n] for n in numbers]
            inputs = POLICY.model_inputs(model, ids, clips, torch.arange(len(clips)), None, reuse=False)
            out = model(input_ids=ids, attention_mask=kwargs["attention_mask"], labels=kwargs["labels"],
                        fused_lm_head=True, **inputs)  # fmt: skip
            return out.log_probs
        finally:
            self._busy = False

    def check(self, min_passes):
        assert len(self.passes) >= min_passes
        assert {which for which, *_ in self.passes} == {"policy", "reference"}
        worst = max((logps - own).abs().max().item() for _, logps, own in self.passes)
        assert worst <= 1e-6, worst
        return worst


def test_grpo_steps_reuse_the_encoder_output_exactly(model_dir, data, tmp_path):
    """2 GRPO steps on one generation batch (steps_per_generation 2, TRL's shuffle), β > 0, the connector training
    (lr 1e-3, so the policy's and the reference's connectors differ after the first update): every policy and
    reference pass equals the model's own pixel input with each row's clip (<= 1e-6, fp32), and the encoder runs
    once per generation batch, on each distinct clip's frames once."""
    torch.manual_seed(0)
    trainer = make_trainer(model_dir, data, tmp_path, steps_per_generation=2, max_steps=2)
    assert POLICY.frozen_modules(trainer.model) == ["vision"]  # the connector and the LLM train
    with Oracle(trainer, data) as oracle:
        trainer.train()
    assert trainer.state.global_step == 2
    assert oracle.check(min_passes=4) == 0.0  # exact, not just within 1e-6
    # one generation batch of 8 rows (4 prompts x 2) for the 2 steps: its 4 distinct clips (4 + 8 + 12 + 6 frames)
    # through the encoder in one call
    assert (oracle.calls, oracle.encoded) == (1, 4 + 8 + 12 + 6)
    projector = dict(trainer.model.model.connector.named_parameters())
    ref_projector = dict(trainer.ref_model.model.connector.named_parameters())
    assert any(not torch.equal(projector[name], ref_projector[name]) for name in projector)  # the connector trained
