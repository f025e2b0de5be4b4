"""VideoGRPOTrainer on a tiny model and real synthetic mp4 clips: seams, vision-once, bad clips, advantages."""

import pytest
import torch
from grpo_fixtures import FRAMES, tiny_grpo_config, varied_reward

import r1video.model  # noqa: F401  (registers TinyLLaVA-Video with the Auto classes)
from r1video.data.bad_samples import TooManyBadSamplesError
from r1video.data.loaders import load_grpo_dataset
from r1video.data.synth import generate_synthetic_dataset
from r1video.model import build_tiny_model, load_pretrained
from r1video.model.templates import QUESTION_TEMPLATES
from r1video.trainer import VideoGRPOTrainer
from r1video.trainer.grpo_config import VideoGRPOConfig
from r1video.trainer.step_videos import row_video_keys
from rewards import get_reward_funcs


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    dataset = generate_synthetic_dataset(root, n=8, n_test=2, n_coldstart=2, size=32, beats=8, frames_per_beat=1)
    return load_grpo_dataset(dataset.grpo_train, dataset.root, question_template=QUESTION_TEMPLATES["r1"])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    build_tiny_model(out)
    return str(out)


def make_trainer(model_dir, train_dataset, tmp_path, peft_config=None, **overrides):
    model, processor = load_pretrained(model_dir)
    settings = dict(gradient_checkpointing=False, beta=0.01, loss_type="grpo")
    settings.update(overrides)
    return VideoGRPOTrainer(
        model=model,
        reward_funcs=get_reward_funcs(["tinyllava_r1"]) + [varied_reward],
        args=tiny_grpo_config(tmp_path, **settings),
        train_dataset=train_dataset,
        processing_class=processor,
        peft_config=peft_config,
    )


def test_one_step_trains_llm_and_connector_not_the_vision_tower(model_dir, data, tmp_path):
    trainer = make_trainer(model_dir, data, tmp_path)
    policy = trainer.model
    before = {n: p.detach().clone() for n, p in policy.named_parameters()}
    trainer.train()
    changed = {n for n, p in policy.named_parameters() if not torch.equal(p, before[n])}
    assert any(".connector." in n for n in changed)
    assert any(".language_model." in n for n in changed)
    assert not any(".vision_tower." in n for n in changed)
    logged = trainer.state.log_history[0]
    for key in (
        "kl",
        "reward",
        "rewards/tinyllava_r1_reward/mean",
        "rewards/varied_reward/std",
        "completions/clipped_ratio",
    ):
        assert key in logged, key


def _count_frames(module, counter):
    return module.register_forward_hook(lambda m, args, out: counter.append(args[0].shape[0]))


@pytest.mark.parametrize("reuse", [True, False])
def test_vision_tower_sees_each_distinct_clip_once_per_step(model_dir, data, tmp_path, reuse):
    trainer = make_trainer(model_dir, data, tmp_path, reuse_vision=reuse)
    policy_frames, ref_frames = [], []
    hooks = [
        _count_frames(trainer.model.model.vision_tower, policy_frames),
        _count_frames(trainer.ref_model.model.vision_tower, ref_frames),
    ]
    try:
        trainer.train()
    finally:
        for hook in hooks:
            hook.remove()
    # One step: 4 rows = 2 prompts × 2 generations, so 2 distinct clips.
    if reuse:
        assert policy_frames == [2 * FRAMES]
        assert ref_frames == []
    else:  # the original's way: every row re-encodes its clip in generation, reference and policy passes
        assert sum(policy_frames) == 4 * FRAMES * 2
        assert sum(ref_frames) == 4 * FRAMES


def test_reuse_on_and_off_give_the_same_loss_gradients_and_reference_logps(model_dir, data, tmp_path):
    trainer = make_trainer(model_dir, data, tmp_path)
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1  # set by the training loop; here the loss is called directly
    inputs = [data[i] for i in (0, 0, 1, 1)]
    batch = trainer._generate_and_score_completions(inputs)
    batch["advantages"] = torch.tensor([1.0, -1.0, 0.5, -0.5])
    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
    results = {}
    for reuse in (True, False):
        trainer.args.reuse_vision = reuse
        trainer.model.zero_grad(set_to_none=True)
        loss = trainer._compute_loss(trainer.model, batch)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
        with torch.no_grad(), trainer._scoring(batch):
            ref_logps, _, _ = trainer._get_per_token_logps_and_entropies(
                trainer.ref_model, ids, mask, batch["completion_ids"].size(1), batch_size=3
            )
        results[reuse] = (loss.detach(), grads, ref_logps)
    (loss_on, grads_on, ref_on), (loss_off, grads_off, ref_off) = results[True], results[False]
    torch.testing.assert_close(loss_on, loss_off, atol=1e-5, rtol=1e-5)
    assert grads_on.keys() == grads_off.keys() and any(".connector." in n for n in grads_on)
    for name in grads_on:
        torch.testing.assert_close(grads_on[name], grads_off[name], atol=1e-5, rtol=1e-4, msg=name)
    torch.testing.assert_close(ref_on, ref_off, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ref_on, batch["ref_per_token_logps"], atol=1e-5, rtol=1e-5)


