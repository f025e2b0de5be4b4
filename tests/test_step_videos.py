"""A GRPO step's and an SFT batch's clips: preprocessed as decoded, bad ones of any kind skipped and counted."""

import numpy as np
import pytest
import torch
from test_video_inputs import marked_frames, real_content_frames, write_clip, write_frame_folder

from r1video.data.bad_samples import BadSampleTracker
from r1video.data.video import load_video_frames
from r1video.model import TinyLlavaVideoProcessor, build_tiny_model
from r1video.policies import policy_for
from r1video.trainer.sft_collator import VideoSFTCollator
from r1video.trainer.step_videos import load_step_videos


@pytest.fixture(scope="module")
def processor(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("model")
    build_tiny_model(model_dir)
    return TinyLlavaVideoProcessor.from_pretrained(model_dir)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    return {
        "wide": write_clip(root / "wide.mp4", real_content_frames(20, 96, 160), gop=6),
        "phone": write_clip(root / "phone.mp4", marked_frames(8), rotation=-90),
        "raw": write_clip(root / "raw.h264", real_content_frames(10, 48, 64), container_format="h264"),
        "folder": write_frame_folder(root / "frames", real_content_frames(9, 40, 40)),
        "broken": str(root / "broken.h264"),
    }


def step_videos(processor, paths, tracker, **frames):
    """`load_step_videos` through the processor's policy, as `VideoGRPOTrainer` calls it."""
    policy = policy_for(processor)
    return load_step_videos(
        paths,
        lambda path, **kw: policy.decode_clip(processor, path, **kw),
        tracker,
        lambda num_frames, like: policy.blank_clip(processor, num_frames, like),
        **frames,
    )


def pixels(clip):
    return clip.inputs["pixel_values_videos"]


def old_pipeline(processor, path, autorotate=True):
    """What a step computed before: every frame of the clip at full size, then preprocessed as one batch."""
    return processor.preprocess_frames(load_video_frames(path, num_frames=4, autorotate=autorotate).frames)


def test_step_pixels_are_the_old_pipeline_output_and_bad_clips_are_counted(processor, clips):
    with open(clips["broken"], "wb") as f:
        f.write(b"\x00\x00\x00\x01\x67" + bytes(range(256)) * 4)
    paths = [clips["wide"], clips["wide"], clips["broken"], clips["phone"], clips["raw"], clips["folder"], None]
    tracker = BadSampleTracker(max_bad_fraction=1.0)
    videos = step_videos(processor, paths, tracker, num_frames=4)
    assert videos.index.tolist() == [0, 0, 1, 2, 3, 4, -1]
    assert videos.bad_rows.tolist() == [False, False, True, False, False, False, False]
    assert (tracker.num_good, tracker.num_bad) == (4, 1) and clips["broken"] in tracker.bad
    for position, name in enumerate(["wide", "broken", "phone", "raw", "folder"]):
        if name == "broken":
            assert not pixels(videos.clips[position]).any()
            continue
        assert torch.equal(pixels(videos.clips[position]), old_pipeline(processor, clips[name])), name
    raw = step_videos(processor, [clips["phone"]], tracker, num_frames=4, autorotate=False)
    assert torch.equal(pixels(raw.clips[0]), old_pipeline(processor, clips["phone"], autorotate=False))
    assert not torch.equal(pixels(raw.clips[0]), pixels(videos.clips[2]))


def test_sft_collator_preprocesses_as_decoded_and_honours_autorotate(processor, clips):
    rows = [
        {
            "id": "a",
            "video": clips["phone"],
            "messages": [
                {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Where is the block?"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "Top right."}]},
            ],
        }
    ]
    for autorotate in (True, False):
        batch = VideoSFTCollator(processor, num_frames=4, autorotate=autorotate)(rows)
        expected = old_pipeline(processor, clips["phone"], autorotate=autorotate)
        assert torch.equal(batch["pixel_values_videos"][0], expected)
        assert np.isfinite(batch["pixel_values_videos"].numpy()).all()
