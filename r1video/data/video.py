"""Video decoding with PyAV: sample frames by index without decoding the whole clip.

Frame selection follows the TinyLLaVA-Video rule, so training and evaluation see the frames the released models saw:
`N` frames are `np.linspace(0, T - 1, N, dtype=int)` over the `T` frames of the stream (rounded down, repeats
allowed when `N > T`), and "`f` frames per second" means `max(1, int(duration * f))` frames picked by the same rule,
at most `max_frames` (128 when it is not set, with a warning when that cap applies).

How a frame is found. The container is first *demuxed* (packets are read, nothing is decoded) to build a timestamp
index: the presentation timestamp of every frame, in display order, and where the keyframes are. Frame `i` is then
the frame whose timestamp is the `i`-th smallest, which is exact for variable-frame-rate streams and for containers
that do not store a frame count (Matroska, WebM, MPEG-TS). To decode it we seek to the keyframe at or before it and
decode forward to its timestamp; when the next target lies in the GOP being decoded we keep decoding instead of
seeking again; on the way, non-reference frames that are not targets are skipped (nothing is predicted from them).
Decoding from a keyframe gives bit-identical frames to a sequential decode. Streams whose packets carry
no timestamps (raw elementary streams such as `.h264`) cannot seek: they are decoded from the start, once to count
the frames and once to keep the chosen ones.

Frames come out as a player shows them: the rotation of the stream's display matrix (phone clips) is applied unless
`autorotate=False`. Every FFmpeg failure becomes a [`VideoDecodeError`] naming the file, and so does a decoded
frame FFmpeg flags as damaged (it conceals damaged data and would otherwise hand out a broken frame silently);
[`check_video_file`] decodes every frame to find damage anywhere in a clip (`r1video data validate` runs it).
"""

import bisect
import functools
import itertools
import os
import warnings
from collections.abc import Callable
from fractions import Fraction
from typing import Any, NamedTuple

import numpy as np

try:
    import av
    from av.video.reformatter import VideoReformatter
except ImportError:  # reading or writing a file needs PyAV; in-memory frames (the GPU bench) do not
    av = None

__all__ = [
    "DEFAULT_FPS_MAX_FRAMES",
    "RATELESS_FPS",
    "VideoDecodeError",
    "VideoFrames",
    "VideoLayout",
    "check_video_file",
    "fps_frame_count",
    "load_video_frames",
    "plan_runs",
    "probe_video",
    "rateless_fps",
    "uniform_indices",
    "write_video",
]


class VideoDecodeError(ValueError):
    """A video file that cannot be used.

    Args:
        path: The file.
        reason: What is wrong with it, in a few words.
        kind: One of `missing`, `not_a_video`, `no_video_stream`, `no_frames`, `truncated`, `corrupt`.
    """

    def __init__(self, path: str | os.PathLike, reason: str, kind: str = "corrupt"):
        self.path = str(path)
        self.reason = reason
        self.kind = kind
        super().__init__(f"{self.path}: {reason}")


class VideoFrames(NamedTuple):
    """Frames sampled from a video.

    Attributes:
        frames: `uint8` array of shape `(N, H, W, 3)`, RGB.
        indices: The frame index (in display order) of each returned frame; repeats when more frames were asked for
            than the stream has.
        fps: The stream's average frame rate (frames per second); [`RATELESS_FPS`] (2.0) for a source without one
            (a frame folder, a stream that reports none).
        duration: The stream's duration in seconds (`T / 2` for a frame folder).
        num_total_frames: `T`, the number of frames in the stream.
        rotation: The stream's display rotation in degrees, counter-clockwise (FFmpeg's sign: a phone clip tagged
            "rotate 90" reads -90); frames were turned by it unless `autorotate=False`. 0 for frame folders.
    """

    frames: np.ndarray
    indices: list[int]
    fps: float
    duration: float
    num_total_frames: int
    rotation: int = 0


class VideoLayout(NamedTuple):
    """Which frames [`load_video_frames`] would return for a clip and their size, found without decoding them
    ([`probe_video`]).

    Attributes:
        indices: The frame indices it would return (display order; repeats when more frames are asked for than the
            stream has).
        fps: The stream's average frame rate ([`RATELESS_FPS`], 2.0, for a source without one: a frame folder, a stream
            that reports none).
        duration: The stream's duration in seconds (`T / 2` for a frame folder).
        num_total_frames: `T`, the number of frames in the stream.
        height, width: The size of the returned frames, after `autorotate` turned them.
    """

    indices: list[int]
    fps: float
    duration: float
    num_total_frames: int
    height: int
    width: int


