"""The benchmarks `r1video eval` knows: how to read each one, how to prompt for it and how to average its score.

Prompt layouts follow the original evaluation code (seed-facts §9): the reason prompt (R1) and the option prompt
(TinyLLaVA-Video) differ per benchmark in how options are written (`A. text` or `(A) text`), whether an
`Options:` line comes first, and whether the options block is right-stripped (see `r1video.eval.prompts`).
"""

from collections.abc import Callable
from dataclasses import dataclass

from r1video.eval.benchmarks import longvideobench, mlvu, mmvu, mvbench, videomme
from r1video.eval.samples import EvalSample

__all__ = ["BENCHMARKS", "Benchmark", "get_benchmark"]


@dataclass(frozen=True)
class Benchmark:
    """How to load, prompt and score one benchmark.

    Args:
        name (`str`): The `--benchmark` value.
        title (`str`): Display name.
        load (`Callable`): `load(data_dir, tasks=None, video_dir=None, **options) -> list[EvalSample]`.
        layouts (`dict`): Prompt type (`"reason"`, `"option"`) -> `(option style, options header, strip)`, see
            [`r1video.eval.prompts.build_question`].
        average (`str`): The headline: `"micro"` (correct / total) or `"macro"` (mean of the group accuracies).
        group_label (`str`): What a group is (`"Task"`, `"Duration"`).
        options (`tuple[str, ...]`): Extra keyword arguments `load` accepts.
        question_prefix (`Callable`, *optional*): `question_prefix(sample, frame_indices) -> str`, text written
            before the question once the frames are known (LongVideoBench's interleaved subtitles).
        split_option_texts (`bool`): How the original's option-prompt parser sees the option texts: as
            `"A. text".split(". ")[1][:-1]` (True: it built `"A. text"` strings and split them back, Video-MME and
            LongVideoBench) or as given (False).
    """

    name: str
    title: str
    load: Callable[..., list[EvalSample]]
    layouts: dict[str, tuple[str, str, bool]]
    average: str
    group_label: str
    options: tuple[str, ...] = ()
    question_prefix: Callable[[EvalSample, list[int]], str] | None = None
    split_option_texts: bool = False

    def original_option_texts(self, sample: EvalSample) -> tuple[str, ...]:
        """The option texts the original's option-prompt parser matches answers against (its `index2ans`)."""
        if not self.split_option_texts:
            return sample.choices
        return tuple(
            f"{letter}. {text}".split(". ")[1][:-1]
            for letter, text in zip(sample.letters, sample.choices, strict=True)
        )


BENCHMARKS = {
    "mvbench": Benchmark(
        "mvbench",
        "MVBench",
        mvbench.load,
        {"reason": ("dot", "Options:\n", True), "option": ("paren", "", True)},
        "micro",
        "Task",
        options=("respect_bounds",),
    ),
    "videomme": Benchmark(
        "videomme",
        "Video-MME (wo sub)",
        videomme.load,
        {"reason": ("dot", "Options:\n", False), "option": ("dot", "", False)},
        "micro",
        "Duration",
        split_option_texts=True,
    ),
    "mlvu": Benchmark(
        "mlvu",
        "MLVU (dev)",
        mlvu.load,
        {"reason": ("paren", "", True), "option": ("paren", "", True)},
        "macro",
        "Task",
    ),
    "mmvu": Benchmark(
        "mmvu",
        "MMVU (mc)",
        mmvu.load,
        {"reason": ("dot", "", False), "option": ("dot", "", False)},
        "micro",
        "Question type",
    ),
    # TinyLLaVA-Video evaluated it with the option prompt only; the reason layout is Video-MME's (R1 has no LVB run).
    "longvideobench": Benchmark(
        "longvideobench",
        "LongVideoBench (val)",
        longvideobench.load,
        {"reason": ("dot", "Options:\n", False), "option": ("dot", "", False)},
        "micro",
        "Duration",
        question_prefix=longvideobench.question_prefix,
        split_option_texts=True,
    ),
}


def get_benchmark(name: str) -> Benchmark:
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise ValueError(f"unknown benchmark {name!r}; choose from: {', '.join(BENCHMARKS)}") from None
