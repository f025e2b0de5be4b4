"""r1video: R1-style GRPO post-training for small video language models, built on TRL.

`import r1video` is light (no torch, no transformers), so the `r1video` console script answers `--help` at once.
Importing `r1video.model` registers TinyLLaVA-Video (`model_type: "tinyllava"`) with the transformers Auto classes;
everything in r1video that loads a model imports it first.
"""

__version__ = "0.1.0.dev0"