def check_frame_rule(num_frames: int | None, fps: float | None, max_frames: int | None) -> None:
    """Frames are chosen either uniformly (`num_frames`) or per second (`fps`, capped by `max_frames`).

    Raises:
        ValueError: both or neither of `num_frames` and `fps` are set, or `max_frames` is set without `fps`.
    """
    if (num_frames is None) == (fps is None):
        raise ValueError(
            f"Set exactly one of num_frames ({num_frames}) and fps ({fps}): uniform frames or frames per second."
        )
    if max_frames is not None and fps is None:
        raise ValueError("max_frames caps fps sampling; with num_frames it has no effect. Drop one of them.")


def uniform_indices(num_total_frames: int, num_frames: int) -> list[int]:
    """`num_frames` indices spread uniformly over `[0, num_total_frames - 1]`, rounded down (the original rule)."""
    if num_total_frames <= 0 or num_frames <= 0:
        raise ValueError(f"need a positive frame count, got {num_total_frames} total and {num_frames} asked for")
    return np.linspace(0, num_total_frames - 1, num_frames, dtype=int).tolist()


DEFAULT_FPS_MAX_FRAMES = 128  # the original evaluation's larger cap ("1 fps, at most 64/128 frames")


def fps_frame_count(duration: float, fps: float, max_frames: int | None = None) -> int:
    """How many frames "`fps` frames per second" means for a clip: `max(1, int(duration * fps))`, capped.

    Args:
        duration: The clip's length in seconds.
        fps: Frames per second of video.
        max_frames: The cap; `None` applies [`DEFAULT_FPS_MAX_FRAMES`] (128), with a warning when it cuts the count
            (a 2-hour clip at 1 fps would be 7,200 frames, about 12 GiB of pixels at 384 px); `0` sets no cap.
    """
    count = max(1, int(duration * fps))
    if max_frames is None and count > DEFAULT_FPS_MAX_FRAMES:
        warnings.warn(  # the text depends on the settings only, so Python shows it once per run, not per clip
            f"fps={fps} sampling is capped at the default max_frames={DEFAULT_FPS_MAX_FRAMES} frames per clip (clips "
            f"longer than {DEFAULT_FPS_MAX_FRAMES / fps:g} s get {DEFAULT_FPS_MAX_FRAMES} frames spread over them); set "
            "max_frames to choose the cap, 0 for none",
            UserWarning,
            stacklevel=2,
        )
        return DEFAULT_FPS_MAX_FRAMES
    return min(count, max_frames) if max_frames else count


RATELESS_FPS = 2.0  # qwen-vl-utils' rate for a video given as a list of frames


@functools.cache  # the warning once per process, whatever the warning filters (they change during a run)
def rateless_fps() -> float:
    """The frame rate a source without one is timed at: [`RATELESS_FPS`], 2 frames per second, the rate
    qwen-vl-utils gives a video handed to it as a list of frames. Frame `i` of a frame folder is at `i / 2` s and a
    folder of `T` frames lasts `T / 2` s, so families that place frames in time (Qwen2.5-VL's `second_per_grid_ts`,
    Qwen3-VL's and Qwen3.5's timestamps, SmolVLM2's frame times) get a clip. Warns the first time only, once per
    process (`rateless_fps.cache_clear()` warns again)."""
    warnings.warn(
        f"a video without a frame rate (a frame folder, or a stream that reports none) is timed at {RATELESS_FPS:g} "
        f"fps, qwen-vl-utils' rate for a list of frames: frame i at i/{RATELESS_FPS:g} s (docs/data.md, Frame folders)",
        UserWarning,
        stacklevel=2,
    )
    return RATELESS_FPS


class _Index(NamedTuple):
    """The timestamp index of a video stream, from demuxing alone."""

    pts: list[int]  # presentation timestamps in display order, in stream.time_base units
    num_packets: int  # packets read, including the ones an edit list discards
    keyframe_pts: list[int]  # sorted timestamps of keyframes
    frame_duration: float | None  # seconds, of the last packet (for the clip's duration)
    keyframe_dts: dict[int, int] | None = None  # keyframe pts -> its decode timestamp (what MPEG-TS/PS seek by)
    pts_rise_in_decode_order: bool = False  # packet pts never fall in file order (AVI numbers packets this way)
    pts_unique: bool = True  # no two packets share a timestamp (MPEG-PS guesses some, and repeats them)


