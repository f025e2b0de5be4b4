"""Every private TRL / transformers method or attribute r1video overrides, calls or sets, checked against the installed
libraries: a new or renamed argument, or a vanished attribute, fails here instead of drifting silently in training.

Overrides must take exactly the library's parameters (names, kinds, defaults: a new TRL argument must not vanish into
`**kwargs`); methods r1video only calls must still take the arguments it passes; attributes must still exist.
"""

import importlib
import inspect

import pytest
import trl
from transformers import PreTrainedModel, Trainer
from trl import GRPOTrainer

import r1video.model  # noqa: F401  (registers TinyLLaVA-Video with the Auto classes)
from r1video.model.modeling import TinyLlavaVideoPreTrainedModel
from r1video.trainer.checkpoints import ReleasedLayoutResumeMixin, ResumeMixin
from r1video.trainer.grpo_trainer import _IMAGE_KWARGS, VideoGRPOTrainer
from r1video.trainer.model_card import ModelCardMixin

vllm_generation = pytest.importorskip("trl.generation.vllm_generation")

# (ours, library class, method): r1video's override must take exactly the library's parameters.
OVERRIDES = [
    (VideoGRPOTrainer, GRPOTrainer, "_generate_and_score_completions"),
    (VideoGRPOTrainer, GRPOTrainer, "_generate"),
    (VideoGRPOTrainer, GRPOTrainer, "_tokenize_prompts"),
    (VideoGRPOTrainer, GRPOTrainer, "_generate_single_turn"),
    (VideoGRPOTrainer, GRPOTrainer, "_get_per_token_logps_and_entropies"),
    (VideoGRPOTrainer, GRPOTrainer, "compute_loss"),
    (VideoGRPOTrainer, GRPOTrainer, "_compute_loss"),
    (VideoGRPOTrainer, GRPOTrainer, "_save_checkpoint"),  # the rollout buffer
    (VideoGRPOTrainer, GRPOTrainer, "_load_optimizer_and_scheduler"),
    (ReleasedLayoutResumeMixin, Trainer, "_load_from_checkpoint"),
    (ResumeMixin, Trainer, "_init_training_state"),
    (ResumeMixin, Trainer, "_load_optimizer_and_scheduler"),
    (ResumeMixin, Trainer, "_save_checkpoint"),
    (ModelCardMixin, Trainer, "_save_checkpoint"),
    (TinyLlavaVideoPreTrainedModel, PreTrainedModel, "_init_weights"),
]

# (library class or module, method, the parameters r1video passes or that a wrapper relies on)
CALLED = [
    (GRPOTrainer, "_prepare_inputs", ["self", "generation_batch"]),  # tests drive TRL's buffering through it
    (GRPOTrainer, "_generate", ["self", "prompts"]),  # r1video bench times it
    (Trainer, "_get_output_dir", ["self", "trial"]),  # ModelCardMixin._save_checkpoint
    (vllm_generation.VLLMGeneration, "_init_vllm", ["self"]),  # PromptEmbedsVLLMGeneration overrides it
    (vllm_generation.VLLMGeneration, "_iter_named_params", ["self"]),  # and this, calling super()
    (vllm_generation, "extract_logprobs", ["all_outputs"]),
    (trl.trainer.utils, "ensure_master_addr_port", ["addr", "port"]),
    (
        importlib.import_module("transformers.conversion_mapping"),
        "register_checkpoint_conversion_mapping",
        ["model_type_or_class_name", "mapping", "overwrite"],
    ),
    (
        importlib.import_module("transformers.core_model_loading").WeightRenaming,
        "__init__",
        ["self", "source_patterns", "target_patterns"],
    ),
]

# Attributes of a built GRPOTrainer that VideoGRPOTrainer (or PromptEmbedsVLLMGeneration) reads or sets.
TRAINER_ATTRIBUTES = [
    "_metrics",
    "_logs",  # r1video.trainer.completions reads the step's rollouts there
    "log_completions",
    "reward_func_names",
    "reward_weights",
    "_tokenizer",
    "_step",
    "_buffered_inputs",
    "num_iterations",
    "tools",
    "loss_type",
    "beta",
    "ref_model",
    "use_vllm",
    "vllm_importance_sampling_correction",
    "vllm_importance_sampling_mode",
    "chat_template",
    "chat_template_kwargs",
    "eos_token_ids",
    "is_fsdp_enabled",
    "num_generations",  # temporal contrast groups rows by it
]

