"""The TinyLLaVA-Video model: shapes, connector semantics, released-checkpoint loading, generation, gradients."""

import json

import numpy as np
import pytest
import torch
from released_fixture import write_released_checkpoint
from safetensors import safe_open
from transformers import AutoConfig, AutoModelForCausalLM, AutoProcessor, Qwen2Config, SiglipVisionConfig

import r1video.model  # noqa: F401  (registers TinyLLaVA-Video with the Auto classes)
from r1video.model import (
    TinyLlavaVideoConfig,
    TinyLlavaVideoForConditionalGeneration,
    build_tiny_model,
    load_pretrained,
)
from r1video.model.connectors import GroupResampler, NaiveResampler, sinusoidal_position_encoding
from r1video.model.templates import grpo_question, qwen2_base_prompt
from r1video.model.vision import VisionTower


def _siglip_384_config(**fields) -> TinyLlavaVideoConfig:
    """Real SigLIP-384/14 geometry (27×27 patches), tiny widths: shapes match the released model, compute does not."""
    vision = SiglipVisionConfig(
        image_size=384, patch_size=14, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2
    )
    text = Qwen2Config(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    defaults = dict(num_queries=512, group=16, num_resampler_layers=1, resampler_heads=2, resampler_dim_head=8)
    return TinyLlavaVideoConfig(text_config=text, vision_config=vision, **{**defaults, **fields})


def _video(num_frames, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (num_frames, size, size, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    build_tiny_model(out, seed=0)
    return load_pretrained(str(out))


class TestShapes:
    def test_vision_tower_gives_728_tokens_per_384px_frame(self):
        torch.manual_seed(0)
        tower = VisionTower(_siglip_384_config())
        features = tower(torch.randn(2, 3, 384, 384))
        assert features.shape == (2, 728, 16)

    def test_vision_features_are_penultimate_hidden_state_without_token_0(self):
        torch.manual_seed(0)
        tower = VisionTower(_siglip_384_config()).eval()
        pixels = torch.randn(1, 3, 384, 384)
        hidden = tower._vision_tower.vision_model(pixels, output_hidden_states=True).hidden_states
        assert torch.equal(tower(pixels), hidden[-2][:, 1:])

    @pytest.mark.parametrize("frames", [16, 40])
    def test_group_resampler_gives_512_tokens_for_any_frame_count(self, frames):
        torch.manual_seed(0)
        connector = GroupResampler(_siglip_384_config())
        assert connector(torch.randn(1, frames * 728, 16)).shape == (1, 512, 32)

    def test_naive_resampler_gives_512_tokens(self):
        torch.manual_seed(0)
        assert NaiveResampler(_siglip_384_config(connector_type="naiveresampler"))(
            torch.randn(2, 3 * 728, 16)
        ).shape == (
            2,
            512,
            32,
        )

    def test_num_queries_must_split_into_groups(self):
        with pytest.raises(ValueError, match="divisible by group"):
            _siglip_384_config(num_queries=500)


class TestConnectorSemantics:
    def test_group_chunks_follow_tensor_split_and_share_latents_with_pe_on_outputs(self):
        """Uneven N: the first N % group chunks are one token longer; each chunk is resampled on its own with the same
        latents and layers; the position encoding is added once, over the concatenated outputs."""
        torch.manual_seed(0)
        connector = GroupResampler(_siglip_384_config()).eval()
        features = torch.randn(2, 3 * 728 + 5, 16)  # 2189 tokens: 13 chunks of 137, 3 of 136
        out = connector(features)
        projected = connector.linear(features)
        chunks = torch.tensor_split(projected, 16, dim=1)
        assert [c.shape[1] for c in chunks] == [137] * 13 + [136] * 3
        expected = torch.cat([connector.resample(chunk) for chunk in chunks], dim=1)
        pe = sinusoidal_position_encoding(512, 32, out.device, out.dtype)
        torch.testing.assert_close(out, expected + pe, atol=1e-5, rtol=1e-5)

    def test_naive_adds_pe_on_inputs(self):
        torch.manual_seed(0)
        connector = NaiveResampler(_siglip_384_config(connector_type="naiveresampler")).eval()
        features = torch.randn(1, 100, 16)
        projected = connector.linear(features)
        expected = connector.resample(projected + sinusoidal_position_encoding(100, 32, "cpu", torch.float32))
        torch.testing.assert_close(connector(features), expected)

    def test_connector_follows_input_dtype(self):
        torch.manual_seed(0)
        connector = GroupResampler(_siglip_384_config()).to(torch.bfloat16)
        assert connector(torch.randn(1, 64, 16, dtype=torch.bfloat16)).dtype == torch.bfloat16

    def test_position_encoding_values(self):
        pe = sinusoidal_position_encoding(4, 8, "cpu", torch.float32)[0]
        assert pe[0, 0] == 0 and pe[0, 1] == 1  # sin(0), cos(0)
        assert pe[3, 0] == torch.tensor(np.sin(3.0), dtype=torch.float16).float()  # built in float16, as the original


class TestConfig:
    def test_missing_vision_config_falls_back_to_siglip_so400m(self):
        config = TinyLlavaVideoConfig(text_config={"model_type": "qwen2", "hidden_size": 64})
        vision = config.vision_config
        assert (vision.hidden_size, vision.num_hidden_layers, vision.image_size, vision.patch_size) == (
            1152,
            27,
            384,
            14,
        )
        assert config.vision_tokens_per_frame == 728

    def test_text_config_type_from_llm_name_when_absent(self):
        config = TinyLlavaVideoConfig(text_config={"hidden_size": 64}, llm_model_name_or_path="microsoft/phi-2")
        assert config.text_config.model_type == "phi"
        assert config.tie_word_embeddings is False

    def test_released_config_json_reads_as_is(self, tmp_path):
        write_released_checkpoint(tmp_path)
        config = AutoConfig.from_pretrained(tmp_path)
        assert isinstance(config, TinyLlavaVideoConfig)
        assert (config.connector_type, config.group, config.num_queries, config.image_token_index) == (
            "groupresampler",
            4,
            16,
            -200,
        )
        assert config.tokenizer_model_max_length == 3072 and config.pad_token == "<|endoftext|>"
        assert config.text_config.model_type == "qwen2" and config.tie_word_embeddings

    def test_group_null_reads_as_the_original_default(self, tmp_path):
        """The original writes `"group": null` when the group was left at its default; that means 16 groups."""
        write_released_checkpoint(tmp_path)
        config_file = tmp_path / "config.json"
        config = json.loads(config_file.read_text())
        config.update(group=None, num_queries=512)
        config_file.write_text(json.dumps(config))
        loaded = AutoConfig.from_pretrained(tmp_path)
        assert (loaded.group, loaded.num_queries) == (16, 512)
        assert json.loads(loaded.to_json_string())["group"] == 16


class TestCheckpoints:
    def test_save_writes_released_key_names_and_reloads_exactly(self, tmp_path):
        model, _ = build_tiny_model(tmp_path, seed=3)
        with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
            keys = set(f.keys())
        assert "language_model.model.embed_tokens.weight" in keys
        assert "vision_tower._vision_tower.vision_model.embeddings.patch_embedding.weight" in keys
        assert "connector._connector.layers.0.0.to_kv.weight" in keys
        assert "connector._connector.layers.1.1.3.weight" in keys
        assert all(k.split(".")[0] in {"language_model", "vision_tower", "connector"} for k in keys)
        reloaded = AutoModelForCausalLM.from_pretrained(tmp_path)
        assert isinstance(reloaded, TinyLlavaVideoForConditionalGeneration)
        for name, tensor in model.state_dict().items():
            assert torch.equal(tensor, reloaded.state_dict()[name]), name
        assert reloaded.lm_head.weight.data_ptr() == reloaded.get_input_embeddings().weight.data_ptr()
        assert isinstance(AutoProcessor.from_pretrained(tmp_path).image_token_id, int)

    def test_released_checkpoint_loads_offline_and_generates(self, tmp_path):
        weights = write_released_checkpoint(tmp_path, seed=1)
        model, processor = load_pretrained(str(tmp_path))
        # The original spliced at a sentinel; the processor adds an `<image>` token, which lands in Qwen's spare rows.
        assert model.config.image_token_id == processor.image_token_id == len(processor.tokenizer) - 1
        assert model.get_input_embeddings().num_embeddings == model.config.text_config.vocab_size
        model.save_pretrained(tmp_path / "resaved")
        with safe_open(str(tmp_path / "resaved" / "model.safetensors"), "pt") as f:
            resaved = {k: f.get_tensor(k) for k in f.keys()}
        assert set(resaved) == set(weights)
        for key, tensor in weights.items():
            assert torch.equal(resaved[key], tensor), key
        inputs = processor(text=[qwen2_base_prompt("What happens?")], videos=[_video(4)])
        output = model.generate(**inputs, max_new_tokens=4, do_sample=False)
        assert output.shape == (1, inputs["input_ids"].shape[1] + 4)


class TestProcessor:
    def test_placeholder_expands_to_num_queries_tokens(self, tiny):
        model, processor = tiny
        batch = processor(text=[qwen2_base_prompt("Q?")], videos=[_video(8)])
        assert (batch["input_ids"] == model.config.image_token_id).sum() == model.config.num_queries
        assert batch["pixel_values_videos"].shape == (1, 8, 3, 32, 32)

    def test_frames_are_square_resized_and_normalised_to_minus_one_one(self, tiny):
        _, processor = tiny
        white = np.full((2, 48, 80, 3), 255, dtype=np.uint8)
        pixels = processor(text=["<image>"], videos=[white])["pixel_values_videos"]
        assert pixels.shape == (1, 2, 3, 32, 32)
        torch.testing.assert_close(pixels, torch.ones_like(pixels))

    def test_placeholder_and_video_counts_must_match(self, tiny):
        _, processor = tiny
        with pytest.raises(ValueError, match="1 '<image>' placeholder\\(s\\) but 2 video"):
            processor(text=[qwen2_base_prompt("Q?")], videos=[_video(2), _video(2)])

    def test_pad_equals_eos_keeps_real_eos_attended(self, tiny):
        _, processor = tiny
        assert processor.tokenizer.pad_token_id == processor.tokenizer.eos_token_id
        two_rounds = qwen2_base_prompt("Q1?", answer="A") + "USER: Q2? ASSISTANT:"
        batch = processor(
            text=[two_rounds, qwen2_base_prompt("Q?")], videos=[_video(2), _video(2)], padding_side="left"
        )
        ids, mask = batch["input_ids"][0], batch["attention_mask"][0]
        eos_positions = (ids == processor.tokenizer.eos_token_id).nonzero().flatten()
        assert len(eos_positions) == 1 and mask[eos_positions].all()
        assert batch["attention_mask"][1][0] == 0  # the shorter prompt is left-padded

    def test_chat_template_renders_the_qwen2_base_string(self, tiny):
        _, processor = tiny
        problem = "Which way does it move?\nA. left\nB. right"
        messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": grpo_question(problem)}]}]
        rendered = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert rendered == qwen2_base_prompt(grpo_question(problem))
        assert rendered.endswith(
            "USER: <image>\nWhich way does it move?\nA. left\nB. right Output the thinking process in <think> "
            "</think> and final answer (option) in <answer> </answer> tags. ASSISTANT:"
        )
        with_answer = messages + [{"role": "assistant", "content": "<answer>B</answer>"}]
        assert processor.apply_chat_template(with_answer, tokenize=False) == qwen2_base_prompt(
            grpo_question(problem), answer="<answer>B</answer>"
        )


class TestGeneration:
    def test_batched_left_padded_greedy_equals_one_at_a_time(self, tiny):
        model, processor = tiny
        questions = ["What colour is the ball?", "Which way does the red square move in the clip? A. left B. right"]
        prompts = [qwen2_base_prompt(q) for q in questions]
        videos = [_video(8, seed=1), _video(8, seed=2)]
        batch = processor(text=prompts, videos=videos, padding_side="left")
        assert batch["attention_mask"][0, 0] == 0  # padding really happened
        batched = model.generate(**batch, max_new_tokens=12, do_sample=False)
        prompt_len = batch["input_ids"].shape[1]
        for i in range(2):
            single = processor(text=[prompts[i]], videos=[videos[i]])
            alone = model.generate(**single, max_new_tokens=12, do_sample=False)
            assert batched[i, prompt_len:].tolist() == alone[0, single["input_ids"].shape[1] :].tolist()

    def test_cached_generation_matches_full_forward_argmax(self, tiny):
        model, processor = tiny
        batch = processor(text=[qwen2_base_prompt("How many dots?")], videos=[_video(8, seed=3)])
        output = model.generate(**batch, max_new_tokens=10, do_sample=False, use_cache=True)
        with torch.no_grad():
            logits = model(input_ids=output, pixel_values_videos=batch["pixel_values_videos"], use_cache=False).logits
        prompt_len = batch["input_ids"].shape[1]
        assert logits[0, prompt_len - 1 : -1].argmax(-1).tolist() == output[0, prompt_len:].tolist()

    def test_video_changes_the_output(self, tiny):
        model, processor = tiny
        prompt = [qwen2_base_prompt("What colour?")]
        with torch.no_grad():
            a = model(**processor(text=prompt, videos=[_video(8, seed=4)])).logits[0, -1]
            b = model(**processor(text=prompt, videos=[_video(8, seed=5)])).logits[0, -1]
        assert not torch.allclose(a, b)

    def test_videos_with_different_frame_counts_in_one_batch(self, tiny):
        model, processor = tiny
        prompts = [qwen2_base_prompt("Q?")] * 2
        batch = processor(text=prompts, videos=[_video(4), _video(7)], padding_side="left")
        assert isinstance(batch["pixel_values_videos"], list)
        assert model(**batch).logits.shape[:2] == batch["input_ids"].shape


class TestTraining:
    def test_gradients_reach_connector_and_llm_not_frozen_tower(self, tiny):
        model, processor = tiny
        model.train()
        model.model.vision_tower.requires_grad_(False)
        try:
            batch = processor(text=[qwen2_base_prompt("Q?", answer="A")], videos=[_video(8)])
            labels = batch["input_ids"].clone()
            labels[labels == model.config.image_token_id] = -100
            loss = model(**batch, labels=labels).loss
            loss.backward()
            grads = {n: p.grad for n, p in model.named_parameters()}
            assert all(g is None for n, g in grads.items() if ".vision_tower." in n)
            assert all(grads[n] is not None and grads[n].abs().sum() > 0 for n in grads if ".connector." in n)
            assert grads["model.language_model.layers.0.mlp.up_proj.weight"].abs().sum() > 0
        finally:
            model.zero_grad(set_to_none=True)
            model.model.vision_tower.requires_grad_(True)
            model.eval()

    def test_missing_image_token_id_gives_actionable_error(self, tiny):
        model, processor = tiny
        batch = processor(text=[qwen2_base_prompt("Q?")], videos=[_video(2)])
        saved, model.config.image_token_id = model.config.image_token_id, None
        try:
            with pytest.raises(ValueError, match="load_pretrained"):
                model(**batch)
        finally:
            model.config.image_token_id = saved


def test_config_json_of_tiny_model_names_no_local_path(tmp_path):
    build_tiny_model(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "tinyllava"
    assert str(tmp_path) not in json.dumps(config)


def test_phi_language_model_with_released_names(tmp_path):
    """Any causal LM config works as the language model; Phi's biased LM head keeps its released name."""
    from transformers import PhiConfig

    config = TinyLlavaVideoConfig(
        text_config=PhiConfig(
            vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2
        ),
        vision_config=SiglipVisionConfig(
            image_size=32,
            patch_size=8,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
        ),
        num_queries=8,
        group=2,
        resampler_heads=2,
        resampler_dim_head=8,
        image_token_id=99,
    )
    torch.manual_seed(0)
    model = TinyLlavaVideoForConditionalGeneration(config)
    input_ids = torch.tensor([[1, 2] + [99] * 8 + [3]])
    logits = model(input_ids=input_ids, pixel_values_videos=torch.randn(1, 2, 3, 32, 32)).logits
    assert logits.shape == (1, 11, 100)
    model.save_pretrained(tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        assert {"language_model.lm_head.weight", "language_model.lm_head.bias"} <= set(f.keys())
    assert torch.equal(AutoModelForCausalLM.from_pretrained(tmp_path).lm_head.bias, model.lm_head.bias)


def test_attention_is_sdpa_by_default_and_selectable(tmp_path):
    build_tiny_model(tmp_path)
    assert AutoModelForCausalLM.from_pretrained(tmp_path).config.text_config._attn_implementation == "sdpa"
    eager = AutoModelForCausalLM.from_pretrained(tmp_path, attn_implementation="eager")
    assert eager.config.text_config._attn_implementation == "eager"


def test_evaluation_prompts_are_the_originals():
    from r1video.model.templates import format_options, option_question, reason_question

    options = format_options(["run", "jump"])
    assert reason_question("What happens?", options) == (
        "What happens?\nOptions:\nA. run\nB. jump\nOutput the thinking process in <think> </think> and final "
        "answer (option) in <answer> </answer> tags."
    )
    assert option_question("What happens?", format_options(["run", "jump"], style="paren")) == (
        "What happens?\n(A) run\n(B) jump\nAnswer with the option's letter from the given choices directly."
    )
    assert qwen2_base_prompt("<image>\nQ?", answer="B").startswith(
        "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
        "detailed, and polite answers to the user's questions. USER: <image>\nQ? ASSISTANT: B<|endoftext|>"
    )


class TestVisionReuse:
    """Precomputed tower features + `video_index`: the tower and the connector run once per distinct video."""

    def _rows(self, processor, videos, index):
        prompts = [qwen2_base_prompt(f"Question {i}?") for i in range(len(index))]
        return processor(text=prompts, videos=[videos[i] for i in index], padding_side="left")

    def test_tower_sees_only_distinct_frames_and_connector_runs_per_distinct_video(self, tiny):
        model, processor = tiny
        videos, index = [_video(8, seed=10), _video(8, seed=11)], [0, 0, 1, 1, 0]
        batch = self._rows(processor, videos, index)
        tower_frames, connector_videos = [], []
        hooks = [
            model.model.vision_tower.register_forward_hook(lambda m, args, out: tower_frames.append(args[0].shape[0])),
            model.model.connector.register_forward_hook(
                lambda m, args, out: connector_videos.append(args[0].shape[0])
            ),
        ]
        try:
            with torch.no_grad():
                distinct = torch.stack([processor.preprocess_frames(v) for v in videos])
                features = model.model.get_video_tower_features(distinct)
                for _ in range(2):  # e.g. the old and the reference log-prob passes
                    model(
                        input_ids=batch["input_ids"],
                        attention_mask=batch["attention_mask"],
                        video_tower_features=features,
                        video_index=torch.tensor(index),
                    )
        finally:
            for hook in hooks:
                hook.remove()
        assert tower_frames == [16]  # 2 distinct videos × 8 frames, once
        assert connector_videos == [2, 2]  # once per distinct video per forward

    def test_loss_and_gradients_match_the_per_row_path(self, tiny):
        model, processor = tiny
        videos, index = [_video(8, seed=12), _video(8, seed=13)], [1, 0, 1, 1]
        batch = self._rows(processor, videos, index)
        labels = batch["input_ids"].masked_fill(batch["input_ids"] == model.config.image_token_id, -100)
        labels = labels.masked_fill(batch["attention_mask"] == 0, -100)

        def loss_and_grads(**video_inputs):
            model.zero_grad(set_to_none=True)
            loss = model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels, **video_inputs
            ).loss
            loss.backward()
            grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
            model.zero_grad(set_to_none=True)
            return loss.detach(), grads

        per_row_loss, per_row_grads = loss_and_grads(pixel_values_videos=batch["pixel_values_videos"])
        with torch.no_grad():
            features = model.model.get_video_tower_features(
                torch.stack([processor.preprocess_frames(v) for v in videos])
            )
        model.model.vision_tower.requires_grad_(False)
        try:
            reuse_loss, reuse_grads = loss_and_grads(video_tower_features=features, video_index=torch.tensor(index))
        finally:
            model.model.vision_tower.requires_grad_(True)
        torch.testing.assert_close(reuse_loss, per_row_loss, atol=1e-5, rtol=1e-5)
        for name, grad in reuse_grads.items():
            torch.testing.assert_close(grad, per_row_grads[name], atol=1e-5, rtol=1e-4, msg=name)
        assert any(".connector." in name for name in reuse_grads)

    def test_generation_from_precomputed_features_equals_from_pixels(self, tiny):
        model, processor = tiny
        video = _video(8, seed=14)
        batch = processor(text=[qwen2_base_prompt("What moves?")], videos=[video])
        from_pixels = model.generate(**batch, max_new_tokens=8, do_sample=False)
        features = model.model.get_video_tower_features(batch["pixel_values_videos"])
        from_features = model.generate(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            video_tower_features=features,
            video_index=torch.tensor([0]),
            max_new_tokens=8,
            do_sample=False,
        )
        assert from_features.tolist() == from_pixels.tolist()
