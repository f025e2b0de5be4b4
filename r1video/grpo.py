"""GRPO on video: `accelerate launch -m r1video.grpo --config recipe.yaml` (or `r1video grpo --config recipe.yaml`).

A recipe is a flat YAML of `VideoScriptArguments` (data, rewards), `VideoGRPOConfig` (TRL's GRPO options plus the
video ones) and TRL's `ModelConfig` keys; command-line flags override it, unknown keys are errors.
"""

import logging
import sys
from typing import TYPE_CHECKING

from r1video.configs import VideoScriptArguments

if TYPE_CHECKING:  # imported when a run starts, so that `r1video grpo --help` needs no torch
    from trl import ModelConfig

    from r1video.trainer.grpo_config import VideoGRPOConfig

logger = logging.getLogger("r1video.grpo")  # not __name__: run as `-m r1video.grpo` it is "__main__"


def make_parser(prog: str = "r1video grpo"):
    """TRL's `TrlParser` over the stage's recipe keys (exact flag names only)."""
    from trl import ModelConfig

    from r1video.recipe_cli import build_parser
    from r1video.trainer.grpo_config import VideoGRPOConfig

    return build_parser((VideoScriptArguments, VideoGRPOConfig, ModelConfig), prog=prog)


def train(script_args: VideoScriptArguments, training_args: "VideoGRPOConfig", model_args: "ModelConfig"):
    """The whole run, in order: seed, rewards, data, resume check, model, trainer, train, state, save, card, evaluate,
    push.

    Returns the trainer.
    """
    from transformers import set_seed
    from trl import get_peft_config

    from r1video.data.lengths import FrameSampling, RecordClips, check_prompt_lengths
    from r1video.data.loaders import load_grpo_dataset
    from r1video.model.templates import resolve_question_template
    from r1video.policies import policy_for
    from r1video.runs import (
        check_resume,
        data_fingerprint,
        keep_hub_token_out_of_checkpoints,
        load_model,
        recipe_of,
        setup_logging,
    )
    from r1video.trainer import VideoGRPOTrainer
    from r1video.trainer.checkpoints import RunRecord, no_space_reported
    from r1video.trainer.completions import log_completions
    from r1video.trainer.console import print_summary, use_compact_console
    from r1video.trainer.threads import apply_cpu_threads
    from rewards import SafeReward, get_reward_funcs

    set_seed(training_args.seed)
    setup_logging(training_args)
    apply_cpu_threads(training_args)
    keep_hub_token_out_of_checkpoints(training_args)
    logger.info("script arguments: %s", script_args)
    logger.info("model arguments: %s", model_args)

    # Rewards first: a wrong name or argument fails before any model loads
    reward_funcs = [SafeReward(f) for f in get_reward_funcs(script_args.reward_funcs, script_args.reward_kwargs)]
    template = resolve_question_template(script_args.question_template)

    # Data
    if script_args.train_file is None:
        raise ValueError("Set train_file in the recipe (a GRPO jsonl, see data_cards/) and video_root.")
    train_dataset = load_grpo_dataset(script_args.train_file, script_args.video_root, question_template=template)
    eval_dataset = None
    if script_args.eval_file is not None:
        eval_dataset = load_grpo_dataset(script_args.eval_file, script_args.video_root, question_template=template)

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
    check_prompt_lengths(script_args.train_file, processor, question_template=template, policy=policy, clips=clips)
    if script_args.eval_file is not None:
        check_prompt_lengths(script_args.eval_file, processor, question_template=template, policy=policy, clips=clips)

    # Trainer
    trainer = VideoGRPOTrainer(
        model=model,
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=processor,
        peft_config=get_peft_config(model_args),
    )
    trainer.card_dataset = script_args.train_file
    use_compact_console(trainer)  # one short line per logging step; full metrics in trainer_state.json / report_to
    log_completions(trainer)  # a few samples per logging step on the console, all in OUTPUT_DIR/completions.jsonl

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
        # One generation per prompt leaves the reward stds undefined: TRL reports them as None (trl#3566), which
        # `log_metrics` cannot print; they are left out of eval_results.json rather than written as null.
        undefined = sorted(key for key, value in metrics.items() if value is None)
        if undefined:
            logger.info("not in the eval results (undefined for this eval): %s", ", ".join(undefined))
        metrics = {key: value for key, value in metrics.items() if value is not None}
        trainer.save_metrics("eval", metrics)

    # Push
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.train_file)
    print_summary(trainer, metrics)  # steps trained, reward trend, where the model and logs are
    return trainer


def main(argv: list[str] | None = None) -> int:
    from r1video.recipe_cli import run

    return run("grpo", argv, make_parser, train)


if __name__ == "__main__":
    sys.exit(main())
