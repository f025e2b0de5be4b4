"""Cold-start SFT on video: `accelerate launch -m r1video.sft --config recipe.yaml`.

A recipe is a flat YAML of `VideoScriptArguments` (`train_file`: LLaVA-style SFT json, `video_root`),
`VideoSFTConfig` (TRL's SFT options plus the video ones) and TRL's `ModelConfig` keys; command-line flags override
it, unknown keys are errors. The conversations are trained as they are in the file (their questions already carry
any instruction, so `question_template` and the reward keys do not apply here). The saved output directory is a
checkpoint that `r1video.grpo` starts from and uses as its reference model.
"""

import logging
import sys
from typing import TYPE_CHECKING

from r1video.configs import VideoScriptArguments

if TYPE_CHECKING:  # imported when a run starts, so that `r1video sft --help` needs no torch
    from trl import ModelConfig

    from r1video.trainer.sft_config import VideoSFTConfig

logger = logging.getLogger("r1video.sft")  # not __name__: run as `-m r1video.sft` it is "__main__"


def make_parser(prog: str = "r1video sft"):
    """TRL's `TrlParser` over the stage's recipe keys (exact flag names only)."""
    from trl import ModelConfig

    from r1video.recipe_cli import build_parser
    from r1video.trainer.sft_config import VideoSFTConfig

    return build_parser((VideoScriptArguments, VideoSFTConfig, ModelConfig), prog=prog)


def train(script_args: VideoScriptArguments, training_args: "VideoSFTConfig", model_args: "ModelConfig"):
    """The whole run, in order: seed, data, resume check, model, trainer, train, state, save, card, evaluate, push.

    Trains the LLM and connector on the assistant replies. Returns the trainer.
    """
    from transformers import set_seed
    from trl import get_peft_config

    from r1video.data.lengths import FrameSampling, RecordClips, check_conversation_lengths, check_prompt_lengths
    from r1video.data.loaders import load_sft_dataset
    from r1video.policies import policy_for
    from r1video.runs import (
        check_resume,
        data_fingerprint,
        keep_hub_token_out_of_checkpoints,
        load_model,
        recipe_of,
        setup_logging,
    )
    from r1video.trainer import VideoSFTTrainer
    from r1video.trainer.checkpoints import RunRecord, no_space_reported
    from r1video.trainer.console import print_summary, use_compact_console
    from r1video.trainer.threads import apply_cpu_threads

    set_seed(training_args.seed)
    setup_logging(training_args)
    apply_cpu_threads(training_args)
    keep_hub_token_out_of_checkpoints(training_args)
    logger.info("script arguments: %s", script_args)
    logger.info("model arguments: %s", model_args)

    # Data
    if script_args.train_file is None:
        raise ValueError("Set train_file in the recipe (a LLaVA-style SFT json, see data_cards/) and video_root.")
    train_dataset = load_sft_dataset(script_args.train_file, script_args.video_root)
    eval_dataset = None
    if script_args.eval_file is not None:
        eval_dataset = load_sft_dataset(script_args.eval_file, script_args.video_root)

    # Resume: asked, or the same run started again into its folder; a changed recipe or data, or another run's
    # checkpoints in output_dir, are refused here, before the model loads (one line, exit 2)
    recipe, data = recipe_of(script_args, training_args, model_args), data_fingerprint(script_args)
    checkpoint = check_resume(training_args, recipe, data, script_args.allow_changed)
    if checkpoint is not None:
        logger.warning("resuming from %s", checkpoint)

    # Model and processor
    model, processor = load_model(model_args)
    # Too-long prompts stop the run here, each named by file:line, counted with its own clip as the recipe samples it
    policy = policy_for(model)
    clips = RecordClips(script_args.video_root, processor, FrameSampling.of(training_args), policy)
    check_prompt_lengths(script_args.train_file, processor, policy=policy, clips=clips)
    # replies never cut
    check_conversation_lengths(script_args.train_file, processor, training_args.max_length, policy=policy, clips=clips)
    if script_args.eval_file is not None:
        check_prompt_lengths(script_args.eval_file, processor, policy=policy, clips=clips)
        check_conversation_lengths(
            script_args.eval_file, processor, training_args.max_length, policy=policy, clips=clips
        )

    # Trainer
    trainer = VideoSFTTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=processor,
        peft_config=get_peft_config(model_args),
    )
    trainer.card_dataset = script_args.train_file
    use_compact_console(trainer)  # one short line per logging step; full metrics in trainer_state.json / report_to

    trainer.add_callback(RunRecord(recipe, data))  # stored with every checkpoint

    # Train
    train_result = trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_metrics("train", train_result.metrics)
    trainer.save_state()

    # Save the model and its card
    with no_space_reported(training_args.output_dir):
        trainer.save_model(training_args.output_dir)
    trainer.create_model_card()

    # Evaluate
    metrics = None
    if training_args.do_eval and eval_dataset is not None:
        metrics = trainer.evaluate()
        trainer.save_metrics("eval", metrics)

    # Push
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.train_file)
    print_summary(trainer, metrics)  # steps trained, reward trend, where the model and logs are
    return trainer


def main(argv: list[str] | None = None) -> int:
    from r1video.recipe_cli import run

    return run("sft", argv, make_parser, train)


if __name__ == "__main__":
    sys.exit(main())
