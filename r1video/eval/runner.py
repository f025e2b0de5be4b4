"""Run a benchmark: load its questions, generate answers in batches, log each prediction, score and save tables.

The run is resumable: predictions go to `OUTPUT_DIR/predictions.jsonl` one record at a time, and a rerun with the
same settings skips the questions already there. The settings that change predictions are stored in
`OUTPUT_DIR/run.json`; resuming with different ones is refused (use another output folder or `overwrite`).
"""

import dataclasses
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from r1video.data.paths import public_name, public_path
from r1video.data.video import VideoDecodeError
from r1video.eval.benchmarks import Benchmark, get_benchmark
from r1video.eval.frames import load_sample_clip
from r1video.eval.predictions import PredictionLog
from r1video.eval.prompts import build_prompt
from r1video.eval.report import markdown_table, results_payload, write_results
from r1video.eval.samples import EvalSample, check_videos_exist
from r1video.eval.scoring import PROTOCOLS, VIDEO_ERROR, extract_prediction, score_records

logger = logging.getLogger(__name__)

# Settings a resumed run must share with the predictions already written.
PREDICTION_SETTINGS = (
    "benchmark",
    "model",
    "prompt",
    "num_frames",
    "fps",
    "max_frames",
    "respect_bounds",
    "do_sample",
    "temperature",
    "top_p",
    "max_new_tokens",
    "dtype",
)


@dataclass
class EvalConfig:
    """Settings of one evaluation run.

    Args:
        benchmark (`str`): `mvbench`, `videomme`, `mlvu` or `mmvu`.
        data_dir (`str`): The benchmark copy, in its published layout.
        model (`str`): Checkpoint directory (ours or a released TinyLLaVA-Video one) or Hub id.
        output_dir (`str`, *optional*): Where predictions and tables go; defaults to
            `eval_results/<benchmark>/<model name>-<prompt>`.
        video_dir (`str`, *optional*): Video root, if not where the layout puts it.
        tasks (`list[str]`, *optional*): Groups to run (MVBench / MLVU tasks, Video-MME durations).
        limit (`int`, *optional*): At most this many questions per group (quick checks).
        prompt (`str`): `"reason"` (think/answer, R1) or `"option"` (letter only, TinyLLaVA-Video).
        num_frames (`int`): Uniform frames per video (16, the original's setting).
        fps (`float`, *optional*): Sample frames per second instead, capped by `max_frames`.
        max_frames (`int`, *optional*): Cap in `fps` mode.
        respect_bounds (`bool`): MVBench only: sample bounded video tasks inside their bound (not the original).
        batch_size (`int`): Questions per `generate` call (left-padded).
        max_new_tokens (`int`): 1024, as the original.
        do_sample (`bool`): Sample instead of greedy decoding (the R1 protocol samples with the model's defaults).
        temperature, top_p (`float`, *optional*): Sampling settings; the model's generation config otherwise.
        protocol (`str`): How answers are read: `"robust"` (the one reader, as in training) or `"original"`
            (the original's parser: TinyLLaVA-Video-R1's with the reason prompt, TinyLLaVA-Video's with the option
            prompt); see `r1video.eval.scoring`. Applied when scoring, so
            stored predictions can be rescored under either.
        no_answer (`str`, *optional*): Headline policy when no letter is found: `"wrong"` or `"random"` (the
            original's guess, seeded); by default `"random"` with the original protocol, else `"wrong"`. Both
            numbers are always computed.
        seed (`int`): Seeds sampling and the random guesses.
        dtype (`str`): Weight dtype, `float32` as the original, or `bfloat16`, `float16`, `auto`.
        device (`str`, *optional*): `cuda` when available, else `cpu`.
        overwrite (`bool`): Discard earlier predictions in `output_dir` instead of resuming.
    """

    benchmark: str
    data_dir: str
    model: str
    output_dir: str | None = None
    video_dir: str | None = None
    tasks: list[str] | None = None
    limit: int | None = None
    prompt: str = "reason"
    num_frames: int = 16
    fps: float | None = None
    max_frames: int | None = None
    respect_bounds: bool = False
    batch_size: int = 1
    max_new_tokens: int = 1024
    do_sample: bool = False
    temperature: float | None = None
    top_p: float | None = None
    protocol: str = "robust"
    no_answer: str | None = None
    seed: int = 0
    dtype: str = "float32"
    device: str | None = None
    overwrite: bool = False

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown answer protocol {self.protocol!r}; use one of {PROTOCOLS}")
        if self.no_answer is None:
            self.no_answer = "random" if self.protocol == "original" else "wrong"

    def resolved_output_dir(self) -> str:
        if self.output_dir:
            return self.output_dir
        name = os.path.basename(os.path.normpath(self.model)) or "model"
        return os.path.join("eval_results", self.benchmark, f"{name}-{self.prompt}")


