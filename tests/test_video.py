"""Frame sampling with PyAV on real H.264 files: the right frames, found without decoding the whole clip."""

from fractions import Fraction

import av
import numpy as np
import pytest
from video_fixtures import (
    binary_numbered_frames,
    decode_all,
    numbered_frames,
    read_frame_number,
    truncate,
    write_audio_only,
    write_damaged_clip,
    write_encoded,
    write_faststart_clip,
    write_numbered_clip,
    write_remuxed,
    write_vfr_clip,
    write_zero_frame_clip,
)

from r1video.data.bad_samples import BadSampleTracker
from r1video.data.video import VideoDecodeError, check_video_file, load_video_frames, write_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_numbered_clip(tmp_path_factory.mktemp("video") / "clip.mp4", count=50, fps=25, gop=10)


@pytest.mark.parametrize("num_frames", [1, 8, 16, 50, 64])
def test_uniform_indices_and_frames_match_a_full_decode(clip, num_frames):
    reference = decode_all(clip)
    result = load_video_frames(clip, num_frames=num_frames)
    assert result.indices == np.linspace(0, 49, num_frames, dtype=int).tolist()
    assert result.frames.dtype == np.uint8 and result.frames.shape == (num_frames, 32, 32, 3)
    np.testing.assert_array_equal(result.frames, reference[result.indices])
    assert (result.fps, result.duration, result.num_total_frames) == (25.0, 2.0, 50)


def test_all_frames_by_default_and_max_frames_caps(clip):
    assert load_video_frames(clip).indices == list(range(50))
    assert load_video_frames(clip, max_frames=10).indices == np.linspace(0, 49, 10, dtype=int).tolist()


@pytest.mark.parametrize(
    ("fps", "max_frames", "expected"), [(1, None, 2), (2.5, None, 5), (8, None, 16), (8, 6, 6), (0.1, None, 1)]
)
def test_fps_mode_counts(clip, fps, max_frames, expected):
    result = load_video_frames(clip, fps=fps, max_frames=max_frames)  # the clip lasts 2 s
    assert result.indices == np.linspace(0, 49, expected, dtype=int).tolist()


def test_variable_frame_rate_picks_frames_by_position_not_time(tmp_path):
    durations = [40, 40, 120, 40, 200, 40, 40, 80, 40, 40] * 3  # milliseconds per frame
    path = write_vfr_clip(tmp_path / "vfr.mp4", durations)
    reference = decode_all(path)
    result = load_video_frames(path, num_frames=8)
    assert len(reference) == result.num_total_frames == 30
    assert result.indices == np.linspace(0, 29, 8, dtype=int).tolist()
    np.testing.assert_array_equal(result.frames, reference[result.indices])


def test_container_without_frame_count(tmp_path):
    path = tmp_path / "clip.mkv"  # Matroska stores no frame count: the index comes from the packets
    write_numbered_clip(path, count=40, gop=12)
    result = load_video_frames(path, num_frames=16)
    assert result.num_total_frames == 40
    np.testing.assert_array_equal(result.frames, decode_all(path)[result.indices])


def test_long_gop_with_b_frames(tmp_path):
    path = write_numbered_clip(tmp_path / "long.mp4", count=120, gop=None)  # x264 defaults: one GOP, B-frames
    result = load_video_frames(path, num_frames=16)
    np.testing.assert_array_equal(result.frames, decode_all(path)[result.indices])


def test_colours_survive_the_round_trip(tmp_path):
    frames = np.zeros((4, 32, 32, 3), np.uint8)
    frames[:, :, :] = (200, 40, 40)
    write_video(tmp_path / "red.mp4", frames, fps=4)
    result = load_video_frames(tmp_path / "red.mp4")
    assert np.abs(result.frames.astype(int) - frames).max() <= 6


def test_missing_file(tmp_path):
    with pytest.raises(VideoDecodeError, match="missing") as info:
        load_video_frames(tmp_path / "nope.mp4", num_frames=4)
    assert str(tmp_path / "nope.mp4") in str(info.value)


