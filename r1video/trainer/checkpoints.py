"""Which checkpoint a run resumes from: the newest complete one, never one a kill left half-written.

transformers writes a checkpoint directory in place, `trainer_state.json` last (after weights, optimizer, scheduler
and RNG states). A directory without a readable `trainer_state.json` for its own step, or without weights, was cut
short and is skipped.
"""

import json
import logging
import os
import re

logger = logging.getLogger(__name__)

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors")


def incomplete_reason(path: str | os.PathLike) -> str | None:
    """Why the checkpoint at `path` cannot be resumed from, or `None` when it is complete."""
    path = str(path)
    match = _CHECKPOINT.match(os.path.basename(os.path.normpath(path)))
    state_file = os.path.join(path, "trainer_state.json")
    try:
        with open(state_file) as f:
            state = json.load(f)
    except FileNotFoundError:
        return "no trainer_state.json (the save was interrupted)"
    except json.JSONDecodeError:
        return "trainer_state.json is truncated"
    if match and state.get("global_step") != int(match.group(1)):
        return f"trainer_state.json is for step {state.get('global_step')}, not {match.group(1)}"
    if not any(os.path.exists(os.path.join(path, name)) for name in _WEIGHTS):
        return "no model weights"
    return None


def last_complete_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest complete `checkpoint-N` in `output_dir`, or `None`; incomplete ones are logged and skipped."""
    if not os.path.isdir(output_dir):
        return None
    steps = sorted((int(m.group(1)), name) for name in os.listdir(output_dir) if (m := _CHECKPOINT.match(name)))
    for _, name in reversed(steps):
        path = os.path.join(str(output_dir), name)
        reason = incomplete_reason(path)
        if reason is None:
            return path
        logger.warning("not resuming from %s: %s", path, reason)
    return None


def resolve_resume(resume_from_checkpoint: str | bool | None, output_dir: str) -> str | None:
    """Turn a recipe's `resume_from_checkpoint` into a checkpoint path.

    `true`/`"latest"` means the newest complete checkpoint in `output_dir` (none yet: start from scratch); a path must
    be a complete checkpoint.
    """
    if resume_from_checkpoint in (None, False, "", "false", "False"):
        return None
    if resume_from_checkpoint in (True, "true", "True", "latest"):
        found = last_complete_checkpoint(output_dir)
        if found is None:
            logger.info("no complete checkpoint in %s: starting from scratch", output_dir)
        return found
    reason = incomplete_reason(resume_from_checkpoint)
    if reason is not None:
        raise ValueError(f"Cannot resume from {resume_from_checkpoint}: {reason}")
    return str(resume_from_checkpoint)


class ReleasedLayoutResumeMixin:
    """Resume a TinyLLaVA-Video run from its own checkpoints.

    Checkpoints hold the weights under the released key names (`language_model.model.*`, ...), while the model's
    parameters are named `model.language_model.*`. transformers' `Trainer._load_from_checkpoint` loads the file with
    `load_state_dict(strict=False)`, which would match no key and silently resume from the initial weights; this seam
    maps the names first and fails loudly on any mismatch. DeepSpeed, FSDP and PEFT checkpoints keep their own path.
    """

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        from r1video.model import TinyLlavaVideoPreTrainedModel
        from r1video.model.loading import load_checkpoint_weights

        target = self.accelerator.unwrap_model(model if model is not None else self.model)
        # A PEFT-wrapped model is not a TinyLlavaVideoPreTrainedModel, so adapters keep transformers' own path.
        if isinstance(target, TinyLlavaVideoPreTrainedModel) and not (
            self.is_deepspeed_enabled or self.is_fsdp_enabled
        ):
            logger.info("loading the weights of %s", resume_from_checkpoint)
            load_checkpoint_weights(target, resume_from_checkpoint)
            return
        super()._load_from_checkpoint(resume_from_checkpoint, model)
