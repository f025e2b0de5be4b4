"""Evaluation on MVBench, Video-MME, MLVU and MMVU from local copies, following TinyLLaVA-Video-R1's protocol.

Entry points: `r1video eval` ([`r1video.eval.cli`]) and `r1video infer` ([`r1video.eval.infer`]); in Python,
[`run_evaluation`] with an [`EvalConfig`].

The names below are imported on first use, so `r1video eval --help` loads no torch.
"""

import importlib

_MODULES = {
    "BENCHMARKS": "r1video.eval.benchmarks",
    "Benchmark": "r1video.eval.benchmarks",
    "get_benchmark": "r1video.eval.benchmarks",
    "load_sample_clip": "r1video.eval.frames",
    "load_sample_frames": "r1video.eval.frames",
    "load_sample_video": "r1video.eval.frames",
    "load_video_clip": "r1video.eval.frames",
    "segment_centre_indices": "r1video.eval.frames",
    "PredictionLog": "r1video.eval.predictions",
    "build_prompt": "r1video.eval.prompts",
    "build_question": "r1video.eval.prompts",
    "EvalConfig": "r1video.eval.runner",
    "EvalResult": "r1video.eval.runner",
    "generate_batch": "r1video.eval.runner",
    "load_samples": "r1video.eval.runner",
    "run_evaluation": "r1video.eval.runner",
    "BenchmarkDataError": "r1video.eval.samples",
    "EvalSample": "r1video.eval.samples",
    "GroupScore": "r1video.eval.scoring",
    "Scores": "r1video.eval.scoring",
    "extract_prediction": "r1video.eval.scoring",
    "is_correct": "r1video.eval.scoring",
    "score_records": "r1video.eval.scoring",
    "seeded_guess": "r1video.eval.scoring",
}

__all__ = sorted(_MODULES)


def __getattr__(name: str):
    if name in _MODULES:
        return getattr(importlib.import_module(_MODULES[name]), name)
    raise AttributeError(f"module 'r1video.eval' has no attribute {name!r}")