def load_video_frames(
    path: str | os.PathLike,
    num_frames: int | None = None,
    fps: float | None = None,
    max_frames: int | None = None,
    *,
    autorotate: bool = True,
    frame_transform: Callable[[np.ndarray], Any] | None = None,
) -> VideoFrames:
    """Decode selected frames of a video file, or read them from a folder of frame images.

    Args:
        path: The video file (anything FFmpeg reads: mp4, mkv, webm, avi, raw `.h264`, ...), or a folder of frame
            images (see [`r1video.data.frame_folder`]).
        num_frames: Take this many frames at `np.linspace(0, T - 1, num_frames, dtype=int)`.
        fps: Take `max(1, int(duration * fps))` frames, spread by the same rule. Exclusive with `num_frames`.
        max_frames: Upper bound on the number of frames (with `fps`, or alone to cap "every frame"). With `fps` and
            no `max_frames` the cap is [`DEFAULT_FPS_MAX_FRAMES`] (128, with a warning when it applies); `0` sets no
            cap. With neither `num_frames` nor `fps`, every frame is returned.
        autorotate: Turn frames as a player shows them, by the rotation of the stream's display matrix (phone clips
            are stored sideways with a "rotate 90" tag); `False` keeps the stored orientation (what decord, the
            original's reader, returned). Multiples of 90 degrees only, like FFmpeg's own `-autorotate`.
        frame_transform: Called on each frame as soon as it is decoded, as a `(1, H, W, 3)` uint8 batch of one
            (e.g. a processor's `preprocess_frames`); `frames` is then its outputs concatenated along the first axis
            (`np.concatenate`, or `torch.cat` for tensors). Only one full-size RGB frame is alive at a time, so
            memory follows the transform's output size, not the source's.

    Returns:
        A [`VideoFrames`] with the RGB frames (or the transform's output), the indices used, the stream's fps, its
        duration and its display rotation.

    Raises:
        VideoDecodeError: The file is missing, not a video, has no video stream, has no decodable frame, is
            truncated (a frame the index lists cannot be decoded), or FFmpeg fails on it in any other way.
    """
    if num_frames is not None and fps is not None:
        raise ValueError("pass `num_frames` or `fps`, not both")
    if os.path.isdir(path):
        from r1video.data.frame_folder import load_frame_folder

        return load_frame_folder(path, num_frames, fps, max_frames, frame_transform=frame_transform)
    if not os.path.isfile(path):
        raise VideoDecodeError(path, "missing (no such file)", "missing")
    _require_av()
    convert = _converter(autorotate, frame_transform)
    try:
        return _load_file(path, num_frames, fps, max_frames, convert)
    except av.FFmpegError as exc:  # any FFmpeg failure the steps below did not name more precisely
        raise VideoDecodeError(path, f"FFmpeg cannot decode it ({_ffmpeg_message(exc)})") from exc


def _load_file(path, num_frames, fps, max_frames, convert) -> VideoFrames:
    container = _open(path)
    try:
        if not container.streams.video:
            raise VideoDecodeError(path, "no video stream", "no_video_stream")
        stream = container.streams.video[0]
        index = _build_index(container, stream, path)
        if index is None:  # no timestamps (a raw elementary stream): decode from the start, no seeking
            return _load_sequential(path, num_frames, fps, max_frames, convert)
        total = len(index.pts)
        if total == 0:
            raise VideoDecodeError(path, "zero decodable frames (the video stream is empty)", "no_frames")
        if stream.frames and index.num_packets < stream.frames:  # MP4: the index promises frames the file lacks
            reason = f"truncated (the container lists {stream.frames} frames, the file holds {index.num_packets})"
            raise VideoDecodeError(path, reason, "truncated")
        stream_fps = _stream_fps(stream, index, total)
        duration = _duration(stream, index, total, stream_fps)
        indices = _select(total, duration, num_frames, fps, max_frames)
        frames, rotation = _decode_at(container, stream, path, index, indices, convert, with_rotation=True)
    finally:
        container.close()
    return VideoFrames(frames, indices, stream_fps, duration, total, rotation)


