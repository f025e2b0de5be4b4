"""Stage 3, GRPO: the cold start trained with TinyLLaVA-Video-R1's reward on the train clips' questions.

The reward is the `tinyllava_r1` registry reward (accuracy × strict format, with the thinking-length bonus; seed-facts
§6). A plain accuracy reward is computed too with weight 0, only so that the sampled accuracy is logged
(`rewards/accuracy_reward/mean`). Rollouts are sampled at temperature 0.7: at 1.0 this tiny policy breaks the format or
the thinking of most samples and is right only 5–20% of the time (below chance), so few groups carry an accuracy
signal and GRPO drove the answers to one letter; at 0.7 samples stay close to the greedy policy and about a third are
right. Short completions and `loss_type="grpo"` (each completion's loss averaged over its own tokens) give the answer
letter a larger share of the gradient than long thinking would. Validation accuracy is logged every
`grpo_eval_every` steps for the curves; it does not choose anything.
"""

import logging

from r1video.data.loaders import load_grpo_dataset
from r1video.demo.data import DemoData
from r1video.demo.evaluate import Evaluator
from r1video.demo.settings import DemoSettings
from r1video.demo.training import ValidationCallback, common_args, save_stage, train
from r1video.model.templates import REASON_INSTRUCTION
from r1video.trainer import VideoGRPOTrainer
from r1video.trainer.grpo_config import VideoGRPOConfig
from rewards import get_reward_funcs

logger = logging.getLogger(__name__)


def train_grpo(model, processor, data: DemoData, settings: DemoSettings, out_dir: str, validation: Evaluator):
    """Train `model` (in place) with GRPO and save it to `out_dir`.

    Returns:
        `(model, log_history)`.
    """
    dataset = load_grpo_dataset(data.grpo_file, data.root, question_template="{Question} " + REASON_INSTRUCTION)
    args = VideoGRPOConfig(
        **common_args(out_dir, settings.seed, settings.grpo_steps, settings.grpo_lr, settings.num_frames),
        per_device_train_batch_size=settings.grpo_prompts * settings.grpo_generations,
        num_generations=settings.grpo_generations,
        max_completion_length=settings.grpo_max_tokens,
        temperature=settings.grpo_temperature,
        loss_type=settings.grpo_loss_type,
        beta=settings.grpo_beta,
        lr_scheduler_type="constant",
        reward_weights=[1.0, 0.0],
        temporal_contrast=settings.grpo_temporal_contrast,
    )
    callbacks = [ValidationCallback(validation, settings.grpo_eval_every)] if settings.grpo_eval_every else []
    trainer = VideoGRPOTrainer(
        model=model,
        reward_funcs=get_reward_funcs(["tinyllava_r1", "accuracy"]),
        args=args,
        train_dataset=dataset,
        processing_class=processor,
        callbacks=callbacks,
    )
    train(trainer, settings.progress)
    save_stage(trainer, out_dir)
    return trainer.model, trainer.state.log_history
