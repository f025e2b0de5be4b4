"""The demo's data: synthetic clips, the training files of its three recipes, and two benchmark folders.

Everything is written under `DATA_DIR` (the run folder's `data/`):

- `main/`, `validation/`: two synthetic data sets ([`r1video.data.synth`]); `main` holds the train clips, the 16
  cold-start samples and the held-out test clips, `validation` the clips that choose the cold-start checkpoint (its
  own seed, disjoint from the test stream).
- `base.json`, `grpo_train.jsonl`, `grpo_validation.jsonl` (and `coldstart.json`, written by
  [`write_coldstart_file`] once the cold-start recipe is read): the recipes' `train_file` / `eval_file`, with video
  paths relative to `DATA_DIR` (their `video_root`).
- `benchmarks/test/`, `benchmarks/validation/`: the test and validation questions in MMVU's published layout
  (`validation.json`; the videos stay in `main/` and `validation/`, the benchmark's video folder), so `r1video eval`'s
  runner reads them as it reads MMVU. MMVU's layout writes the question, then `A. text` options, then the instruction
  on its own line: byte for byte the demo's training questions (`tests/test_demo.py` checks it).
"""

import json
import logging
import os
from dataclasses import dataclass

import numpy as np

from r1video.data.records import answer_letter, parse_choices, question_stem
from r1video.data.synth import generate_synthetic_dataset
from r1video.eval.benchmarks.mmvu import GROUP, URL_PREFIX

logger = logging.getLogger(__name__)

VALIDATION_SEED_OFFSET = 1000  # the validation clips come from their own seed, disjoint from the test stream


@dataclass
class DemoData:
    """Where the demo's data lies.

    Attributes:
        root: `DATA_DIR`, the `video_root` of every training file.
        base_file: Option-format questions and captions of the train clips (the base recipe's `train_file`).
        coldstart_samples: The 16 reasoning-format samples (LLaVA json, video paths relative to `root`).
        grpo_train: GRPO prompts on the train clips.
        grpo_validation: GRPO prompts on the validation clips (the GRPO recipe's `eval_file`, for the curves).
        benchmarks: `"test"` / `"validation"` → `(benchmark folder, video folder)` in MMVU's layout.
        tasks: Question id (in the benchmark folders) → its synthetic task.
    """

    root: str
    base_file: str
    coldstart_samples: list[dict]
    grpo_train: str
    grpo_validation: str
    benchmarks: dict[str, tuple[str, str]]
    tasks: dict[str, str]


def make_data(data_dir: str, settings, num_frames: int, question_template: str) -> DemoData:
    """Write the clips, the training files and the benchmark folders under `data_dir`.

    Args:
        data_dir: Where to write.
        settings: A [`DemoSettings`] (sizes, tasks, seed).
        num_frames: Frames per clip the recipes sample; each clip has that many steps, one frame each.
        question_template: The GRPO recipe's `question_template`, with which the cold-start samples are written.
    """
    common = dict(
        size=settings.frame_size,
        square=settings.square_size,
        beats=num_frames,
        frames_per_beat=1,
        fps=8,
        tasks=settings.tasks,
        n_coldstart=16,
        question_template=question_template,
    )
    main = generate_synthetic_dataset(
        os.path.join(data_dir, "main"), n=settings.n_train, n_test=settings.n_test, seed=settings.seed, **common
    )
    validation = generate_synthetic_dataset(
        os.path.join(data_dir, "validation"),
        n=0,
        n_test=settings.n_val,
        seed=settings.seed + VALIDATION_SEED_OFFSET,
        **common,
    )
    root = os.path.abspath(data_dir)
    base = [_llava_under("main", r) for path in (main.sft_train, main.sft_caption) for r in _read_json(path)]
    base_file = _write_json(os.path.join(root, "base.json"), base)
    grpo_train = _write_jsonl(
        os.path.join(root, "grpo_train.jsonl"), _grpo_under("main", _read_jsonl(main.grpo_train))
    )
    grpo_validation = _write_jsonl(
        os.path.join(root, "grpo_validation.jsonl"), _grpo_under("validation", _read_jsonl(validation.test))
    )
    tasks, benchmarks = {}, {}
    for name, data in (("test", main), ("validation", validation)):
        folder = os.path.join(root, "benchmarks", name)
        records = [_mmvu_record(f"{name}-{i:06d}", r) for i, r in enumerate(_read_jsonl(data.test))]
        _write_json(os.path.join(folder, "validation.json"), records)
        tasks.update({r["id"]: r["metadata"]["subject"] for r in records})
        benchmarks[name] = (folder, data.root)
    return DemoData(
        root=root,
        base_file=base_file,
        coldstart_samples=[_llava_under("main", r) for r in _read_json(main.coldstart)],
        grpo_train=grpo_train,
        grpo_validation=grpo_validation,
        benchmarks=benchmarks,
        tasks=tasks,
    )


def write_coldstart_file(data: DemoData, steps: int, batch_size: int, replay: int, seed: int) -> str:
    """The cold start's `train_file`: the 16 reasoning samples repeated to fill `steps` batches of `batch_size - replay`
    rows, and `steps × replay` base-stage rows drawn with `seed` (with replacement when there are fewer), shuffled
    together by the trainer: on average `replay` base rows per batch, against forgetting.

    Raises:
        ValueError: `replay` leaves no room for reasoning samples in a batch.
    """
    reasoning = batch_size - replay
    if reasoning < 1:
        raise ValueError(f"coldstart_replay={replay} leaves no reasoning sample in a batch of {batch_size}")
    samples = data.coldstart_samples
    copies = -(-steps * reasoning // len(samples))
    rows = [{**r, "id": f"{r['id']}-copy{k}"} for k in range(copies) for r in samples]
    if replay:
        base = _read_json(data.base_file)
        wanted = steps * replay
        picked = np.random.default_rng(seed).choice(len(base), wanted, replace=wanted > len(base))
        rows += [{**base[i], "id": f"{base[i]['id']}-replay{k}"} for k, i in enumerate(picked)]
    logger.info("cold start: %d reasoning samples, %d rows", len(samples), len(rows))
    return _write_json(os.path.join(data.root, "coldstart.json"), rows)


def _llava_under(folder: str, record: dict) -> dict:
    return {**record, "video": f"{folder}/{record['video']}"}


def _grpo_under(folder: str, records: list[dict]) -> list[dict]:
    return [{**r, "video_filename": f"./{folder}/{r['video_filename'].removeprefix('./')}"} for r in records]


def _mmvu_record(record_id: str, record: dict) -> dict:
    """A synthetic GRPO record as an MMVU multiple-choice question; its task is the `subject`."""
    choices = parse_choices(record["problem"])
    return {
        "id": record_id,
        "video": URL_PREFIX + record["video_filename"].removeprefix("./"),
        "youtube_url": "",
        "question_type": GROUP,
        "metadata": {"subject": record["task"]},
        "question": question_stem(record["problem"]),
        "choices": {c["letter"]: c["text"] for c in choices},
        "answer": answer_letter(record["solution"]),
    }


def _read_json(path: str):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _read_jsonl(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _write_json(path: str, value) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, ensure_ascii=False, indent=1)
    return path


def _write_jsonl(path: str, records: list[dict]) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    return path