def probe_video(
    path: str | os.PathLike,
    num_frames: int | None = None,
    fps: float | None = None,
    max_frames: int | None = None,
    *,
    autorotate: bool = True,
) -> VideoLayout | None:
    """Which frames [`load_video_frames`] would return with these arguments and their size, from the container alone:
    the stream is demuxed (no frame decoded) to index its timestamps, the frames are chosen by the same rule, and only
    the first chosen frame is decoded, for its size and display rotation. A frame folder is listed and its first
    chosen image's header read.

    Returns:
        A [`VideoLayout`], or `None` for a stream whose packets carry no timestamps (raw `.h264`, `.hevc`): counting
        its frames means decoding them all.

    Raises:
        VideoDecodeError: as [`load_video_frames`], for what demuxing and the first frame show (damage further in is
            found only by decoding the clip).
    """
    if num_frames is not None and fps is not None:
        raise ValueError("pass `num_frames` or `fps`, not both")
    if os.path.isdir(path):
        from r1video.data.frame_folder import probe_frame_folder

        return probe_frame_folder(path, num_frames, fps, max_frames)
    if not os.path.isfile(path):
        raise VideoDecodeError(path, "missing (no such file)", "missing")
    try:
        container = _open(path)
        try:
            if not container.streams.video:
                raise VideoDecodeError(path, "no video stream", "no_video_stream")
            stream = container.streams.video[0]
            index = _build_index(container, stream, path)
            if index is None:
                return None
            total = len(index.pts)
            if total == 0:
                raise VideoDecodeError(path, "zero decodable frames (the video stream is empty)", "no_frames")
            if stream.frames and index.num_packets < stream.frames:
                reason = f"truncated (the container lists {stream.frames} frames, the file holds {index.num_packets})"
                raise VideoDecodeError(path, reason, "truncated")
            stream_fps = _stream_fps(stream, index, total)
            duration = _duration(stream, index, total, stream_fps)
            indices = _select(total, duration, num_frames, fps, max_frames)
            # the first chosen frame, seen as `_converter` sees it: its stored size and display rotation
            size, rotation = _decode_at(
                container, stream, path, index, indices[:1], lambda frame: np.array([[frame.height, frame.width]]),
                with_rotation=True,
            )  # fmt: skip
        finally:
            container.close()
    except av.FFmpegError as exc:
        raise VideoDecodeError(path, f"FFmpeg cannot decode it ({_ffmpeg_message(exc)})") from exc
    height, width = (int(side) for side in size[0])
    if autorotate and round(rotation / 90) % 2:  # a quarter turn swaps the sides, as `_converter` turns frames
        height, width = width, height
    return VideoLayout(indices, stream_fps, duration, total, height, width)


def _converter(autorotate: bool, frame_transform) -> Callable[["av.VideoFrame"], Any]:
    """Decoded frame -> what is kept of it, as a batch of one: `(1, H, W, 3)` RGB turned upright, or its transform."""

    # One converter for the clip: `frame.to_ndarray(format=...)` builds a new swscale context for every frame, which
    # cost more than decoding on small clips (1.7 ms per 176x144 frame); the output is the same.
    reformatter = VideoReformatter()

    def convert(frame: av.VideoFrame):
        array = reformatter.reformat(frame, format="rgb24").to_ndarray()
        turns = round(frame.rotation / 90) % 4 if autorotate else 0
        if turns:  # frame.rotation is counter-clockwise, as np.rot90 turns
            array = np.ascontiguousarray(np.rot90(array, turns))
        return array[None] if frame_transform is None else frame_transform(array[None])

    return convert


def _stack(items: list) -> Any:
    """Concatenate converted frames (batches of one) along the first axis: numpy arrays, or torch tensors."""
    if isinstance(items[0], np.ndarray):
        return np.concatenate(items)
    import torch  # a transform that returns tensors (the processor's); torch is installed then

    return torch.cat(items)


def _open(path) -> "av.container.InputContainer":
    _require_av()
    try:
        return av.open(str(path), mode="r")
    except av.FFmpegError as exc:
        with open(path, "rb") as f:
            head = f.read(12)
        if head[4:8] == b"ftyp":  # an MP4/MOV header whose index (moov box) never arrived
            raise VideoDecodeError(path, f"truncated or corrupt MP4 ({_ffmpeg_message(exc)})", "truncated") from exc
        raise VideoDecodeError(path, f"not a video ({_ffmpeg_message(exc)})", "not_a_video") from exc


