"""Evaluation on MVBench, Video-MME, MLVU and MMVU from local copies, following TinyLLaVA-Video-R1's protocol.

Entry points: `r1video eval` ([`r1video.eval.cli`]) and `r1video infer` ([`r1video.eval.infer`]); in Python,
[`run_evaluation`] with an [`EvalConfig`].
"""

from r1video.eval.benchmarks import BENCHMARKS, Benchmark, get_benchmark
from r1video.eval.frames import load_sample_frames, segment_centre_indices
from r1video.eval.predictions import PredictionLog
from r1video.eval.prompts import build_prompt, build_question
from r1video.eval.runner import EvalConfig, EvalResult, generate_batch, load_samples, run_evaluation
from r1video.eval.samples import BenchmarkDataError, EvalSample
from r1video.eval.scoring import GroupScore, Scores, extract_prediction, is_correct, score_records, seeded_guess

__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "BenchmarkDataError",
    "EvalConfig",
    "EvalResult",
    "EvalSample",
    "GroupScore",
    "PredictionLog",
    "Scores",
    "build_prompt",
    "build_question",
    "extract_prediction",
    "generate_batch",
    "get_benchmark",
    "is_correct",
    "load_sample_frames",
    "load_samples",
    "run_evaluation",
    "score_records",
    "seeded_guess",
    "segment_centre_indices",
]
