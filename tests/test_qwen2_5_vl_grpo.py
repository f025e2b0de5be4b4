"""Qwen2.5-VL through r1video's GRPO trainer: vision once and exact under TRL's buffering, shuffling and reuse.

Clips of different lengths and sizes (fps sampling: 4, 6, 8 and 12 frames; every clip has its own `video_grid_thw` and
token count, so a row paired with another clip cannot even run), each row's prompt naming its clip ("Clip N."). Every policy and reference log-prob pass is recorded with a forward hook
and compared, in the same batch layout, with the pixel path given the clip each row's prompt names (the clips decoded
anew by the oracle): per-token log-probs equal to 1e-6 in fp32. The ViT's calls are counted with a hook.
"""

import re

import pytest
import torch
from datasets import Dataset
from grpo_fixtures import tiny_grpo_config, varied_reward
from video_fixtures import write_clips_of_lengths

from r1video.policies import load_policy
from r1video.policies.qwen2_5_vl import Qwen2_5_VLPolicy
from r1video.trainer import VideoGRPOTrainer

POLICY = Qwen2_5_VLPolicy()
FPS = 5  # 0.8 s, 1.6 s, 2.4 s clips -> 4, 8, 12 frames -> 2, 4, 6 temporal patches


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
    out = tmp_path_factory.mktemp("qwen")
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
    the pixel path with the clips the prompts name; counts the clips the ViTs see outside the oracle's own passes."""

    def __init__(self, trainer, data):
        self.trainer, self.processor = trainer, trainer.processing_class
        self.paths = [row["video"] for row in data]
        self.clips = [POLICY.decode_clip(self.processor, path, fps=FPS) for path in self.paths]
        self.passes = []  # (which model, the pass's log-probs, the pixel path's), at the scored tokens
        self.encoded = 0  # clips through a ViT in the trainer's own calls
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
            self.encoded += len(kwargs["grid_thw"])

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


def test_reuse_is_exact_under_num_iterations_steps_per_generation_and_shuffling(model_dir, data, tmp_path):
    """num_iterations 2, steps_per_generation 2, TRL's shuffle, β > 0, the merger training (lr 1e-3, so the policy's
    and the reference's mergers differ after the first update): every policy and reference pass equals the pixel path
    with each row's own clip (<= 1e-6, fp32), and the ViT sees each distinct clip once per generation batch."""
    torch.manual_seed(0)
    trainer = make_trainer(model_dir, data, tmp_path, steps_per_generation=2, num_iterations=2, max_steps=8)
    assert POLICY.frozen_modules(trainer.model) == ["vision"]  # the merger and the LLM train
    with Oracle(trainer, data) as oracle:
        trainer.train()
    assert trainer.state.global_step == 8
    assert oracle.check(min_passes=16) == 0.0  # exact, not just within 1e-6
    # one generation batch of 8 rows (4 prompts x 2) for the 4 steps: its 4 distinct clips encoded once
    assert oracle.encoded == 8
    merger = dict(trainer.model.model.visual.merger.named_parameters())
    ref_merger = dict(trainer.ref_model.model.visual.merger.named_parameters())
    assert any(not torch.equal(merger[name], ref_merger[name]) for name in merger)  # the merger trained
