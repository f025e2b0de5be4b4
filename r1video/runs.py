"""What the training entry points (`r1video.sft`, `r1video.grpo`) share: logging, the hub token, model loading and
the run folder (its lock, the recipe a resume must match, full-disk reports). Argument parsing, help and usage errors
are `r1video.recipe_cli`'s; the run sequence is written out in each entry point."""

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import socket

import datasets
import transformers

logger = logging.getLogger("r1video.runs")


def setup_logging(training_args) -> None:
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        handlers=[logging.StreamHandler()],
    )
    level = training_args.get_process_log_level()
    for name in ("r1video", "rewards"):
        logging.getLogger(name).setLevel(level)
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)


def keep_hub_token_out_of_checkpoints(training_args) -> None:
    """transformers pickles the training arguments into every checkpoint (`training_args.bin`, pushed with the model);
    a `hub_token` there would be published. Hand it to huggingface_hub through the environment instead."""
    if training_args.hub_token:
        logger.warning("hub_token moved to the HF_TOKEN environment variable so that no checkpoint stores it")
        os.environ["HF_TOKEN"] = training_args.hub_token
        training_args.hub_token = None


def load_model(model_args):
    """Model and processor from the recipe's `model_name_or_path` (released checkpoints included); the model family
    comes from the checkpoint's `model_type` (`r1video.policies`), and no remote code runs unless
    `trust_remote_code` is set."""
    from r1video.policies import load_policy

    if model_args.model_name_or_path is None:
        raise ValueError("Set model_name_or_path in the recipe: a checkpoint directory or Hub id.")
    _, model, processor = load_policy(
        model_args.model_name_or_path,
        dtype=model_args.dtype or "float32",
        attn_implementation=model_args.attn_implementation,
        revision=model_args.model_revision,
        trust_remote_code=bool(getattr(model_args, "trust_remote_code", False)),
    )
    return model, processor


LOCK_NAME = "_run.lock"  # "_*" files are never pushed to the Hub


