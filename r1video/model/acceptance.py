"""A random-weight TinyLLaVA-Video checkpoint of the released 3B shapes (or the tiny test shapes), offline, for the GPU
acceptance run (`r1video bench gpu`, through the policy's `acceptance_checkpoint`).

The released config is `configs/TinyLLaVA-Video-Qwen2.5-3B-Group-16-512.json` (the released `config.json`, seed-facts
§2.2, with Qwen2.5-3B's `text_config`; no `vision_config`, so SigLIP-so400m-patch14-384's applies). Qwen2.5's tokenizer
cannot be downloaded: the tiny test tokenizer stands in (its ids are a subset of the 151,936 rows).
"""

import json
from importlib import resources

import torch

from r1video.model.configuration import TinyLlavaVideoConfig
from r1video.model.modeling import TinyLlavaVideoForConditionalGeneration
from r1video.model.processing import TinyLlavaVideoProcessor, make_frame_processor
from r1video.model.templates import VIDEO_PLACEHOLDER
from r1video.model.tiny import build_tiny_tokenizer, tiny_config

RELEASED_CONFIG = "TinyLLaVA-Video-Qwen2.5-3B-Group-16-512.json"


def model_config(tiny: bool, tokenizer) -> TinyLlavaVideoConfig:
    """The released config (or the tiny test config), with the stand-in tokenizer's placeholder and EOS ids."""
    image_token_id = tokenizer.convert_tokens_to_ids(VIDEO_PLACEHOLDER)
    if tiny:
        return tiny_config(len(tokenizer), image_token_id, tokenizer.eos_token_id)
    released = json.loads(resources.files("r1video.model").joinpath("configs", RELEASED_CONFIG).read_text())
    config = TinyLlavaVideoConfig(**released)
    config.image_token_id = image_token_id
    return config


def write_checkpoint(out_dir: str, tiny: bool, device: str, dtype: torch.dtype) -> dict:
    """Write a random-weight checkpoint (model, processor, stand-in tokenizer) to `out_dir`; returns its shapes."""
    tokenizer = build_tiny_tokenizer()
    config = model_config(tiny, tokenizer)
    torch.manual_seed(0)
    with torch.device(device):  # 3.8B parameters initialise in seconds on the GPU, minutes on the CPU
        model = TinyLlavaVideoForConditionalGeneration._from_config(config, dtype=dtype)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = None
    processor = TinyLlavaVideoProcessor(
        make_frame_processor(config.vision_config.image_size), tokenizer, num_queries=config.num_queries
    )
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    shapes = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "llm_layers": config.text_config.num_hidden_layers,
        "llm_hidden": config.text_config.hidden_size,
        "vocab_rows": config.text_config.vocab_size,
        "vision_layers": config.vision_config.num_hidden_layers,
        "image_size": config.vision_config.image_size,
        "num_queries": config.num_queries,
        "group": config.group,
    }
    del model
    return shapes
