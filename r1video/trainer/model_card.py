"""The model card written next to every save: what was trained, from what, on what, with which rewards and recipe.

It never records local paths (a local base model or data file is named by its last path component) nor tokens.
"""

import os
from enum import Enum
from importlib import metadata
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData

from r1video.data.paths import public_name
from r1video.policies import ModelCardFacts, policy_for

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


def is_hub_id(name: str | None) -> bool:
    return bool(name) and not os.path.exists(name) and name.count("/") == 1 and not name.startswith(("/", ".", "~"))


def load_path(output_dir: str, hub_model_id: str | None = None, checkpoint: str | None = None) -> str:
    """What a reader passes to `--model` (and the family's loader) for the folder a card describes.

    The Hub id when the run pushes; else the folder as the user named it (`runs/grpo-smoke`, plus `checkpoint`
    for a checkpoint's card), relative to where they launched. An absolute `output_dir` is a local path, which a card
    never records: it becomes `path/to/<folder name>`.
    """
    if hub_model_id:
        return hub_model_id
    folder = Path(os.path.normpath(output_dir))
    if folder.is_absolute() or str(folder).startswith("~"):
        folder = Path("path/to") / folder.name
    return (folder / checkpoint).as_posix() if checkpoint else folder.as_posix()


def render_model_card(
    *,
    model_name: str,
    stage: str,
    facts: ModelCardFacts,
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
    model_path: str | None = None,
    family_tags: tuple[str, ...] = (),
) -> ModelCard:
    """Build the card. `facts` is what it says about the model's family (its policy's `model_card_facts`: what the
    model is, the Python lines that load it, its weights' layout), `args` the training config, `log_history` the
    trainer's; `model_path` is what its `r1video infer` line loads (default: `hub_model_id`, else `model_name`);
    `family_tags` are the model family's tags (its policy's `model_card_tags`)."""
    base = public_name(base_model)
    data = public_name(dataset)
    card_data = ModelCardData(
        library_name="transformers",
        base_model=base if is_hub_id(base_model) else None,
        datasets=[data] if is_hub_id(dataset) else None,
        tags=sorted(set(tags or []) | {"r1video", "video-text-to-text", *family_tags}),
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
        description=facts.description,
        following=facts.following,
        python_intro=facts.python_intro,
        python=facts.python,
        weights=facts.weights,
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
        load_path=model_path or hub_model_id or model_name,
        versions=versions,
    )


class ModelCardMixin:
    """Trainer mixin: write r1video's model card to `output_dir` and into each checkpoint at every save.

    `card_stage` names the training stage; `card_dataset` (set by the entry point) names the data.
    """

    card_stage = "training"
    card_dataset: str | None = None

    def create_model_card(self, model_name: str | None = None, dataset_name: str | None = None, tags=None):
        card = self._render_card(model_name, dataset_name, tags)
        if card is not None:
            os.makedirs(self.args.output_dir, exist_ok=True)
            card.save(os.path.join(self.args.output_dir, "README.md"))
        return card

    def _render_card(self, model_name=None, dataset_name=None, tags=None, checkpoint: str | None = None):
        """The card of `output_dir`, or of its `checkpoint` folder; None on processes other than the main one."""
        if not self.is_world_process_zero():
            return None
        model = self.accelerator.unwrap_model(self.model)
        policy = getattr(self, "policy", None) or policy_for(model)
        path = load_path(self.args.output_dir, self.args.hub_model_id, checkpoint)
        names = getattr(self, "reward_func_names", None)
        weights = getattr(self, "reward_weights", None)
        rewards = list(zip(names, weights.tolist(), strict=True)) if names and weights is not None else None
        return render_model_card(
            model_name=model_name or self._card_model_name(),
            stage=self.card_stage,
            facts=policy.model_card_facts(model, path),
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
            model_path=path,
            family_tags=tuple(policy.model_card_tags),
        )

    def _card_model_name(self) -> str:
        return (self.args.hub_model_id or "").split("/")[-1] or Path(self.args.output_dir).name

    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        self.create_model_card()
        name = f"checkpoint-{self.state.global_step}"
        card = self._render_card(checkpoint=name)
        if card is not None:
            card.save(os.path.join(self._get_output_dir(trial=trial), name, "README.md"))
