"""GRPO on video: `accelerate launch -m r1video.grpo --config recipe.yaml` (or `r1video grpo --config recipe.yaml`).

A recipe is a flat YAML of `VideoScriptArguments` (data, rewards), `VideoGRPOConfig` (TRL's GRPO options plus the
video ones) and TRL's `ModelConfig` keys; command-line flags override it, unknown keys are errors.
"""

import logging
import sys

from trl import ModelConfig, TrlParser, get_peft_config

from r1video.configs import VideoGRPOConfig, VideoScriptArguments

logger = logging.getLogger("r1video.grpo")  # not __name__: run as `-m r1video.grpo` it is "__main__"


def make_parser() -> TrlParser:
    return TrlParser((VideoScriptArguments, VideoGRPOConfig, ModelConfig))


def train(script_args: VideoScriptArguments, training_args: VideoGRPOConfig, model_args: ModelConfig):
    """Build rewards (checked before any model loads), model, processor and data; train; save."""
    from r1video.data.loaders import load_grpo_dataset
    from r1video.model.templates import REASON_INSTRUCTION
    from r1video.runs import keep_hub_token_out_of_checkpoints, load_model, run, setup_logging
    from r1video.trainer import VideoGRPOTrainer
    from rewards import SafeReward, get_reward_funcs

    setup_logging(training_args)
    keep_hub_token_out_of_checkpoints(training_args)
    logger.info("script arguments: %s", script_args)
    logger.info("model arguments: %s", model_args)

    reward_funcs = [SafeReward(f) for f in get_reward_funcs(script_args.reward_funcs, script_args.reward_kwargs)]
    if script_args.train_file is None:
        raise ValueError("Set train_file in the recipe (a GRPO jsonl, see data_cards/) and video_root.")
    template = f"{{Question}} {REASON_INSTRUCTION}" if script_args.question_template == "r1" else None
    train_dataset = load_grpo_dataset(script_args.train_file, script_args.video_root, question_template=template)

    model, processor = load_model(model_args)
    trainer = VideoGRPOTrainer(
        model=model,
        reward_funcs=reward_funcs,
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
