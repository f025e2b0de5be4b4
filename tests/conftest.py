"""Shared fixtures. Everything is offline and on CPU: models, tokenizers and videos are built locally."""

import os

# Set before transformers / huggingface_hub are imported anywhere, so nothing ever reaches for the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


import logging  # noqa: E402  (after the environment above)

import pytest  # noqa: E402

_PROJECT_LOGGERS = ("r1video", "rewards")
_LOG_LEVELS = {name: logging.getLogger(name).level for name in _PROJECT_LOGGERS}  # as a fresh process has them
# transformers and datasets start at WARNING; a run's `log_level` sets them (`TrainingArguments.get_process_log_level`
# reads transformers' back when `log_level` is passive).
_LOG_LEVELS.update(transformers=logging.WARNING, datasets=logging.WARNING)


@pytest.fixture(autouse=True)
def _restore_log_levels():
    """An in-process run (a test's, or a module fixture's, like the demo's) sets the `r1video`, `rewards`,
    `transformers` and `datasets` logger levels from its recipe (`--quiet`: errors only); set them back to a fresh
    process's after each test, so that a later test sees the warnings and lines it checks for."""
    yield
    for name, level in _LOG_LEVELS.items():
        logging.getLogger(name).setLevel(level)