def test_a_corrupt_clip_is_skipped_and_too_many_stop_the_run(model_dir, data, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    rows = data.select(range(2)).map(lambda row, i: {"video": str(broken)} if i == 0 else {}, with_indices=True)
    trainer = make_trainer(model_dir, rows, tmp_path, max_bad_video_fraction=0.6)
    trainer.model.train()
    batch = trainer._generate_and_score_completions([rows[0], rows[0], rows[1], rows[1]])
    assert batch["completion_mask"][:2].sum() == 0 and batch["completion_mask"][2:].sum() > 0
    assert batch["advantages"][:2].abs().sum() == 0
    assert trainer.bad_videos.num_bad == 1 and str(broken) in trainer.bad_videos.bad

    trainer.bad_videos.min_samples = 2
    trainer.bad_videos.max_bad_fraction = 0.1
    with pytest.raises(TooManyBadSamplesError, match="broken.mp4"):
        trainer._generate_and_score_completions([rows[0], rows[0], rows[1], rows[1]])


def test_advantage_noise_is_seeded_and_has_the_configured_scale(model_dir, data, tmp_path):
    trainer = make_trainer(model_dir, data, tmp_path, advantage_noise_std=0.02)
    shape = torch.zeros(20000)
    first, again = trainer._advantage_noise(shape), trainer._advantage_noise(shape)
    assert torch.equal(first, again)
    assert abs(first.std().item() - 0.02) < 0.001 and abs(first.mean().item()) < 0.001
    trainer.state.global_step += 1
    assert not torch.equal(first, trainer._advantage_noise(shape))


def test_clips_of_different_lengths_share_a_batch_in_fps_mode(model_dir, tmp_path):
    short = generate_synthetic_dataset(tmp_path / "short", n=2, n_test=1, n_coldstart=1, size=32, beats=8)
    long = generate_synthetic_dataset(tmp_path / "long", n=2, n_test=1, n_coldstart=1, size=32, beats=16)
    rows = [
        load_grpo_dataset(short.grpo_train, short.root)[0],
        load_grpo_dataset(long.grpo_train, long.root)[0],
    ]
    from datasets import Dataset

    trainer = make_trainer(model_dir, Dataset.from_list(rows), tmp_path, num_frames=None, fps=4.0, max_frames=16)
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    batch = trainer._generate_and_score_completions([rows[0], rows[0], rows[1], rows[1]])
    lengths = [batch["video_clip"][row].inputs["pixel_values_videos"].shape[0] for row in (0, 2)]
    assert lengths[0] != lengths[1]
    loss = trainer._compute_loss(trainer.model, batch)
    assert torch.isfinite(loss)


def test_prompts_without_exactly_one_video_part_are_rejected(model_dir, data, tmp_path):
    trainer = make_trainer(model_dir, data, tmp_path)
    text_only = [[{"role": "user", "content": "no video here"}]]
    with (
        pytest.raises(ValueError, match="exactly one"),
        trainer._scoring(row_video_keys(trainer._load_videos([data[0]]))),
    ):
        trainer._tokenize_prompts(text_only)


def test_config_rejects_both_or_neither_frame_rule(tmp_path):
    with pytest.raises(ValueError, match="exactly one of num_frames"):
        VideoGRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, num_frames=16, fps=1.0)
    with pytest.raises(ValueError, match="exactly one of num_frames"):
        VideoGRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, num_frames=None)


def test_text_only_and_mixed_batches_train(model_dir, data, tmp_path):
    from datasets import Dataset

    text_row = {
        "prompt": [{"role": "user", "content": [{"type": "text", "text": "Say A or B."}]}],
        "video": None,
        "solution": "A",
    }
    video_row = {key: data[0][key] for key in ("prompt", "video", "solution")}
    mixed = Dataset.from_list([video_row, text_row] * 4)
    trainer = make_trainer(model_dir, mixed, tmp_path, max_steps=2)
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    batch = trainer._generate_and_score_completions([video_row, video_row, text_row, text_row])
    assert batch["video_index"].tolist() == [0, 0, -1, -1]
    loss = trainer._compute_loss(trainer.model, batch)
    loss.backward()
    assert trainer.model.model.connector._connector.latents.grad is not None

    text_only = Dataset.from_list([{k: v for k, v in text_row.items() if k != "video"}] * 4)
    make_trainer(model_dir, text_only, tmp_path / "text").train()


@pytest.mark.parametrize(
    "options",
    [
        {"gradient_checkpointing": True},
        {"num_iterations": 2, "steps_per_generation": 2, "per_device_train_batch_size": 2},
        {"loss_type": "dapo", "epsilon": 0.2, "beta": 0.0},
        {"use_peft": True},
    ],
    ids=["gradient-checkpointing", "num-iterations", "dapo-clipping", "lora"],
)
def test_trl_options_keep_working(model_dir, data, tmp_path, options):
    options = dict(options)
    peft_config = None
    if options.pop("use_peft", False):
        from peft import LoraConfig

        peft_config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    trainer = make_trainer(model_dir, data, tmp_path, peft_config=peft_config, max_steps=2, **options)
    trainable = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    trainer.train()
    assert trainer.state.global_step == 2
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in trainer.state.log_history if "loss" in h)
    changed = [n for n, p in trainer.model.named_parameters() if n in trainable and not torch.equal(p, trainable[n])]
    assert changed, "no trainable parameter moved"
    if peft_config is not None:
        assert all("lora_" in n for n in changed)
