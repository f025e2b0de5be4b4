"""Evaluation prompts: the original question layouts, wrapped in the `qwen2_base` conversation format."""

from r1video.eval.samples import EvalSample
from r1video.model.templates import format_options, option_question, qwen2_base_prompt, reason_question

PROMPT_TYPES = ("reason", "option")


def build_question(sample: EvalSample, prompt_type: str, layout: dict[str, tuple[str, str]]) -> str:
    """The user turn without the video placeholder.

    Args:
        sample: The question and its choices.
        prompt_type: `"reason"` (think/answer tags, TinyLLaVA-Video-R1) or `"option"` (answer with the letter,
            TinyLLaVA-Video).
        layout: The benchmark's `{prompt_type: (option style, options header)}`.

    Example (MVBench, reason)::

        What happened after the person held the box?
        Options:
        A. Ate the sandwich.
        B. Took the towel.
        Output the thinking process in <think> </think> and final answer (option) in <answer> </answer> tags.
    """
    if prompt_type not in PROMPT_TYPES:
        raise ValueError(f"unknown prompt type {prompt_type!r}; use one of {PROMPT_TYPES}")
    style, header = layout[prompt_type]
    options = format_options(list(sample.choices), style)
    if prompt_type == "reason":
        return reason_question(sample.question.strip(), options, options_header=header)
    return option_question(sample.question.strip(), options)


def build_prompt(sample: EvalSample, prompt_type: str, layout: dict[str, tuple[str, str]]) -> str:
    """The full generation prompt: system line, `USER: <image>\\n{question} ASSISTANT:`."""
    return qwen2_base_prompt(build_question(sample, prompt_type, layout))
