"""The GRPO step's video state travels with its rows: every TRL option that buffers, shuffles, slices or reuses the
batch, an evaluation in between, and a subclass that replaces `_compute_loss` all score each row with its own clip.

Each row's prompt names its clip ("Clip N."), so a test can tell from the token ids alone which clip a scored row must
see; every policy pass is recorded through a forward hook and compared with that row run alone with its clip.
"""

import re

import pytest
import torch
from grpo_fixtures import FRAMES, tiny_grpo_config, varied_reward
from trl.experimental.gmpo import GMPOTrainer

import r1video.model  # noqa: F401  (registers TinyLLaVA-Video with the Auto classes)
from r1video.data.loaders import load_grpo_dataset
from r1video.data.synth import generate_synthetic_dataset
from r1video.data.video import load_video_frames
from r1video.model import build_tiny_model, load_pretrained
from r1video.model.templates import QUESTION_TEMPLATES
from r1video.trainer import VideoGRPOTrainer
from rewards import get_reward_funcs


def tag_clip(row, i):
    """Prefix the question with the clip's number, so the prompt tokens tell which clip a row belongs to."""
    prompt = [dict(turn) for turn in row["prompt"]]
    prompt[0]["content"] = [
        {**part, "text": f"Clip {i}. {part['text']}"} if part.get("type") == "text" else part
        for part in prompt[0]["content"]
    ]
    return {"prompt": prompt}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    dataset = generate_synthetic_dataset(root, n=8, n_test=2, n_coldstart=2, size=32, beats=8, frames_per_beat=1)
    rows = load_grpo_dataset(dataset.grpo_train, dataset.root, question_template=QUESTION_TEMPLATES["r1"])
    return rows.map(tag_clip, with_indices=True)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny model whose connector attends sharply, so that a row's log-probs depend clearly on its clip."""
    out = tmp_path_factory.mktemp("model")
    build_tiny_model(out)
    model, processor = load_pretrained(out)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".connector." in name and name.endswith(("to_q.weight", "to_kv.weight")):
                param.mul_(30)
    model.save_pretrained(out)
    return str(out)


def make_trainer(model_dir, data, tmp_path, trainer_class=VideoGRPOTrainer, eval_dataset=None, **overrides):
    model, processor = load_pretrained(model_dir)
    settings = dict(beta=0.01, loss_type="grpo")
    settings.update(overrides)
    return trainer_class(
        model=model,
        reward_funcs=get_reward_funcs(["tinyllava_r1"]) + [varied_reward],
        args=tiny_grpo_config(tmp_path, **settings),
        train_dataset=data,
        eval_dataset=eval_dataset,
        processing_class=processor,
    )


class ClipOracle:
    """Records every log-prob pass of the policy (a forward hook) and, at that moment, the log-probs of each of its
    rows run alone with the clip its prompt names, and with another clip."""

    def __init__(self, trainer, data):
        self.trainer, self.tokenizer = trainer, trainer.processing_class.tokenizer
        self.paths = {clip_number(row["prompt"][0]["content"][1]["text"]): row["video"] for row in data}
        self.pixels = {}
        self.rows = []  # (pass log-probs, own-clip log-probs, other-clip log-probs) at the scored tokens

    def __enter__(self):
        self.hook = self.trainer.model.register_forward_hook(self.record, with_kwargs=True)
        return self

    def __exit__(self, *exc):
        self.hook.remove()

    def record(self, module, args, kwargs, output):
        if kwargs.get("labels") is None:  # generation and the oracle's own forwards
            return
        ids, mask, labels, logps = kwargs["input_ids"], kwargs["attention_mask"], kwargs["labels"], output.log_probs
        keep = logps.size(1)
        for row in range(ids.size(0)):
            scored = labels[row, -keep:] != -100
            if scored.any():
                clip = clip_number(self.tokenizer.decode(ids[row][mask[row].bool()]))
                other = (clip + 1) % len(self.paths)
                own_logps, other_logps = (self.alone(ids[row], mask[row], c)[-keep:][scored] for c in (clip, other))
                self.rows.append((logps[row].detach()[scored], own_logps, other_logps))

    def frames(self, clip):
        if clip not in self.pixels:
            frames = load_video_frames(self.paths[clip], num_frames=FRAMES).frames
            self.pixels[clip] = self.trainer.processing_class.preprocess_frames(frames)
        return self.pixels[clip]

    @torch.no_grad()
    def alone(self, ids, mask, clip):
        """`[L]`: entry t is log p(ids[t] | ids[:t], clip) (0 at t = 0), the fused head's alignment."""
        logits = self.trainer.model(
            input_ids=ids[None], attention_mask=mask[None], pixel_values_videos=self.frames(clip)[None]
        ).logits[0]
        scored = logits[:-1].log_softmax(-1).gather(-1, ids[1:, None])[:, 0]
        return torch.cat([scored.new_zeros(1), scored])

    def check(self, min_rows):
        """Every recorded row's log-probs equal its own clip's; another clip's differ (so a wrong pairing shows)."""
        assert len(self.rows) >= min_rows
        for logps, own, _ in self.rows:
            torch.testing.assert_close(logps, own, atol=1e-5, rtol=1e-5)
        apart = [(other - own).abs().max().item() > 1e-4 for _, own, other in self.rows]
        assert sum(apart) >= len(apart) / 2, "clips too alike for this test to bite"


