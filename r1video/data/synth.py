"""A synthetic video-QA data set with answers known by construction: the embedded default data set.

Each clip is a real H.264 MP4 of coloured squares on a dark background, a few seconds long, made of `beats` steps of
`frames_per_beat` identical frames. Sampling `beats` frames with the uniform rule `linspace(0, T - 1, beats)` sees
every step exactly once, so a 16-frame model sees the whole story at the default `beats=16`. Four tasks, four options
each:

- `direction`: which way does the square move? (left / right / up / down)
- `colour`: the square changes colour once; what colour is it at the end? (red / green / blue / yellow)
- `count`: how many times does the square flash? (1 / 2 / 3 / 4)
- `order`: four squares appear one after another; which colour comes first? (red / green / blue / yellow)

The answer needs the video: within a task every question offers the same options, and the answers (hence the
letters) are balanced over each split. Options are listed in a fixed canonical order by default, which a toy model
learns far faster than per-question shuffled options (`demo-prototype.md`); `shuffle_options=True` shuffles them per
question, still with balanced letters.

Files written under `out_dir`:

- `grpo_train.jsonl`: GRPO format, `{"problem", "solution": "<answer>X</answer>", "video_filename", "task"}`.
- `sft_train.json`: LLaVA-style SFT in option format (the same train clips; the answer is the letter).
- `sft_caption.json`: LLaVA-style SFT captions of the train clips ("Describe the video." → what it shows): the
  data of TinyLLaVA-Video's `pretrain` stage, in the LLaVA-Video-178K caption format.
- `sft_openqa.json`: LLaVA-style SFT open-ended QA on the train clips, two rounds each (the task question without
  options → the answer in a word; "What happens in the video?" → the caption): the data of its `finetune` stage, in
  the LLaVA-Video-178K open-QA format.
- `coldstart.json`: `n_coldstart` (16) reasoning-format samples on their own clips: `<think>` a correct rationale
  describing the clip `</think> <answer>X</answer>`, four per task, each letter once per task.
- `test.jsonl`: the held-out split, GRPO format, on its own clips.
- `manifest.json`: the parameters and counts; `videos/{train,test,coldstart}/NNNNNN.mp4`.

Each split draws from its own random stream (`seed`, split), so the test split does not change when `n` does. The
same arguments give byte-identical annotation files.
"""

import json
import os
from dataclasses import dataclass

import numpy as np

from r1video.data.video import write_video
from r1video.model.templates import QUESTION_TEMPLATES, apply_question_template, resolve_question_template

__all__ = ["TASKS", "SyntheticDataset", "check_tasks", "generate_synthetic_dataset"]

LETTERS = "ABCD"
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (50, 90, 235),
    "yellow": (235, 215, 40),
    "white": (235, 235, 235),
    "purple": (165, 70, 205),
    "cyan": (40, 200, 215),
}
ANSWER_COLOURS = ["red", "green", "blue", "yellow"]
BACKGROUND = (25, 25, 30)
TASKS = {
    "direction": ["left", "right", "up", "down"],
    "colour": ANSWER_COLOURS,
    "count": ["1", "2", "3", "4"],
    "order": ANSWER_COLOURS,
}
SPLIT_STREAMS = {"train": 0, "test": 1, "coldstart": 2}  # each split's own random stream


@dataclass
class _Clip:
    beats: np.ndarray  # (B, S, S, 3) uint8, one image per beat
    question: str
    caption: str  # what the clip shows, in one sentence that names the answer


@dataclass
class SyntheticDataset:
    """Where [`generate_synthetic_dataset`] wrote things (absolute paths) and how many records each split has."""

    root: str
    grpo_train: str
    sft_train: str
    sft_caption: str
    sft_openqa: str
    coldstart: str
    test: str
    manifest: str
    counts: dict[str, int]


