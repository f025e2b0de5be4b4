"""`r1video tiny`: build a random tiny TinyLLaVA-Video model offline, save it, reload it and generate from a video."""

import time

import numpy as np

from r1video.usage import ArgumentParser


def moving_square_frames(num_frames: int, size: int = 64, seed: int = 0) -> np.ndarray:
    """uint8 `[T, size, size, 3]`: a red square crossing a blue background left to right."""
    rng = np.random.default_rng(seed)
    frames = np.zeros((num_frames, size, size, 3), dtype=np.uint8)
    frames[..., 2] = 160
    side, top = size // 4, int(rng.integers(0, size - size // 4))
    for t, left in enumerate(np.linspace(0, size - side, num_frames).astype(int)):
        frames[t, top : top + side, left : left + side] = (220, 30, 30)
    return frames


def main(argv: list[str]) -> int:
    parser = ArgumentParser(prog="r1video tiny", description=__doc__)
    parser.add_argument("--out", default="runs/tiny-model", help="directory to save the model (default: %(default)s)")
    parser.add_argument(
        "--connector", dest="connector_type", default="groupresampler", choices=["groupresampler", "naiveresampler"]
    )
    parser.add_argument("--frames", type=int, default=16, help="frames per video (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from r1video.eval.runner import generate_batch
    from r1video.model.templates import grpo_question
    from r1video.policies import load_policy, policy_for
    from r1video.trainer.console import plain_output

    plain_output()  # no progress bars when piped

    start = time.perf_counter()
    model, _ = policy_for("tinyllava").build_tiny(args.out, seed=args.seed, connector_type=args.connector_type)
    params = sum(p.numel() for p in model.parameters())
    print(f"built a {params / 1e3:.0f}k-parameter TinyLLaVA-Video ({args.connector_type}) in {args.out}")

    policy, model, processor = load_policy(args.out)
    questions = ["Which way does the square move?\nA. left\nB. right\nC. up\nD. down", "What colour is the square?"]
    prompts = [policy.question_prompt(processor, grpo_question(q)) for q in questions]
    clips = [
        policy.clip_from_frames(processor, moving_square_frames(args.frames, seed=i)) for i in range(len(prompts))
    ]
    gen_kwargs = {"max_new_tokens": 24, "do_sample": True, "temperature": 1.0}
    completions = generate_batch(model, processor, prompts, clips, gen_kwargs, policy=policy)
    print(f"reloaded and generated a batch of {len(prompts)} in {time.perf_counter() - start:.1f}s")
    tokens = policy.video_token_count(processor, clips[0])
    print(f"  video: {args.frames} frames -> {tokens} visual tokens per prompt")
    for question, completion in zip(questions, completions, strict=True):
        print(f"  Q: {question.splitlines()[0]}\n  A (random weights): {completion!r}")
    return 0
