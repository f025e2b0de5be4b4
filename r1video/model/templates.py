"""Prompt strings of TinyLLaVA-Video and TinyLLaVA-Video-R1, exactly as the original code builds them (seed-facts §4).

Every instruction and question template lives here; training data (synth), GRPO, the demo, the bench and evaluation
take theirs from [`QUESTION_TEMPLATES`] through [`resolve_question_template`] (a recipe's `question_template`).

The `qwen2_base` conversation format:

    "{SYSTEM}USER: <image>\\n{question} ASSISTANT:"                       generation (no trailing space)
    "{SYSTEM}USER: <image>\\n{question} ASSISTANT: {answer}<|endoftext|>"   training

The same format is available as a chat template (`chat_templates/qwen2_base.jinja`) for TRL's conversational prompts.
"""

from importlib import resources

VIDEO_PLACEHOLDER = "<image>"  # the original uses the image placeholder for videos too; there is no <video> token
# How the chat template writes an "<image>" that is text of a question, not the video placeholder ("<", U+2060 WORD
# JOINER, "image>"); the processor tokenises it as the ordinary characters of "<image>".
LITERAL_PLACEHOLDER = "<\u2060image>"
VIDEO_MARKERS = ("<image>", "<video>")  # what marks the clip in a question (LLaVA data uses both)
EOS = "<|endoftext|>"
QWEN2_BASE_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions. "
)
REASON_INSTRUCTION = (
    "Output the thinking process in <think> </think> and final answer (option) in <answer> </answer> tags."
)
OPTION_INSTRUCTION = "Answer with the option's letter from the given choices directly."
OPEN_ENDED_INSTRUCTION = "Answer the question directly without explanation."
QUESTION_FIELD = "{Question}"
# Named question templates (`question_template` in a recipe); `{Question}` is the problem text.
QUESTION_TEMPLATES = {
    "r1": f"{QUESTION_FIELD} {REASON_INSTRUCTION}",  # R1 train.py: the problem, a space, the reasoning instruction
    "r1_eval": f"{QUESTION_FIELD}\n{REASON_INSTRUCTION}",  # R1's evaluation scripts: the instruction on its own line
    "option": f"{QUESTION_FIELD}\n{OPTION_INSTRUCTION}",  # TinyLLaVA-Video: answer with the letter directly
    "open_ended": f"{QUESTION_FIELD}\n{OPEN_ENDED_INSTRUCTION}",  # TinyLLaVA-Video, questions without options
    "none": QUESTION_FIELD,  # the problem text as it is
}


def load_chat_template(name: str = "qwen2_base") -> str:
    return resources.files("r1video.model").joinpath("chat_templates", f"{name}.jinja").read_text()


def split_marker(text: str) -> tuple[str, bool]:
    """Remove the placeholder that marks the clip: one `<image>`/`<video>` at the start or end of `text` (LLaVA data
    writes `"<image>\\n{question}"`).

    Returns:
        `(text, marked)`: the text without that one placeholder (then stripped of surrounding blanks) and whether
        there was one; unmarked text comes back unchanged. Placeholders elsewhere in the text are left as they are:
        they are words of the question (`"What does the <video> tag do?"`).
    """
    stripped = text.strip()
    for token in VIDEO_MARKERS:
        if stripped.startswith(token):
            return stripped[len(token) :].strip(), True
        if stripped.endswith(token):
            return stripped[: -len(token)].strip(), True
    return text, False


def question_text(question: str) -> str:
    """A question as a prompt holds it: its marker placeholder removed, any other `<image>` written as text."""
    return split_marker(question)[0].strip().replace(VIDEO_PLACEHOLDER, LITERAL_PLACEHOLDER)


def qwen2_base_prompt(question: str, answer: str | None = None, system: str = QWEN2_BASE_SYSTEM) -> str:
    """One round with a video. `answer=None` gives the generation prompt, ending in "ASSISTANT:"."""
    prompt = f"{system}USER: {VIDEO_PLACEHOLDER}\n{question_text(question)} ASSISTANT:"
    return prompt if answer is None else f"{prompt} {answer}{EOS}"


def resolve_question_template(value: str, field: str = "question_template") -> str:
    """The question template a recipe names, as a format string with one `{Question}` field.

    Args:
        value: A name in [`QUESTION_TEMPLATES`] (`r1`, `r1_eval`, `option`, `open_ended`, `none`), a path to a
            `.txt` file holding a template (one trailing line end is dropped), or a literal template containing
            `{Question}` (other braces doubled, as in `str.format`).
        field: What to name in errors (the recipe key).

    Raises:
        ValueError: An unknown name, a missing file, or a template without `{Question}` or with another field; the
            message names `field` (and the file).
    """
    if value in QUESTION_TEMPLATES:
        return QUESTION_TEMPLATES[value]
    where = field
    if value.endswith(".txt"):
        try:
            with open(value, encoding="utf-8-sig") as f:
                text = f.read()
        except OSError as exc:
            raise ValueError(f"{field}: cannot read template file {value!r} ({exc.strerror})") from None
        value, where = text.removesuffix("\n").removesuffix("\r"), f"{field} ({value})"
    if QUESTION_FIELD not in value:
        raise ValueError(
            f"{where}: {value!r} is neither a template name ({', '.join(QUESTION_TEMPLATES)}), a .txt file, nor a "
            f"template containing {QUESTION_FIELD}"
        )
    try:
        value.format(Question="")
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"{where}: {value!r} has a field other than {QUESTION_FIELD} ({exc!r}); write a literal brace as {{{{ or }}}}"
        ) from None
    return value


def apply_question_template(template: str, problem: str) -> str:
    """`template` (see [`resolve_question_template`]) filled with the problem text."""
    return template.format(Question=problem)


def grpo_question(problem: str) -> str:
    """The R1 training question: the problem, a space, then the reasoning instruction (R1 train.py)."""
    return apply_question_template(QUESTION_TEMPLATES["r1"], problem)


def format_options(choices: list[str], style: str = "dot") -> str:
    """`["x", "y"]` -> "A. x\\nB. y" (`dot`) or "(A) x\\n(B) y" (`paren`)."""
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    if style == "dot":
        return "\n".join(f"{letters[i]}. {choice}" for i, choice in enumerate(choices))
    if style == "paren":
        return "\n".join(f"({letters[i]}) {choice}" for i, choice in enumerate(choices))
    raise ValueError(f"Unknown option style {style!r}; use 'dot' or 'paren'")


def reason_question(question: str, options: str, options_header: str = "Options:\n") -> str:
    """The R1 evaluation question (reason mode): question, options, reasoning instruction, newline-separated."""
    return apply_question_template(QUESTION_TEMPLATES["r1_eval"], f"{question}\n{options_header}{options}")


def option_question(question: str, options: str) -> str:
    """The TinyLLaVA-Video evaluation question (option mode): answer with the letter directly."""
    return apply_question_template(QUESTION_TEMPLATES["option"], f"{question}\n{options}")
