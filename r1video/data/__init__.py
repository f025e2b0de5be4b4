"""Video data: PyAV frame sampling, dataset loaders, validation, the synthetic video-QA set.

The names below are imported on first use (and `datasets` only when a loader runs), so `import r1video.data` and
`r1video data --help` stay light.
"""

import importlib

_MODULES = {
    "BadSampleTracker": "r1video.data.bad_samples",
    "TooManyBadSamplesError": "r1video.data.bad_samples",
    "load_grpo_dataset": "r1video.data.loaders",
    "load_sft_dataset": "r1video.data.loaders",
    "load_video_dataset": "r1video.data.loaders",
    "PathEscapeError": "r1video.data.paths",
    "resolve_video_path": "r1video.data.paths",
    "answer_letter": "r1video.data.records",
    "parse_choices": "r1video.data.records",
    "VideoDecodeError": "r1video.data.video",
    "VideoFrames": "r1video.data.video",
    "load_video_frames": "r1video.data.video",
    "uniform_indices": "r1video.data.video",
}

__all__ = sorted(_MODULES)


def __getattr__(name: str):
    if name in _MODULES:
        return getattr(importlib.import_module(_MODULES[name]), name)
    raise AttributeError(f"module 'r1video.data' has no attribute {name!r}")