@dataclass
class EvalResult:
    """What a run produced.

    Attributes:
        results: The results payload (also in `results.json`).
        markdown: The results table (also in `results.md`).
        output_dir: Folder of `predictions.jsonl`, `run.json`, `results.json`, `results.md`.
        num_generated: Questions answered in this run.
        num_resumed: Questions taken from an earlier run's predictions.
    """

    results: dict
    markdown: str
    output_dir: str
    num_generated: int
    num_resumed: int


def load_samples(config: EvalConfig, benchmark: Benchmark | None = None) -> list[EvalSample]:
    """The questions a config selects (tasks, per-group limit), with every video checked to exist."""
    benchmark = benchmark or get_benchmark(config.benchmark)
    options = {"respect_bounds": config.respect_bounds} if "respect_bounds" in benchmark.options else {}
    samples = benchmark.load(config.data_dir, tasks=config.tasks, video_dir=config.video_dir, **options)
    if config.limit is not None:
        taken: dict[str, int] = {}
        kept = []
        for sample in samples:
            if taken.get(sample.group, 0) < config.limit:
                taken[sample.group] = taken.get(sample.group, 0) + 1
                kept.append(sample)
        samples = kept
    if not samples:
        raise ValueError(f"no {benchmark.title} questions selected from {config.data_dir}")
    check_videos_exist(samples)
    return samples


def run_evaluation(
    config: EvalConfig,
    model=None,
    processor=None,
    progress: bool = True,
    on_record: Callable[[dict], None] | None = None,
    policy=None,
) -> EvalResult:
    """Evaluate a model on a benchmark, resuming from earlier predictions in the output folder.

    Args:
        config: The run settings.
        model, processor: An already loaded model and processor (loaded from `config.model` otherwise, and only if
            some question still needs an answer).
        progress: Show a progress bar.
        on_record: Called with each new prediction record right after it is written.
        policy: The model family (`r1video.policies.VideoPolicy`); found from the model's `model_type` by default.

    Returns:
        An [`EvalResult`]; `results.json` and `results.md` are written to the output folder.

    Raises:
        BenchmarkDataError: The benchmark copy is missing, malformed or lacks videos.
        ValueError: The output folder holds predictions made with other settings.
    """
    benchmark = get_benchmark(config.benchmark)
    if config.prompt not in benchmark.layouts:
        raise ValueError(f"unknown prompt type {config.prompt!r}; use one of {list(benchmark.layouts)}")
    samples = load_samples(config, benchmark)
    output_dir = config.resolved_output_dir()
    log = _open_log(output_dir, config)
    pending = [s for s in samples if s.id not in log]
    num_resumed = len(samples) - len(pending)
    if num_resumed:
        logger.info("resuming: %d of %d questions already answered in %s", num_resumed, len(samples), output_dir)
    if pending:
        if model is None or processor is None:
            policy, model, processor = _load_model(config)
        policy = policy or _policy_for(model)
        _generate_all(pending, benchmark, config, model, processor, log, progress, on_record, policy)
    done = log.records()
    records = [
        rescore(done[s.id], s, config.protocol, config.prompt, benchmark.original_option_texts(s)) for s in samples
    ]
    groups = list(dict.fromkeys(s.group for s in samples))
    payload = results_payload(
        benchmark.title,
        benchmark.group_label,
        benchmark.average,
        score_records(records, groups, "wrong", config.seed),
        score_records(records, groups, "random", config.seed),
        records,
        _settings(config),
    )
    write_results(payload, output_dir)
    return EvalResult(payload, markdown_table(payload), output_dir, len(pending), num_resumed)