class RunLockedError(RuntimeError):
    """Another run holds the output directory."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


@contextlib.contextmanager
def run_lock(output_dir: str, main_process: bool = True):
    """Hold `output_dir/_run.lock` (`{"pid", "host"}`) for the duration of a run; only the main process takes it.

    A lock left by a dead process on this host is taken over with a warning.

    Raises:
        RunLockedError: a live process (or one on another host, which cannot be checked) holds the lock; the message
            names its pid and host.
    """
    if not main_process:
        yield
        return
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, LOCK_NAME)
    me = {"pid": os.getpid(), "host": socket.gethostname()}
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                with open(path) as f:
                    holder = json.load(f)
            except (FileNotFoundError, json.JSONDecodeError):
                holder = {"pid": None, "host": None}  # released meanwhile, or being written: look again
                if not os.path.exists(path):
                    continue
            if holder["host"] == me["host"] and holder["pid"] is not None and not _alive(holder["pid"]):
                logger.warning("taking over the stale lock %s of process %d, which is gone", path, holder["pid"])
                os.remove(path)
                continue
            raise RunLockedError(
                f"{output_dir} is in use by process {holder['pid']} on host {holder['host']} (lock file {path}). "
                "Wait for it, use another output_dir, or delete the lock file if that run is gone."
            ) from None
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        break
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):  # deleted by hand meanwhile: nothing to release
            os.remove(path)


# Keys that change what a run logs or where it reports, never what it trains.
_NOT_RECIPE = {
    "resume_from_checkpoint", "allow_changed", "output_dir", "logging_dir", "logging_steps", "logging_strategy",
    "logging_first_step", "log_level", "log_level_replica", "report_to", "run_name", "disable_tqdm", "push_to_hub",
    "hub_model_id", "hub_strategy", "hub_token", "hub_private_repo", "save_steps", "save_strategy",
    "save_total_limit", "dataloader_num_workers", "local_rank", "restore_callback_states_from_checkpoint",
}  # fmt: skip
_DATA_FILES = ("train_file", "eval_file")


def _stored_value(value):
    """A local path is stored as `local:<last component>#<sha256 of its absolute path, 12 hex>`: checkpoints are
    pushed to the Hub, which must never see a local path."""
    if isinstance(value, str) and value and (os.path.isabs(value) or os.path.exists(value)):
        digest = hashlib.sha256(os.path.abspath(value).encode()).hexdigest()[:12]
        return f"local:{os.path.basename(os.path.normpath(value))}#{digest}"
    return value


def recipe_of(script_args, training_args, model_args) -> dict:
    """The resolved recipe as one flat `{key: JSON value}` (TrlParser's namespace), without the keys that do not
    change what is trained; local paths are stored as `local:<name>#<hash>`."""
    recipe = {
        **dataclasses.asdict(script_args),
        **training_args.to_dict(),
        **dataclasses.asdict(model_args),
    }
    recipe = json.loads(json.dumps(recipe, default=str))
    return {key: _stored_value(value) for key, value in sorted(recipe.items()) if key not in _NOT_RECIPE}


def data_fingerprint(script_args) -> dict:
    """`{recipe key: sha256 of the file's bytes}` for the annotation files of a run (the videos are not hashed)."""
    prints = {}
    for key in _DATA_FILES:
        path = getattr(script_args, key, None)
        if path and os.path.isfile(path):
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(2**20), b""):
                    digest.update(block)
            prints[key] = digest.hexdigest()
    return prints


def recipe_changes(stored: dict, recipe: dict, data: dict) -> dict[str, str]:
    """`{key: "old → new"}` for every recipe key and data file that differs from a checkpoint's [`RunRecord`]."""
    changes = {}
    for key in sorted(set(stored["recipe"]) | set(recipe)):
        old, new = stored["recipe"].get(key, "<unset>"), recipe.get(key, "<unset>")
        if old != new:
            changes[key] = f"{old!r} → {new!r}"
    for key in sorted(set(stored["data"]) | set(data)):
        old, new = stored["data"].get(key), data.get(key)
        if old != new and key not in changes:
            changes[key] = f"the file's content changed (sha256 {str(old)[:12]}… → {str(new)[:12]}…)"
    return changes


def check_resume(training_args, recipe: dict, data: dict, allow_changed: list[str]) -> str | None:
    """The checkpoint this run resumes from (see `resolve_resume`), after checking that the recipe and data are the
    ones it was trained with.

    Args:
        recipe, data: this run's [`recipe_of`] and [`data_fingerprint`].
        allow_changed: the recipe's `allow_changed` (keys, comma or space separated).

    Raises:
        ValueError: a recipe key or data file differs from the checkpoint's and is not named in `allow_changed`; the
            message lists every difference.
    """
    from r1video.trainer.checkpoints import resolve_resume, stored_record

    checkpoint = resolve_resume(training_args.resume_from_checkpoint, training_args.output_dir)
    if checkpoint is None:
        return None
    stored = stored_record(checkpoint)
    if stored is None:
        logger.warning("%s stores no recipe (saved before r1video kept one): not checked", checkpoint)
        return checkpoint
    changes = recipe_changes(stored, recipe, data)
    allowed = {key.strip() for item in allow_changed for key in item.split(",") if key.strip()}
    refused = {key: change for key, change in changes.items() if key not in allowed}
    if refused:
        listing = "\n".join(f"  {key}: {change}" for key, change in refused.items())
        raise ValueError(
            f"Resuming from {checkpoint} with a recipe that differs from the one it was trained with:\n{listing}\n"
            f"Resume with the same recipe, or name the keys that may change: --allow_changed {','.join(refused)}"
        )
    for key, change in changes.items():
        logger.warning("resuming with a changed %s (allowed): %s", key, change)
    return checkpoint