class _Canvas:
    """Draws squares of side `square` (default `size // 5`) on `beats` frames of `size × size`."""

    def __init__(self, size: int, beats: int, square: int | None = None):
        self.size, self.side = size, square or max(4, size // 5)
        self.frames = np.empty((beats, size, size, 3), np.uint8)
        self.frames[:] = BACKGROUND

    def square(self, beat: int, x: int, y: int, colour: str) -> None:
        self.frames[beat, y : y + self.side, x : x + self.side] = COLOURS[colour]

    def random_xy(self, rng: np.random.Generator) -> tuple[int, int]:
        high = self.size - self.side
        return int(rng.integers(1, high)), int(rng.integers(1, high))


def _direction(rng, answer: str, canvas: _Canvas) -> _Clip:
    size, beats = canvas.size, len(canvas.frames)
    colour = str(rng.choice(list(COLOURS)))
    low, high = 1, size - canvas.side - 1
    along = np.linspace(low, high, beats).round().astype(int)  # positions along the axis of motion
    if answer in ("left", "up"):
        along = along[::-1]
    across = int(rng.integers(low, high))
    for beat, position in enumerate(along):
        x, y = (position, across) if answer in ("left", "right") else (across, position)
        canvas.square(beat, x, y, colour)
    return _Clip(
        canvas.frames,
        f"Which direction does the {colour} square move?",
        f"A {colour} square moves {answer}.",
    )


def _colour(rng, answer: str, canvas: _Canvas) -> _Clip:
    beats = len(canvas.frames)
    start = str(rng.choice([c for c in ANSWER_COLOURS if c != answer]))
    change = int(rng.integers(beats // 4, 3 * beats // 4 + 1))  # first beat in the new colour
    x, y = canvas.random_xy(rng)
    for beat in range(beats):
        canvas.square(beat, x, y, start if beat < change else answer)
    return _Clip(
        canvas.frames,
        "The square changes colour once. What colour is it at the end of the video?",
        f"A {start} square turns {answer}.",
    )


def _count(rng, answer: str, canvas: _Canvas) -> _Clip:
    beats = len(canvas.frames)
    flashes = int(answer)
    colour = str(rng.choice(list(COLOURS)))
    x, y = canvas.random_xy(rng)
    # Runs: off, on, off, on, ..., on, off. On runs and the gaps between them last at least one beat.
    minimum = np.array([0] + [1, 1] * flashes, dtype=int)
    minimum[-1] = 0
    runs = minimum + rng.multinomial(beats - minimum.sum(), np.full(len(minimum), 1 / len(minimum)))
    beat = 0
    for i, length in enumerate(runs):
        if i % 2 == 1:  # odd runs are "on"
            for b in range(beat, beat + length):
                canvas.square(b, x, y, colour)
        beat += length
    return _Clip(
        canvas.frames,
        f"How many times does the {colour} square flash?",
        f"A {colour} square flashes {flashes} {'time' if flashes == 1 else 'times'}.",
    )


def _order(rng, answer: str, canvas: _Canvas) -> _Clip:
    size, beats = canvas.size, len(canvas.frames)
    order = [answer] + [str(c) for c in rng.permutation([c for c in ANSWER_COLOURS if c != answer])]
    half = size // 2
    corners = [(q % 2 * half, q // 2 * half) for q in rng.permutation(4)]  # a different quadrant each
    for i, (colour, (qx, qy)) in enumerate(zip(order, corners, strict=True)):
        x = qx + int(rng.integers(1, half - canvas.side))
        y = qy + int(rng.integers(1, half - canvas.side))
        for beat in range(i * beats // 4, beats):  # appears at its quarter, then stays
            canvas.square(beat, x, y, colour)
    return _Clip(
        canvas.frames,
        "Four coloured squares appear one after another. Which colour appears first?",
        f"The {order[0]} square appears first, then {order[1]}, {order[2]} and {order[3]}.",
    )


_MAKERS = {"direction": _direction, "colour": _colour, "count": _count, "order": _order}


def _balanced(rng: np.random.Generator, length: int, kinds: int) -> list[int]:
    """`length` values in `range(kinds)`, as equal in number as possible, in random order."""
    return [int(v) for v in rng.permutation(np.arange(length) % kinds)]


def _make_split(
    rng, n: int, tasks: list[str], size: int, beats: int, square: int | None, shuffle_options: bool
) -> list[dict]:
    """Draw `n` questions: tasks balanced, answer letters balanced within each task."""
    task_of = [tasks[i] for i in _balanced(rng, n, len(tasks))]
    letters = {t: iter(_balanced(rng, task_of.count(t), 4)) for t in tasks}
    values = {t: iter(_balanced(rng, task_of.count(t), 4)) for t in tasks}
    samples = []
    for task in task_of:
        options = list(TASKS[task])
        letter = next(letters[task])
        if shuffle_options:
            answer = options[next(values[task])]
            others = [options[i] for i in rng.permutation(4) if options[i] != answer]
            options = others[:letter] + [answer] + others[letter:]
        answer = options[letter]
        clip = _MAKERS[task](rng, answer, _Canvas(size, beats, square))
        problem = clip.question + "\n" + "\n".join(f"{L}. {o}" for L, o in zip(LETTERS, options, strict=True))
        samples.append({"task": task, "problem": problem, "letter": LETTERS[letter], "answer": answer, "clip": clip})
    return samples


def check_tasks(tasks: list[str]) -> list[str]:
    """A copy of `tasks`; `ValueError` naming any that is not one of [`TASKS`]."""
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        raise ValueError(f"unknown task(s) {', '.join(unknown)}; available: {', '.join(TASKS)}")
    return list(tasks)


def draw_clips(n: int, size: int, beats: int, seed: int = 0, tasks: list[str] | None = None) -> list[dict]:
    """`n` synthetic questions with their clips kept in memory: no files written, no PyAV needed.

    Returns:
        One dict per question: `problem` (question and lettered options), `letter` (the right option), `task`, and
        `frames`, a `uint8` array `(beats, size, size, 3)`, RGB.
    """
    samples = _make_split(np.random.default_rng(seed), n, check_tasks(tasks or list(TASKS)), size, beats, None, False)
    return [
        {"problem": s["problem"], "letter": s["letter"], "task": s["task"], "frames": s["clip"].beats} for s in samples
    ]


def generate_synthetic_dataset(
    out_dir: str | os.PathLike,
    n: int = 400,
    seed: int = 0,
    n_test: int = 100,
    n_coldstart: int = 16,
    size: int = 64,
    beats: int = 16,
    frames_per_beat: int = 3,
    fps: int = 16,
    tasks: list[str] | None = None,
    shuffle_options: bool = False,
    square: int | None = None,
    question_template: str = "r1",
) -> SyntheticDataset:
    """Write the synthetic video-QA data set (clips and annotation files) to `out_dir`.

    Args:
        out_dir: Output directory (created; existing files are overwritten).
        n: Training questions (one clip each), in `grpo_train.jsonl`, `sft_train.json`, `sft_caption.json` and
            `sft_openqa.json`.
        seed: Random seed; the same arguments give byte-identical annotation files.
        n_test: Held-out questions, on their own clips, in `test.jsonl`.
        n_coldstart: Reasoning-format samples, on their own clips, in `coldstart.json`.
        size: Frame width and height in pixels (even).
        beats: Distinct steps per clip; sampling this many frames uniformly sees each step once.
        frames_per_beat: Video frames per step.
        fps: Frame rate; the default clip is 16 × 3 = 48 frames = 3 s.
        tasks: Subset of [`TASKS`] to use (default: all four).
        shuffle_options: Shuffle the option order per question instead of the canonical order.
        square: Side of the squares in pixels (default `size // 5`, at least 4); at most `size // 2 - 2`, so that the
            `order` task's four squares fit in their quadrants.
        question_template: The question of the reasoning-format samples (`coldstart.json`), as a recipe names it
            (see [`r1video.model.templates.resolve_question_template`]); the R1 training prompt by default. Option-format
            questions always end with TinyLLaVA-Video's option instruction on its own line.

    Returns:
        A [`SyntheticDataset`] with the paths of the files written.
    """
    tasks = check_tasks(tasks or list(TASKS))
    reason_template = resolve_question_template(question_template)
    if size % 2 or size < 16:
        raise ValueError(f"size must be even and at least 16, got {size}")
    if square is not None and not 2 <= square <= size // 2 - 2:
        raise ValueError(f"square must be between 2 and size // 2 - 2 = {size // 2 - 2}, got {square}")
    if beats < 8:
        raise ValueError(f"beats must be at least 8 (four flashes need 7 steps), got {beats}")
    root = os.path.abspath(out_dir)
    splits = {}
    for split, count in (("train", n), ("test", n_test), ("coldstart", n_coldstart)):
        rng = np.random.default_rng([seed, SPLIT_STREAMS[split]])
        splits[split] = _make_split(rng, count, tasks, size, beats, square, shuffle_options)
        os.makedirs(os.path.join(root, "videos", split), exist_ok=True)
        for i, sample in enumerate(splits[split]):
            sample["video"] = f"videos/{split}/{i:06d}.mp4"
            frames = np.repeat(sample["clip"].beats, frames_per_beat, axis=0)  # (beats * frames_per_beat, S, S, 3)
            write_video(os.path.join(root, sample["video"]), frames, fps=fps, options={"threads": "1"})

    paths = {name: os.path.join(root, name) for name in _FILES}
    _write_jsonl(paths["grpo_train.jsonl"], [_grpo_record(s) for s in splits["train"]])
    _write_jsonl(paths["test.jsonl"], [_grpo_record(s) for s in splits["test"]])
    _write_json(
        paths["sft_train.json"], [_option_record(s, f"synth-train-{i:06d}") for i, s in enumerate(splits["train"])]
    )
    _write_json(
        paths["sft_caption.json"],
        [_caption_record(s, f"synth-caption-{i:06d}") for i, s in enumerate(splits["train"])],
    )
    _write_json(
        paths["sft_openqa.json"], [_openqa_record(s, f"synth-openqa-{i:06d}") for i, s in enumerate(splits["train"])]
    )
    _write_json(
        paths["coldstart.json"],
        [_reason_record(s, f"synth-coldstart-{i:02d}", reason_template) for i, s in enumerate(splits["coldstart"])],
    )
    counts = {split: len(samples) for split, samples in splits.items()}
    manifest = {
        "generator": "r1video.data.synth",
        "seed": seed,
        "counts": counts,
        "params": {
            "size": size,
            "beats": beats,
            "frames_per_beat": frames_per_beat,
            "fps": fps,
            "tasks": tasks,
            "shuffle_options": shuffle_options,
            "square": square,
            "question_template": question_template,
        },
        "files": _FILES,
    }
    _write_json(paths["manifest.json"], manifest)
    return SyntheticDataset(
        root=root,
        grpo_train=paths["grpo_train.jsonl"],
        sft_train=paths["sft_train.json"],
        sft_caption=paths["sft_caption.json"],
        sft_openqa=paths["sft_openqa.json"],
        coldstart=paths["coldstart.json"],
        test=paths["test.jsonl"],
        manifest=paths["manifest.json"],
        counts=counts,
    )


_FILES = {
    "grpo_train.jsonl": "GRPO train split (problem, solution, video_filename, task)",
    "test.jsonl": "held-out split, GRPO format",
    "sft_train.json": "LLaVA-style SFT, option format, train clips",
    "sft_caption.json": "LLaVA-style SFT, captions of the train clips",
    "sft_openqa.json": "LLaVA-style SFT, open-ended QA on the train clips (two rounds)",
    "coldstart.json": "LLaVA-style SFT, reasoning format (<think> rationale + <answer>)",
    "manifest.json": "this file",
}


def _grpo_record(sample: dict) -> dict:
    return {
        "problem": sample["problem"],
        "solution": f"<answer>{sample['letter']}</answer>",
        "video_filename": "./" + sample["video"],  # the released data's "./..." form
        "task": sample["task"],
    }


def _option_record(sample: dict, record_id: str) -> dict:
    human = "<image>\n" + apply_question_template(QUESTION_TEMPLATES["option"], sample["problem"])
    return _llava(record_id, sample, human, sample["letter"])


def _caption_record(sample: dict, record_id: str) -> dict:
    return _llava(record_id, sample, "<image>\nDescribe the video.", sample["clip"].caption)


def _openqa_record(sample: dict, record_id: str) -> dict:
    clip = sample["clip"]
    record = _llava(record_id, sample, f"<image>\n{clip.question}", f"{sample['answer'].capitalize()}.")
    record["conversations"] += [
        {"from": "human", "value": "What happens in the video?"},
        {"from": "gpt", "value": clip.caption},
    ]
    return record


def _reason_record(sample: dict, record_id: str, question_template: str) -> dict:
    clip = sample["clip"]
    human = "<image>\n" + apply_question_template(question_template, sample["problem"])
    return _llava(
        record_id,
        sample,
        human,
        f"<think>{clip.caption}</think> <answer>{sample['letter']}</answer>",
    )


def _llava(record_id: str, sample: dict, human: str, gpt: str) -> dict:
    return {
        "id": record_id,
        "video": sample["video"],
        "task": sample["task"],
        "conversations": [{"from": "human", "value": human}, {"from": "gpt", "value": gpt}],
    }


def _write_jsonl(path: str, records: list[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def _write_json(path: str, value) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        json.dump(value, f, ensure_ascii=False, indent=1)
        f.write("\n")
