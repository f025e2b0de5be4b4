"""`vision-reuse --policy NAME` (or `--policy all`): a GRPO step of any registered family's tiny model at G rollouts,
three ways, on the same clips.

- reuse on: r1video's `VideoGRPOTrainer`; the frozen encoder runs once per distinct clip per generation batch, what
  trains (connector / merger) runs on its cached output in each pass.
- reuse off: the same trainer with `reuse_vision: false`; every row takes its clip through the whole vision path in
  every pass (generation, reference, policy).
- TRL: TRL's own `GRPOTrainer` given the same frames as a list of images per row (what users do today: TRL takes no
  video), with the same model, weights, trainable parts and settings. A family whose processor or model TRL cannot
  drive this way gets "n/a" and the one-line reason.

Everything goes through the policy interface: `build_tiny` (with `bench_shapes`), `load`, `freeze`, `vision_module`
(hooked; `encoder_frames` reads each call's frames from the hook's arguments), `forward_flops` / `reference_flops`
("n/a" for a family without a FLOP model). The three trainers are built in one process from the same saved weights
and data, and their steps alternate.
"""

import logging
import os
import tempfile

import torch

from r1video.bench.grpo_setup import grpo_settings, quiet, run_step, synthetic_rows
from r1video.bench.runner import EntryResult, interleaved, median, spread
from r1video.policies import policy_named

logger = logging.getLogger(__name__)

NAME = "vision-reuse"
FRAME_SIZE = (64, 64)  # the synthetic clips' frames (height, width)
SIDES = {"reuse": "reuse on", "no_reuse": "reuse off", "trl": "TRL GRPOTrainer, frames as images"}


def make_trainers(policy, model_dir: str, rows, settings: dict, out: str) -> tuple[dict, str | None]:
    """The trainers (`reuse`, `no_reuse`, `trl`) on the model saved in `model_dir`, and why TRL's is missing (`None`
    when it is there)."""
    from r1video.trainer import VideoGRPOTrainer
    from r1video.trainer.grpo_config import VideoGRPOConfig
    from rewards import get_reward_funcs

    trainers = {}
    for name, reuse in (("reuse", True), ("no_reuse", False)):
        model, processor = policy.load(model_dir)
        args = VideoGRPOConfig(**dict(settings, output_dir=os.path.join(out, name), reuse_vision=reuse))
        trainers[name] = quiet(
            VideoGRPOTrainer(
                model=model,
                reward_funcs=get_reward_funcs(["accuracy"]),
                args=args,
                train_dataset=rows,
                processing_class=processor,
                policy=policy,
            )
        )
    try:
        trainers["trl"] = trl_trainer(policy, model_dir, rows, settings, out)
    except Exception as error:  # noqa: BLE001  (any failure of TRL's image path is reported, not raised)
        reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:160]
        logger.warning("TRL's GRPOTrainer cannot take %s's frames as images: %s", policy.name, reason)
        return trainers, reason
    return trainers, None


def trl_trainer(policy, model_dir: str, rows, settings: dict, out: str):
    """TRL's `GRPOTrainer` with each row's frames (r1video's reader, the same frame rule) as a list of images and the
    question as text; the same trainable parts as r1video's side (encoder frozen)."""
    from datasets import Dataset
    from PIL import Image
    from trl import GRPOConfig, GRPOTrainer

    from r1video.data.video import load_video_frames
    from rewards import get_reward_funcs

    frames = {
        path: [Image.fromarray(f) for f in load_video_frames(path, settings["num_frames"]).frames]
        for path in dict.fromkeys(rows["video"])
    }
    images = Dataset.from_dict(
        {
            "prompt": [[{"role": "user", "content": row["prompt"][0]["content"][-1]["text"]}] for row in rows],
            "images": [frames[row["video"]] for row in rows],
            "solution": list(rows["solution"]),
        }
    )
    model, processor = policy.load(model_dir)
    policy.freeze(model, vision=True)
    trl_settings = {key: value for key, value in settings.items() if key in GRPOConfig.__dataclass_fields__}
    trainer = quiet(
        GRPOTrainer(
            model=model,
            reward_funcs=get_reward_funcs(["accuracy"]),
            args=GRPOConfig(**dict(trl_settings, output_dir=os.path.join(out, "trl"))),
            train_dataset=images,
            processing_class=processor,
        )
    )
    run_step(trainer)  # TRL's image path fails here, not at construction, for a processor it cannot drive
    return trainer


def count_encoder_frames(policy, trainer) -> dict[str, int]:
    """Run one step with forward hooks on the policy's and the reference model's `vision_module`; the frames each
    took (`policy.encoder_frames` reads them from the call's arguments, keywords included)."""
    seen = {"policy": 0, "reference": 0}
    handles = []
    for name, model in (("policy", trainer.model), ("reference", trainer.ref_model)):
        if model is None:
            continue

        def hook(module, args, kwargs, output, name=name):
            seen[name] += policy.encoder_frames(module, args, kwargs)

        handles.append(policy.vision_module(model).register_forward_hook(hook, with_kwargs=True))
    try:
        run_step(trainer)
    finally:
        for handle in handles:
            handle.remove()
    return seen


def flop_ratios(policy, config, frames: int, tokens: int) -> dict | None:
    """`{"tiny": ..., "real": ...}` vision/LLM forward FLOP splits, or `None` for a family without a FLOP model."""
    try:
        return {
            "tiny": policy.forward_flops(config, frames, tokens, frame_size=FRAME_SIZE),
            "real": policy.reference_flops(),
        }
    except NotImplementedError:
        return None


