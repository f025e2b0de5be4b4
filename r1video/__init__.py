"""r1video: R1-style GRPO post-training for small video language models, built on TRL.

Importing the package registers TinyLLaVA-Video (`model_type: "tinyllava"`) with the transformers Auto classes.
"""

__version__ = "0.1.0.dev0"

from r1video import model as _model  # noqa: E402,F401  (registers the Auto classes)
