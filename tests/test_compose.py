"""`r1video compose`: a TinyLLaVA-Video built from a causal LM and a SigLIP tower, as the original builds one.

The parts are tiny local folders shaped like their Hub repos (tests/compose_fixtures.py). The original's rules checked
here (seed-facts §1, §3, §4): the LLM family picks the tokenizer rule (Qwen2 `unk = pad`; Phi, Gemma `pad = unk`),
vision features are SigLIP's `hidden_states[-2]` without token 0, frames are square-resized with the tower's
processor (no crop, no pad), and the conversation format is `qwen2_base` / `phi` (the same strings) or `gemma`.
"""

import json

import numpy as np
import pytest
import torch
from compose_fixtures import write_parts
from safetensors import safe_open
from transformers import (
    AutoModelForCausalLM,
    AutoProcessor,
    SiglipImageProcessor,
    SiglipModel,
)

import r1video.model  # noqa: F401  (registers the Auto classes)
from r1video.cli import main as cli_main
from r1video.model import load_pretrained
from r1video.model.compose import compose_model
from r1video.model.templates import QWEN2_BASE_SYSTEM

SETTINGS = dict(num_queries=16, group=4, num_resampler_layers=2)


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    return write_parts(tmp_path_factory.mktemp("parts"))


@pytest.fixture(scope="module")
def composed(parts, tmp_path_factory):
    """`{family: output folder}`, each composed with the group resampler."""
    root = tmp_path_factory.mktemp("composed")
    return {
        family: compose_model(parts[family], parts["siglip"], root / family, **SETTINGS) and str(root / family)
        for family in ("qwen2", "phi", "gemma")
    }


@pytest.mark.parametrize("family", ["qwen2", "phi", "gemma"])
def test_loads_with_load_pretrained_and_the_auto_classes_with_the_parts_weights(parts, composed, family):
    out = composed[family]
    model, processor = load_pretrained(out)
    auto = AutoModelForCausalLM.from_pretrained(out)
    assert type(AutoProcessor.from_pretrained(out)) is type(processor)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), auto.state_dict().values(), strict=True))
    # The LLM's and the tower's weights are the sources' (the first rows of the embeddings: the placeholder token
    # may have been appended), the connector is new.
    llm = AutoModelForCausalLM.from_pretrained(parts[family])
    rows = llm.get_input_embeddings().num_embeddings
    assert torch.equal(model.get_input_embeddings().weight[:rows], llm.get_input_embeddings().weight)
    ours = model.language_model.state_dict()
    for name, weight in llm.model.state_dict().items():
        assert torch.equal(ours[name][: weight.shape[0]], weight), name
    siglip = SiglipModel.from_pretrained(parts["siglip"])
    tower = model.vision_tower._vision_tower.vision_model
    assert torch.equal(tower.encoder.layers[2].mlp.fc2.weight, siglip.vision_model.encoder.layers[2].mlp.fc2.weight)
    assert torch.equal(tower.head.probe, siglip.vision_model.head.probe)  # the released layout keeps the head
    config = json.loads(open(f"{out}/config.json").read())
    assert (config["connector_type"], config["num_queries"], config["group"], config["num_resampler_layers"]) == (
        "groupresampler",
        16,
        4,
        2,
    )
    assert config["text_config"]["model_type"] == family and config["vision_feature_layer"] == -2
    assert config["tokenizer_model_max_length"] == 3072 and config["image_aspect_ratio"] == "square"


def test_saved_in_the_released_key_layout(composed):
    with safe_open(f"{composed['phi']}/model.safetensors", "pt") as f:
        keys = set(f.keys())
    prefixes = {k.split(".")[0] + "." + k.split(".")[1] for k in keys}
    assert prefixes == {
        "language_model.model",
        "language_model.lm_head",
        "vision_tower._vision_tower",
        "connector._connector",
    }
    assert "connector._connector.latents" in keys


