"""What the family GRPO tests share (tests/test_*_grpo.py of Qwen2.5-VL, Qwen3-VL/3.5, LLaVA-OneVision, SmolVLM):
mp4 clips of different lengths with prompts naming their clip, the trainer on a tiny model, and the oracle that
checks every policy and reference log-prob pass against the pixel path with the clip each row's prompt names."""

import re

import torch
from datasets import Dataset
from grpo_fixtures import tiny_grpo_config, varied_reward
from video_fixtures import write_clips_of_lengths

from r1video.policies import load_policy
from r1video.trainer import VideoGRPOTrainer

FPS = 5  # 0.8 s, 1.6 s, 2.4 s, 1.2 s clips -> 4, 8, 12, 6 frames
CLIP_SPECS = ((20, 32, 32), (40, 48, 32), (60, 32, 48), (30, 32, 32))  # (frames at 25 fps, height, width)


def clip_dataset(root) -> Dataset:
    """4 rows, one clip each (written under `root`), each prompt naming its clip ("Clip N. What moves?")."""
    paths = write_clips_of_lengths(root, specs=CLIP_SPECS)
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


def make_trainer(model_dir, data, tmp_path, **overrides) -> VideoGRPOTrainer:
    """A `VideoGRPOTrainer` on the model saved in `model_dir`: β 0.01, loss `grpo`, clips sampled at `FPS`, 4 rows
    per device; `overrides` are `VideoGRPOConfig` fields."""
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
    the pixel path with the clips the prompts name; counts the calls of `policy.vision_module` outside the oracle's
    own passes (`calls`) and what they encode (`encoded`, as `encoded_by(args, kwargs)` of a call counts it).

    Use as a context manager around `trainer.train()`.
    """

    def __init__(self, trainer, policy, data, encoded_by):
        self.trainer, self.policy, self.processor = trainer, policy, trainer.processing_class
        self.encoded_by = encoded_by
        self.clips = [policy.decode_clip(self.processor, row["video"], fps=FPS) for row in data]
        self.passes = []  # (which model, the pass's log-probs, the pixel path's), at the scored tokens
        self.encoded = 0  # what the vision module encoded in the trainer's own calls
        self.calls = 0
        self._busy = False

    def __enter__(self):
        models = {"policy": self.trainer.model, "reference": self.trainer.ref_model}
        self.hooks = []
        for which, model in models.items():
            self.hooks.append(model.register_forward_hook(self._record(which, model), with_kwargs=True))
            self.hooks.append(self.policy.vision_module(model).register_forward_hook(self._count, with_kwargs=True))
        return self

    def __exit__(self, *exc):
        for hook in self.hooks:
            hook.remove()

    def _count(self, module, args, kwargs, output):
        if not self._busy:
            self.encoded += self.encoded_by(args, kwargs)
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
            inputs = self.policy.model_inputs(model, ids, clips, torch.arange(len(clips)), None, reuse=False)
            out = model(input_ids=ids, attention_mask=kwargs["attention_mask"], labels=kwargs["labels"],
                        fused_lm_head=True, **inputs)  # fmt: skip
            return out.log_probs
        finally:
            self._busy = False

    def check(self, min_passes):
        """The largest |log-prob difference| over the recorded passes; asserts at least `min_passes` passes, of
        both models, all within 1e-6."""
        assert len(self.passes) >= min_passes
        assert {which for which, *_ in self.passes} == {"policy", "reference"}
        worst = max((logps - own).abs().max().item() for _, logps, own in self.passes)
        assert worst <= 1e-6, worst
        return worst
