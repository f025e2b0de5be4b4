"""Cold-start SFT on video: `accelerate launch -m r1video.sft --config recipe.yaml`.

A recipe is a flat YAML of `VideoScriptArguments` (`train_file`: LLaVA-style SFT json, `video_root`),
`VideoSFTConfig` (TRL's SFT options plus the video ones) and TRL's `ModelConfig` keys; command-line flags override
it, unknown keys are errors. The conversations are trained as they are in the file (their questions already carry
any instruction, so `question_template` and the reward keys do not apply here). The saved output directory is a
checkpoint that `r1video.grpo` starts from and uses as its reference model.
"""

import logging
import sys

from trl import ModelConfig, TrlParser, get_peft_config

from r1video.configs import VideoScriptArguments, VideoSFTConfig

logger = logging.getLogger("r1video.sft")  # not __name__: run as `-m r1video.sft` it is "__main__"


def make_parser() -> TrlParser:
    return TrlParser((VideoScriptArguments, VideoSFTConfig, ModelConfig))


def train(script_args: VideoScriptArguments, training_args: VideoSFTConfig, model_args: ModelConfig):
    """Load data, model and processor; train the LLM and connector on the assistant replies; save."""
    from r1video.data.loaders import load_sft_dataset
    from r1video.runs import keep_hub_token_out_of_checkpoints, load_model, run, setup_logging
    from r1video.trainer import VideoSFTTrainer

    setup_logging(training_args)
    keep_hub_token_out_of_checkpoints(training_args)
    logger.info("script arguments: %s", script_args)
    logger.info("model arguments: %s", model_args)

    if script_args.train_file is None:
        raise ValueError("Set train_file in the recipe (a LLaVA-style SFT json, see data_cards/) and video_root.")
    train_dataset = load_sft_dataset(script_args.train_file, script_args.video_root)

    model, processor = load_model(model_args)
    trainer = VideoSFTTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        processing_class=processor,
        peft_config=get_peft_config(model_args),
    )
    run(trainer, script_args, training_args, model_args)
    return trainer


def main(argv: list[str] | None = None) -> int:
    from r1video.runs import main_from_argv

    return main_from_argv(make_parser(), train, argv)


if __name__ == "__main__":
    sys.exit(main())
