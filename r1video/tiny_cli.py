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
    parser.add_argument("--connector", default="groupresampler", choices=["groupresampler", "naiveresampler"])
    parser.add_argument("--frames", type=int, default=16, help="frames per video (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    from r1video.model import build_tiny_model, load_pretrained
    from r1video.model.templates import grpo_question, qwen2_base_prompt
    from r1video.trainer.console import plain_output

    plain_output()  # no progress bars when piped

    start = time.perf_counter()
    model, _ = build_tiny_model(args.out, seed=args.seed, connector_type=args.connector)
    params = sum(p.numel() for p in model.parameters())
    print(f"built a {params / 1e3:.0f}k-parameter TinyLLaVA-Video ({args.connector}) in {args.out}")

    model, processor = load_pretrained(args.out)
    questions = ["Which way does the square move?\nA. left\nB. right\nC. up\nD. down", "What colour is the square?"]
    prompts = [qwen2_base_prompt(grpo_question(q)) for q in questions]
    videos = [moving_square_frames(args.frames, seed=i) for i in range(len(prompts))]
    inputs = processor(text=prompts, videos=videos, padding_side="left")
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=24, do_sample=True, temperature=1.0)
    completions = processor.batch_decode(output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    print(f"reloaded and generated a batch of {len(prompts)} in {time.perf_counter() - start:.1f}s")
    print(f"  video: {args.frames} frames -> {model.config.num_queries} visual tokens per prompt")
    for question, completion in zip(questions, completions, strict=True):
        print(f"  Q: {question.splitlines()[0]}\n  A (random weights): {completion!r}")
    return 0
