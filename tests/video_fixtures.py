"""Small video files for the data tests, written with PyAV (libx264) in the test's temporary directory."""

import os
from fractions import Fraction

import av
import numpy as np

from r1video.data.video import write_video


def numbered_frames(count: int, size: int = 32) -> np.ndarray:
    """`(count, size, size, 3)` frames that differ from each other: frame `i` has a bar at column `i % size`."""
    frames = np.zeros((count, size, size, 3), np.uint8)
    for i in range(count):
        frames[i, :, :, 0] = (i * 5) % 256
        frames[i, :, i % size, 1] = 255
    return frames


def write_numbered_clip(path, count: int = 50, fps: int = 25, gop: int | None = 10, size: int = 32) -> str:
    """A constant-frame-rate H.264 clip of `numbered_frames`; a short GOP so that seeking really happens."""
    write_video(path, numbered_frames(count, size), fps=fps, gop=gop)
    return str(path)


def write_vfr_clip(path, durations_ms: list[int], size: int = 32) -> str:
    """An H.264 clip whose frame `i` lasts `durations_ms[i]` milliseconds (variable frame rate)."""
    frames = numbered_frames(len(durations_ms), size)
    pts = np.concatenate([[0], np.cumsum(durations_ms)[:-1]])
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.options = {"g": "10"}
        for array, timestamp in zip(frames, pts, strict=True):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts, frame.time_base = int(timestamp), Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return str(path)


def write_rateless_clip(path, size: int = 32) -> str:
    """A one-frame H.264 MP4 whose stream states no frame rate: no codec rate, a packet without a duration and no edit
    list, so FFmpeg reports no average rate, no guessed rate and a zero duration (a single-image clip from a tool that
    writes no timing)."""
    with av.open(str(path), "w", options={"use_editlist": "0"}) as container:
        stream = container.add_stream("libx264")
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        stream.codec_context.framerate = Fraction(0, 1)
        frame = av.VideoFrame.from_ndarray(numbered_frames(1, size)[0], format="rgb24")
        frame.pts, frame.time_base = 0, Fraction(1, 1000)
        for packet in [*stream.encode(frame), *stream.encode()]:
            packet.duration = None
            container.mux(packet)
    return str(path)


def write_audio_only(path, seconds: float = 0.5) -> str:
    """An MP4 with one AAC audio stream and no video."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        samples = int(16000 * seconds)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, samples), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return str(path)


def write_zero_frame_clip(path) -> str:
    """An MP4 whose video stream lists 50 frames, none of which decodes: the frame data is zeroed.

    (An MP4 with no frame at all cannot be made: FFmpeg drops a stream without samples, which is the
    audio-only case.)
    """
    write_numbered_clip(path)
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        start = data.index(b"mdat") + 4
        end = data.index(b"moov") - 4
        data[start:end] = bytes(end - start)
        f.seek(0)
        f.write(data)
    return str(path)


def truncate(path, fraction: float = 0.6) -> str:
    """Cut a file to `fraction` of its size, as an interrupted download would."""
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(int(size * fraction))
    return str(path)


def write_faststart_clip(path, count: int = 50) -> str:
    """Like `write_numbered_clip` but with the MP4 index first, so a truncated copy still opens."""
    frames = numbered_frames(count)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        stream.options = {"g": "10"}
        for array in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode())
    return str(path)


def decode_all(path) -> np.ndarray:
    """Every frame of a file, decoded sequentially from the start: the reference the sampler must match."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])])


def binary_numbered_frames(count: int, size: int = 64) -> np.ndarray:
    """`(count, size, size, 3)` frames with their own number drawn in the top half as 8 black/white bit columns."""
    frames = np.zeros((count, size, size, 3), np.uint8)
    width = size // 8
    for i in range(count):
        for bit in range(8):
            if (i >> bit) & 1:
                frames[i, : size // 2, bit * width : (bit + 1) * width] = 255
        frames[i, size // 2 :, :, 1] = (i * 3) % 256
    return frames


def read_frame_number(frame: np.ndarray) -> int:
    """The number [`binary_numbered_frames`] drew into a decoded frame."""
    size = frame.shape[1]
    width = size // 8
    columns = frame[: size // 4, width // 2 :: width][:, :8].mean(axis=(0, 2))
    return sum(1 << bit for bit, value in enumerate(columns) if value > 128)


def write_remuxed(src, dst, format: str, options: dict | None = None) -> str:
    """Copy the video packets of `src` into another container (no re-encoding), as `ffmpeg -i src -c copy dst`."""
    with av.open(str(src)) as source, av.open(str(dst), "w", format=format, options=options or {}) as target:
        stream = source.streams.video[0]
        out = target.add_stream_from_template(stream)
        for packet in source.demux(stream):
            if packet.dts is None:  # the flush packet
                continue
            packet.stream = out
            target.mux(packet)
    return str(dst)


def write_encoded(path, frames: np.ndarray, codec: str, format: str | None = None, options: dict | None = None) -> str:
    """Encode RGB `frames` at 25 fps with any FFmpeg encoder into any container (`format`: FFmpeg's muxer name)."""
    with av.open(str(path), "w", format=format) as container:
        stream = container.add_stream(codec, rate=25)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.options = options or {}
        for array in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode())
    return str(path)


def write_damaged_clip(path, damaged_frame: int, count: int = 50, size: int = 256) -> str:
    """An H.264 MP4 (keyframes at 0 and 25, B-frames) with 4 bytes flipped in the middle of one frame's packet.

    The file stays well formed: it opens, every frame decodes without an FFmpeg error, and FFmpeg conceals the damage,
    so the frame comes out broken and flagged corrupt. Gradients at 256 px, so the damaged slice is big enough for the
    decoder to notice.
    """
    rows, columns = np.mgrid[0:size, 0:size]
    frames = np.stack(
        [np.stack([(columns * 3 + i * 4) % 256, (rows * 2 + i * 3) % 256, (rows + columns + i * 5) % 256], -1)
         for i in range(count)]
    ).astype(np.uint8)  # fmt: skip
    write_video(path, frames, fps=25, gop=25)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packet = next(p for p in container.demux(stream) if p.pts == damaged_frame * 512)  # x264's 1/12800 base
        position, length = packet.pos, packet.size
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        for k in range(4):
            data[position + length // 2 + 3 * k] ^= 0x5A
        f.seek(0)
        f.write(data)
    return str(path)


def moving_square_frames(count: int, height: int = 32, width: int = 32) -> np.ndarray:
    """`(count, height, width, 3)` frames of a white square moving right over a frame-numbered background."""
    frames = np.zeros((count, height, width, 3), np.uint8)
    side = max(4, min(height, width) // 4)
    for i in range(count):
        frames[i, :, :, 2] = (i * 9) % 256
        left = (i * 2) % max(1, width - side)
        frames[i, height // 2 - side // 2 : height // 2 + side // 2, left : left + side] = 255
    return frames


def write_clips_of_lengths(directory, specs=((20, 32, 32), (40, 48, 32), (60, 32, 48)), fps: int = 25) -> list[str]:
    """H.264 clips of different lengths and sizes, `specs` = `(frames, height, width)` each: sampled at a fixed
    rate (e.g. `fps=5`) they give different frame counts, so a processor's temporal grid differs between them."""
    paths = []
    for i, (count, height, width) in enumerate(specs):
        path = os.path.join(str(directory), f"clip{i}_{count}f_{height}x{width}.mp4")
        write_video(path, moving_square_frames(count, height, width), fps=fps, gop=10)
        paths.append(path)
    return paths
