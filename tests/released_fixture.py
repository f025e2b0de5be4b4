"""A tiny checkpoint directory in the layout of the released `Zhang199/TinyLLaVA-Video-*` models.

config.json shaped like the released one (model_type "tinyllava", architectures TinyLlavaForConditionalGeneration,
`image_token_index: -200`, embedded text_config, `group` as an extra field, tokenizer fields), weights written directly
with safetensors under the released key names, and slow-tokenizer files (vocab.json + merges.txt) without any
`<image>` token, as Qwen2.5's.
"""

import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

EOS = "<|endoftext|>"


def _write_tokenizer(out: Path) -> int:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    corpus = ["A chat between a curious user and an artificial intelligence assistant. USER: ASSISTANT: answer"] * 4
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    model = json.loads(tokenizer.to_str())["model"]
    vocab = model["vocab"]
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    merges = [" ".join(m) if isinstance(m, list) else m for m in model["merges"]]
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    eos_id = vocab[EOS]
    (out / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "Qwen2Tokenizer",
                "model_max_length": 3072,
                "eos_token": EOS,
                "pad_token": EOS,
                "bos_token": None,
                "padding_side": "right",
                "added_tokens_decoder": {str(eos_id): {"content": EOS, "special": True}},
            }
        )
    )
    return len(vocab)


def _released_key(name: str) -> str:
    for ours, released in (
        ("model.language_model.", "language_model.model."),
        ("lm_head.", "language_model.lm_head."),
        ("model.connector.", "connector."),
        ("model.vision_tower.", "vision_tower."),
    ):
        if name.startswith(ours):
            return released + name[len(ours) :]
    raise KeyError(name)


def write_released_checkpoint(out: Path, seed: int = 0) -> dict[str, torch.Tensor]:
    """Write the fixture into `out`; return its weights keyed by the released names."""
    from r1video.model import TinyLlavaVideoConfig, TinyLlavaVideoForConditionalGeneration

    out.mkdir(parents=True, exist_ok=True)
    tokenizer_len = _write_tokenizer(out)
    eos_id = tokenizer_len - tokenizer_len  # the BPE trainer puts the special token first
    text_config = {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "vocab_size": tokenizer_len + 16,  # spare rows, as Qwen2.5 (151936 rows for 151665 tokens)
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "rope_theta": 1000000.0,
        "tie_word_embeddings": True,
        "bos_token_id": eos_id,
        "eos_token_id": eos_id,
        "torch_dtype": "bfloat16",
        "_attn_implementation_autoset": True,
    }
    vision_config = {
        "model_type": "siglip_vision_model",
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": 32,
        "patch_size": 8,
    }
    config = {
        "_name_or_path": "Zhang199/TinyLLaVA-Video-Coldstart_NextQA_16",
        "architectures": ["TinyLlavaForConditionalGeneration"],
        "model_type": "tinyllava",
        "connector_type": "groupresampler",
        "group": 4,
        "num_queries": 16,
        "num_resampler_layers": 2,
        "resampler_hidden_size": 768,
        "resampler_heads": 2,
        "resampler_dim_head": 16,
        "hidden_size": 64,
        "ignore_index": -100,
        "image_token_index": -200,
        "image_aspect_ratio": "square",
        "llm_model_name_or_path": "Qwen/Qwen2.5-3B",
        "tokenizer_name_or_path": "Qwen/Qwen2.5-3B",
        "vision_model_name_or_path": "google/siglip-so400m-patch14-384",
        "vision_feature_layer": -2,
        "vision_feature_select_strategy": "patch",
        "pad_token": EOS,
        "tokenizer_model_max_length": 3072,
        "tokenizer_padding_side": "right",
        "tokenizer_use_fast": False,
        "torch_dtype": "bfloat16",
        "tune_type_llm": "full",
        "tune_type_vision_tower": "frozen",
        "tune_type_connector": "full",
        "use_cache": False,
        "transformers_version": "4.49.0.dev0",
        "text_config": text_config,
        "vision_config": vision_config,
    }
    (out / "config.json").write_text(json.dumps(config, indent=2))
    (out / "generation_config.json").write_text(
        json.dumps({"bos_token_id": eos_id, "eos_token_id": eos_id, "use_cache": False})
    )
    torch.manual_seed(seed)
    model = TinyLlavaVideoForConditionalGeneration(TinyLlavaVideoConfig(**{k: v for k, v in config.items()}))
    weights = {
        _released_key(name): tensor.contiguous()
        for name, tensor in model.state_dict().items()
        if name != "lm_head.weight"  # tied to the embeddings; the released files do not store it twice
    }
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
    return weights
