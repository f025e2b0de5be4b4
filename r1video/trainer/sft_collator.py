"""Video SFT batches: decode each row's clip, tokenise its conversation, supervise only the assistant replies.

Label rule. A conversation is cut into segments by rendering its prefixes with the chat template: for every
assistant turn, the text up to and including the generation prompt (`"... ASSISTANT:"` for `qwen2_base`) is a prompt
segment, and what the full render adds after it (`" {reply}<|endoftext|>"`) is a reply segment. Each segment is
tokenised on its own and the ids are concatenated, so a reply's tokens are exactly those the model would generate
after that prompt (as in GRPO). Reply tokens, their end-of-text token included, get labels equal to their ids; every
other token (system line, questions, video placeholders, role tags, padding) gets -100. No token-count arithmetic
is involved, so TinyLLaVA's "-1" correction for the space that BPE merges into the first answer token is not needed:
that space belongs to the reply segment.

Padding. Qwen2.5-base pads with its end-of-text token (pad == eos). Rows are right-padded and the attention mask
comes from the true lengths, never from `input_ids != pad_token_id`, so a real end-of-text token is attended and
supervised while padding is neither.
"""

import logging

import numpy as np
import torch

from r1video.data.bad_samples import BadSampleTracker
from r1video.trainer.step_videos import pack

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100


def conversation_segments(processor, messages: list[dict]) -> list[tuple[str, bool]]:
    """Cut a rendered conversation into `(text, supervised)` segments whose concatenation is the full render.

    Args:
        processor: renders with its chat template (`apply_chat_template(..., tokenize=False)`).
        messages: TRL conversational messages ending with an assistant turn.

    Raises:
        ValueError: the chat template does not render prefixes as prefixes of the full conversation, so replies
            cannot be located.
    """

    def render(turns, add_generation_prompt=False):
        return processor.apply_chat_template(turns, tokenize=False, add_generation_prompt=add_generation_prompt)

    segments, done = [], ""
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt, full = render(messages[:i], add_generation_prompt=True), render(messages[: i + 1])
        if not (prompt.startswith(done) and full.startswith(prompt)):
            raise ValueError(
                "The chat template does not render a conversation's prefixes as prefixes of it, so the assistant "
                f"replies cannot be located. Prompt of turn {i}: {prompt!r}; rendered with the reply: {full!r}"
            )
        segments += [(prompt[len(done) :], False), (full[len(prompt) :], True)]
        done = full
    rest = render(messages)[len(done) :]
    if rest:
        segments.append((rest, False))
    return segments


def _reply_texts(messages: list[dict]) -> list[str]:
    texts = []
    for message in messages:
        if message["role"] != "assistant":
            continue
        content = message["content"]
        texts.append(content if isinstance(content, str) else "".join(p.get("text") or "" for p in content))
    return texts


def tokenize_conversation(processor, messages: list[dict]) -> tuple[list[int], list[int]]:
    """Token ids of a conversation (video placeholders expanded) and its labels (-100 outside the replies).

    Raises:
        ValueError: a reply contains a special token's text (e.g. `<|endoftext|>` or `<image>`), which the tokenizer
            would read as the control token itself.
    """
    tokenizer = processor.tokenizer
    specials = {*tokenizer.all_special_tokens, processor.video_token}
    for text in _reply_texts(messages):
        found = sorted(token for token in specials if token in text)
        if found:
            raise ValueError(
                f"An assistant reply contains the special token text {found}, which would be read as the token "
                f"itself; remove it from the data. Reply: {text!r}"
            )
    segments = conversation_segments(processor, messages)
    ids_per_segment = [processor.encode(text, add_special_tokens=False) for text, _ in segments]
    input_ids, labels = [], []
    for (_, supervised), ids in zip(segments, ids_per_segment, strict=True):
        input_ids += ids
        labels += ids if supervised else [IGNORE_INDEX] * len(ids)
    return input_ids, labels


