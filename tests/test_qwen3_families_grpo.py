"""Qwen3-VL and Qwen3.5 through r1video's GRPO trainer (HF generation, TRL's buffering and shuffling): 2 real steps on
a tiny random model with the real processor and mp4 clips of different lengths; every policy and reference log-prob
pass equals, in the same batch layout, the pixel path with the clip each row's prompt names (<= 1e-6, fp32); the ViT
sees each distinct clip once per generation batch."""

import re

import pytest
import torch
from datasets import Dataset
from grpo_fixtures import tiny_grpo_config, varied_reward
from video_fixtures import write_clips_of_lengths

from r1video.policies import load_policy
from r1video.trainer import VideoGRPOTrainer

FPS = 5  # 4, 8, 12 and 6 frames -> 2, 4, 6 and 3 temporal patches


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


class Oracle:
    """Records the policy's and the reference's log-prob passes and, at that moment, the same batch through the pixel
    path with the clips the prompts name; counts the clips the ViTs see outside the oracle's own passes."""

    def __init__(self, trainer, policy, data):
        self.trainer, self.policy, self.processor = trainer, policy, trainer.processing_class
        self.clips = [policy.decode_clip(self.processor, row["video"], fps=FPS) for row in data]
        self.passes, self.encoded, self._busy = [], 0, False

    def __enter__(self):
        self.hooks = []
        for which, model in {"policy": self.trainer.model, "reference": self.trainer.ref_model}.items():
            self.hooks.append(model.register_forward_hook(self._record(which, model), with_kwargs=True))
            self.hooks.append(self.policy.vision_module(model).register_forward_hook(self._count, with_kwargs=True))
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
            decode = self.processor.tokenizer.decode
            numbers = [int(re.search(r"Clip (\d+)\.", decode(ids[r][mask[r].bool()]))[1]) for r in range(len(ids))]
            self._busy = True
            try:
                with torch.no_grad():
                    clips = [self.clips[n] for n in numbers]
                    inputs = self.policy.model_inputs(model, ids, clips, torch.arange(len(clips)), None, reuse=False)
                    own = model(input_ids=ids, attention_mask=mask, labels=kwargs["labels"], fused_lm_head=True,
                                **inputs).log_probs  # fmt: skip
            finally:
                self._busy = False
            scored = kwargs["labels"][:, -output.log_probs.size(1) :] != -100
            self.passes.append((which, output.log_probs.detach()[scored], own[scored]))

        return hook


@pytest.mark.parametrize("family", ["qwen3_vl", "qwen3_5"])
def test_two_grpo_steps_are_exact_and_encode_each_clip_once(family, data, tmp_path):
    """β > 0, num_iterations 2 (the old-policy pass runs), TRL's shuffle; the mergers and the LLM train."""
    from r1video.policies.registry import policy_for_model_type

    policy = policy_for_model_type(family)
    policy.build_tiny(tmp_path / "model")
    _, model, processor = load_policy(str(tmp_path / "model"))
    torch.manual_seed(0)
    trainer = VideoGRPOTrainer(
        model=model,
        reward_funcs=[varied_reward],
        args=tiny_grpo_config(tmp_path, beta=0.01, loss_type="grpo", num_frames=None, fps=FPS,
                              per_device_train_batch_size=4, steps_per_generation=2, num_iterations=2, max_steps=2),
        train_dataset=data,
        processing_class=processor,
    )  # fmt: skip
    assert policy.frozen_modules(trainer.model) == ["vision"]
    with Oracle(trainer, policy, data) as oracle:
        trainer.train()
    assert trainer.state.global_step == 2
    assert {which for which, *_ in oracle.passes} == {"policy", "reference"}
    worst = max((logps - own).abs().max().item() for _, logps, own in oracle.passes)
    assert worst <= 1e-6, worst
    # one generation batch of 8 rows (4 prompts x 2) for the 2 steps: its 4 distinct clips encoded once
    assert oracle.encoded == 4
    print(f"{family}: {len(oracle.passes)} passes, max |dlogp| {worst:.2e}, clips encoded {oracle.encoded}")