def rescore(record: dict, sample: EvalSample, protocol: str, prompt: str = "reason", option_texts=()) -> dict:
    """The record with `prediction` and `status` read from its completion under `protocol` (video errors kept);
    `prompt` and `option_texts` as [`extract_prediction`]."""
    if record["status"] == VIDEO_ERROR:
        return record
    letter, status = extract_prediction(
        record["completion"], sample.letters, protocol, prompt, option_texts, choices=sample.choices
    )
    return {**record, "prediction": letter, "status": status}


def _settings(config: EvalConfig) -> dict:
    """The run settings as results files record them: local paths become public names (no absolute paths)."""
    settings = dataclasses.asdict(config)
    settings.pop("overwrite")
    settings["model"] = public_name(config.model)
    settings["data_dir"] = public_name(config.data_dir)
    settings["output_dir"] = public_name(config.resolved_output_dir())
    settings["video_dir"] = public_path(config.video_dir, config.data_dir) if config.video_dir else None
    return settings


def _open_log(output_dir: str, config: EvalConfig) -> PredictionLog:
    predictions = os.path.join(output_dir, "predictions.jsonl")
    run_file = os.path.join(output_dir, "run.json")
    wanted = {key: getattr(config, key) for key in PREDICTION_SETTINGS}
    if config.overwrite:
        for path in (predictions, run_file):
            if os.path.exists(path):
                os.remove(path)
    if os.path.exists(run_file):
        with open(run_file) as f:
            stored = json.load(f)
        changed = {k: (stored.get(k), v) for k, v in wanted.items() if stored.get(k) != v}
        if changed and os.path.exists(predictions):
            diff = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
            raise ValueError(
                f"{predictions} holds predictions made with other settings ({diff}); pass another output folder, "
                "or --overwrite to discard them"
            )
    os.makedirs(output_dir, exist_ok=True)
    with open(run_file, "w") as f:
        json.dump(wanted, f, indent=2)
    return PredictionLog(predictions)


def _load_model(config: EvalConfig):
    """`(policy, model, processor)` for `config.model`, the family from its `model_type`."""
    import torch

    from r1video.policies import load_policy

    dtype = config.dtype if config.dtype == "auto" else getattr(torch, config.dtype)
    policy, model, processor = load_policy(config.model, dtype=dtype)
    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    return policy, model.to(device).eval(), processor


def _policy_for(model):
    from r1video.policies import policy_for

    return policy_for(model)


def generation_kwargs(config) -> dict:
    """`generate` arguments: greedy by default; sampling with the model's defaults unless told otherwise."""
    kwargs = {"max_new_tokens": config.max_new_tokens, "do_sample": config.do_sample}
    if config.do_sample:
        if config.temperature is not None:
            kwargs["temperature"] = config.temperature
        if config.top_p is not None:
            kwargs["top_p"] = config.top_p
    return kwargs


