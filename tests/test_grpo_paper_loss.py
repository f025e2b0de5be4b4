"""The parity recipe's loss is TinyLLaVA-Video-R1's, value and gradients: one real `VideoGRPOTrainer` step against
the formula of seed-facts §5.3, written out here."""

import pytest
import torch

import r1video.model  # noqa: F401  (registers TinyLLaVA-Video with the Auto classes)
from r1video.data.loaders import load_grpo_dataset
from r1video.data.synth import generate_synthetic_dataset
from r1video.data.video import load_video_frames
from r1video.model import build_tiny_model, load_pretrained
from r1video.model.templates import QUESTION_TEMPLATES
from r1video.trainer import VideoGRPOConfig, VideoGRPOTrainer
from rewards import get_reward_funcs

FRAMES = 4
BETA = 0.01


def varied_reward(completions, **kwargs):
    return [float(len(str(c)) % 7) for c in completions]


@pytest.fixture(scope="module")
def step(tmp_path_factory):
    """A parity-recipe trainer and one real generation batch whose reference sits > 4.7 nats above the policy on
    two tokens (their k3 KL passes 100, so the clamp acts)."""
    root = tmp_path_factory.mktemp("run")
    synth = generate_synthetic_dataset(root / "synth", n=4, n_test=1, n_coldstart=1, size=32, beats=8)
    data = load_grpo_dataset(synth.grpo_train, synth.root, question_template=QUESTION_TEMPLATES["r1"])
    build_tiny_model(root / "model")
    model, processor = load_pretrained(root / "model")
    args = VideoGRPOConfig(
        output_dir=str(root / "out"),
        use_cpu=True,
        bf16=False,
        report_to="none",
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=8,
        num_frames=FRAMES,
        seed=0,
        # the parity recipe's loss keys (recipes/TinyLLaVA-Video-Qwen2.5-3B/grpo_nextqa.yaml)
        beta=BETA,
        loss_type="grpo",
        kl_clamp=100.0,
        use_bias_correction_kl=False,
        num_iterations=1,
    )
    trainer = VideoGRPOTrainer(
        model=model,
        reward_funcs=get_reward_funcs(["tinyllava_r1"]) + [varied_reward],
        args=args,
        train_dataset=data,
        processing_class=processor,
    )
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    rows = [data[0], data[0], data[1], data[1]]
    batch = trainer._generate_and_score_completions(rows)
    batch["advantages"] = torch.tensor([1.0, -1.0, 0.5, -0.7])
    tokens = batch["completion_mask"].nonzero()[:2]
    with torch.no_grad(), trainer._scoring(batch):
        ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], 1)
        mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], 1)
        policy, _, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model, ids, mask, ids.size(1) - batch["prompt_ids"].size(1)
        )
    ref = batch["ref_per_token_logps"].clone()
    ref[tokens[:, 0], tokens[:, 1]] = policy[tokens[:, 0], tokens[:, 1]] + 6.0
    batch["ref_per_token_logps"] = ref
    pixels = {
        path: processor.preprocess_frames(load_video_frames(path, num_frames=FRAMES).frames)
        for path in {row["video"] for row in rows}
    }
    return trainer, batch, [pixels[row["video"]] for row in rows]


def paper_loss(model, batch, row_pixels):
    """seed-facts §5.3, each row run alone with its clip:
    `d = ref − logp`, `kl_t = clamp(exp(d) − d − 1, −100, 100)`, `per_token = −(exp(logp − sg(logp))·A − β·kl_t)`,
    `loss = mean_i [Σ_t per_token·mask / Σ_t mask]`."""
    prompt_len = batch["prompt_ids"].size(1)
    per_row = []
    for row, pixels in enumerate(row_pixels):
        ids = torch.cat([batch["prompt_ids"][row], batch["completion_ids"][row]])
        attention = torch.cat([batch["prompt_mask"][row], batch["completion_mask"][row]])
        logits = model(input_ids=ids[None], attention_mask=attention[None], pixel_values_videos=pixels[None]).logits[0]
        logp = logits[prompt_len - 1 : -1].log_softmax(-1).gather(-1, ids[prompt_len:, None])[:, 0]
        d = batch["ref_per_token_logps"][row] - logp
        kl = (torch.exp(d) - d - 1).clamp(-100, 100)
        per_token = -(torch.exp(logp - logp.detach()) * batch["advantages"][row] - BETA * kl)
        mask = batch["completion_mask"][row]
        per_row.append((per_token * mask).sum() / mask.sum())
    return torch.stack(per_row).mean()


def loss_and_grads(model, loss_fn):
    model.zero_grad(set_to_none=True)
    loss = loss_fn()
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def max_grad_difference(grads, expected):
    assert grads.keys() == expected.keys()
    return max((grads[n] - expected[n]).abs().max().item() for n in grads)


def test_parity_loss_and_gradients_equal_the_papers_formula(step):
    trainer, batch, row_pixels = step
    model = trainer.model
    expected_loss, expected = loss_and_grads(model, lambda: paper_loss(model, batch, row_pixels))
    loss, grads = loss_and_grads(model, lambda: trainer.compute_loss(model, batch))
    assert any(".connector." in n for n in grads) and any(".language_model." in n for n in grads)
    assert abs(loss.item() - expected_loss.item()) <= 1e-6
    assert max_grad_difference(grads, expected) <= 1e-6


def test_trl_defaults_differ_from_the_papers_formula(step):
    """The same step with TRL's defaults (ratio-weighted KL, no clamp) moves the loss and gradients: the check bites."""
    trainer, batch, row_pixels = step
    model = trainer.model
    expected_loss, expected = loss_and_grads(model, lambda: paper_loss(model, batch, row_pixels))
    trainer.args.kl_clamp, trainer.args.use_bias_correction_kl = None, True
    try:
        loss, grads = loss_and_grads(model, lambda: trainer.compute_loss(model, batch))
    finally:
        trainer.args.kl_clamp, trainer.args.use_bias_correction_kl = 100.0, False
    assert abs(loss.item() - expected_loss.item()) > 1e-2  # two unclamped KLs of ~400, times β, over the tokens
    assert max_grad_difference(grads, expected) > 1e-5


def test_kl_clamp_needs_the_papers_loss_settings(tmp_path):
    for bad in ({"loss_type": "dapo"}, {"use_bias_correction_kl": True}, {"kl_clamp": 0.0}):
        settings = {"loss_type": "grpo", "use_bias_correction_kl": False, "kl_clamp": 100.0, **bad}
        with pytest.raises(ValueError, match="kl_clamp"):
            VideoGRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, **settings)