def test_not_a_video(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("these are not frames")
    with pytest.raises(VideoDecodeError, match="not a video") as info:
        load_video_frames(path)
    assert info.value.kind == "not_a_video" and isinstance(info.value, ValueError)


def test_audio_only(tmp_path):
    with pytest.raises(VideoDecodeError, match="no video stream"):
        load_video_frames(write_audio_only(tmp_path / "audio.mp4"), num_frames=4)


def test_zero_decodable_frames(tmp_path):
    with pytest.raises(VideoDecodeError, match="zero decodable frames") as info:
        load_video_frames(write_zero_frame_clip(tmp_path / "blank.mp4"), num_frames=4)
    assert info.value.kind == "no_frames"


def test_truncated_mp4_without_index(tmp_path):
    path = truncate(write_numbered_clip(tmp_path / "cut.mp4"), 0.6)  # the index (moov) was at the end
    with pytest.raises(VideoDecodeError, match="truncated") as info:
        load_video_frames(path, num_frames=4)
    assert info.value.path == path


def test_truncated_mp4_with_index_first(tmp_path):
    path = truncate(write_faststart_clip(tmp_path / "cut.mp4"), 0.6)  # index intact, frame data cut
    with pytest.raises(VideoDecodeError, match="truncated"):
        load_video_frames(path, num_frames=4)


def test_num_frames_and_fps_are_exclusive(clip):
    with pytest.raises(ValueError, match="not both"):
        load_video_frames(clip, num_frames=4, fps=1)


def test_without_pyav_the_module_imports_and_reading_a_file_says_what_is_missing(tmp_path):
    """The GPU acceptance machine has no PyAV: importing works, reading or writing a file names the package."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['av'] = None\n"
        "import numpy as np\n"
        "from r1video.data.video import load_video_frames, write_video\n"
        "for call in (lambda: load_video_frames(sys.argv[1], num_frames=2),\n"
        "             lambda: write_video(sys.argv[1], np.zeros((1, 8, 8, 3), np.uint8))):\n"
        "    try:\n"
        "        call()\n"
        "    except ImportError as error:\n"
        "        print(error)\n"
    )
    path = tmp_path / "clip.mp4"
    write_video(path, np.zeros((2, 16, 16, 3), np.uint8))  # a real file: the error must not be "missing"
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["reading and writing video files needs PyAV: pip install av"] * 2


@pytest.fixture(scope="module")
def b_frame_mp4(tmp_path_factory):
    """H.264 with B-frames (x264's 3) and a keyframe every 25 frames, 120 numbered frames."""
    path = tmp_path_factory.mktemp("seek") / "good.mp4"
    return write_encoded(path, binary_numbered_frames(120), "libx264", options={"g": "25", "bf": "3", "crf": "12"})


def _inexact_seek_clip(kind, source, folder):
    """The clips of decord#83: FFmpeg plays them all, a seek by presentation time lands late in them."""
    if kind == "ts":  # `ffmpeg -i good.mp4 -c copy x.ts`
        return write_remuxed(source, folder / "x.ts", "mpegts")
    if kind == "m2ts":  # Blu-ray transport stream: 192-byte packets
        return write_remuxed(source, folder / "x.m2ts", "mpegts", {"mpegts_m2ts_mode": "1"})
    frames = binary_numbered_frames(120)
    if kind == "mpg":  # MPEG-2 in an MPEG program stream, open GOPs with B-frames
        return write_encoded(folder / "x.mpg", frames, "mpeg2video", "mpeg", {"g": "12", "bf": "2", "qscale": "2"})
    # H.264 with B-frames in AVI: the packets carry decode-order numbers, not display times
    return write_encoded(folder / "x.avi", frames, "libx264", "avi", {"g": "25", "bf": "3", "crf": "12"})


@pytest.mark.parametrize("kind", ["ts", "m2ts", "mpg", "avi"])
def test_containers_where_a_seek_lands_late_give_the_asked_frames(b_frame_mp4, tmp_path, kind):
    path = _inexact_seek_clip(kind, b_frame_mp4, tmp_path)
    reference = decode_all(path)  # what FFmpeg plays, frame by frame
    assert [read_frame_number(frame) for frame in reference] == list(range(120))
    for num_frames in (1, 8, 16, 120):
        result = load_video_frames(path, num_frames=num_frames)
        assert result.num_total_frames == 120
        assert result.indices == np.linspace(0, 119, num_frames, dtype=int).tolist()
        assert [read_frame_number(frame) for frame in result.frames] == result.indices
        np.testing.assert_array_equal(result.frames, reference[result.indices])


def test_damaged_bytes_make_a_bad_clip_not_broken_frames(tmp_path):
    # TinyLLaVA-Video#2: FFmpeg conceals damaged data and hands out a broken frame, with the frame flagged corrupt.
    path = write_damaged_clip(tmp_path / "damaged.mp4", damaged_frame=25)  # the second keyframe: frames 25-49 use it
    with pytest.raises(VideoDecodeError, match="damaged data: FFmpeg decodes frame 25 with errors") as info:
        load_video_frames(path, num_frames=4)  # frames 0, 16, 32, 49
    assert info.value.kind == "corrupt"
    tracker = BadSampleTracker()
    assert tracker.load(path, num_frames=4) is None and tracker.num_bad == 1  # train time: skipped and counted
    with pytest.raises(VideoDecodeError, match="frame 25"):
        check_video_file(path)


def test_frames_that_do_not_depend_on_the_damage_still_load(tmp_path):
    path = write_damaged_clip(tmp_path / "damaged.mp4", damaged_frame=30)  # a B-frame nothing refers to
    intact = decode_all(path)[[0, 16, 32, 49]]
    np.testing.assert_array_equal(load_video_frames(path, num_frames=4).frames, intact)
    with pytest.raises(VideoDecodeError, match="frame 30") as info:  # a full decode sees it
        check_video_file(path)
    assert info.value.kind == "corrupt"
    assert check_video_file(write_numbered_clip(tmp_path / "fine.mp4")) == 50


def test_fps_sampling_of_a_long_clip_is_capped_by_default(tmp_path):
    # Qwen3-VL#852: a 2-hour clip at 1 fps gave 7,200 frames (about 12 GiB at 384 px), without a word.
    path = tmp_path / "two_hours.mp4"
    with av.open(str(path), "w") as container:  # 720 frames, one every 10 s
        stream = container.add_stream("libx264", rate=Fraction(1, 10))
        stream.width = stream.height = 16
        stream.pix_fmt = "yuv420p"
        for array in numbered_frames(720, 16):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode())
    with pytest.warns(UserWarning, match="capped at the default max_frames=128"):
        result = load_video_frames(path, fps=1)
    assert result.duration == 7200.0 and len(result.frames) == 128
    assert result.indices == np.linspace(0, 719, 128, dtype=int).tolist()
    assert len(load_video_frames(path, fps=1, max_frames=300).frames) == 300  # a cap set by hand: no warning
    assert len(load_video_frames(path, fps=0.05, max_frames=0).frames) == 360  # 0: no cap
