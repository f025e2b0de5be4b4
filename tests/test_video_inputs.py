"""Videos as real data sets have them: rotated phone clips, raw elementary streams, frame folders, large frames."""

import tracemalloc
from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image
from video_fixtures import decode_all, numbered_frames

from r1video.data.bad_samples import BadSampleTracker
from r1video.data.validate import format_report, validate_file
from r1video.data.video import VideoDecodeError, load_video_frames


def real_content_frames(count: int, height: int = 96, width: int = 128, seed: int = 0) -> np.ndarray:
    """Frames with what codecs see in real footage: a drifting gradient, moving blobs, a panning texture, grain."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    texture = rng.integers(0, 256, (height, width * 2, 3), dtype=np.uint8)
    texture = np.repeat(np.repeat(texture[::8, ::8], 8, axis=0), 8, axis=1)[:height]
    frames = np.empty((count, height, width, 3), np.uint8)
    for i in range(count):
        base = texture[:, i % width : i % width + width].astype(np.int16) // 2
        base[..., 0] += ((x + 2 * i) % width * 100 // width).astype(np.int16)
        base[..., 2] += ((y + i) % height * 100 // height).astype(np.int16)
        for k in range(3):
            cx, cy = (20 + 7 * i * (k + 1)) % width, (10 + 3 * i * (k + 2)) % height
            base[(x - cx) ** 2 + (y - cy) ** 2 < 60 + 40 * k, k] = 250
        base += rng.integers(-6, 7, base.shape, dtype=np.int16)
        frames[i] = np.clip(base, 0, 255)
    return frames


def write_clip(path, frames, fps=30, gop=None, rotation=None, container_format=None, preset="medium") -> str:
    """H.264 with x264's B-frames (b-pyramid at `preset=medium`); `rotation` sets the display matrix (degrees,
    counter-clockwise: `-90` is what `ffmpeg -metadata:s:v:0 rotate=90` writes)."""
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "20", "preset": preset, **({"g": str(gop)} if gop else {})}
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for array in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode())
    return str(path)


# ---- frames identical to a full decode on real-looking content (frame threads, seeks, skipped B-frames) ----------


@pytest.fixture(scope="module")
def content_clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("content")
    frames = real_content_frames(150)
    return {
        "one_keyframe": write_clip(root / "long_gop.mp4", frames),
        "gop_12": write_clip(root / "short_gop.mp4", frames, gop=12),
        "gop_40_mkv": write_clip(root / "gop40.mkv", frames, gop=40),
    }


@pytest.mark.parametrize("name", ["one_keyframe", "gop_12", "gop_40_mkv"])
@pytest.mark.parametrize("num_frames", [3, 16, 150, 200])
def test_frames_identical_to_a_full_decode_on_real_content(content_clips, name, num_frames):
    path = content_clips[name]
    reference = decode_all(path)
    with av.open(path) as container:  # the clip really has B-frames, as x264 writes them by default
        assert container.streams.video[0].codec_context.has_b_frames
    result = load_video_frames(path, num_frames=num_frames)
    assert result.indices == np.linspace(0, len(reference) - 1, num_frames, dtype=int).tolist()
    np.testing.assert_array_equal(result.frames, reference[result.indices])


# ---- rotation -----------------------------------------------------------------------------------------------------


def marked_frames(count=6, height=32, width=64) -> np.ndarray:
    frames = numbered_frames(count, size=width)[:, :height].copy()
    frames[:, :8, :8] = (255, 255, 255)  # a white block in the stored frame's top-left corner
    return frames


@pytest.mark.parametrize(
    ("rotation", "shape", "corner"),
    [(-90, (64, 32), "top_right"), (90, (64, 32), "bottom_left"), (180, (32, 64), "bottom_right")],
)
def test_rotated_clip_comes_out_as_a_player_shows_it(tmp_path, rotation, shape, corner):
    # A phone clip: stored 64 wide x 32 high, tagged "rotate 90" (display matrix -90: turn clockwise to show).
    path = write_clip(tmp_path / "phone.mp4", marked_frames(), rotation=rotation, gop=2)
    result = load_video_frames(path, num_frames=3)
    assert result.rotation % 360 == rotation % 360
    assert result.frames.shape == (3, *shape, 3)
    frame = result.frames[0].astype(int)
    corners = {
        "top_right": frame[:8, -8:],
        "bottom_left": frame[-8:, :8],
        "bottom_right": frame[-8:, -8:],
    }
    assert corners[corner].min() > 200, f"the stored top-left block should be at the {corner} when shown"
    raw = load_video_frames(path, num_frames=3, autorotate=False)
    assert raw.frames.shape == (3, 32, 64, 3) and raw.rotation == result.rotation
    np.testing.assert_array_equal(raw.frames, decode_all(path)[raw.indices])
    np.testing.assert_array_equal(result.frames, np.rot90(raw.frames, rotation // 90, axes=(1, 2)))


def test_validate_reports_rotated_clips(tmp_path):
    write_clip(tmp_path / "phone.mp4", marked_frames(), rotation=-90)
    write_clip(tmp_path / "plain.mp4", marked_frames())
    records = tmp_path / "train.jsonl"
    records.write_text(
        '{"problem": "What moves?", "solution": "<answer>a</answer>", "video_filename": "phone.mp4"}\n'
        '{"problem": "What is white?", "solution": "<answer>b</answer>", "video_filename": "plain.mp4"}\n'
    )
    report = validate_file(records, tmp_path)
    assert report.ok
    assert report.rotated_videos == {str(tmp_path / "phone.mp4"): -90}
    assert report.to_dict()["rotated_videos"] == {str(tmp_path / "phone.mp4"): -90}
    text = format_report(report)
    assert "1 video carries a display rotation" in text and "phone.mp4 (-90 deg)" in text


# ---- raw elementary streams -----------------------------------------------------------------------------------------


def test_raw_h264_stream_decodes_without_seeking(tmp_path):
    frames = real_content_frames(40)
    path = write_clip(tmp_path / "clip.h264", frames, gop=10, container_format="h264")
    with av.open(path) as container:  # really a stream without timestamps
        assert all(p.pts is None for p in container.demux(video=0) if p.size)
    reference = decode_all(path)
    result = load_video_frames(path, num_frames=8)
    assert result.num_total_frames == 40
    assert result.indices == np.linspace(0, 39, 8, dtype=int).tolist()
    np.testing.assert_array_equal(result.frames, reference[result.indices])


def test_every_ffmpeg_error_is_a_decode_error(tmp_path):
    path = tmp_path / "clip.h264"
    path.write_bytes(b"\x00\x00\x00\x01\x67" + bytes(range(256)) * 4)  # an SPS start code, then noise
    with pytest.raises(VideoDecodeError) as info:
        load_video_frames(path, num_frames=4)
    assert info.value.path == str(path)
    tracker = BadSampleTracker(max_bad_fraction=1.0)
    assert tracker.load(path, num_frames=4) is None and tracker.num_bad == 1


def test_validate_reports_a_bad_raw_stream_and_accepts_a_good_one(tmp_path):
    write_clip(tmp_path / "good.h264", real_content_frames(12), container_format="h264")
    (tmp_path / "bad.h264").write_bytes(b"\x00\x00\x00\x01\x67" + bytes(range(256)) * 4)
    records = tmp_path / "train.jsonl"
    records.write_text(
        '{"problem": "Q1?", "solution": "<answer>a</answer>", "video_filename": "good.h264"}\n'
        '{"problem": "Q2?", "solution": "<answer>b</answer>", "video_filename": "bad.h264"}\n'
    )
    report = validate_file(records, tmp_path)
    assert [(issue.line, issue.code) for issue in report.issues] == [(2, "video_corrupt")]
    assert "bad.h264" in report.issues[0].message


# ---- frame folders --------------------------------------------------------------------------------------------------


def write_frame_folder(folder, frames, pattern="frame_{}.jpg"):
    folder.mkdir()
    for i, array in enumerate(frames, start=1):
        Image.fromarray(array).save(folder / pattern.format(i), quality=95)
    return str(folder)


def test_frame_folder_reads_like_a_clip(tmp_path):
    frames = real_content_frames(12, 32, 48)
    folder = write_frame_folder(tmp_path / "clip_0001", frames)  # frame_1.jpg ... frame_12.jpg: natural order
    result = load_video_frames(folder, num_frames=5)
    assert result.num_total_frames == 12
    assert result.indices == np.linspace(0, 11, 5, dtype=int).tolist()
    expected = [np.asarray(Image.open(f"{folder}/frame_{i + 1}.jpg").convert("RGB")) for i in result.indices]
    np.testing.assert_array_equal(result.frames, np.stack(expected))
    with pytest.raises(VideoDecodeError, match="no frame rate"):
        load_video_frames(folder, fps=1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoDecodeError, match="no frame images"):
        load_video_frames(tmp_path / "empty", num_frames=4)


def test_validate_accepts_a_frame_folder(tmp_path):
    write_frame_folder(tmp_path / "clip", real_content_frames(6, 32, 32))
    records = tmp_path / "train.jsonl"
    records.write_text('{"problem": "Q?", "solution": "<answer>a</answer>", "video_filename": "clip"}\n')
    assert validate_file(records, tmp_path).ok
    assert validate_file(records, tmp_path, check_videos=False).ok


# ---- memory: frames preprocessed as they are decoded ---------------------------------------------------------------


def shrink(batch: np.ndarray) -> np.ndarray:
    """A stand-in frame processor: `(1, H, W, 3)` -> `(1, 3, 8, 8)` float (block means)."""
    _, height, width, _ = batch.shape
    blocks = batch[0].reshape(8, height // 8, 8, width // 8, 3).mean(axis=(1, 3))
    return blocks.transpose(2, 0, 1)[None].astype(np.float32)


def test_frame_transform_gives_the_pipeline_output_with_one_full_frame_alive(tmp_path):
    path = write_clip(tmp_path / "big.mp4", real_content_frames(24, 480, 640), gop=8, preset="ultrafast")
    decoded = load_video_frames(path, num_frames=16)
    expected = np.concatenate([shrink(frame[None]) for frame in decoded.frames])
    frame_bytes = 480 * 640 * 3
    tracemalloc.start()
    try:
        result = load_video_frames(path, num_frames=16, frame_transform=shrink)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(result.frames, expected)
    assert peak < 3 * frame_bytes, f"peak {peak / 2**20:.1f} MiB: more than a few full frames alive"
