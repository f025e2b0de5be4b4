"""The videos of one GRPO generation batch, and the per-row batch keys that carry them.

A generation batch holds every prompt G times (TRL's sampler repeats it), so decoding per row would decode each clip G
times. [`load_step_videos`] decodes the distinct paths once and keeps, for every row, the index of its clip.
[`row_video_keys`] turns that table into keys with one entry per row, which TRL's buffering, shuffling and
`steps_per_generation` slicing carry like any other key (they permute and slice every list and tensor along its first
dimension, so a key shaped per clip would be mis-sliced); [`video_model_inputs`] turns any slice of those rows back
into model inputs with each distinct clip once.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from r1video.data.bad_samples import BadSampleTracker

VIDEO_KEYS = ("video_index", "video_pixels", "video_tower_features")


@dataclass
class StepVideos:
    """Distinct videos of a batch and the row → video map.

    Attributes:
        pixels: one `[F_i, 3, S, S]` tensor per distinct video.
        index: `[rows]` long tensor, the distinct video of each row; -1 for a text-only row.
        bad_rows: `[rows]` bool tensor, rows whose clip failed to decode (they were given black frames and must get
            no loss).
        tower_features: per distinct video, the vision tower's output `[F_i * tokens, Dv]`, when precomputed.
    """

    pixels: list[torch.Tensor]
    index: torch.LongTensor
    bad_rows: torch.BoolTensor
    tower_features: list[torch.Tensor] | None = None


def load_step_videos(
    paths: list[str | None],
    preprocess,
    tracker: BadSampleTracker,
    num_frames: int | None = None,
    fps: float | None = None,
    max_frames: int | None = None,
    autorotate: bool = True,
) -> StepVideos:
    """Decode and preprocess the distinct clips of a batch.

    Args:
        paths: the `video` column of the batch's rows (repeats allowed; `None` for a text-only row).
        preprocess: frames `[T, H, W, 3]` uint8 -> `[T, 3, S, S]` tensor (the processor's `preprocess_frames`).
        tracker: counts clips that fail to decode and stops the run past its limit.
        num_frames, fps, max_frames, autorotate: frame sampling, as `load_video_frames`.

    Each frame is preprocessed as soon as it is decoded, so a step holds one full-size frame at a time, not every
    clip's frames at the source's resolution (a 4K clip would cost 400 MB before resizing).
    """
    distinct = list(dict.fromkeys(path for path in paths if path is not None))
    frames = {"num_frames": num_frames, "fps": fps, "max_frames": max_frames, "autorotate": autorotate}
    decoded = {path: tracker.load(path, frame_transform=preprocess, **frames) for path in distinct}
    pixels = {path: video.frames for path, video in decoded.items() if video is not None}
    if len(pixels) < len(distinct):
        # A bad clip still needs a tensor of a usable shape so the batch runs; its rows are masked out of the loss.
        shape = next(iter(pixels.values())).shape if pixels else None
        for path in distinct:
            if path not in pixels:
                pixels[path] = torch.zeros(shape) if shape is not None else preprocess_black(preprocess, num_frames)
    position = {path: i for i, path in enumerate(distinct)}
    return StepVideos(
        pixels=[pixels[path] for path in distinct],
        index=torch.tensor([position.get(path, -1) for path in paths], dtype=torch.long),
        bad_rows=torch.tensor([path is not None and decoded[path] is None for path in paths], dtype=torch.bool),
    )


def row_video_keys(videos: StepVideos) -> dict:
    """The batch keys that give every row its clip (the row → clip contract of `VideoGRPOTrainer`).

    Returns:
        `video_index`: `[rows]` long tensor, the row's clip in this generation batch (-1: text-only). Rows of one clip
            share the number, so after any shuffle or slice it still tells which rows share a clip.
        `video_pixels`: list of `rows` entries, the row's preprocessed frames `[F, 3, S, S]` (`None`: text-only).
        `video_tower_features`: list of `rows` entries, the row's vision-tower output `[F * tokens, Dv]`, or `None`
            when the tower was not run ahead (then every pass runs it on `video_pixels`).
        Rows of one clip hold the same tensor object: nothing is copied per row.
    """
    rows = videos.index.tolist()

    def per_row(table):
        return [None if clip < 0 else table[clip] for clip in rows]

    return {
        "video_index": videos.index,
        "video_pixels": per_row(videos.pixels),
        "video_tower_features": None if videos.tower_features is None else per_row(videos.tower_features),
    }


def batch_clips(batch: Mapping) -> tuple[str, dict[int, torch.Tensor]]:
    """The distinct clips of a batch's rows (keys of [`row_video_keys`], any slice or order of them).

    Returns the model keyword the clips go to (`video_tower_features` or `pixel_values_videos`) and a map from clip
    number (`video_index`) to its tensor.
    """
    features = batch.get("video_tower_features")
    if features is not None:
        key, table = "video_tower_features", features
    else:
        key, table = "pixel_values_videos", batch["video_pixels"]
    clips = {clip: tensor for clip, tensor in zip(batch["video_index"].tolist(), table, strict=True) if clip >= 0}
    return key, clips


def video_model_inputs(index: torch.LongTensor, clips: Mapping[int, torch.Tensor], key: str, reuse: bool) -> dict:
    """Model keyword arguments that give the rows `index` (clip numbers, -1: no video) their videos.

    With `reuse`, each distinct clip is passed once and `video_index` maps the rows' placeholder groups to it (the
    connector runs once per distinct clip); without it, every row gets its own copy, as the original implementation.
    """
    index = index[index >= 0]  # placeholder groups appear in row order; text-only rows have none
    if index.numel() == 0:
        return {}
    if not reuse:
        return {key: pack([clips[clip] for clip in index.tolist()])}
    used, remapped = torch.unique(index, return_inverse=True)
    return {key: pack([clips[clip] for clip in used.tolist()]), "video_index": remapped}


def preprocess_black(preprocess, num_frames: int | None) -> torch.Tensor:
    """Black frames at the processor's size, for a batch whose clips all failed."""
    import numpy as np

    return torch.zeros_like(preprocess(np.zeros((num_frames or 1, 8, 8, 3), dtype=np.uint8)))


def pack(tensors: list[torch.Tensor]) -> torch.Tensor:
    """One tensor for a list of per-video tensors: stacked when shapes agree, else a nested tensor.

    TRL forwards only tensors to `generate`; a nested tensor carries videos with different frame counts.
    """
    if len({tuple(t.shape) for t in tensors}) == 1:
        return torch.stack(tensors)
    return torch.nested.nested_tensor(tensors)
