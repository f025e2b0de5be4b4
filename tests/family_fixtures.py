"""What the family tests share (tests/test_qwen2_5_vl.py, test_qwen3_families.py, test_llava_onevision.py,
test_smolvlm.py): the prompts, a left-padded batch of prompts plus completion tokens, and per-token log-probs."""

from contextlib import contextmanager
from pathlib import Path

import torch
import yaml

QUESTIONS = ["what moves left?", "how many squares", "which colour is the square"]
TEXT_ONLY = [{"role": "user", "content": "hello"}]


def video_prompt(question):
    return [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}]


def batch(policy, processor, clips, index, completion=5, seed=0):
    """Left-padded ids of prompt + random completion tokens for rows `index` (-1: a text-only row).

    Returns:
        `(input_ids [rows, L], attention_mask [rows, L])`.
    """
    prompts = [
        policy.render_prompt(processor, TEXT_ONLY if i < 0 else video_prompt(QUESTIONS[i % len(QUESTIONS)]))
        for i in index
    ]
    ids = policy.tokenize_prompts(processor, prompts, [None if i < 0 else clips[i] for i in index])
    generator = torch.Generator().manual_seed(seed)
    ids = [row + torch.randint(50, 300, (completion,), generator=generator).tolist() for row in ids]
    length, pad = max(map(len, ids)), processor.tokenizer.pad_token_id
    input_ids = torch.tensor([[pad] * (length - len(row)) + row for row in ids])
    mask = torch.tensor([[0] * (length - len(row)) + [1] * len(row) for row in ids])
    return input_ids, mask


def token_logps(model, input_ids, mask, **kwargs):
    """`[rows, L-1]` log-probs of each next token, 0 at padding."""
    logits = model(input_ids=input_ids, attention_mask=mask, **kwargs).logits.float()
    logps = torch.log_softmax(logits[:, :-1], -1).gather(-1, input_ids[:, 1:, None])[..., 0]
    return logps * mask[:, 1:]


@contextmanager
def trainable(policy, model, connector: bool):
    """Inside the block the vision encoder is frozen and the connector (Qwen: the mergers) trainable or not; both are
    frozen after it, gradients cleared."""
    model.requires_grad_(True)
    policy.freeze(model, vision=True, connector=not connector)
    try:
        yield
    finally:
        model.zero_grad()
        model.requires_grad_(True)
        policy.freeze(model, vision=True, connector=True)


RECIPES = Path(__file__).resolve().parents[1] / "recipes"
# Keys in which a family's recipes may differ from TinyLLaVA-Video-R1's (each explained in the recipe).
POLICY_KEYS = {"model_name_or_path", "output_dir", "question_template", "max_length"}


def check_paper_recipe(family_dir: str, stage: str):
    """Assert that `recipes/<family_dir>/<stage>.yaml` keeps TinyLLaVA-Video-R1's settings (only `POLICY_KEYS`
    differ; 16 frames, the vision tower frozen; for GRPO the r1 question template, 8 generations, β 0.01, lr 1e-6,
    loss `grpo`) and parses with the stage's parser.

    Returns:
        `(recipe yaml dict, script_args, training args, model_args)`.
    """
    from r1video import grpo, sft
    from r1video.model.templates import QUESTION_TEMPLATES, resolve_question_template

    recipe = RECIPES / family_dir / f"{stage}.yaml"
    paper = yaml.safe_load((RECIPES / "TinyLLaVA-Video-Qwen2.5-3B" / f"{stage}.yaml").read_text())
    ours = yaml.safe_load(recipe.read_text())
    differing = {key for key in paper.keys() | ours.keys() if paper.get(key) != ours.get(key)}
    assert differing <= POLICY_KEYS, differing - POLICY_KEYS
    parser = (sft if stage == "coldstart_sft" else grpo).make_parser()
    script_args, args, model_args = parser.parse_args_and_config(["--config", str(recipe), "--bf16", "false"])
    assert args.num_frames == 16 and args.freeze_vision_tower
    if stage == "grpo_nextqa":
        assert resolve_question_template(script_args.question_template) == QUESTION_TEMPLATES["r1"]
        assert (args.num_generations, args.beta, args.learning_rate, args.loss_type) == (8, 0.01, 1e-6, "grpo")
    return ours, script_args, args, model_args
