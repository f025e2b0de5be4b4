"""Evaluation frames: the training sampler for plain videos, MVBench's segment-centre indices and frame folders."""

import os

import numpy as np
import pytest
from eval_fixtures import frame_index, make_mvbench
from video_fixtures import decode_all

from r1video.data.video import VideoDecodeError, load_video_frames
from r1video.eval import load_sample_frames, segment_centre_indices
from r1video.eval.benchmarks import mvbench
from r1video.eval.samples import EvalSample


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    root = make_mvbench(tmp_path_factory.mktemp("mvbench"))
    loaded = mvbench.load(root, tasks=["Action Sequence", "Action Antonym", "Episodic Reasoning"])
    return {s.group: s for s in loaded}


class TestSegmentCentreIndices:
    def test_matches_the_original_arithmetic_inside_a_bound(self):
        # start_idx = max(1, round(2 * 3)) = 6, end_idx = min(round(8 * 3), 30) = 24, segment = 18 / 4 = 4.5;
        # int(6 + 2.25 + round(4.5 * i)) with round-half-to-even: 8, 12, 17, 22.
        assert segment_centre_indices(4, 3.0, 30, bound=(2.0, 8.0), first_idx=1) == [8, 12, 17, 22]

    def test_whole_clip_without_a_bound(self):
        # 24 frames: end_idx = 23, segment = 5.75: int(2.875 + round(5.75 * i)) = 2, 8, 14, 19.
        assert segment_centre_indices(4, 8.0, 23) == [2, 8, 14, 19]

    def test_bound_past_the_end_is_clipped(self):
        assert max(segment_centre_indices(16, 8.0, 23, bound=(1.0, 100.0))) <= 23


class TestReaders:
    def test_frame_folder_reads_the_segment_centre_jpgs(self, samples):
        frames, indices = load_sample_frames(samples["Episodic Reasoning"], num_frames=4)
        assert indices == [8, 12, 17, 22]
        assert [frame_index(f) for f in frames] == indices  # frame file i holds grey level 8 * i

    def test_webm_task_uses_segment_centres_and_decodes_exact_frames(self, samples):
        sample = samples["Action Antonym"]
        frames, indices = load_sample_frames(sample, num_frames=4)
        assert indices == [2, 8, 14, 19]
        np.testing.assert_array_equal(frames, decode_all(sample.video)[indices])

    def test_plain_video_task_uses_the_training_sampler(self, samples):
        sample = samples["Action Sequence"]
        frames, indices = load_sample_frames(sample, num_frames=16)
        reference = load_video_frames(sample.video, num_frames=16)
        assert indices == reference.indices == np.linspace(0, 23, 16, dtype=int).tolist()
        np.testing.assert_array_equal(frames, reference.frames)

    def test_fps_mode_counts_frames_from_the_duration_and_caps_them(self, samples):
        folder = samples["Episodic Reasoning"]  # 30 frames at 3 fps = 10 s
        assert len(load_sample_frames(folder, fps=0.5)[1]) == 5
        assert len(load_sample_frames(folder, fps=1.0, max_frames=3)[1]) == 3
        video = samples["Action Sequence"]  # 24 frames at 8 fps = 3 s
        assert len(load_sample_frames(video, fps=2.0)[1]) == 6

    def test_missing_frame_folder_and_corrupt_video_raise_decode_errors(self, samples, tmp_path):
        gone = EvalSample("x", "g", "q", ("a",), "A", str(tmp_path / "nothing"), reader="frame_dir")
        with pytest.raises(VideoDecodeError, match="missing"):
            load_sample_frames(gone)
        junk = tmp_path / "junk.webm"
        junk.write_bytes(os.urandom(2000))
        with pytest.raises(VideoDecodeError):
            load_sample_frames(EvalSample("y", "g", "q", ("a",), "A", str(junk), reader="segments"))
