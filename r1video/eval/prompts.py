"""Evaluation prompts: the original question layouts, byte for byte, wrapped in the model family's prompt format (the
policy's `question_prompt`; for TinyLLaVA-Video the `qwen2_base` conversation format of the original evaluation).

The original evaluation scripts (TinyLLaVA-Video-R1 `tinyllava/eval/eval_*.py`, seed-facts §9) keep the question and
option texts as given, whitespace included; they differ in how the options block ends:

- MVBench and MLVU write each option followed by a new line, then right-strip the question and options together,
  so trailing whitespace of the last option is dropped (`"The blue cube "` ends the block as `"The blue cube"`);
- Video-MME and MMVU join the options with new lines and keep everything (a trailing space of the question or of
  the last option stays).

The instruction follows on its own line. A layout is `(option style, options header, strip)`: `style` `"dot"`
writes `A. text`, `"paren"` writes `(A) text`; `header` comes before the options (`"Options:\\n"` or `""`); `strip`
selects the MVBench/MLVU ending.
"""

from r1video.eval.samples import LETTERS, EvalSample
from r1video.model.templates import QUESTION_TEMPLATES, apply_question_template

PROMPT_TYPES = ("reason", "option")
# The instruction on its own line after the options, as every original evaluation script writes it
_TEMPLATES = {"reason": QUESTION_TEMPLATES["r1_eval"], "option": QUESTION_TEMPLATES["option"]}
_OPTION_FORMATS = {"dot": "{letter}. {text}", "paren": "({letter}) {text}"}


def build_question(sample: EvalSample, prompt_type: str, layout: dict[str, tuple[str, str, bool]]) -> str:
    """The user turn without the video placeholder, as the original evaluation script writes it.

    Args:
        sample: The question and its choices.
        prompt_type: `"reason"` (think/answer tags, TinyLLaVA-Video-R1) or `"option"` (answer with the letter,
            TinyLLaVA-Video).
        layout: The benchmark's `{prompt_type: (option style, options header, strip)}`.

    Raises:
        ValueError: An unknown prompt type or option style.

    Example (MVBench, reason)::

        What happened after the person held the box?
        Options:
        A. Ate the sandwich.
        B. Took the towel.
        Output the thinking process in <think> </think> and final answer (option) in <answer> </answer> tags.
    """
    if prompt_type not in PROMPT_TYPES:
        raise ValueError(f"unknown prompt type {prompt_type!r}; use one of {PROMPT_TYPES}")
    style, header, strip = layout[prompt_type]
    if style not in _OPTION_FORMATS:
        raise ValueError(f"unknown option style {style!r}; use one of {list(_OPTION_FORMATS)}")
    options = [_OPTION_FORMATS[style].format(letter=LETTERS[i], text=c) for i, c in enumerate(sample.choices)]
    if strip:
        block = (f"{sample.question}\n{header}" + "".join(f"{option}\n" for option in options)).rstrip()
    else:
        block = f"{sample.question}\n{header}" + "\n".join(options)
    return apply_question_template(_TEMPLATES[prompt_type], block)


def build_prompt(
    sample: EvalSample, prompt_type: str, layout: dict[str, tuple[str, str, bool]], policy, processor=None
) -> str:
    """The full generation prompt in the family's format (`policy.question_prompt`); for TinyLLaVA-Video: system line,
    `USER: <image>\\n{question} ASSISTANT:`."""
    return policy.question_prompt(processor, build_question(sample, prompt_type, layout))
