"""The four released TinyLLaVA-Video checkpoints: each builds from its released config.json and runs a forward.

The configs are test data at their real values (tests/data/zoo, with their provenance); here only widths and depths
shrink, the connector settings (type, 512 queries, 16 groups, 3 layers) and every other field stay as released.
The 1-fps model's frame rule and the Phi-2 model's conversation format are checked against the original's rules.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from compose_fixtures import write_parts
from eval_fixtures import write_clip
from transformers import AutoConfig, AutoModelForCausalLM

import r1video.model  # noqa: F401  (registers the Auto classes)
from r1video.data.video import load_video_frames
from r1video.model import TinyLlavaVideoConfig, load_pretrained
from r1video.model.compose import compose_model
from r1video.model.connectors import CONNECTORS
from r1video.model.templates import QWEN2_BASE_SYSTEM

ZOO = Path(__file__).parent / "data" / "zoo"
# name -> (connector, LLM family, dtype, frame rule) as the README table and TinyLLaVA-Video#9 give them
RELEASED = {
    "TinyLLaVA-Video-Qwen2.5-3B-Group-16-512": ("groupresampler", "qwen2", "bfloat16", "16 frames"),
    "TinyLLaVA-Video-Qwen2.5-3B-Group-1fps-512": ("groupresampler", "qwen2", "bfloat16", "1 fps"),
    "TinyLLaVA-Video-Qwen2.5-3B-Naive-16-512": ("naiveresampler", "qwen2", "bfloat16", "16 frames"),
    "TinyLLaVA-Video-Phi2-Naive-16-512": ("naiveresampler", "phi", "float16", "16 frames"),
}
FRAME_SIZE = 56  # 4 x 4 patches of 14 px (the real patch size) -> 15 tokens per frame after dropping token 0
VOCAB = 512


def shrunk_config(name: str) -> dict:
    """The released config.json with small widths and depths; connector and tokenizer fields untouched."""
    config = json.loads((ZOO / f"{name}.json").read_text())
    text = config["text_config"]
    heads = 4
    text.update(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=heads, vocab_size=VOCAB
    )
    text["num_key_value_heads"] = 2 if text["model_type"] == "qwen2" else heads
    text["bos_token_id"] = text["eos_token_id"] = VOCAB - 2
    config["vision_config"].update(
        hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2, image_size=FRAME_SIZE
    )
    config.update(hidden_size=64, vision_hidden_size=32)
    return config


def build(name: str, folder: Path, dtype=torch.float32):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(shrunk_config(name)))
    config = AutoConfig.from_pretrained(folder)
    config.image_token_id = VOCAB - 1  # what load_pretrained takes from the processor (released configs lack it)
    torch.manual_seed(0)
    return config, AutoModelForCausalLM.from_config(config, dtype=dtype).eval()


def prompt_ids(num_queries: int) -> torch.Tensor:
    return torch.tensor([[5, 6, 7] + [VOCAB - 1] * num_queries + [8, 9]])


@pytest.mark.parametrize("name", list(RELEASED))
def test_released_config_builds_and_runs_a_forward(tmp_path, name):
    connector, family, dtype, frames = RELEASED[name]
    config, model = build(name, tmp_path)
    assert isinstance(config, TinyLlavaVideoConfig)
    assert (config.connector_type, config.num_queries, config.num_resampler_layers, config.group) == (
        connector,
        512,
        3,
        16,  # the Naive configs have no `group`: the default, unused by the naive resampler
    )
    assert config.text_config.model_type == family and config.vision_feature_layer == -2
    assert config.image_aspect_ratio == "square" and config.tokenizer_model_max_length == 3072
    assert config.vision_tokens_per_frame == (FRAME_SIZE // 14) ** 2 - 1
    assert isinstance(model.model.connector._connector, CONNECTORS[connector])
    video = torch.randn(1, 16, 3, FRAME_SIZE, FRAME_SIZE)
    with torch.no_grad():
        embeds = model.model.get_video_features(video)
        logits = model(input_ids=prompt_ids(512), pixel_values_videos=video).logits
    assert embeds.shape == (1, 512, 64)
    assert logits.shape == (1, 3 + 512 + 2, VOCAB) and torch.isfinite(logits).all()


def test_one_fps_model_takes_one_frame_per_second_up_to_the_cap(tmp_path):
    """TinyLLaVA-Video#9 and TV's eval scripts: `num_frame=-1` means `min(max_frame, max(1, int(duration)))` frames
    at `np.linspace(0, T - 1, n, dtype=int)` (max_frame 64 or 128 at evaluation; no cap in training). The cap is 8
    here to keep the clips short; the 1-fps model reads every resulting length, in one batch, as 512 tokens."""
    cap = 8
    clips = {  # (frames, fps) -> duration 3 s, 7.5 s, 12 s
        "short": write_clip(tmp_path / "short.mp4", count=24, fps=8),
        "middle": write_clip(tmp_path / "middle.mp4", count=60, fps=8),
        "long": write_clip(tmp_path / "long.mp4", count=48, fps=4),
    }
    durations = {"short": 3.0, "middle": 7.5, "long": 12.0}
    totals = {"short": 24, "middle": 60, "long": 48}
    videos = []
    for key, path in clips.items():
        duration, total = durations[key], totals[key]
        evaluation = load_video_frames(path, fps=1, max_frames=cap)
        expected = np.linspace(0, total - 1, min(cap, max(1, int(duration))), dtype=int).tolist()
        assert evaluation.indices == expected, key
        training = load_video_frames(path, fps=1)  # no cap in training
        assert training.indices == np.linspace(0, total - 1, max(1, int(duration)), dtype=int).tolist(), key
        videos.append(torch.from_numpy(evaluation.frames).permute(0, 3, 1, 2).float() / 255)
    assert [len(v) for v in videos] == [3, 7, 8]

    _, model = build("TinyLLaVA-Video-Qwen2.5-3B-Group-1fps-512", tmp_path / "model")
    resized = [torch.nn.functional.interpolate(v, size=(FRAME_SIZE, FRAME_SIZE)) for v in videos]
    with torch.no_grad():
        embeds = model.model.get_video_features(resized)
        logits = model(input_ids=torch.cat([prompt_ids(512)] * 3), pixel_values_videos=resized).logits
    assert embeds.shape == (3, 512, 64) and torch.isfinite(logits).all()


@pytest.fixture(scope="module")
def composed_phi(tmp_path_factory):
    root = tmp_path_factory.mktemp("phi")
    parts = write_parts(root / "parts", families=("phi",))
    out = root / "composed"
    compose_model(
        parts["phi"], parts["siglip"], out, connector_type="naiveresampler", num_queries=16, dtype=torch.float16
    )
    return str(out)


def test_phi2_conversation_format_is_the_originals(composed_phi):
    """TV's `phi` template (phi_template.py): system line + " ", `USER: <image>\\n{Q} `, `ASSISTANT: {A}<|endoftext|>`;
    at generation the prompt ends in `ASSISTANT:` (no space); the tokenizer gets pad = unk (llm/phi.py)."""
    model, processor = load_pretrained(composed_phi, dtype="auto")
    tokenizer = processor.tokenizer
    assert tokenizer.pad_token == tokenizer.unk_token == "<|endoftext|>"  # Phi-2's unk is <|endoftext|>
    system = (
        "A chat between a curious user and an artificial intelligence assistant. "
        "The assistant gives helpful, detailed, and polite answers to the user's questions." + " "
    )
    assert system == QWEN2_BASE_SYSTEM
    messages = [
        {"role": "user", "content": "<image>\nWhat moves?"},
        {"role": "assistant", "content": "A ball."},
        {"role": "user", "content": "Where?"},
        {"role": "assistant", "content": "Left."},
    ]
    rendered = processor.apply_chat_template(messages, tokenize=False)
    assert rendered == (
        system + "USER: <image>\nWhat moves? ASSISTANT: A ball.<|endoftext|>USER: Where? ASSISTANT: Left.<|endoftext|>"
    )
    generation = processor.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    assert generation == system + "USER: <image>\nWhat moves? ASSISTANT:"


def test_phi2_model_runs_in_fp16(composed_phi):
    """Phi-2's scripts train in fp16 (`--fp16 True`); the composed Phi model is saved in fp16 and runs in it."""
    config = json.loads(open(os.path.join(composed_phi, "config.json")).read())
    assert config["dtype"] == "float16" and config["text_config"]["model_type"] == "phi"
    model, processor = load_pretrained(composed_phi, dtype="auto")
    assert model.dtype == torch.float16 and model.lm_head.bias is not None
    frames = np.random.default_rng(0).integers(0, 256, size=(4, 40, 40, 3), dtype=np.uint8)
    inputs = processor(text=["<image>\nWhat moves?"], videos=[frames])
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.dtype == torch.float16 and torch.isfinite(logits).all()
