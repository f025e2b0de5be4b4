"""Which checkpoint a run resumes from (the newest complete one), and the state r1video keeps in each checkpoint.

transformers writes a checkpoint directory in place, `trainer_state.json` last (after weights, optimizer, scheduler
and RNG states; `VideoGRPOTrainer` writes its rollout buffer first). A checkpoint is complete when its
`trainer_state.json` is readable and for its own step, its weights have a readable header and their full size, and
every other file its save wrote is there, not empty and not cut short (a `torch.save` zip keeps its directory at its
end). Which files that is comes from the [`RunRecord`] stored in `trainer_state.json` (model-only saves write no
optimizer, scheduler or RNG state); a checkpoint from before the record existed must have all of them or none.
"""

import contextlib
import errno
import json
import logging
import os
import re
import zipfile

from safetensors import SafetensorError, safe_open
from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState
from trl import GRPOConfig

from r1video.trainer.rollout_buffer import rollout_buffer_file

logger = logging.getLogger(__name__)

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors")
_TRAINING_STATE = ("optimizer.pt", "scheduler.pt", "rng_state.pth")


@contextlib.contextmanager
def no_space_reported(path: str):
    """Turn a failed write under `path` on a full filesystem into `OSError(ENOSPC)` saying "no space" and the path.

    torch's writer fails with `RuntimeError("basic_ios::clear: iostream error")`, which names neither; a failure is
    taken as a full disk when an `ENOSPC` is in its chain or under 1 MiB is left where `path` lives.
    """
    try:
        yield
    except Exception as exc:
        chain, cause = [], exc
        while cause is not None:
            chain.append(cause)
            cause = cause.__cause__ or cause.__context__
        full = any(isinstance(e, OSError) and e.errno == errno.ENOSPC for e in chain) or "os error 28" in str(exc)
        existing = path
        while not os.path.exists(existing):
            existing = os.path.dirname(existing) or "."
        disk = os.statvfs(existing)
        free = disk.f_bavail * disk.f_frsize
        if not (full or free < 2**20):
            raise
        file = next((e.filename for e in chain if isinstance(e, OSError) and e.filename), None)
        raise OSError(
            errno.ENOSPC, f"No space left on the device while writing {file or path} ({free} bytes free): {exc}", path
        ) from exc


def saved_files(args) -> list[str]:
    """The files besides weights and `trainer_state.json` that `_save_checkpoint` writes under `args`.

    DeepSpeed's engine writes the optimizer and scheduler in its own layout (`global_step*/`) and FSDP the optimizer;
    for those only what transformers itself writes is listed. A GRPO run also writes each process's rollout buffer
    (`r1video.trainer.rollout_buffer`).
    """
    if args.save_only_model:
        return []
    per_process = ["rng_state.pth"] if args.world_size <= 1 else [f"rng_state_{i}.pth" for i in range(args.world_size)]
    if isinstance(args, GRPOConfig):
        per_process += [rollout_buffer_file(i, args.world_size) for i in range(args.world_size)]
    if args.deepspeed:
        return per_process
    if args.fsdp:
        return ["scheduler.pt", *per_process]
    return ["optimizer.pt", "scheduler.pt", *per_process]


def _weights_problem(path: str) -> str | None:
    """Why the weights in checkpoint `path` cannot be read, or `None`; each safetensors file's header is read and
    its size checked against the tensors it lists (safetensors does both on open)."""
    files = [name for name in ("model.safetensors", "adapter_model.safetensors") if os.path.exists(f"{path}/{name}")]
    index = os.path.join(path, "model.safetensors.index.json")
    if os.path.exists(index):
        try:
            with open(index) as f:
                files += sorted(set(json.load(f)["weight_map"].values()))
        except (json.JSONDecodeError, KeyError) as exc:
            return f"model.safetensors.index.json is unreadable ({exc})"
    if not files:
        return "no model weights"
    for name in files:
        file = os.path.join(path, name)
        if not os.path.exists(file):
            return f"{name} is missing"
        try:
            with safe_open(file, framework="pt"):  # reads the header; checks the file covers every tensor
                pass
        except (SafetensorError, OSError) as exc:
            return f"{name} is unreadable or cut short ({exc})"
    return None


def incomplete_reason(path: str | os.PathLike) -> str | None:
    """Why the checkpoint at `path` cannot be resumed from (naming what is missing), or `None` when it is complete."""
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
    weights = _weights_problem(path)
    if weights is not None:
        return weights
    record = stored_record(path)
    if record is not None:
        expected = record["saved_files"]
    elif any(os.path.exists(os.path.join(path, name)) for name in _TRAINING_STATE):
        expected = list(_TRAINING_STATE)  # a checkpoint from before the record: all of them or none
    else:
        expected = []
    missing = [name for name in expected if not os.path.exists(os.path.join(path, name))]
    if missing:
        return f"missing {', '.join(missing)}"
    for name in expected:
        problem = _state_file_problem(os.path.join(path, name))
        if problem is not None:
            return f"{name} {problem}"
    return None