def _require_av() -> None:
    if av is None:
        raise ImportError("reading and writing video files needs PyAV: pip install av")


def _ffmpeg_message(exc: "av.FFmpegError") -> str:
    return getattr(exc, "strerror", None) or str(exc)


def _build_index(container, stream, path) -> _Index | None:
    """Demux every packet of `stream` (no decoding); `None` when the packets carry no timestamps."""
    pts, keyframe_pts, keyframe_dts, last_duration, num_packets = [], [], {}, None, 0
    rising, previous = True, None
    try:
        for packet in container.demux(stream):
            if packet.size == 0:  # the flush packet at the end
                continue
            num_packets += 1
            if packet.is_discard:  # a frame an edit list cuts
                continue
            if packet.pts is None:
                return None
            rising = rising and (previous is None or packet.pts > previous)
            previous = packet.pts
            pts.append(packet.pts)
            if packet.is_keyframe:
                keyframe_pts.append(packet.pts)
                keyframe_dts[packet.pts] = packet.dts if packet.dts is not None else packet.pts
            last_duration = packet.duration
    except av.FFmpegError as exc:
        raise VideoDecodeError(path, f"corrupt container ({_ffmpeg_message(exc)})") from exc
    pts.sort()
    keyframe_pts.sort()
    frame_duration = float(last_duration * stream.time_base) if last_duration else None
    unique = all(a < b for a, b in itertools.pairwise(pts))
    return _Index(pts, num_packets, keyframe_pts, frame_duration, keyframe_dts, rising, unique)


def _stream_fps(stream, index: _Index, total: int) -> float:
    """The header's average rate, else the rate of the timestamps, else FFmpeg's guess, else [`rateless_fps`] (a
    single frame in a container that states no rate)."""
    if stream.average_rate:
        return float(stream.average_rate)
    span = float((index.pts[-1] - index.pts[0]) * stream.time_base)
    if total > 1 and span > 0:
        return (total - 1) / span
    return float(stream.guessed_rate or rateless_fps())


def _duration(stream, index: _Index, total: int, stream_fps: float) -> float:
    if stream.duration:
        return float(stream.duration * stream.time_base)
    last_frame = index.frame_duration or (1 / stream_fps if stream_fps else 0.0)
    return float((index.pts[-1] - index.pts[0]) * stream.time_base) + last_frame


def _select(total: int, duration: float, num_frames, fps, max_frames) -> list[int]:
    if num_frames is not None:
        return uniform_indices(total, num_frames)
    if fps is not None:
        return uniform_indices(total, fps_frame_count(duration, fps, max_frames))
    return uniform_indices(total, min(total, max_frames) if max_frames else total)


def plan_runs(keyframe_pts: list[int], targets: list[int]) -> list[tuple[int, list[int]]]:
    """Group sorted target timestamps into decoding runs: `(keyframe to seek to, targets decoded after it)`.

    A target starts a new run (a seek) only when a keyframe lies after the previous target and at or before it;
    otherwise decoding continues from the previous target, which never decodes a frame a seek would have saved.
    """
    runs: list[tuple[int, list[int]]] = []
    for target in targets:
        keyframe = _keyframe_at_or_before(keyframe_pts, target)
        if runs and keyframe <= runs[-1][1][-1]:
            runs[-1][1].append(target)
        else:
            runs.append((keyframe, [target]))
    return runs


def _decode_at(container, stream, path, index: _Index, indices: list[int], convert=None, with_rotation=False):
    """Decode the frames at `indices` (display order), seeking only when the next target is past the next keyframe.

    Timestamps are checked as frames come out; where they cannot be trusted to find a frame (a demuxer that cannot
    land on the keyframe, packet timestamps that count packets in decode order as AVI's do while the codec reorders
    frames, timestamps an MPEG-PS demuxer guessed twice) the clip is decoded from its start instead and frames are
    taken by their position, as a sequential decode numbers them.

    Returns the stacked converted frames (upright RGB `(N, H, W, 3)` by default), and the stream's display
    rotation in degrees when `with_rotation`.

    Raises:
        VideoDecodeError: a frame is missing (`truncated`), none decodes (`no_frames`), or FFmpeg fails or flags a
            decoded frame as damaged (`corrupt`).
    """
    convert = convert or _converter(autorotate=True, frame_transform=None)
    _set_threads(stream)
    try:
        if not index.pts_unique or (index.pts_rise_in_decode_order and stream.codec_context.has_b_frames):
            raise _SeekFailed("packet timestamps are not display times")  # count frames instead
        frames, rotation = _decode_seeking(container, stream, path, index, indices, convert)
    except _SeekFailed:
        frames, rotation = _decode_by_position(path, indices, convert, len(index.pts))
    return (frames, rotation) if with_rotation else frames


