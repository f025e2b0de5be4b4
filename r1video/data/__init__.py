"""Video data: PyAV frame sampling, dataset loaders, validation, the synthetic video-QA set.

`datasets` is imported only when a loader runs, so `import r1video.data` stays light.
"""

from r1video.data.bad_samples import BadSampleTracker, TooManyBadSamplesError
from r1video.data.loaders import load_grpo_dataset, load_sft_dataset, load_video_dataset
from r1video.data.paths import PathEscapeError, resolve_video_path
from r1video.data.records import answer_letter, parse_choices
from r1video.data.video import VideoDecodeError, VideoFrames, load_video_frames, uniform_indices

__all__ = [
    "BadSampleTracker",
    "PathEscapeError",
    "TooManyBadSamplesError",
    "VideoDecodeError",
    "VideoFrames",
    "answer_letter",
    "load_grpo_dataset",
    "load_sft_dataset",
    "load_video_dataset",
    "load_video_frames",
    "parse_choices",
    "resolve_video_path",
    "uniform_indices",
]
