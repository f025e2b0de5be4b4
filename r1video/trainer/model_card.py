"""The model card written next to every save: what was trained, from what, on what, with which rewards and recipe.

It never records local paths (a local base model or data file is named by its last path component) nor tokens.
"""

import os
from enum import Enum
from importlib import metadata
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData

TEMPLATE = Path(__file__).parent / "templates" / "model_card.md"

# Recipe keys worth a reader's eye, in this order; those a config lacks are skipped.
CARD_SETTINGS = (
    "num_generations",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "max_completion_length",
    "temperature",
    "top_k",
    "beta",
    "loss_type",
    "scale_rewards",
    "advantage_noise_std",
    "num_iterations",
    "learning_rate",
    "lr_scheduler_type",
    "warmup_steps",
    "num_train_epochs",
    "max_steps",
    "num_frames",
    "fps",
    "max_frames",
    "autorotate",
    "reuse_vision",
    "freeze_vision_tower",
    "max_length",
    "bf16",
    "seed",
)
CARD_METRICS_PREFIXES = ("reward", "rewards/", "kl", "loss", "completions/mean_length", "completions/clipped_ratio")


def public_name(name_or_path: str | None) -> str | None:
    """A Hub id stays as is; a local path becomes its last component (never an absolute path in a card)."""
    if not name_or_path:
        return None
    if os.path.isabs(name_or_path) or os.path.exists(name_or_path) or name_or_path.startswith(("~", ".")):
        return Path(os.path.normpath(name_or_path)).name
    return name_or_path


def is_hub_id(name: str | None) -> bool:
    return bool(name) and not os.path.exists(name) and name.count("/") == 1 and not name.startswith(("/", ".", "~"))


def render_model_card(
    *,
    model_name: str,
    stage: str,
    config,
    args,
    log_history: list[dict],
    global_step: int,
    epoch: float | None,
    base_model: str | None,
    dataset: str | None,
    rewards: list[tuple[str, float]] | None = None,
    hub_model_id: str | None = None,
    num_processes: int = 1,
    tags: list[str] | None = None,
) -> ModelCard:
    """Build the card. `config` is the model's config, `args` the training config, `log_history` the trainer's."""
    base = public_name(base_model)
    data = public_name(dataset)
    card_data = ModelCardData(
        library_name="transformers",
        base_model=base if is_hub_id(base_model) else None,
        datasets=[data] if is_hub_id(dataset) else None,
        tags=sorted(set(tags or []) | {"r1video", "tinyllava-video", "video-text-to-text"}),
        pipeline_tag="video-text-to-text",
    )
    settings = [
        (key, value.value if isinstance(value, Enum) else value)
        for key in CARD_SETTINGS
        if (value := getattr(args, key, None)) is not None
    ]
    last = next((entry for entry in reversed(log_history) if any(k.startswith("reward") for k in entry)), {})
    metrics = [
        (key, f"{value:.4g}" if isinstance(value, float) else value)
        for key, value in sorted(last.items())
        if key.startswith(CARD_METRICS_PREFIXES)
    ]
    versions = []
    for package in ("r1video", "trl", "transformers", "torch", "accelerate", "datasets"):
        try:
            versions.append((package, metadata.version(package)))
        except metadata.PackageNotFoundError:
            continue
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE),
        model_name=model_name,
        stage=stage,
        connector=getattr(config, "connector_type", "resampler"),
        llm=getattr(config.get_text_config(), "model_type", "causal"),
        base_model_text=(f"[{base}](https://huggingface.co/{base})" if is_hub_id(base_model) else f"`{base}`")
        if base
        else "a model built from scratch",
        dataset_text=f"`{data}`" if data else "not recorded",
        global_step=global_step,
        epoch=f"{epoch:.3g}" if epoch is not None else "?",
        num_processes=num_processes,
        rewards=rewards or [],
        settings=settings,
        metrics=metrics,
        load_path=hub_model_id or model_name,
        versions=versions,
    )


class ModelCardMixin:
    """Trainer mixin: write r1video's model card to `output_dir` and into each checkpoint at every save.

    `card_stage` names the training stage; `card_dataset` (set by the entry point) names the data.
    """

    card_stage = "training"
    card_dataset: str | None = None

    def create_model_card(self, model_name: str | None = None, dataset_name: str | None = None, tags=None):
        if not self.is_world_process_zero():
            return
        model = self.accelerator.unwrap_model(self.model)
        names = getattr(self, "reward_func_names", None)
        weights = getattr(self, "reward_weights", None)
        rewards = list(zip(names, weights.tolist(), strict=True)) if names and weights is not None else None
        card = render_model_card(
            model_name=model_name or self._card_model_name(),
            stage=self.card_stage,
            config=model.config,
            args=self.args,
            log_history=self.state.log_history,
            global_step=self.state.global_step,
            epoch=self.state.epoch,
            base_model=getattr(model.config, "_name_or_path", None),
            dataset=dataset_name or self.card_dataset,
            rewards=rewards,
            hub_model_id=self.args.hub_model_id,
            num_processes=self.accelerator.num_processes,
            tags=[tags] if isinstance(tags, str) else tags,
        )
        os.makedirs(self.args.output_dir, exist_ok=True)
        card.save(os.path.join(self.args.output_dir, "README.md"))
        return card

    def _card_model_name(self) -> str:
        return (self.args.hub_model_id or "").split("/")[-1] or Path(self.args.output_dir).name

    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        card = self.create_model_card()
        if card is not None:
            checkpoint = os.path.join(self._get_output_dir(trial=trial), f"checkpoint-{self.state.global_step}")
            card.save(os.path.join(checkpoint, "README.md"))