def clip_number(text: str) -> int:
    return int(re.search(r"Clip (\d+)\.", text)[1])


def test_num_iterations_steps_per_generation_and_eval_every_step(model_dir, data, tmp_path):
    """(a) Evaluation between the steps that reuse a buffered generation batch: train and evaluate, each row with
    its clip, eval metrics per reward in the log."""
    trainer = make_trainer(
        model_dir,
        data,
        tmp_path,
        per_device_train_batch_size=2,
        steps_per_generation=2,
        num_iterations=2,
        max_steps=4,
        per_device_eval_batch_size=4,
        eval_strategy="steps",
        eval_steps=1,
        eval_dataset=data.select(range(6, 8)),
    )
    with ClipOracle(trainer, data) as oracle:
        trainer.train()
    assert trainer.state.global_step == 4
    evals = [h for h in trainer.state.log_history if "eval_loss" in h]
    assert len(evals) == 4
    assert all("eval_rewards/tinyllava_r1_reward/mean" in h for h in evals)
    oracle.check(min_rows=16)


def test_shuffled_slices_score_each_row_with_its_own_clip(model_dir, data, tmp_path):
    """(b) TRL shuffles the generation batch and slices it over steps; a slice scored after another batch was
    generated (an evaluation, the next generation) still pairs every row with its own clip."""
    trainer = make_trainer(model_dir, data, tmp_path, steps_per_generation=2)
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    torch.manual_seed(3)  # TRL's shuffle draws from torch's generator
    first = [data[i] for i in (0, 0, 1, 1, 2, 2, 3, 3)]
    slices = []
    for step in range(2):
        trainer._step = step
        slices.append(trainer._prepare_inputs(first))
    assert not all(torch.equal(s["video_index"], s["video_index"].sort().values) for s in slices), "not shuffled"
    trainer._generate_and_score_completions([data[i] for i in (4, 4, 5, 5, 6, 6, 7, 7)])  # another batch in between
    assert trainer._scope is None  # no video state outlives the call that made it

    with ClipOracle(trainer, data) as oracle, torch.no_grad():
        for batch in slices:
            trainer.compute_loss(trainer.model, batch)
    oracle.check(min_rows=8)


class VideoGMPOTrainer(VideoGRPOTrainer):
    """GMPO's loss on video, the way TRL's experimental trainers are written: `_compute_loss` replaced outright."""

    _compute_loss = GMPOTrainer._compute_loss


def test_a_subclass_that_replaces_compute_loss_trains_on_the_right_clips(model_dir, data, tmp_path):
    """(c) TRL's GMPO `_compute_loss` (it calls the log-prob pass with TRL's image keywords only) on shuffled slices."""
    trainer = make_trainer(
        model_dir,
        data,
        tmp_path,
        trainer_class=VideoGMPOTrainer,
        per_device_train_batch_size=4,
        steps_per_generation=2,
        max_steps=2,
    )
    with ClipOracle(trainer, data) as oracle:
        trainer.train()
    assert trainer.state.global_step == 2
    oracle.check(min_rows=8)
