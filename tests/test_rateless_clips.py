"""Sources without a frame rate (a folder of frame images; a stream that states none) are timed at 2 fps, the rule of
docs/data.md: frame `i` at `i / 2` s, a source of `T` frames lasting `T / 2` s. Every family gets a clip from them,
the families that place frames in time timed by that rule (before, their `decode_clip` divided by the folder's fps of 0).
"""

import warnings

import numpy as np
import pytest
import torch
from datasets import Dataset
from family_grpo_fixtures import make_trainer
from test_video_inputs import real_content_frames, write_frame_folder
from video_fixtures import write_rateless_clip

from r1video.data.video import load_video_frames, probe_video
from r1video.eval.frames import load_video_clip
from r1video.policies import policy_named

RATE = 2.0  # the documented rate of a source without one (qwen-vl-utils' rate for a list of frames)
NUM_FRAMES = 4
QUESTION = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What moves?"}]}]
FAMILIES = ["qwen2_5_vl", "qwen3_vl", "qwen3_5", "smolvlm", "llava_onevision", "tinyllava_video"]


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("rateless")
    return {
        "png_folder": write_frame_folder(root / "png", real_content_frames(9, 32, 48), pattern="{:05d}.png"),
        "jpg_folder": write_frame_folder(root / "jpg", real_content_frames(6, 32, 48)),  # frame_1.jpg ...
        "rateless_mp4": write_rateless_clip(root / "one_frame.mp4"),
    }


@pytest.fixture(scope="module", params=FAMILIES)
def family(request):
    policy = policy_named(request.param)
    _, processor = policy.build_tiny()
    return policy, processor


def expected_times(policy, indices: list[int], total: int, temporal_patch: int = 2) -> dict:
    """The clip's time fields under the rule (each family's own formula, at 2 fps)."""
    seconds = [i / RATE for i in indices]
    if policy.name == "qwen2_5_vl":  # temporal_patch_size / sampled fps, sampled fps = len(indices) / T * fps
        return {"second_per_grid_ts": [temporal_patch / (len(indices) / total * RATE)]}
    if policy.name in ("qwen3_vl", "qwen3_5"):  # the mean time of each temporal patch's frames
        pairs = range(0, len(seconds), temporal_patch)
        return {"video_timestamps": [float(np.mean(seconds[k : k + temporal_patch])) for k in pairs]}
    if policy.name == "smolvlm":
        return {"timestamps": seconds, "duration": [total / RATE]}
    return {}  # LLaVA-OneVision, TinyLLaVA-Video: no timing in the clip


@pytest.mark.parametrize("source", ["png_folder", "jpg_folder", "rateless_mp4"])
def test_every_family_times_a_source_without_a_frame_rate_at_2_fps(family, sources, source):
    policy, processor = family
    path = sources[source]
    clip = policy.decode_clip(processor, path, num_frames=NUM_FRAMES)  # ZeroDivisionError before, for the timed ones

    video = load_video_frames(path, num_frames=NUM_FRAMES)
    total = video.num_total_frames
    assert (video.fps, video.duration) == (RATE, total / RATE)  # before: 0.0 and 0.0 for a folder
    assert clip.num_frames == NUM_FRAMES and clip.frame_indices == video.indices
    eval_clip = load_video_clip(policy, processor, path, num_frames=NUM_FRAMES)  # eval's uniform reader, lmms-eval
    for key, value in expected_times(policy, video.indices, total).items():
        assert clip.inputs[key].tolist() == pytest.approx(value), key
        assert eval_clip.inputs[key].tolist() == pytest.approx(value), key
    # the length check's clip (from the listing / the container, no frame decoded) expands as the decoded clip does
    layout = policy.layout_clip(processor, probe_video(path, num_frames=NUM_FRAMES))
    if layout is not None:
        text = policy.render_prompt(processor, QUESTION)
        by_layout, by_clip = (policy.tokenize_prompts(processor, [text], [c]) for c in (layout, clip))
        assert by_layout == by_clip


def test_the_rule_is_said_once_per_run(sources):
    from r1video.data.video import rateless_fps

    rateless_fps.cache_clear()  # as in a fresh process
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # a repeat would show: only the rule's own once-per-process keeps it to one
        for path in [*sources.values(), *sources.values()]:
            probe_video(path, num_frames=NUM_FRAMES)
            load_video_frames(path, num_frames=NUM_FRAMES)
    said = [str(w.message) for w in caught if "without a frame rate" in str(w.message)]
    assert said == [
        "a video without a frame rate (a frame folder, or a stream that reports none) is timed at 2 fps, qwen-vl-utils' "
        "rate for a list of frames: frame i at i/2 s (docs/data.md, Frame folders)"
    ]


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("qwen")
    policy_named("qwen2_5_vl").build_tiny(model_dir)
    return str(model_dir)


@pytest.mark.parametrize("source", ["jpg_folder", "rateless_mp4"])
def test_infer_answers_about_a_source_without_a_frame_rate(qwen_dir, sources, source, capsys):
    """`r1video infer` on Qwen2.5-VL (before: the folder refused as 'file not found', the mp4 a ZeroDivisionError)."""
    from r1video.eval import infer

    argv = ["--model", qwen_dir, "--video", sources[source], "--question", "What moves?", "--frames", "4",
            "--max-new-tokens", "2"]  # fmt: skip
    assert infer.main(argv) == 0
    total = {"jpg_folder": 6, "rateless_mp4": 1}[source]
    assert f"[4 frames of {total}, {total / RATE:.1f}s]" in capsys.readouterr().err


def test_a_grpo_step_on_qwen2_5_vl_trains_on_frame_folders(qwen_dir, sources, tmp_path):
    """One real GRPO step on a tiny Qwen2.5-VL whose rows' videos are frame folders (9 and 6 frames, 4 sampled):
    no clip is counted bad, and every forward gets `second_per_grid_ts` of the rule (T / 4: 2.25 and 1.5)."""
    rows = [
        {
            "prompt": [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": f"Clip {i}."}]}],
            "video": sources[name],
            "solution": "<answer>A</answer>",
        }
        for i, name in enumerate(["png_folder", "jpg_folder"])
    ]
    torch.manual_seed(0)
    trainer = make_trainer(qwen_dir, Dataset.from_list(rows), tmp_path, num_frames=NUM_FRAMES, fps=None,
                           per_device_train_batch_size=4, beta=0.0)  # fmt: skip
    seen = []

    def record(module, args, kwargs):
        if kwargs.get("second_per_grid_ts") is not None:
            seen.append(kwargs["second_per_grid_ts"].tolist())

    hook = trainer.model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        trainer.train()
    finally:
        hook.remove()
    assert trainer.state.global_step == 1
    assert (trainer.bad_videos.num_good, trainer.bad_videos.num_bad) == (2, 0)
    assert seen and {round(t, 6) for row in seen for t in row} == {9 / NUM_FRAMES, 6 / NUM_FRAMES}
    assert np.isfinite(trainer.state.log_history[0]["loss"])