@pytest.mark.parametrize("family", ["qwen2", "phi", "gemma"])
def test_tokenizer_follows_the_originals_per_family_rule(composed, family):
    """TV:tinyllava/model/llm/qwen2.py sets unk = pad; phi.py and gemma.py set pad = unk."""
    _, processor = load_pretrained(composed[family])
    tokenizer = processor.tokenizer
    assert tokenizer.pad_token == tokenizer.unk_token
    if family == "qwen2":
        assert tokenizer.pad_token == tokenizer.eos_token == "<|endoftext|>"  # Qwen2.5 base: pad = eos
    if family == "phi":
        assert tokenizer.pad_token == tokenizer.eos_token == "<|endoftext|>"  # Phi-2: unk = eos, so pad = eos
    if family == "gemma":
        assert tokenizer.pad_token == "<unk>"
    assert tokenizer.model_max_length == 3072


def test_chat_template_is_the_families_conversation_format(composed):
    """`qwen2_base` and `phi` are the same strings; `gemma` closes a reply with `<eos>` (TV templates)."""
    messages = [
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What moves?"}]},
        {"role": "assistant", "content": "A ball."},
    ]
    rendered = {}
    for family, out in composed.items():
        _, processor = load_pretrained(out)
        rendered[family] = processor.apply_chat_template(messages, tokenize=False)
    expected = f"{QWEN2_BASE_SYSTEM}USER: <image>\nWhat moves? ASSISTANT: A ball.<|endoftext|>"
    assert rendered["qwen2"] == rendered["phi"] == expected
    assert rendered["gemma"] == expected.replace("<|endoftext|>", "<eos>")


def test_vision_features_are_siglip_penultimate_layer_without_token_0(parts, composed):
    model, _ = load_pretrained(composed["qwen2"])
    siglip = SiglipModel.from_pretrained(parts["siglip"]).vision_model
    pixels = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        expected = siglip(pixels, output_hidden_states=True).hidden_states[-2][:, 1:]
        assert torch.equal(model.vision_tower(pixels), expected)


def test_frames_are_square_resized_like_the_towers_processor(parts, composed):
    """The original: `SiglipImageProcessor.from_pretrained(vision tower)` on each frame, `image_aspect_ratio: square`."""
    _, processor = load_pretrained(composed["qwen2"])
    frames = np.random.default_rng(0).integers(0, 256, size=(2, 24, 56, 3), dtype=np.uint8)  # not square
    ours = processor.preprocess_frames(frames)
    original = SiglipImageProcessor.from_pretrained(parts["siglip"])(list(frames), return_tensors="pt")["pixel_values"]
    assert ours.shape == (2, 3, 32, 32)
    torch.testing.assert_close(ours, original, atol=1e-6, rtol=0)


@pytest.mark.parametrize("connector", ["group", "naive"])
def test_cli_composes_and_the_result_generates_from_a_video(parts, tmp_path, capsys, connector):
    out = tmp_path / "composed"
    argv = ["compose", "--llm", parts["qwen2"], "--vision", parts["siglip"], "--out", str(out)]
    argv += ["--connector", connector, "--num-queries", "12", "--group", "3", "--resampler-layers", "1"]
    assert cli_main(argv) == 0
    assert f"{connector}resampler, 12 queries" in capsys.readouterr().out
    model, processor = load_pretrained(str(out))
    assert model.config.connector_type == f"{connector}resampler" and model.config.num_resampler_layers == 1
    frames = np.zeros((5, 20, 30, 3), dtype=np.uint8)
    inputs = processor(text=["<image>\nWhat moves?"], videos=[frames])
    assert inputs["input_ids"].shape[1] >= 12
    output = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert output.shape[1] == inputs["input_ids"].shape[1] + 3


def test_unsupported_parts_are_refused_in_one_line(parts, tmp_path, capsys):
    assert cli_main(["compose", "--llm", parts["siglip"], "--vision", parts["siglip"], "--out", str(tmp_path)]) == 2
    assert "not one TinyLLaVA-Video supports" in capsys.readouterr().err
    assert cli_main(["compose", "--llm", parts["qwen2"], "--vision", parts["phi"], "--out", str(tmp_path)]) == 2
    assert "a SigLIP vision tower is needed" in capsys.readouterr().err