class _SeekFailed(Exception):
    """Seeking did not give the frames the timestamp index names; decode from the start instead."""


def _decode_seeking(container, stream, path, index: _Index, indices: list[int], convert):
    targets = sorted({index.pts[i] for i in indices})
    keep = set(targets)
    decoded: dict[int, Any] = {}
    rotation = 0
    try:
        for keyframe, run_targets in plan_runs(index.keyframe_pts, targets):
            wanted = iter(run_targets)
            target, last = next(wanted), None
            for frame in _decode_skipping_nonref(stream, _packets_from(container, stream, index, keyframe), keep):
                rotation = frame.rotation
                if frame.pts is None or (last is not None and frame.pts <= last):
                    raise _SeekFailed("decoded frames carry no timestamps, or not in display order")
                last = frame.pts
                if frame.pts < keyframe:
                    continue  # a leading picture of an open GOP: it refers to frames before the seek point
                if frame.is_corrupt:
                    raise VideoDecodeError(path, _damaged_reason(index, frame.pts), "corrupt")
                if frame.pts < target:
                    continue
                if frame.pts > target:
                    raise _SeekFailed(f"the frame at {target} never came out of the decoder")
                decoded[target] = convert(frame)
                target = next(wanted, None)
                if target is None:
                    break
            if target is not None:
                raise _SeekFailed(f"the frame at {target} never came out of the decoder")
    except av.FFmpegError as exc:
        if not decoded:
            raise _SeekFailed(_ffmpeg_message(exc)) from exc  # the decode from the start names the error
        raise VideoDecodeError(path, f"corrupt or truncated stream ({_ffmpeg_message(exc)})") from exc
    return _stack([decoded[index.pts[i]] for i in indices]), rotation


def _packets_from(container, stream, index: _Index, keyframe: int):
    """The demuxed packets of `stream` in file order, from the keyframe whose timestamp is `keyframe` on.

    Seeks by the keyframe's decode timestamp (MPEG-TS and MPEG-PS seek by it: by the presentation time they land
    after the keyframe when frames are reordered), drops the packets before the keyframe where the demuxer landed
    early, and when it landed late (the keyframe never shows) seeks again 1 s, then 10 s earlier, then to the
    start.

    Raises:
        _SeekFailed: the keyframe's packet was not found from any of those points.
    """
    if keyframe not in (index.keyframe_dts or {}):  # no keyframe before the target (a stream cut mid-GOP)
        container.seek(keyframe, stream=stream, backward=True)
        return container.demux(stream)
    dts, second = index.keyframe_dts[keyframe], round(1 / stream.time_base)
    start = min(index.keyframe_dts.values())
    for point in (dts, dts - second, dts - 10 * second, start - second):
        container.seek(point, stream=stream, backward=True)
        packets = container.demux(stream)
        for packet in packets:
            if packet.size == 0:  # end of the stream
                break
            if packet.pts == keyframe and packet.is_keyframe:
                return itertools.chain([packet], packets)
            if packet.is_keyframe and packet.pts is not None and packet.pts > keyframe:
                break  # landed after the keyframe
    raise _SeekFailed(f"no seek lands on the keyframe at {keyframe}")


def _set_threads(stream) -> None:
    """FFmpeg's frame threads (its own count: cores + 1), on every clip.

    Frame threads are drained at each seek and refill cold, yet against one thread they won or tied on every clip
    tried on a shared 2-core machine (medians of 5 interleaved runs, 16 frames): bikes 0.32 -> 0.14 s, bigbuckbunny
    1.45 -> 0.87 s, a 60 s 720p clip 9.3 -> 6.2 s, the 720p clip with 15-frame GOPs 1.60 -> 1.28 s; carphone (176x144)
    and bikes with 12-frame GOPs within noise (0.065 vs 0.063 s, 0.095 vs 0.105 s).
    """
    stream.thread_type = "AUTO"


