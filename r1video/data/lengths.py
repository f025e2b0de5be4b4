"""Prompt lengths in tokens, against the model's maximum: a record too long for the model is named before training.

A prompt is counted as the model sees it, by the model family's policy (`r1video.policies`): rendered with the
processor's chat template and tokenised with each video placeholder expanded to the family's video tokens
(TinyLLaVA-Video: `num_queries`). For a GRPO record that is its prompt (through the question template); for an SFT
record the conversation up to its first reply.

Where a family's video tokens depend on the clip (Qwen2.5-VL, Qwen3-VL, Qwen3.5: the frames sampled and their size
after the processor's resize, Qwen3-VL's timestamps; SmolVLM2 and LLaVA-OneVision: the frames sampled), a record is
counted with its own clip's exact expansion ([`RecordClips`]): which frames training would sample (the recipe's
`num_frames` / `fps` / `max_frames`, [`FrameSampling`]) and their size are read from the video's container without
decoding the clip ([`r1video.data.video.probe_video`]; a frame folder from its listing, timed at 2 fps as the reader
times it), and the family turns them into a clip without pixels
(`VideoPolicy.layout_clip`) that expands exactly as the decoded clip does. A record whose video cannot be read keeps
the family's count without a clip (16 frames, Qwen's at the processor's largest frame size: an upper bound for up to
16 frames, not for more), and its line says so.

The functions take the policy as `policy`; without one they look it up from the processor (the registry is imported
there, at call time, so that `r1video.data` keeps no import of the families at module level).

An SFT record is also counted whole ([`conversation_length`]): training cuts a longer row at `max_length`, which
would drop the end of its reply (its `<answer>`), so such rows are reported and refused too. With its clip it is
counted as the SFT collator tokenises it (the family's `tokenize_conversation`).
"""

import logging
import os
from dataclasses import dataclass

from r1video.data.jsonio import iter_records
from r1video.data.paths import resolve_video_path
from r1video.data.records import RecordError, check_record, detect_format, prompt_messages, sft_messages
from r1video.data.video import VideoDecodeError, VideoLayout, probe_video

__all__ = [
    "FrameSampling",
    "RecordClips",
    "check_conversation_lengths",
    "check_prompt_lengths",
    "conversation_length",
    "model_max_length",
    "prompt_length",
]

logger = logging.getLogger(__name__)


def _policy(processor, policy):
    if policy is not None:
        return policy
    from r1video.policies import policy_for

    return policy_for(processor)


def model_max_length(processor, policy=None) -> int | None:
    """The prompt-length limit: the tokenizer's `model_max_length` (3072 for the released TinyLLaVA-Video models), or
    `None` when it sets no limit."""
    return _policy(processor, policy).max_length(processor)


@dataclass(frozen=True)
class FrameSampling:
    """The frames training samples from each clip: the recipe's `num_frames` / `fps` / `max_frames` / `autorotate`
    (as [`r1video.data.video.load_video_frames`] takes them; the trainers' defaults: 16 uniform frames)."""

    num_frames: int | None = 16
    fps: float | None = None
    max_frames: int | None = None
    autorotate: bool = True

    @classmethod
    def of(cls, config) -> "FrameSampling":
        """The sampling of a trainer config (`VideoSFTConfig`, `VideoGRPOConfig`)."""
        return cls(config.num_frames, config.fps, config.max_frames, config.autorotate)


class RecordClips:
    """Each record's clip as its prompt is counted: a clip without pixels (`policy.layout_clip`) from the frames
    training would sample from the record's video and their size, read from its container
    ([`r1video.data.video.probe_video`]: demuxed, one frame decoded), once per video.

    Args:
        video_root: The directory the records' video paths are relative to.
        processor: The model's processor.
        sampling: The recipe's frame sampling.
        policy: The model family (`VideoPolicy`); the processor's by default.
    """

    def __init__(self, video_root, processor, sampling: FrameSampling | None = None, policy=None):
        self.video_root = video_root
        self.processor = processor
        self.sampling = sampling or FrameSampling()
        self.policy = _policy(processor, policy)
        # a family whose prompt does not depend on the clip (TinyLLaVA-Video) has no layout: nothing is probed
        probe = VideoLayout([0, 0], fps=2.0, duration=1.0, num_total_frames=2, height=64, width=64)
        self.varies = self.policy.layout_clip(processor, probe) is not None
        self._layouts: dict[str, VideoLayout | str] = {}  # video path -> its layout, or why it has none

    def clip(self, record: dict):
        """`(clip, note)` for a checked record: its pixel-free clip and `""`; or `None` and why the record is counted
        without one (its video cannot be read), `""` when the family's count does not depend on the clip."""
        if not self.varies:
            return None, ""
        name = record["video"] if detect_format(record) == "sft" else record["video_filename"]
        try:
            path = resolve_video_path(self.video_root, name)
        except ValueError as exc:  # PathEscapeError included
            return None, f"counted without its clip: {exc}"
        if path not in self._layouts:
            self._layouts[path] = self._probe(path)
        layout = self._layouts[path]
        if isinstance(layout, str):
            return None, f"counted without its clip: {layout}"
        return self.policy.layout_clip(self.processor, layout), ""

    def _probe(self, path: str) -> VideoLayout | str:
        sampling = self.sampling
        try:
            layout = probe_video(path, sampling.num_frames, sampling.fps, sampling.max_frames,
                                 autorotate=sampling.autorotate)  # fmt: skip
        except VideoDecodeError as exc:
            return f"the video cannot be read ({exc.reason})"
        if layout is None:
            return "a raw stream without timestamps (its frames are not counted)"
        return layout