class VideoSFTCollator:
    """Turn rows with `messages` and `video` (a path, or `None` for a text-only row) into a TinyLLaVA-Video batch.

    Each row's clip is decoded; a clip that fails is counted by a [`BadSampleTracker`] and its row dropped from the
    batch (the tracker raises once the bad fraction passes its limit). A batch whose clips all failed keeps one row
    with black frames and no supervised token, so that every process still runs the same forward and backward
    (DDP and ZeRO-3 would hang otherwise) and the step learns nothing.

    Args:
        processor: a [`TinyLlavaVideoProcessor`] (chat template, tokenizer, frame preprocessing).
        num_frames, fps, max_frames, autorotate: frame sampling, as [`load_video_frames`].
        max_length: rows longer than this lose their end; an error if that would cut video placeholders or reply
            tokens.
        pad_to_multiple_of: pad the batch length to a multiple of this.
        max_bad_video_fraction: limit of the bad-clip tracker (ignored when `tracker` is given).
        tracker: an existing [`BadSampleTracker`] to count bad clips with.
        cache: keep each clip's preprocessed frames and each conversation's tokens after their first use, for small
            data sets seen many times (the demo's); memory grows with the distinct clips and conversations. A clip
            that failed is not kept: it is tried and counted again each time, as without the cache, and a cached clip
            counts as a good load.

    Returns (on call):
        `dict` with `input_ids`, `attention_mask`, `labels` (`[B, L]`, right-padded) and, unless every row is
        text-only, `pixel_values_videos` (`[num_videos, F, 3, S, S]`, or a nested tensor when frame counts differ).
    """

    def __init__(
        self,
        processor,
        num_frames: int | None = 16,
        fps: float | None = None,
        max_frames: int | None = None,
        autorotate: bool = True,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        max_bad_video_fraction: float = 0.05,
        tracker: BadSampleTracker | None = None,
        cache: bool = False,
    ):
        self.processor = processor
        self.frame_kwargs = {"num_frames": num_frames, "fps": fps, "max_frames": max_frames, "autorotate": autorotate}
        self.max_length = max_length
        self.pad_to_multiple_of = pad_to_multiple_of
        self.tracker = BadSampleTracker(max_bad_fraction=max_bad_video_fraction) if tracker is None else tracker
        tokenizer = processor.tokenizer
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.cache = cache
        self._pixels: dict[str, torch.Tensor] = {}  # clip path -> preprocessed frames (with `cache`)
        self._encoded: dict[str, tuple[list[int], list[int]]] = {}  # repr(messages) -> (ids, labels) (with `cache`)

    @classmethod
    def from_config(cls, processor, args) -> "VideoSFTCollator":
        """The collator a [`VideoSFTConfig`] describes."""
        return cls(
            processor,
            num_frames=args.num_frames,
            fps=args.fps,
            max_frames=args.max_frames,
            autorotate=args.autorotate,
            max_length=args.max_length,
            pad_to_multiple_of=args.pad_to_multiple_of,
            max_bad_video_fraction=args.max_bad_video_fraction,
            cache=args.cache_clips,
        )

    def __call__(self, rows: list[dict]) -> dict:
        kept, videos = [], []
        for row in rows:
            if row.get("video") is None:  # a text-only row
                kept.append(row)
                continue
            pixels = self._pixels_of(row["video"])
            if pixels is not None:
                kept.append(row)
                videos.append(pixels)
        masked = not kept
        if masked:
            kept, videos = rows[:1], [self._black_video()]
        encoded = [self._encode_cached(row) for row in kept]
        if masked:
            encoded = [(ids, [IGNORE_INDEX] * len(ids)) for ids, _ in encoded]
        batch = self._pad(encoded)
        if videos:
            batch["pixel_values_videos"] = pack(videos)
        return batch

    def _pixels_of(self, path: str) -> torch.Tensor | None:
        """The preprocessed frames of a clip, or `None` when it failed to decode (counted by the tracker)."""
        if path in self._pixels:
            self.tracker.record_good()
            return self._pixels[path]
        # Preprocessed frame by frame as decoded: one full-size frame alive at a time.
        clip = self.tracker.load(path, frame_transform=self.processor.preprocess_frames, **self.frame_kwargs)
        if clip is None:
            return None
        pixels = clip.frames
        if self.cache:
            self._pixels[path] = pixels
        return pixels

    def _encode_cached(self, row: dict) -> tuple[list[int], list[int]]:
        if not self.cache:
            return self._encode(row)
        key = repr((row.get("video") is None, row["messages"]))
        if key not in self._encoded:
            self._encoded[key] = self._encode(row)
        return self._encoded[key]

    def _encode(self, row: dict) -> tuple[list[int], list[int]]:
        input_ids, labels = tokenize_conversation(self.processor, row["messages"])
        placeholders = input_ids.count(self.processor.video_token_id)
        expected = 0 if row.get("video") is None else self.processor.num_queries
        if placeholders != expected:
            raise ValueError(
                f"Row {row.get('id', '?')!r} renders {placeholders // self.processor.num_queries} video placeholders "
                f"for {expected // self.processor.num_queries} video; a row with a `video` needs exactly one "
                "{'type': 'video'} part, a text-only row none (a plain-text turn that starts or ends with '<image>' "
                "marks a clip)."
            )
        if self.max_length is not None and len(input_ids) > self.max_length:
            if input_ids[: self.max_length].count(self.processor.video_token_id) != placeholders:
                raise ValueError(
                    f"max_length={self.max_length} would cut the video placeholders of row {row.get('id', '?')!r} "
                    f"({len(input_ids)} tokens); raise max_length."
                )
            cut = sum(label != IGNORE_INDEX for label in labels[self.max_length :])
            if cut:  # never train on a reply without its end (its <answer>)
                raise ValueError(
                    f"Row {row.get('id', '?')!r} is {len(input_ids)} tokens, over max_length={self.max_length}: "
                    f"cutting it would drop {cut} tokens of its reply. Shorten or drop the row, or raise max_length "
                    "(`r1video data validate --model` lists such rows)."
                )
            input_ids, labels = input_ids[: self.max_length], labels[: self.max_length]
        return input_ids, labels

    def _pad(self, encoded: list[tuple[list[int], list[int]]]) -> dict:
        length = max(len(ids) for ids, _ in encoded)
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = torch.full((len(encoded), length), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(encoded), length), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((len(encoded), length), dtype=torch.long)
        for row, (ids, row_labels) in enumerate(encoded):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            labels[row, : len(ids)] = torch.tensor(row_labels)
            attention_mask[row, : len(ids)] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}

    def _black_video(self) -> torch.Tensor:
        frames = self.frame_kwargs["num_frames"] or self.frame_kwargs["max_frames"] or 1
        return self.processor.preprocess_frames(np.zeros((frames, 8, 8, 3), dtype=np.uint8))