def _state_file_problem(file: str) -> str | None:
    """Why a saved training-state file is unusable (`"is empty"`, `"is cut short"`), or `None`; read from its end
    only. `torch.save` writes a zip archive, whose directory is its last record, so a file cut anywhere lacks it;
    a safetensors file (the rollout buffer) is checked as the weights are."""
    if os.path.getsize(file) == 0:
        return "is empty"
    if file.endswith(".safetensors"):
        try:
            with safe_open(file, framework="pt"):
                pass
        except (SafetensorError, OSError):
            return "is cut short or unreadable"
        return None
    if not zipfile.is_zipfile(file):
        return "is cut short (no zip directory at its end, as torch.save writes)"
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

    Raises:
        ValueError: `resume_from_checkpoint` names a checkpoint that is incomplete (the message says what is missing).
    """
    if resume_from_checkpoint in (None, False, "", "false", "False"):
        return None
    if resume_from_checkpoint in (True, "true", "True", "latest"):
        found = last_complete_checkpoint(output_dir)
        if found is None:
            logger.warning("no complete checkpoint in %s: starting from scratch", output_dir)
        return found
    reason = incomplete_reason(resume_from_checkpoint)
    if reason is not None:
        raise ValueError(f"Cannot resume from {resume_from_checkpoint}: {reason}")
    return str(resume_from_checkpoint)


class RunRecord(TrainerCallback, ExportableState):
    """What a checkpoint was trained with, stored in its `trainer_state.json` (`stateful_callbacks["RunRecord"]`).

    Args:
        recipe: the resolved recipe, `{key: value}` (JSON values), as `r1video.runs.recipe_of` gives.
        data: `{recipe key: sha256 hex digest}` of the annotation files the run reads.

    `saved_files` (the files its save writes besides weights and `trainer_state.json`, see [`saved_files`]) is filled
    in when training begins. The record is read back with [`stored_record`]; transformers'
    `restore_callback_states_from_checkpoint` does not apply to it (the new run's record is the one to store, see
    [`ResumeMixin`]).
    """

    def __init__(self, recipe: dict | None = None, data: dict | None = None):
        self.recipe = recipe or {}
        self.data = data or {}
        self.saved_files: list[str] = []

    def state(self) -> dict:
        return {"args": {}, "attributes": {"recipe": self.recipe, "data": self.data, "saved_files": self.saved_files}}

    def on_train_begin(self, args, state, control, **kwargs):
        self.saved_files = saved_files(args)
        state.stateful_callbacks["RunRecord"] = self.state()  # a checkpoint from before the record has no entry


def stored_record(checkpoint: str | os.PathLike) -> dict | None:
    """The [`RunRecord`] attributes (`recipe`, `data`, `saved_files`) stored in a checkpoint, or `None` for a
    checkpoint saved without one."""
    with open(os.path.join(checkpoint, "trainer_state.json")) as f:
        callbacks = json.load(f).get("stateful_callbacks", {})
    record = callbacks.get("RunRecord")
    return None if record is None else record["attributes"]


class BadVideoTally(TrainerCallback, ExportableState):
    """Saves a [`BadSampleTracker`]'s counts with each checkpoint and restores them on resume, so the bad fraction
    of a resumed run counts the clips of the whole run; and keeps a model that has seen no video from being kept.

    While clips have failed and none has decoded on any process, a checkpoint due is not written (a warning says
    so), and a run that ends that way raises [`TooManyBadSamplesError`] instead of returning: the entry points then
    save no model and print no "saved to".

    The counts saved are those of the process that writes `trainer_state.json` (the main one).
    """

    def __init__(self, tracker=None):
        self.tracker = tracker

    def state(self) -> dict:
        if self.tracker is None:
            return {"args": {}, "attributes": {}}
        tally = self.tracker.state_dict()
        # Checkpoints are pushed to the Hub: bad clips are named by file name only, never by local path.
        tally["bad"] = {os.path.basename(p): r.replace(p, os.path.basename(p)) for p, r in tally["bad"].items()}
        return {"args": {}, "attributes": tally}

    def on_train_begin(self, args, state, control, **kwargs):
        # Resumed: the checkpoint's counts. Fresh: the entry transformers just made from `state()` (a no-op).
        stored = state.stateful_callbacks.get("BadVideoTally")
        if stored and stored.get("attributes") and self.tracker is not None:
            self.tracker.load_state_dict(stored["attributes"])
            logger.info("bad-video tally restored: %d bad of %d clips", self.tracker.num_bad, self.tracker.num_seen)
        state.stateful_callbacks["BadVideoTally"] = self.state()

    def on_step_end(self, args, state, control, **kwargs):
        if control.should_save and self._saw_no_video():
            control.should_save = False
            logger.warning(
                "checkpoint-%d not saved: the %d clips tried so far all failed to decode, the model has seen no video",
                state.global_step, self.tracker.num_bad,
            )  # fmt: skip

    def on_train_end(self, args, state, control, **kwargs):
        if self._saw_no_video():
            from r1video.data.bad_samples import TooManyBadSamplesError

            raise TooManyBadSamplesError(
                f"training ended with no video decoded: the {self.tracker.num_bad} clips tried all failed "
                f"(first: {next(iter(self.tracker.bad.values()))}); no model saved. "
                "Run `r1video data validate FILE --video-root DIR` to list every bad record."
            )

    def _saw_no_video(self) -> bool:
        """Clips failed and none decoded, on every process (the same answer everywhere, so all skip or all save)."""
        if self.tracker is None:
            return False
        import torch
        import torch.distributed as dist

        counts = torch.tensor([self.tracker.num_good, self.tracker.num_bad], dtype=torch.long)
        if dist.is_available() and dist.is_initialized():
            if dist.get_backend() == "nccl":
                counts = counts.cuda()
            dist.all_reduce(counts)
        num_good, num_bad = counts.tolist()
        return num_good == 0 and num_bad > 0


class ReleasedLayoutResumeMixin:
    """Resume a run from its own checkpoints when the model family saves under other names than its parameters.

    TinyLLaVA-Video checkpoints hold the weights under the released key names (`language_model.model.*`, ...), while
    the model's parameters are named `model.language_model.*`. transformers' `Trainer._load_from_checkpoint` loads the
    file with `load_state_dict(strict=False)`, which would match no key and silently resume from the initial weights;
    here the trainer's policy (`self.policy`, a [`VideoPolicy`]) loads them by name first (`load_checkpoint`) and fails
    loudly on any mismatch. DeepSpeed, FSDP and PEFT checkpoints, and families that need no mapping, keep
    transformers' own path.
    """

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        target = self.accelerator.unwrap_model(model if model is not None else self.model)
        policy = getattr(self, "policy", None)
        if policy is not None and not (self.is_deepspeed_enabled or self.is_fsdp_enabled):
            if policy.load_checkpoint(target, resume_from_checkpoint):
                logger.info("loaded the weights of %s", resume_from_checkpoint)
                return
        super()._load_from_checkpoint(resume_from_checkpoint, model)


class ResumeMixin(ReleasedLayoutResumeMixin):
    """Resume that never trains past `max_steps`, applies a changed learning rate, and says when the disk is full.

    - transformers' `_run_epoch` takes an optimizer step before it looks at `control.should_training_stop`, and
      `_init_training_state` counts finished epochs as `global_step // steps_per_epoch`; resumed at
      `global_step >= max_steps`, a run whose `max_steps` is not a whole number of epochs trained one step more
      (step 7 of 6). Here a finished run reports every epoch done, so the loop is skipped.
    - The optimizer and scheduler states keep the learning rate they were saved with; here each parameter group's
      base rate is set back to the one this run's recipe asks for (the scheduler's factor at the step is kept).
    - [`RunRecord`] and [`BadVideoTally`] stay the trainer's own instances (they restore themselves when training
      begins), also under `restore_callback_states_from_checkpoint`.
    - A checkpoint save that fails for lack of space raises an `OSError(ENOSPC)` naming the checkpoint directory.
    """

    def _init_training_state(
        self, max_steps, num_update_steps_per_epoch, num_train_epochs, resume_from_checkpoint, trial
    ):
        ours = [cb for cb in self.callback_handler.callbacks if isinstance(cb, (RunRecord, BadVideoTally))]
        epochs_trained, steps_trained = super()._init_training_state(
            max_steps, num_update_steps_per_epoch, num_train_epochs, resume_from_checkpoint, trial
        )
        for callback in ours:  # `restore_callback_states_from_checkpoint` swaps in copies that hold no tracker
            self.callback_handler.remove_callback(type(callback))
            self.callback_handler.add_callback(callback)
        if resume_from_checkpoint is not None and self.state.global_step >= max_steps:
            logger.warning(
                "%s is at step %d of max_steps=%d: nothing left to train", resume_from_checkpoint,
                self.state.global_step, max_steps,
            )  # fmt: skip
            return num_train_epochs, 0
        return epochs_trained, steps_trained

    def _load_optimizer_and_scheduler(self, checkpoint):
        wanted = [group.get("initial_lr", group["lr"]) for group in self.optimizer.param_groups]
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is None or self.is_deepspeed_enabled:
            return
        saved = [group.get("initial_lr", group["lr"]) for group in self.optimizer.param_groups]
        if saved == wanted:
            return
        logger.warning("learning rates %s saved in %s replaced by this run's %s", saved, checkpoint, wanted)
        for group, old, new in zip(self.optimizer.param_groups, saved, wanted, strict=True):
            group["lr"] = group["lr"] / old * new if old else new  # keep the schedule's factor at this step
            group["initial_lr"] = new
        if hasattr(self.lr_scheduler, "base_lrs"):  # torch's LRScheduler: the next step() starts from base_lrs
            self.lr_scheduler.base_lrs = wanted
            # what get_last_lr() reports, and so what the first resumed step logs
            self.lr_scheduler._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _save_checkpoint(self, model, trial):
        checkpoint = os.path.join(self._get_output_dir(trial=trial), f"checkpoint-{self.state.global_step}")
        with no_space_reported(checkpoint):
            super()._save_checkpoint(model, trial)
