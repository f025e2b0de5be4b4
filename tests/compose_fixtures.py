"""Tiny stand-ins for the parts `r1video compose` takes, saved to folders as their Hub repos are laid out.

- a Qwen2 causal LM whose tokenizer is Qwen2.5 base's shape: byte-level BPE, eos = pad = `<|endoftext|>`, no unk, no
  `<image>` token; the embedding matrix has spare rows, as Qwen2.5's (151936 rows, 151665 tokens);
- a Phi causal LM whose tokenizer is Phi-2's shape: unk = bos = eos = `<|endoftext|>`, no pad; no spare rows here;
- a Gemma causal LM with Gemma's tokens (`<bos>`, `<eos>`, `<pad>`, `<unk>`);
- a full SigLIP model (text and vision, as google/siglip-so400m-patch14-384) with its image processor config.
"""

import os

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    GemmaConfig,
    GemmaForCausalLM,
    PhiConfig,
    PhiForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
    SiglipConfig,
    SiglipImageProcessor,
    SiglipModel,
)

from r1video.model.tiny import _TINY_CORPUS

EOS = "<|endoftext|>"
TINY_TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
TINY_VISION = dict(
    image_size=32, patch_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2
)


def _bpe(special_tokens: list[str], extra_corpus: tuple[str, ...] = ()) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator([*_TINY_CORPUS, *extra_corpus] * 4, trainer=trainer)
    return tokenizer


def write_qwen2(out) -> str:
    out = str(out)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=_bpe([EOS]), eos_token=EOS, pad_token=EOS)
    tokenizer.save_pretrained(out)
    torch.manual_seed(1)
    config = Qwen2Config(
        vocab_size=len(tokenizer) + 8,
        num_key_value_heads=2,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **TINY_TEXT,
    )
    Qwen2ForCausalLM(config).save_pretrained(out)
    return out


def write_phi(out) -> str:
    out = str(out)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=_bpe([EOS]), unk_token=EOS, bos_token=EOS, eos_token=EOS)
    tokenizer.save_pretrained(out)
    torch.manual_seed(2)
    config = PhiConfig(
        vocab_size=len(tokenizer),
        partial_rotary_factor=0.5,  # Phi-2: 0.4 of 80; a whole even rotary width of this tiny head
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **TINY_TEXT,
    )
    PhiForCausalLM(config).save_pretrained(out)
    return out


def write_gemma(out) -> str:
    out = str(out)
    specials = ["<pad>", "<eos>", "<bos>", "<unk>"]
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_bpe(specials), pad_token="<pad>", eos_token="<eos>", bos_token="<bos>", unk_token="<unk>"
    )
    tokenizer.save_pretrained(out)
    torch.manual_seed(3)
    config = GemmaConfig(
        vocab_size=len(tokenizer) + 4,
        num_key_value_heads=1,
        head_dim=8,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
        **TINY_TEXT,
    )
    GemmaForCausalLM(config).save_pretrained(out)
    return out


def write_siglip(out) -> str:
    out = str(out)
    torch.manual_seed(4)
    text = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    SiglipModel(SiglipConfig(vision_config=TINY_VISION, text_config=text)).save_pretrained(out)
    size = TINY_VISION["image_size"]
    SiglipImageProcessor(size={"height": size, "width": size}).save_pretrained(out)
    return out


WRITERS = {"qwen2": write_qwen2, "phi": write_phi, "gemma": write_gemma}


def write_parts(root, families=("qwen2", "phi", "gemma")) -> dict[str, str]:
    """`{family: LLM folder, ..., "siglip": tower folder}` under `root`."""
    root = str(root)
    parts = {name: WRITERS[name](os.path.join(root, name)) for name in families}
    parts["siglip"] = write_siglip(os.path.join(root, "siglip"))
    return parts


def train_text_lm(
    folder, texts: list[str], steps: int = 200, lr: float = 3e-3, batch: int = 16, seed: int = 0
) -> None:
    """Language-model a tiny causal LM on `texts` in place (plain next-token loss), so that it is a *pretrained* LM
    as `r1video compose` expects: a connector trained alone can steer a trained LM (as prompt tuning does), not a
    random one, whose output barely depends on its inputs beyond the current token."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    encoded = [tokenizer(text).input_ids + [tokenizer.eos_token_id] for text in texts]
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        rows = [encoded[i] for i in torch.randint(len(encoded), (batch,), generator=generator).tolist()]
        length = max(len(row) for row in rows)
        input_ids = torch.full((batch, length), tokenizer.eos_token_id)
        labels = torch.full((batch, length), -100)
        for r, row in enumerate(rows):
            input_ids[r, : len(row)] = labels[r, : len(row)] = torch.tensor(row)
        model(input_ids=input_ids, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(folder)