def run(
    quick: bool = False, repeats: int | None = None, num_generations: int = 8, policy: str = "qwen2_5_vl"
) -> EntryResult:
    """Measure the family called `policy`.

    Args:
        quick: the family's quick shapes, 4 frames, 4 completion tokens, G = 2, one repeat (else 8 frames, 32
            completion tokens: a few minutes for every family on two loaded cores).
        repeats: timed steps per side (default 3, or 1 with `quick`).
        num_generations: G (rows per step: one prompt).
        policy: a registered family's `name`.
    """
    family = policy_named(policy)
    repeats = repeats or (1 if quick else 3)
    frames = 4 if quick else 8
    completion = 4 if quick else 32
    num_generations = 2 if quick else num_generations
    shapes = family.bench_shapes(quick)
    with tempfile.TemporaryDirectory(prefix="r1video-bench-family-") as tmp:
        model_dir = os.path.join(tmp, "model")
        model, processor = family.build_tiny(model_dir, seed=0, **shapes)
        rows = synthetic_rows(os.path.join(tmp, "data"), size=FRAME_SIZE[0], frames=frames)
        settings = grpo_settings(os.path.join(tmp, "out"), num_generations, completion, frames)
        trainers, trl_missing = make_trainers(family, model_dir, rows, settings, tmp)
        clip = family.decode_clip(processor, rows[0]["video"], num_frames=frames)
        prompt = family.render_prompt(processor, rows[0]["prompt"])
        tokens = len(family.tokenize_prompts(processor, [prompt], [clip])[0]) + completion
        flops = flop_ratios(family, model.config, frames, tokens)
        seen = {name: count_encoder_frames(family, trainer) for name, trainer in trainers.items()}
        timings = interleaved({name: (lambda t=trainer: run_step(t)) for name, trainer in trainers.items()}, repeats)
    total = {name: sum(counts.values()) for name, counts in seen.items()}
    steps = {name: median(values) for name, values in timings.items()}
    rows_out = [
        (
            "vision/LLM forward FLOPs, real / tiny",
            "n/a (no FLOP model for this family)"
            if flops is None
            else f"{flops['real']['vision_to_llm']:.2f} / {flops['tiny']['vision_to_llm']:.2f} (tiny at {frames} "
            f"frames of {FRAME_SIZE[1]}x{FRAME_SIZE[0]}, {tokens} tokens)",
        )
    ]
    for name, label in SIDES.items():
        value = (
            f"n/a ({trl_missing})"
            if name not in total
            else f"{total[name]} (policy {seen[name]['policy']}, reference {seen[name]['reference']})"
        )
        rows_out.append((f"encoder frames per step, {label}", value))
    for name, label in SIDES.items():
        rows_out.append((f"step time, {label}", spread(timings[name]) if name in timings else "n/a"))
    vs_off = steps["no_reuse"] / steps["reuse"]
    vs_trl = steps["trl"] / steps["reuse"] if "trl" in steps else None
    rows_out += [
        ("speed-up vs reuse off", f"{vs_off:.2f}x"),
        ("speed-up vs TRL (ratio of medians)", "n/a" if vs_trl is None else f"{vs_trl:.2f}x"),
    ]
    return EntryResult(
        name=f"{NAME} ({policy})",
        target="encoder frames with reuse = the step's clips' frames, <= 1/G of reuse off's",
        met=total["reuse"] * num_generations <= total["no_reuse"],
        rows=rows_out,
        metrics={
            "step_seconds": timings,
            "median_seconds": steps,
            "speedup_vs_no_reuse": vs_off,
            "speedup_vs_trl": vs_trl,
            "encoder_frames": seen,
            "trl_missing": trl_missing,
            "flops": flops,
        },
        settings={
            "policy": policy,
            "num_generations": num_generations,
            "prompts_per_step": 1,
            "frames": frames,
            "frame_size": FRAME_SIZE,
            "completion_tokens": completion,
            "repeats": repeats,
            "beta": settings["beta"],
            "tiny_model": shapes,
            "torch_threads": torch.get_num_threads(),
        },
        notes=[
            "step time is TRL's step_time (generation, rewards, reference and policy passes, backward; no optimizer "
            "step); the trainers alternate in one process, medians over repeats.",
            "encoder frames: what the family's frozen encoder (`vision_module`) took; reuse off re-encodes each row's "
            "clip in generation and policy passes (policy model) and in the reference pass: 2G and G copies.",
        ],
    )


def families_table(results: list[EntryResult]) -> str:
    """One markdown table, a row per family: encoder frames and median step time with reuse on, off and TRL's."""
    lines = [
        "| family | encoder frames on / off / TRL | step s on / off / TRL | off / on | TRL / on | vision/LLM FLOPs real/tiny |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        metrics, seen = result.metrics, result.metrics["encoder_frames"]
        frames = " / ".join(str(sum(seen[s].values())) if s in seen else "n/a" for s in SIDES)
        steps = " / ".join(f"{metrics['median_seconds'][s]:.2f}" if s in seen else "n/a" for s in SIDES)
        vs_trl = "n/a" if metrics["speedup_vs_trl"] is None else f"{metrics['speedup_vs_trl']:.2f}x"
        flops = metrics["flops"]
        ratio = (
            "n/a" if flops is None else f"{flops['real']['vision_to_llm']:.2f} / {flops['tiny']['vision_to_llm']:.2f}"
        )
        lines.append(
            f"| {result.settings['policy']} | {frames} | {steps} | {metrics['speedup_vs_no_reuse']:.2f}x | {vs_trl} "
            f"| {ratio} |"
        )
    return "\n".join(lines)
