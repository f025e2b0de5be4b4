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
import time

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


UNREADABLE_LOCK_GRACE_S = 2.0  # an unreadable lock younger than this may be being written: wait for it


def _read_holder(path: str) -> dict | None:
    """The `{"pid": int, "host": str}` of a lock file, or `None` when it is gone, empty or not a lock."""
    try:
        with open(path) as f:
            holder = json.load(f)
    except (FileNotFoundError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not (isinstance(holder, dict) and isinstance(holder.get("pid"), int) and isinstance(holder.get("host"), str)):
        return None
    return holder


def _age(path: str) -> float | None:
    try:
        return time.time() - os.path.getmtime(path)
    except FileNotFoundError:
        return None


@contextlib.contextmanager
def run_lock(output_dir: str, main_process: bool = True):
    """Hold `output_dir/_run.lock` (`{"pid", "host"}`) for the duration of a run; only the main process takes it.

    A lock left by a dead process on this host is taken over with a warning, and so is one whose holder cannot be read
    (empty or garbage, e.g. after a crash or a full disk) once it is older than `UNREADABLE_LOCK_GRACE_S` (a younger
    one may be being written: it is waited for).

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
            holder = _read_holder(path)
            if holder is None:  # released meanwhile, being written, or garbage
                age = _age(path)
                if age is None:
                    continue
                if age < UNREADABLE_LOCK_GRACE_S:  # a run writes its pid right after creating the file
                    time.sleep(0.05)
                    continue
                logger.warning(
                    "taking over the lock %s: its holder cannot be read (empty or not a lock) and it is %.0f s old",
                    path, age,
                )  # fmt: skip
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
                continue
            if holder["host"] == me["host"] and not _alive(holder["pid"]):
                logger.warning("taking over the stale lock %s of process %d, which is gone", path, holder["pid"])
                os.remove(path)
                continue
            raise RunLockedError(
                f"{output_dir} is in use by process {holder['pid']} on host {holder['host']} (lock file {path}). "
                "Wait for it, use another output_dir, or delete the lock file if that run is gone."
            ) from None
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
        except OSError:  # a full disk: leave no empty lock behind
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
            raise
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
    """A recipe value as a checkpoint stores it. Checkpoints are pushed to the Hub, which must never see a local path,
    and a run copied or moved to another folder must still match its own record, so a local path is stored by what it
    holds, never by where it is:

    - a file: `local:<name>#<sha256 of its bytes, 12 hex>`; a reward plugin `path.py:fn` likewise, `:fn` kept;
    - a model folder (one with a `config.json`): `local:<name>#<sha256 of its config.json and weight file sizes>`;
    - any other folder (a video root): `local:<name>`.

    Lists and dict keys (`reward_funcs`, `reward_kwargs`) are stored element by element.
    """
    if isinstance(value, list):
        return [_stored_value(item) for item in value]
    if isinstance(value, dict):
        return {_stored_value(key): item for key, item in value.items()}
    if not isinstance(value, str) or not value:
        return value
    path, colon, attribute = value, "", ""
    if not os.path.exists(value) and value.count(":") >= 1 and value.rpartition(":")[0].endswith(".py"):
        path, colon, attribute = value.rpartition(":")  # a reward plugin file, `my_rewards.py:fn`
    if not (os.path.isabs(path) or os.path.exists(path)):
        return value
    name = os.path.basename(os.path.normpath(path))
    if os.path.isfile(path):
        return f"local:{name}#{_file_digest(path)[:12]}{colon}{attribute}"
    config = os.path.join(path, "config.json")
    if os.path.isfile(config):
        digest = hashlib.sha256(_file_digest(config).encode())
        for weights in sorted(os.listdir(path)):
            if weights.endswith(".safetensors"):
                digest.update(f"{weights}:{os.path.getsize(os.path.join(path, weights))}".encode())
        return f"local:{name}#{digest.hexdigest()[:12]}"
    return f"local:{name}"


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def recipe_of(script_args, training_args, model_args) -> dict:
    """The resolved recipe as one flat `{key: JSON value}` (TrlParser's namespace), without the keys that do not
    change what is trained; local paths are stored by name and content (see `_stored_value`). Read before the model
    loads (so that a refused resume costs nothing), and stored as it is read then."""
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
            prints[key] = _file_digest(path)
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


class RunRefusedError(ValueError):
    """A run that must not start in its output folder as asked (it would mix with or overwrite another run's
    checkpoints, or resume with a changed recipe); raised before the model loads, reported in one line, exit 2."""


_NOT_ASKED = (None, False, "", "false", "False")


def check_resume(training_args, recipe: dict, data: dict, allow_changed: list[str]) -> str | None:
    """The checkpoint this run resumes from, after checking that the recipe and data are the ones it was trained with.
    Called before the model loads.

    - `resume_from_checkpoint` set (`true`/`latest`/a path): that checkpoint (see `resolve_resume`).
    - not set, and `output_dir` holds complete checkpoints: a run started again with the same recipe and data (the
      same command after Ctrl-C or a crash) resumes from the newest; any other run is refused, since it would write
      over them. Incomplete checkpoints alone (nothing to resume from) are written over, with a warning.

    Args:
        recipe, data: this run's [`recipe_of`] and [`data_fingerprint`].
        allow_changed: the recipe's `allow_changed` (keys, comma or space separated).

    Raises:
        RunRefusedError: a recipe key or data file differs from the checkpoint's and is not named in `allow_changed`
            (the message lists every difference), `output_dir` holds checkpoints that cannot be checked, or
            `resume_from_checkpoint` names an incomplete checkpoint.
    """
    from r1video.trainer.checkpoints import last_complete_checkpoint, resolve_resume, stored_record

    asked = training_args.resume_from_checkpoint not in _NOT_ASKED
    if asked:
        try:
            checkpoint = resolve_resume(training_args.resume_from_checkpoint, training_args.output_dir)
        except ValueError as error:  # an incomplete checkpoint named by path
            raise RunRefusedError(str(error)) from error
    else:
        checkpoint = last_complete_checkpoint(training_args.output_dir)
    if checkpoint is None:
        return None
    stored = stored_record(checkpoint)
    if stored is None:
        if asked:
            logger.warning("%s stores no recipe (saved before r1video kept one): not checked", checkpoint)
            return checkpoint
        raise RunRefusedError(
            f"{training_args.output_dir} holds checkpoints of a run that stored no recipe ({checkpoint}); a new run "
            "would write over them. Use another output_dir, or continue it with --resume_from_checkpoint true"
        )
    changes = recipe_changes(stored, recipe, data)
    allowed = {key.strip() for item in allow_changed for key in item.split(",") if key.strip()}
    refused = {key: change for key, change in changes.items() if key not in allowed}
    if refused and not asked:
        listing = "; ".join(f"{key}: {change}" for key, change in refused.items())
        raise RunRefusedError(
            f"{training_args.output_dir} holds the checkpoints of another run ({checkpoint}; {listing}); a new run "
            "would write over them. Use another output_dir, or continue that run with --resume_from_checkpoint true "
            f"--allow_changed {','.join(refused)}"
        )
    if refused:
        listing = "; ".join(f"{key}: {change}" for key, change in refused.items())
        raise RunRefusedError(
            f"resuming from {checkpoint} with a recipe that differs from the one it was trained with: {listing}. "
            f"Resume with the same recipe, or name the keys that may change: --allow_changed {','.join(refused)}"
        )
    if not asked:
        logger.warning(
            "%s holds checkpoints of this same run (same recipe and data): resuming it (another output_dir starts "
            "afresh)", training_args.output_dir,
        )  # fmt: skip
    for key, change in changes.items():
        logger.warning("resuming with a changed %s (allowed): %s", key, change)
    return checkpoint


def interrupted_message(output_dir: str) -> str:
    """What a run stopped by Ctrl-C prints: where its last complete checkpoint is and how to go on from it."""
    from r1video.trainer.checkpoints import last_complete_checkpoint

    checkpoint = last_complete_checkpoint(output_dir)
    if checkpoint is None:
        return f"interrupted before its first complete checkpoint in {output_dir}: nothing to resume from"
    return f"interrupted; the last checkpoint is {checkpoint}: run the same command again to resume from it"
