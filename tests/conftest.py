"""Shared fixtures. Everything is offline and on CPU: models, tokenizers and videos are built locally."""

import os

# Set before transformers / huggingface_hub are imported anywhere, so nothing ever reaches for the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
