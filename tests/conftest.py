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


@pytest.fixture(autouse=True)
def _restore_project_log_levels():
    """An in-process run sets the `r1video`/`rewards` logger levels from its recipe (`--quiet`: errors only); put them
    back after each test, so a later test's `caplog` still sees the warnings it checks for."""
    loggers = [logging.getLogger(name) for name in ("r1video", "rewards")]
    levels = [logger.level for logger in loggers]
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)
