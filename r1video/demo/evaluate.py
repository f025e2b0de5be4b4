"""Greedy held-out evaluation of a stage: accuracy per task and overall, and format compliance.

Two answer types, as in the paper's table: `option` asks for the letter directly (TinyLLaVA-Video's prompt) and reads
it from the whole reply; `reason` asks for `<think>…</think> <answer>…</answer>` (TinyLLaVA-Video-R1's prompt) and
reads the letter from the answer tags only. Format compliance is the strict rule of the `tinyllava_r1` reward.
"""

import math
from dataclasses import dataclass

import torch

from r1video.data.video import load_video_frames
from r1video.demo.data import EvalItem
from r1video.eval.runner import generate_batch
from r1video.model.templates import OPTION_INSTRUCTION, grpo_question, qwen2_base_prompt
from rewards.parsing import extract_answer, parse_think_answer

ANSWER_TYPES = {"option": "Option", "reason": "Reason"}


@dataclass
class EvalResult:
    """Accuracies (percent) of one stage in one answer type.

    Attributes:
        answer_type: `"option"` or `"reason"`.
        accuracy: Percent correct over all questions.
        stderr: Sampling error of `accuracy` (binomial standard error, points).
        per_task: Task → percent correct.
        format: Percent of replies in the strict think/answer format (reason mode), else `None`.
        n: Number of questions.
        examples: A few replies, for a reader.
    """

    answer_type: str
    accuracy: float
    stderr: float
    per_task: dict[str, float]
    format: float | None
    n: int
    examples: list[dict]

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def question_text(item: EvalItem, answer_type: str) -> str:
    """The question as the model is asked it: the same text as its training data of that answer type."""
    if answer_type == "option":
        return f"{item.problem}\n{OPTION_INSTRUCTION}"
    return grpo_question(item.problem)


class Evaluator:
    """Evaluates models on a fixed list of questions; the clips are decoded and preprocessed once.

    Args:
        items: The questions.
        processor: A `TinyLlavaVideoProcessor` (frame preprocessing, tokenisation, decoding).
        num_frames: Frames per clip.
        max_new_tokens: Longest greedy reply.
        batch_size: Questions per `generate` call.
    """

    def __init__(self, items: list[EvalItem], processor, num_frames: int, max_new_tokens: int, batch_size: int):
        self.items, self.processor = items, processor
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.pixels = [processor.preprocess_frames(load_video_frames(i.video, num_frames).frames) for i in items]

    def replies(self, model, answer_type: str) -> list[str]:
        """Greedy replies of `model` to every question."""
        prompts = [qwen2_base_prompt(question_text(item, answer_type)) for item in self.items]
        gen_kwargs = {"max_new_tokens": self.max_new_tokens, "do_sample": False}
        was_training = model.training
        model.eval()
        out = []
        for start in range(0, len(prompts), self.batch_size):
            end = start + self.batch_size
            out += generate_batch(model, self.processor, prompts[start:end], self.pixels[start:end], gen_kwargs)
        model.train(was_training)
        return out

    def evaluate(self, model, answer_type: str) -> EvalResult:
        """Accuracy per task and overall (and format compliance in reason mode)."""
        with torch.no_grad():
            replies = self.replies(model, answer_type)
        correct, formatted, by_task = [], [], {}
        for item, reply in zip(self.items, replies, strict=True):
            letter = extract_answer(reply, letters="ABCD", require_tags=answer_type == "reason").letter
            correct.append(letter == item.letter)
            formatted.append(parse_think_answer(reply) is not None)
            by_task.setdefault(item.task, []).append(correct[-1])
        n = len(correct)
        accuracy = 100.0 * sum(correct) / n
        return EvalResult(
            answer_type=answer_type,
            accuracy=accuracy,
            stderr=100.0 * math.sqrt(accuracy / 100 * (1 - accuracy / 100) / n),
            per_task={task: 100.0 * sum(v) / len(v) for task, v in by_task.items()},
            format=100.0 * sum(formatted) / n if answer_type == "reason" else None,
            n=n,
            examples=[
                {"task": i.task, "gold": i.letter, "reply": r}
                for i, r in list(zip(self.items, replies, strict=True))[:4]
            ],
        )
