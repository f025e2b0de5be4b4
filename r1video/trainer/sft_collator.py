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
from r1video.data.video import VideoDecodeError
from r1video.policies import IGNORE_INDEX, Clip, VideoPolicy, policy_for
from r1video.policies.base import conversation_segments  # noqa: F401  (the label rule's segments, re-exported)

logger = logging.getLogger(__name__)

__all__ = ["IGNORE_INDEX", "VideoSFTCollator", "conversation_segments", "tokenize_conversation"]


def tokenize_conversation(
    processor, messages: list[dict], clip: Clip | None = None, policy: VideoPolicy | None = None
) -> tuple[list[int], list[int]]:
    """Token ids of a conversation (video placeholders expanded for `clip`) and its labels (-100 outside the replies).

    `policy` defaults to the processor's family (the policy's `tokenize_conversation`).

    Raises:
        ValueError: a reply contains a special token's text (e.g. `<|endoftext|>` or `<image>`), which the tokenizer
            would read as the control token itself.
    """
    return (policy or policy_for(processor)).tokenize_conversation(processor, messages, clip)


class VideoSFTCollator:
    """Turn rows with `messages` and `video` (a path, or `None` for a text-only row) into a batch for the model family.

    Each row's clip is decoded; a clip that fails is counted by a [`BadSampleTracker`] and its row dropped from the
    batch (the tracker raises once the bad fraction passes its limit). A batch whose clips all failed keeps one row
    with black frames and no supervised token, so that every process still runs the same forward and backward
    (DDP and ZeRO-3 would hang otherwise) and the step learns nothing.

    Args:
        processor: the model family's processor (chat template, tokenizer, frame preprocessing).
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
        policy: the model family ([`VideoPolicy`]); by default the processor's.
        conversation_format: `"chat"` (the chat template, replies supervised) or `"pretrain"` (the family's
            `tokenize_pretrain`: TinyLLaVA-Video's `<image>` + caption, only the video masked).

    Returns (on call):
        `dict` with `input_ids`, `attention_mask`, `labels` (`[B, L]`, right-padded) and, unless every row is
        text-only, the clips' tensors from the policy's `collate_clips` (TinyLLaVA-Video: `pixel_values_videos`,
        `[num_videos, F, 3, S, S]`, or a nested tensor when frame counts differ).
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
        policy: VideoPolicy | None = None,
        conversation_format: str = "chat",
    ):
        if conversation_format not in ("chat", "pretrain"):
            raise ValueError(f"conversation_format must be 'chat' or 'pretrain', got {conversation_format!r}")
        self.conversation_format = conversation_format
        self.processor = processor
        self.policy = policy or policy_for(processor)
        self.frame_kwargs = {"num_frames": num_frames, "fps": fps, "max_frames": max_frames, "autorotate": autorotate}
        self.max_length = max_length
        self.pad_to_multiple_of = pad_to_multiple_of
        self.tracker = BadSampleTracker(max_bad_fraction=max_bad_video_fraction) if tracker is None else tracker
        tokenizer = processor.tokenizer
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.cache = cache
        self._clips: dict[str, Clip] = {}  # clip path -> decoded clip (with `cache`)
        self._encoded: dict[str, tuple[list[int], list[int]]] = {}  # repr(messages) -> (ids, labels) (with `cache`)

    @classmethod
    def from_config(cls, processor, args, policy: VideoPolicy | None = None) -> "VideoSFTCollator":
        """The collator a [`VideoSFTConfig`] describes."""
        return cls(
            processor,
            policy=policy,
            num_frames=args.num_frames,
            fps=args.fps,
            max_frames=args.max_frames,
            autorotate=args.autorotate,
            max_length=args.max_length,
            pad_to_multiple_of=args.pad_to_multiple_of,
            max_bad_video_fraction=args.max_bad_video_fraction,
            cache=args.cache_clips,
            conversation_format=getattr(args, "conversation_format", "chat"),
        )

    def __call__(self, rows: list[dict]) -> dict:
        kept, clips = [], []  # clips: one per kept row (None: text-only)
        for row in rows:
            if row.get("video") is None:  # a text-only row
                kept.append(row)
                clips.append(None)
                continue
            clip = self._clip_of(row["video"])
            if clip is not None:
                kept.append(row)
                clips.append(clip)
        masked = not kept
        if masked:
            kept, clips = rows[:1], [self._black_clip()]
        encoded = [self._encode_cached(row, clip) for row, clip in zip(kept, clips, strict=True)]
        if masked:
            encoded = [(ids, [IGNORE_INDEX] * len(ids)) for ids, _ in encoded]
        batch = self._pad(encoded)
        videos = [clip for clip in clips if clip is not None]
        if videos:
            batch.update(self.policy.collate_clips(videos, input_ids=batch["input_ids"], processor=self.processor))
        return batch

    def _clip_of(self, path: str) -> Clip | None:
        """The decoded clip, or `None` when it failed to decode (counted by the tracker)."""
        if path in self._clips:
            self.tracker.record_good()
            return self._clips[path]
        try:
            clip = self.policy.decode_clip(self.processor, path, **self.frame_kwargs)
        except VideoDecodeError as exc:
            self.tracker.record_bad(path, exc)
            return None
        self.tracker.record_good()
        if self.cache:
            self._clips[path] = clip
        return clip

    def _encode_cached(self, row: dict, clip: Clip | None) -> tuple[list[int], list[int]]:
        if not self.cache:
            return self._encode(row, clip)
        tokens = None if clip is None else self.policy.video_token_count(self.processor, clip)
        key = repr((row.get("video") is None, row["messages"], tokens))
        if key not in self._encoded:
            self._encoded[key] = self._encode(row, clip)
        return self._encoded[key]

    def _encode(self, row: dict, clip: Clip | None) -> tuple[list[int], list[int]]:
        policy, processor = self.policy, self.processor
        tokenize = policy.tokenize_pretrain if self.conversation_format == "pretrain" else policy.tokenize_conversation
        input_ids, labels = tokenize(processor, row["messages"], clip)
        video_ids = set(policy.video_token_ids(processor))
        per_video = policy.video_token_count(processor, clip)
        placeholders = sum(i in video_ids for i in input_ids)
        expected = 0 if row.get("video") is None else per_video
        if placeholders != expected:
            raise ValueError(
                f"Row {row.get('id', '?')!r} renders {placeholders // per_video} video placeholders "
                f"for {expected // per_video} video; a row with a `video` needs exactly one "
                "{'type': 'video'} part, a text-only row none (a plain-text turn that starts or ends with '<image>' "
                "marks a clip)."
            )
        if self.max_length is not None and len(input_ids) > self.max_length:
            if sum(i in video_ids for i in input_ids[: self.max_length]) != placeholders:
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

    def _black_clip(self) -> Clip:
        frames = self.frame_kwargs["num_frames"] or self.frame_kwargs["max_frames"] or 1
        return self.policy.clip_from_frames(self.processor, np.zeros((frames, 8, 8, 3), dtype=np.uint8))
