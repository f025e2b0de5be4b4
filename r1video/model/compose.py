"""Compose a new TinyLLaVA-Video from its parts: a causal LM, a SigLIP vision tower and a fresh resampler connector.

This is the original's model construction (TinyLLaVA-Video `train.py` with `--model_name_or_path LLM --vision_tower
SIGLIP --connector_type ...`), done once and saved, so that the two training stages (`pretrain`: the connector alone;
`finetune`: LLM + connector) start from an ordinary checkpoint folder in the released layout:

    r1video compose --llm Qwen/Qwen2.5-3B --vision google/siglip-so400m-patch14-384 --out runs/tv-qwen2.5-3b-group

What is kept from the original (seed-facts §1, §3, §4):

- the LLM family decides the classes and the tokenizer rule (`TV:tinyllava/model/llm/*.py`): `qwen2` (Qwen2 and
  Qwen2.5) sets `unk = pad`; `phi` (Phi-2) and `gemma` set `pad = unk`; any other family is refused;
- the vision tower is SigLIP (a full `SiglipModel` folder or a vision-only one; only the vision part is kept, head
  included, as the released checkpoints store it), read at `hidden_states[-2]` with token 0 dropped;
- frames are square-resized to the tower's size (bicubic, no crop, no pad: `image_aspect_ratio: square`), rescaled and
  normalised with the tower's mean/std (SigLIP's 0.5/0.5 unless its `preprocessor_config.json` says otherwise);
- the connector is a new `groupresampler` or `naiveresampler` (`num_queries`, `group`, `num_resampler_layers`;
  8 heads × 64 as the original), randomly initialised (latents ~ N(0, 1)), the rest of the weights copied exactly;
- `tokenizer_model_max_length` 3072, right padding recorded for training, and the conversation format of the LLM
  (`qwen2_base`, `phi`: the same strings; `gemma`: `<eos>` closes a reply) saved as the processor's chat template.

What differs on purpose: the tokenizer, processor and chat template are saved in the folder (the original re-fetched
them by name at every load), and the `<image>` placeholder is a real token of the tokenizer (the original spliced at
the sentinel id -200; here the processor expands it to `num_queries` tokens, see `r1video.model.processing`).
"""

import json
import os
import sys

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, SiglipVisionModel
from transformers.utils import cached_file

from r1video.model.configuration import TinyLlavaVideoConfig
from r1video.model.connectors import Connector
from r1video.model.modeling import TinyLlavaVideoForConditionalGeneration
from r1video.model.processing import SIGLIP_MEAN_STD, TinyLlavaVideoProcessor, make_frame_processor
from r1video.model.templates import EOS, load_chat_template

# LLM family (config `model_type`) -> the original's conversation format (`--conv_version`) for it.
CONVERSATION_FORMATS = {"qwen2": "qwen2_base", "phi": "phi", "gemma": "gemma"}
# The families whose tokenizer gets `pad = unk` (the others: `unk = pad`), TV:tinyllava/model/llm/*.py.
_PAD_IS_UNK = ("phi", "gemma")


def conversation_format(text_model_type: str) -> str:
    """The original's conversation format for an LLM family; a family the original lacks raises `ValueError`."""
    if text_model_type not in CONVERSATION_FORMATS:
        raise ValueError(
            f"language model type {text_model_type!r} is not one TinyLLaVA-Video supports; use one of "
            f"{', '.join(CONVERSATION_FORMATS)} (Qwen2/Qwen2.5, Phi-2, Gemma)"
        )
    return CONVERSATION_FORMATS[text_model_type]


def chat_template_for(text_model_type: str, eos_token: str) -> str:
    """The chat template of the LLM's conversation format: `qwen2_base`'s strings, closed by the LLM's EOS string.

    `qwen2_base` and `phi` are the same strings (system line, `USER: ... ASSISTANT: ...<|endoftext|>`); `gemma` closes
    each reply with `<eos>` instead.
    """
    conversation_format(text_model_type)
    return load_chat_template("qwen2_base").replace(EOS, eos_token)


def prepare_tokenizer(tokenizer, text_model_type: str, model_max_length: int = 3072):
    """The original's per-family tokenizer rule, in place: Qwen2 `unk = pad`; Phi and Gemma `pad = unk`."""
    if text_model_type in _PAD_IS_UNK:
        if tokenizer.unk_token is None:
            raise ValueError(f"the {text_model_type} tokenizer has no unk token, which TinyLLaVA-Video uses as pad")
        tokenizer.pad_token = tokenizer.unk_token
    else:
        if tokenizer.pad_token is None:  # Qwen2.5 base ships pad = <|endoftext|>; keep the rule total
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.unk_token = tokenizer.pad_token
    tokenizer.model_max_length = model_max_length
    return tokenizer


def _vision_config(vision_tower: str, hub_kwargs: dict):
    config = AutoConfig.from_pretrained(vision_tower, **hub_kwargs)
    if config.model_type == "siglip":
        config = config.vision_config
    if config.model_type != "siglip_vision_model":
        raise ValueError(f"{vision_tower}: a SigLIP vision tower is needed, got model_type {config.model_type!r}")
    return config


def _mean_std(vision_tower: str, hub_kwargs: dict) -> tuple[list[float], list[float]]:
    path = cached_file(
        vision_tower, "preprocessor_config.json", _raise_exceptions_for_missing_entries=False, **hub_kwargs
    )
    if path is None:
        return SIGLIP_MEAN_STD, SIGLIP_MEAN_STD
    with open(path) as f:
        saved = json.load(f)
    return saved.get("image_mean", SIGLIP_MEAN_STD), saved.get("image_std", SIGLIP_MEAN_STD)