# Attributes set only on paths that need CUDA or the training loop: the library's source must still assign them.
ASSIGNED_IN_SOURCE = [
    (GRPOTrainer, "self._last_loaded_step ="),  # VideoGRPOTrainer's vLLM weight-sync tag
    (GRPOTrainer, "self.vllm_generation ="),
    (Trainer, "self.current_gradient_accumulation_steps ="),  # read by the KL clamp's normaliser
    # the rollout buffer a checkpoint saves: TRL's cycle, counted by `_step`, must still be this one
    (GRPOTrainer, "generate_every = self.args.steps_per_generation * self.num_iterations"),
    (GRPOTrainer, "if self._step % generate_every == 0 or self._buffered_inputs is None:"),
    (GRPOTrainer, "inputs = self._buffered_inputs[self._step % self.args.steps_per_generation]"),
    (GRPOTrainer, 'reward_kwargs["log_extra"] ='),  # the temporal reward logs each row's frame order through it
    # set by r1video.model.loading on a loaded model; transformers reverses these renames on save
    (importlib.import_module("transformers.core_model_loading"), "model._weight_conversions ="),
    (importlib.import_module("transformers.core_model_loading"), 'getattr(model, "_weight_conversions"'),
]


def parameters(function) -> list[tuple]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize("ours, theirs, name", OVERRIDES, ids=lambda v: v if isinstance(v, str) else "")
def test_overrides_take_exactly_the_library_parameters(ours, theirs, name):
    assert name in vars(ours), f"{ours.__name__} no longer overrides {name}: drop it from this list"
    assert hasattr(theirs, name), f"{theirs.__name__}.{name} is gone"
    assert parameters(vars(ours)[name]) == parameters(getattr(theirs, name))


def test_every_trl_method_the_grpo_trainer_overrides_is_listed():
    overridden = {
        name
        for name, member in vars(VideoGRPOTrainer).items()
        if callable(member) and hasattr(GRPOTrainer, name) and not name.startswith("__")
    }
    assert overridden == {name for ours, _, name in OVERRIDES if ours is VideoGRPOTrainer}


@pytest.mark.parametrize("owner, name, expected", CALLED, ids=lambda v: v if isinstance(v, str) else "")
def test_called_library_functions_keep_their_parameters(owner, name, expected):
    assert [p[0] for p in parameters(getattr(owner, name))] == expected


def test_image_keywords_are_trls_own():
    """VideoGRPOTrainer refuses TRL's image inputs by name; the names must be all of TRL's, in its order."""
    names = [p[0] for p in parameters(GRPOTrainer._get_per_token_logps_and_entropies)]
    assert tuple(names[names.index("compute_aux_loss") + 1 :]) == _IMAGE_KWARGS


@pytest.mark.parametrize("owner, text", ASSIGNED_IN_SOURCE, ids=lambda v: v if isinstance(v, str) else "")
def test_attributes_set_outside_cpu_paths_still_exist_in_the_library(owner, text):
    assert text in inspect.getsource(owner)


def test_attributes_of_a_built_trainer_exist(tmp_path):
    from datasets import Dataset

    from r1video.model import build_tiny_model, load_pretrained
    from r1video.trainer import VideoGRPOConfig

    build_tiny_model(tmp_path / "model")
    model, processor = load_pretrained(tmp_path / "model")
    row = {"prompt": [{"role": "user", "content": [{"type": "text", "text": "A or B?"}]}], "video": None}
    trainer = VideoGRPOTrainer(
        model=model,
        reward_funcs=[lambda completions, **kwargs: [0.0] * len(completions)],
        args=VideoGRPOConfig(
            output_dir=str(tmp_path / "out"),
            use_cpu=True,
            bf16=False,
            report_to="none",
            num_generations=2,
            per_device_train_batch_size=2,
        ),
        train_dataset=Dataset.from_list([row] * 2),
        processing_class=processor,
    )
    missing = [name for name in TRAINER_ATTRIBUTES if not hasattr(trainer, name)]
    assert not missing
    assert {"prompt", "completion", "rewards", "advantages"} <= set(trainer._logs)
    assert "trl" in GRPOTrainer._tag_names and hasattr(Trainer, "create_model_card")
