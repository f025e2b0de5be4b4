"""The lmms-eval adapter's video → clip step, which runs without lmms-eval.

`R1VideoLMM` (`r1video/eval/lmms_eval_model.py`, importable only with lmms-eval) hands `generate_batch` the clip
`r1video.eval.frames.load_video_clip` makes of each video a task names. A family that places frames in time must get
the clip's real timing there, as `r1video eval` gives it (`load_sample_clip`, the runner's step): Qwen2.5-VL's
`second_per_grid_ts`, Qwen3-VL's per-patch timestamps. Before, the adapter handed bare frames, which those families
take as sampled at 2 fps.
"""

import numpy as np
import pytest
import torch
from eval_fixtures import write_clip

from r1video.eval.frames import load_sample_clip, load_video_clip
from r1video.eval.samples import EvalSample
from r1video.policies import policy_named

SOURCE_FPS = 10
COUNT = 30  # a 3 s clip
# (sampling, the source indices it takes): 8 uniform frames, or 4 frames per second of the 3 s clip (12 frames)
SAMPLINGS = {
    "num_frames": ({"num_frames": 8}, np.linspace(0, COUNT - 1, 8, dtype=int)),
    "fps": ({"fps": 4.0, "max_frames": 64}, np.linspace(0, COUNT - 1, 12, dtype=int)),
}


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
    return write_clip(str(tmp_path_factory.mktemp("lmms_clip") / "clip.mp4"), count=COUNT, fps=SOURCE_FPS)


@pytest.fixture(scope="module", params=["qwen2_5_vl", "qwen3_vl"])
def family(request):
    policy = policy_named(request.param)
    _, processor = policy.build_tiny()
    return policy, processor


def expected_timing(name: str, indices) -> tuple[str, torch.Tensor]:
    """The clip input that carries its timing, and its value for frames at source `indices` of a 10 fps video."""
    if name == "qwen2_5_vl":  # temporal patch (2 frames) / sampled fps, sampled fps = frames / total frames * fps
        return "second_per_grid_ts", torch.tensor([2 / (len(indices) / COUNT * SOURCE_FPS)])
    seconds = np.asarray(indices) / SOURCE_FPS  # Qwen3-VL: the mean time of each temporal patch's 2 frames
    return "video_timestamps", torch.tensor((seconds[0::2] + seconds[1::2]) / 2, dtype=torch.float64)


@pytest.mark.parametrize("sampling", sorted(SAMPLINGS))
def test_the_adapters_clip_has_the_timing_r1video_eval_gives(family, clip_path, sampling):
    policy, processor = family
    kwargs, indices = SAMPLINGS[sampling]
    adapter = load_video_clip(policy, processor, clip_path, **kwargs)
    sample = EvalSample(id="0", group="g", question="q", choices=("a", "b"), answer="A", video=clip_path)
    evaluated, eval_indices = load_sample_clip(policy, processor, sample, **kwargs)

    key, timing = expected_timing(policy.name, indices)
    assert adapter.frame_indices == eval_indices == indices.tolist()
    assert torch.allclose(adapter.inputs[key], timing) and torch.equal(adapter.inputs[key], evaluated.inputs[key])
    assert adapter.inputs.keys() == evaluated.inputs.keys()
    assert all(torch.equal(adapter.inputs[k], evaluated.inputs[k]) for k in adapter.inputs)
    # what the adapter gave before: the frames without their timing, taken as sampled at 2 fps
    untimed = policy.clip_from_frames(processor, np.zeros((len(indices), 32, 32, 3), dtype=np.uint8))
    assert not torch.allclose(untimed.inputs[key], timing)


def test_the_adapter_reads_its_videos_with_load_video_clip():
    """The adapter cannot be imported here (it subclasses lmms-eval's model class), so its source is read: its videos
    go through `load_video_clip` with its own sampling settings, never through bare frames."""
    import ast
    from pathlib import Path

    import r1video.eval

    tree = ast.parse((Path(r1video.eval.__file__).parent / "lmms_eval_model.py").read_text())
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    names = [ast.unparse(call.func) for call in calls]
    assert "load_video_frames" not in names and "self.policy.clip_from_frames" not in names
    (read,) = [call for call in calls if ast.unparse(call.func) == "load_video_clip"]
    assert [ast.unparse(arg) for arg in read.args] == [
        "self.policy", "self.processor", "path", "self.num_frames", "self.fps", "self.max_frames"
    ]  # fmt: skip
    assert "self._clip" in names