def prompt_length(processor, record: dict, question_template: str | None = None, policy=None, clip=None) -> int:
    """Tokens of a checked record's prompt as the model sees it (video placeholders included).

    Args:
        processor: The model family's processor.
        record: A record that passed [`check_record`].
        question_template: The GRPO question template (`{Question}` field), as training uses it.
        policy: The model family (`VideoPolicy`); the processor's by default.
        clip: The record's clip (decoded, or `RecordClips.clip`'s pixel-free one): its placeholder expanded exactly as
            the GRPO trainer expands it (`tokenize_prompts`); without one the family's count without a clip.
    """
    policy = _policy(processor, policy)
    messages = prompt_messages(record, question_template)
    text = policy.render_prompt(processor, messages, add_generation_prompt=True)
    if clip is not None:
        return len(policy.tokenize_prompts(processor, [text], [clip])[0])
    return policy.prompt_length(processor, text)


def conversation_length(processor, record: dict, policy=None, clip=None) -> int:
    """Tokens of a checked SFT record's whole conversation, replies included, as the model sees it: with `clip`, the
    ids the SFT collator builds (the family's `tokenize_conversation`); without one counted by the family's
    `prompt_length`."""
    policy = _policy(processor, policy)
    messages = sft_messages(record)
    if clip is not None:
        try:
            return len(policy.tokenize_conversation(processor, messages, clip)[0])
        except ValueError:  # a conversation the collator refuses (it names the row at train time): count its render
            text = policy.render_prompt(processor, messages, add_generation_prompt=False)
            return len(policy.tokenize_prompts(processor, [text], [clip])[0])
    text = policy.render_prompt(processor, messages, add_generation_prompt=False)
    return policy.prompt_length(processor, text)


def _listed(path, record, tokens: int, note: str) -> str:
    return f"{_where(path, record)}: {tokens}{f' ({note})' if note else ''}"


def check_conversation_lengths(
    path: str | os.PathLike,
    processor,
    max_length: int | None,
    max_listed: int = 5,
    policy=None,
    clips: RecordClips | None = None,
) -> None:
    """Refuse an SFT file with conversations longer than `max_length` (the SFT config's), naming the records.

    Training would cut such a row at `max_length` and with it the end of its reply: the model would be taught replies
    without their `<answer>`. Called by `r1video sft` once the processor is loaded, before step 1; malformed records
    are skipped (the loaders and `r1video data validate` report those).

    Args:
        clips: Each record's clip ([`RecordClips`]: the video root and the recipe's frame sampling), so that each
            conversation is counted with its own clip's video tokens; without it, the family's count without a clip.

    Raises:
        ValueError: some conversations are too long; the message gives file:line, id, tokens and the limit.
    """
    if max_length is None:
        return
    too_long = []
    for record in iter_records(path):
        try:
            check_record(record.value)
        except RecordError:
            continue
        if detect_format(record.value) != "sft":
            continue
        clip, note = clips.clip(record.value) if clips is not None else (None, "")
        tokens = conversation_length(processor, record.value, policy, clip)
        if tokens > max_length:
            too_long.append(_listed(path, record, tokens, note))
    if too_long:
        listed = "\n  ".join(too_long[:max_listed])
        more = f"\n  ... and {len(too_long) - max_listed} more" if len(too_long) > max_listed else ""
        raise ValueError(
            f"{len(too_long)} conversations are longer than max_length={max_length} tokens (video placeholders "
            "included): training would cut the end of their replies. Shorten or drop them, or raise max_length "
            f"(`r1video data validate --model` lists them all):\n  {listed}{more}"
        )


def _where(path, record) -> str:
    record_id = record.value.get("id")
    return f"{path}:{record.line}{f' (id {record_id!r})' if record_id is not None else ''}"


def check_prompt_lengths(
    path: str | os.PathLike,
    processor,
    question_template: str | None = None,
    max_length: int | None = None,
    max_listed: int = 5,
    policy=None,
    clips: RecordClips | None = None,
) -> None:
    """Refuse a data file whose prompts are longer than the model takes, naming the records.

    Called where training prepares its data set (the model and processor loaded), so a too-long question stops the
    run before step 1 with its line and id, instead of a generic tokenizer warning. Malformed records are skipped:
    the loaders and `r1video data validate` report those.

    Args:
        path: The annotation file the data set was loaded from.
        processor: The model's processor.
        question_template: The GRPO question template training applies.
        max_length: The limit; the tokenizer's `model_max_length` by default (no check when it sets none).
        max_listed: Records named in the error.
        policy: The model family (`VideoPolicy`); the processor's by default.
        clips: Each record's clip ([`RecordClips`]: the video root and the recipe's frame sampling), so that each
            prompt is counted with its own clip's video tokens; without it, the family's count without a clip.

    Raises:
        ValueError: Some prompts are too long; the message gives file:line, id, tokens and the limit.
    """
    policy = _policy(processor, policy)
    limit = max_length if max_length is not None else model_max_length(processor, policy)
    if limit is None:
        logger.warning("%s: the tokenizer sets no maximum length; prompt lengths are not checked", path)
        return
    too_long = []
    for record in iter_records(path):
        try:
            check_record(record.value)
        except RecordError:
            continue
        clip, note = clips.clip(record.value) if clips is not None else (None, "")
        tokens = prompt_length(processor, record.value, question_template, policy, clip)
        if tokens > limit:
            too_long.append(_listed(path, record, tokens, note))
    if too_long:
        listed = "\n  ".join(too_long[:max_listed])
        more = f"\n  ... and {len(too_long) - max_listed} more" if len(too_long) > max_listed else ""
        raise ValueError(
            f"{len(too_long)} prompts are longer than the model's maximum of {limit} tokens (video placeholders "
            f"included); shorten or drop them (`r1video data validate --model` lists them all):\n  {listed}{more}"
        )