def _decode_skipping_nonref(stream, packets, keep: set[int]):
    """Decode `packets` (then drain the decoder), skipping the non-reference frames whose timestamp is not in `keep`.

    No other frame is predicted from a non-reference frame, so the frames that are decoded are bit-identical to a
    sequential decode; with x264's defaults about half the frames are non-reference B-frames. The skip is set per
    packet, before the packet is sent (frame threads copy it at submission), and only when it changes.
    """
    context = stream.codec_context
    reorders = context.has_b_frames  # without frame reordering every frame is a reference (x264 without B-frames)
    current = "DEFAULT"
    try:
        for packet in packets:
            wanted = "DEFAULT" if not reorders or packet.pts is None or packet.pts in keep else "NONREF"
            if wanted != current:
                context.skip_frame = current = wanted
            yield from context.decode(packet)
            if packet.size == 0:
                return
        yield from context.decode(None)  # the packets ran out without the flush packet: drain the decoder
    finally:
        context.skip_frame = "DEFAULT"


def _keyframe_at_or_before(keyframe_pts: list[int], target: int) -> int:
    position = bisect.bisect_right(keyframe_pts, target)
    # No keyframe at or before the target (a stream cut mid-GOP): seek to the target and let FFmpeg pick.
    return keyframe_pts[position - 1] if position else target


def _damaged_reason(index: _Index | None, pts_or_number: int) -> str:
    """`pts_or_number` is a timestamp of `index`, or with no index the frame's position."""
    number = bisect.bisect_left(index.pts, pts_or_number) if index is not None else pts_or_number
    return f"damaged data: FFmpeg decodes frame {number} with errors (it would conceal them and show a broken frame)"


def _decode_by_position(path, indices: list[int], convert, listed: int | None = None):
    """Decode from the start of a freshly opened file and keep the frames at positions `indices` (display order).

    Args:
        listed: The number of frames the container lists, for the message when fewer decode.

    Returns:
        `(frames, rotation)`: the stacked converted frames and the display rotation.

    Raises:
        VideoDecodeError: fewer frames decode than needed (`truncated`; `no_frames` when none does), FFmpeg fails,
            or a frame up to the last one needed is flagged as damaged (`corrupt`).
    """
    wanted, decoded, rotation, number = set(indices), {}, 0, -1
    last = max(indices)
    with _open(path) as container:
        stream = container.streams.video[0]
        _set_threads(stream)
        try:
            for number, frame in enumerate(container.decode(stream)):
                rotation = frame.rotation
                if frame.is_corrupt:
                    raise VideoDecodeError(path, _damaged_reason(None, number), "corrupt")
                if number in wanted:
                    decoded[number] = convert(frame)
                if number == last:
                    break
        except av.FFmpegError as exc:
            if number < 0:
                raise VideoDecodeError(path, f"zero decodable frames ({_ffmpeg_message(exc)})", "no_frames") from exc
            raise VideoDecodeError(path, f"corrupt or truncated stream ({_ffmpeg_message(exc)})") from exc
    if number < 0:
        raise VideoDecodeError(path, "zero decodable frames", "no_frames")
    if len(decoded) < len(wanted):
        missing = min(wanted - decoded.keys())
        of = f" of the {listed} the container lists" if listed else ""
        raise VideoDecodeError(path, f"truncated (frame {missing}{of} cannot be decoded)", "truncated")
    return _stack([decoded[i] for i in indices]), rotation


def _load_sequential(path, num_frames, fps, max_frames, convert) -> VideoFrames:
    """Streams without timestamps (raw `.h264`, `.hevc`, ...): count the frames in one decode, pick in a second.

    Such streams cannot seek (FFmpeg refuses even a seek to the start), so each pass opens the file afresh; counting
    first keeps only the chosen frames in memory.
    """
    total, stream_fps = _count_frames(path)
    duration = total / stream_fps
    indices = _select(total, duration, num_frames, fps, max_frames)
    frames, rotation = _decode_by_position(path, indices, convert)
    return VideoFrames(frames, indices, stream_fps, duration, total, rotation)