def generate_batch(
    model, processor, prompts: list[str], videos: list, gen_kwargs: dict, streamer=None, policy=None
) -> list[str]:
    """Generate one completion per (prompt, video) pair, left-padded in one batch; returns the decoded new text.

    Args:
        model, processor: The model and its processor.
        prompts: Rendered prompts, one video placeholder each (`None` video: none).
        videos: Per prompt, uint8 frames `[T, H, W, 3]`, a `Clip` of the family, or `None` (text only).
        gen_kwargs: `generate` arguments.
        streamer: Passed to `generate`.
        policy: The model family; found from the model's `model_type` by default.
    """
    import torch

    from r1video.policies import Clip

    policy = policy or _policy_for(model)
    clips = [
        video if video is None or isinstance(video, Clip) else policy.clip_from_frames(processor, video)
        for video in videos
    ]
    ids = policy.tokenize_prompts(processor, prompts, clips)
    tokenizer = getattr(processor, "tokenizer", processor)
    padded = tokenizer.pad({"input_ids": ids}, padding=True, padding_side="left", return_tensors="pt")
    device, dtype = model.device, model.dtype
    input_ids, attention_mask = padded["input_ids"].to(device), padded["attention_mask"].to(device)
    shown = [clip for clip in clips if clip is not None]
    index, number = [], 0
    for clip in clips:
        index.append(-1 if clip is None else number)
        number += clip is not None
    video_inputs = policy.model_inputs(
        model,
        input_ids,
        [clip.to(device) for clip in shown],
        torch.tensor(index, dtype=torch.long, device=device),
        None,
        reuse=False,
    )
    batch = {"input_ids": input_ids, "attention_mask": attention_mask}
    for key, value in video_inputs.items():
        if torch.is_tensor(value):
            # pixels in the model's dtype; other floating inputs (Qwen2.5-VL's seconds per temporal patch, which
            # space the positions) keep their precision
            pixels = value.is_floating_point() and key.startswith("pixel_values")
            value = value.to(device, dtype) if pixels else value.to(device)
        batch[key] = value
    with torch.inference_mode():
        output = model.generate(**batch, **gen_kwargs, streamer=streamer)
    new_tokens = output[:, input_ids.shape[1] :]
    return processor.batch_decode(new_tokens, skip_special_tokens=True)


def _generate_all(samples, benchmark, config, model, processor, log, progress, on_record, policy) -> None:
    import torch
    from tqdm.auto import tqdm

    if config.do_sample:
        torch.manual_seed(config.seed)
    gen_kwargs = generation_kwargs(config)
    layout = benchmark.layouts
    roots = (config.data_dir, config.video_dir)  # recorded video paths are relative to these
    with tqdm(total=len(samples), desc=benchmark.title, unit="question", disable=not progress) as bar:
        for start in range(0, len(samples), config.batch_size):
            batch = samples[start : start + config.batch_size]
            ready, records = [], {}
            for sample in batch:
                try:
                    # preprocessed frame by frame (a 4K clip is not held), with its timing (families like
                    # Qwen2.5-VL space frames by real time)
                    clip, indices = load_sample_clip(
                        policy, processor, sample, config.num_frames, config.fps, config.max_frames
                    )
                    ready.append((sample, clip, indices))
                except VideoDecodeError as exc:
                    logger.warning("skipping %s (counted wrong): %s", sample.id, exc)
                    records[sample.id] = _record(sample, roots, "", None, VIDEO_ERROR, [], error=str(exc))
            if ready:
                prompts = [
                    build_prompt(s, config.prompt, layout, policy, processor, _question_prefix(benchmark, s, indices))
                    for s, _, indices in ready
                ]
                frames = [f for _, f, _ in ready]
                completions = generate_batch(model, processor, prompts, frames, gen_kwargs, policy=policy)
                for (sample, _, indices), completion in zip(ready, completions, strict=True):
                    letter, status = extract_prediction(
                        completion,
                        sample.letters,
                        config.protocol,
                        config.prompt,
                        benchmark.original_option_texts(sample),
                        choices=sample.choices,
                    )
                    records[sample.id] = _record(sample, roots, completion, letter, status, indices)
            for sample in batch:  # benchmark order, so the file reads like the benchmark
                log.append(records[sample.id])
                bar.update(1)
                if on_record is not None:
                    on_record(records[sample.id])


def _question_prefix(benchmark: Benchmark, sample: EvalSample, indices: list[int]) -> str:
    return benchmark.question_prefix(sample, indices) if benchmark.question_prefix else ""


def _record(sample: EvalSample, roots, completion, letter, status, indices, error=None) -> dict:
    """A prediction record; the video is named relative to the first of `roots` holding it, never absolutely."""
    video = public_path(sample.video, *roots)
    record = {
        "id": sample.id,
        "group": sample.group,
        "answer": sample.answer,
        "num_choices": len(sample.choices),
        "prediction": letter,
        "status": status,
        "completion": completion,
        "frame_indices": [int(i) for i in indices],
        "video": video,
    }
    if error is not None:
        record["error"] = error.replace(sample.video, video)
    return record
