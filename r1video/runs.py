"""What the training entry points (`r1video.sft`, `r1video.grpo`) share: logging, the hub token, model loading.
Argument parsing, help and usage errors are `r1video.recipe_cli`'s; the run sequence is written out in each entry
point."""

import logging
import os

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
    """Model and processor from the recipe's `model_name_or_path` (released checkpoints included)."""
    from r1video.model import load_pretrained

    if model_args.model_name_or_path is None:
        raise ValueError("Set model_name_or_path in the recipe: a TinyLLaVA-Video checkpoint directory or Hub id.")
    return load_pretrained(
        model_args.model_name_or_path,
        dtype=model_args.dtype or "float32",
        attn_implementation=model_args.attn_implementation,
        revision=model_args.model_revision,
    )