def _record_name(name_or_path: str) -> str:
    """What config.json records as a part's origin: a Hub id as it is, a local folder by its name only."""
    return os.path.basename(os.path.normpath(name_or_path)) if os.path.isdir(name_or_path) else name_or_path


def compose_model(
    language_model: str,
    vision_tower: str,
    output_dir: str | os.PathLike | None = None,
    *,
    connector_type: str = "groupresampler",
    num_queries: int = 512,
    group: int = 16,
    num_resampler_layers: int = 3,
    model_max_length: int = 3072,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
    **hub_kwargs,
) -> tuple[TinyLlavaVideoForConditionalGeneration, TinyLlavaVideoProcessor]:
    """Build a TinyLLaVA-Video from a causal LM and a SigLIP tower with a new connector; save it when asked.

    Args:
        language_model: Hub id or folder of a causal LM of a supported family (`qwen2`, `phi`, `gemma`) with its
            tokenizer.
        vision_tower: Hub id or folder of a SigLIP model (`SiglipModel` or `SiglipVisionModel`).
        output_dir: Where to save model, tokenizer, processor and chat template (the released layout).
        connector_type: `"groupresampler"` or `"naiveresampler"`.
        num_queries: Visual tokens per video (512 in every released model).
        group: Chunks of the group resampler (16); recorded but unused by the naive one.
        num_resampler_layers: Resampler blocks (3).
        model_max_length: The tokenizer's and config's `tokenizer_model_max_length` (3072, the original's).
        dtype: Weight dtype of the composed model.
        seed: Seed of the connector's random initialisation.
        **hub_kwargs: `revision`, `local_files_only`, ... for every `from_pretrained`.

    Returns:
        `(model, processor)`; the LLM and tower weights equal the sources', the connector is new.

    Raises:
        ValueError: The LLM family is not supported, the tower is not SigLIP, or the connector settings are invalid
            (e.g. `num_queries` not divisible by `group`).
    """
    text_config = AutoConfig.from_pretrained(language_model, **hub_kwargs)
    conversation_format(text_config.model_type)
    vision_config = _vision_config(vision_tower, hub_kwargs)
    tokenizer = prepare_tokenizer(
        AutoTokenizer.from_pretrained(language_model, **hub_kwargs), text_config.model_type, model_max_length
    )
    mean, std = _mean_std(vision_tower, hub_kwargs)
    frame_processor = make_frame_processor(vision_config.image_size)
    frame_processor.image_mean, frame_processor.image_std = mean, std
    processor = TinyLlavaVideoProcessor(
        frame_processor,
        tokenizer,
        num_queries=num_queries,
        chat_template=chat_template_for(text_config.model_type, tokenizer.eos_token),
    )

    llm = AutoModelForCausalLM.from_pretrained(language_model, dtype=dtype, **hub_kwargs)
    vision = SiglipVisionModel.from_pretrained(vision_tower, dtype=dtype, **hub_kwargs)
    config = TinyLlavaVideoConfig(
        text_config=llm.config,
        vision_config=vision.config,
        connector_type=connector_type,
        group=group,
        num_queries=num_queries,
        num_resampler_layers=num_resampler_layers,
        image_token_id=processor.image_token_id,
        llm_model_name_or_path=_record_name(language_model),
        vision_model_name_or_path=_record_name(vision_tower),
        tokenizer_name_or_path=_record_name(language_model),
        tokenizer_model_max_length=model_max_length,
        tokenizer_padding_side="right",
        pad_token=tokenizer.pad_token,
    )
    # The LLM and the tower arrive with their weights: build the wrapper without allocating its own copies, then put
    # the loaded parts in place and give the connector (the only new part) real, seeded weights.
    with torch.device("meta"):
        model = TinyLlavaVideoForConditionalGeneration(config)
    model.model.language_model = llm.model
    model.lm_head = llm.lm_head
    model.model.vision_tower._vision_tower.vision_model = vision
    torch.manual_seed(seed)
    model.model.connector = Connector(config).to(dtype)
    if config.tie_word_embeddings:
        model.lm_head.weight = model.model.language_model.get_input_embeddings().weight
    model.config.dtype = dtype
    if processor.image_token_id >= model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
    model.generation_config = llm.generation_config
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.eval()
    if output_dir is not None:
        model.save_pretrained(output_dir)
        processor.save_pretrained(output_dir)
    return model, processor


def run(args) -> int:
    """`r1video compose` after its arguments are parsed (`r1video.compose_cli`, which needs no torch for `--help`)."""
    try:
        model, _ = compose_model(
            args.llm,
            args.vision,
            args.out,
            connector_type=f"{args.connector}resampler",
            num_queries=args.num_queries,
            group=args.group,
            num_resampler_layers=args.resampler_layers,
            model_max_length=args.model_max_length,
            dtype=getattr(torch, args.dtype),
            seed=args.seed,
        )
    except (ValueError, OSError) as exc:
        print(f"r1video compose: {exc}", file=sys.stderr)  # noqa: T201 (the command line)
        return 2
    params = sum(p.numel() for p in model.parameters())
    connector = sum(p.numel() for p in model.model.connector.parameters())
    print(  # noqa: T201 (the command line)
        f"composed a {params / 1e6:.1f}M-parameter TinyLLaVA-Video ({model.config.connector_type}, "
        f"{model.config.num_queries} queries, connector {connector / 1e6:.2f}M new) in {args.out}"
    )
    return 0
