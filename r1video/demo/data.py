"""The demo's data: synthetic clips with a train split, a validation split and a held-out test split."""

import json
import logging
import os
from dataclasses import dataclass

from r1video.data.synth import generate_synthetic_dataset
from r1video.demo.settings import DemoSettings

logger = logging.getLogger(__name__)

VALIDATION_SEED_OFFSET = 1000  # the validation clips come from their own seed, disjoint from the test stream


@dataclass
class EvalItem:
    """One held-out question: its task, problem text (question and options), gold letter and video path."""

    task: str
    problem: str
    letter: str
    video: str


@dataclass
class DemoData:
    """Paths and held-out questions of the demo's data set.

    Attributes:
        root: Folder of the train split, the test split and the 16 cold-start samples.
        base_files: LLaVA-style SFT files of the base stage (option answers, captions).
        coldstart_file: The 16 reasoning-format samples.
        grpo_file: GRPO prompts (the train clips).
        validation: Questions that choose the cold-start checkpoint.
        test: The held-out questions every stage is reported on.
    """

    root: str
    base_files: list[str]
    coldstart_file: str
    grpo_file: str
    validation: list[EvalItem]
    test: list[EvalItem]


def make_data(out_dir: str, settings: DemoSettings) -> DemoData:
    """Write the clips and annotation files under `out_dir` and return what the stages need."""
    common = dict(
        size=settings.frame_size,
        square=settings.square_size,
        beats=settings.num_frames,
        frames_per_beat=1,
        fps=8,
        tasks=settings.tasks,
        n_coldstart=16,
    )
    main = generate_synthetic_dataset(
        os.path.join(out_dir, "main"), n=settings.n_train, n_test=settings.n_test, seed=settings.seed, **common
    )
    validation = generate_synthetic_dataset(
        os.path.join(out_dir, "validation"),
        n=0,
        n_test=settings.n_val,
        seed=settings.seed + VALIDATION_SEED_OFFSET,
        **common,
    )
    logger.info("data: %s", {"train": settings.n_train, "validation": settings.n_val, "test": settings.n_test})
    return DemoData(
        root=main.root,
        base_files=[main.sft_train, main.sft_caption],
        coldstart_file=main.coldstart,
        grpo_file=main.grpo_train,
        validation=read_eval_items(validation.test, validation.root),
        test=read_eval_items(main.test, main.root),
    )


def read_eval_items(path: str, root: str) -> list[EvalItem]:
    """The questions of a GRPO-format file (`problem`, `solution`, `video_filename`, `task` per line)."""
    items = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            letter = record["solution"].removeprefix("<answer>").removesuffix("</answer>")
            items.append(
                EvalItem(record["task"], record["problem"], letter, os.path.join(root, record["video_filename"]))
            )
    return items