def _count_frames(path) -> tuple[int, float]:
    """Decode every frame (nothing converted): `(frame count, the stream's frame rate)` ([`rateless_fps`] when it
    states none).

    Raises:
        VideoDecodeError: FFmpeg fails, or no frame decodes (`no_frames`).
    """
    with _open(path) as container:
        stream = container.streams.video[0]
        _set_threads(stream)
        try:
            total = sum(1 for _ in container.decode(stream))
        except av.FFmpegError as exc:
            raise VideoDecodeError(path, f"corrupt or truncated stream ({_ffmpeg_message(exc)})") from exc
        stream_fps = float(stream.average_rate or stream.guessed_rate or 0.0)
    if total == 0:
        raise VideoDecodeError(path, "zero decodable frames", "no_frames")
    return total, stream_fps or rateless_fps()


def check_video_file(path: str | os.PathLike) -> int:
    """Decode every frame of a video file, as `ffmpeg -i FILE -f null -` does, and fail on any sign of damage.

    Sampling decodes only what its frames need, so damage elsewhere in a clip shows only in a full decode. FFmpeg's
    decoders conceal damaged data (a frame comes out, broken) and mark it: the frame or its packet is flagged
    corrupt. Folders of frame images are not checked here.

    Returns:
        The number of frames decoded.

    Raises:
        VideoDecodeError: the file is missing, not a video or has no video stream; FFmpeg fails on a packet
            (`corrupt`, `no_frames` when no frame decoded); or a packet or frame is flagged damaged (`corrupt`,
            naming the frame).
    """
    if not os.path.isfile(path):
        raise VideoDecodeError(path, "missing (no such file)", "missing")
    number = 0
    with _open(path) as container:
        if not container.streams.video:
            raise VideoDecodeError(path, "no video stream", "no_video_stream")
        stream = container.streams.video[0]
        _set_threads(stream)
        try:
            for packet in container.demux(stream):
                if packet.is_corrupt:
                    raise VideoDecodeError(path, _damaged_reason(None, number), "corrupt")
                for frame in packet.decode():
                    if frame.is_corrupt:
                        raise VideoDecodeError(path, _damaged_reason(None, number), "corrupt")
                    number += 1
        except av.FFmpegError as exc:
            if number == 0:
                raise VideoDecodeError(path, f"zero decodable frames ({_ffmpeg_message(exc)})", "no_frames") from exc
            reason = f"corrupt or truncated stream after frame {number} ({_ffmpeg_message(exc)})"
            raise VideoDecodeError(path, reason) from exc
    if number == 0:
        raise VideoDecodeError(path, "zero decodable frames", "no_frames")
    return number


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: int = 25,
    codec: str = "libx264",
    crf: int = 18,
    gop: int | None = None,
    options: dict[str, str] | None = None,
) -> None:
    """Write RGB frames to a video file (H.264 in MP4 by default); used by the synthetic data set and the tests.

    Args:
        path: Output file; the container comes from its extension.
        frames: `uint8` array `(T, H, W, 3)`; `H` and `W` must be even (4:2:0 chroma).
        fps: Constant frame rate.
        codec: FFmpeg encoder name.
        crf: x264 quality (lower is better; 18 is visually lossless).
        gop: Keyframe interval in frames (x264's default is 250).
        options: More encoder options, e.g. `{"threads": "1"}`.
    """
    _require_av()
    frames = np.asarray(frames, dtype=np.uint8)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        encoder_options = {"crf": str(crf), "preset": "veryfast"} if codec == "libx264" else {}
        stream.options = {**encoder_options, **({"g": str(gop)} if gop else {}), **(options or {})}
        for array in frames:
            container.mux(stream.encode(_encoder_frame(array, stream.pix_fmt)))
        container.mux(stream.encode())


def _encoder_frame(rgb: np.ndarray, pix_fmt: str) -> "av.VideoFrame":
    """An RGB frame `(H, W, 3)` converted to `pix_fmt`, in memory followed by zeros.

    x264 reads a few bytes past the end of the picture it is given; in a frame PyAV allocates those bytes are
    uninitialised, so the same frames encoded to other bytes from one process to the next (about 1 clip in 50, with a
    different first keyframe: issue 27). Here they are zeros, and the same frames always give the same file.
    """
    converted = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt).to_ndarray()
    buffer = np.zeros(converted.size + 4096, dtype=np.uint8)  # the zeros after the picture
    picture = buffer[: converted.size].reshape(converted.shape)
    picture[...] = converted
    return av.VideoFrame.from_numpy_buffer(picture, format=pix_fmt)  # keeps `buffer` alive while the frame lives
