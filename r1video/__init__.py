"""r1video: R1-style GRPO post-training for small video language models, built on TRL."""

__version__ = "0.1.0.dev0"
