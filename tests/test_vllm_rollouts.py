"""vLLM rollouts through prompt embeddings: everything around the engine call, on CPU.

The engine stand-in (`HFEngine`) plays vLLM's part with a stock `transformers.Qwen2ForCausalLM`: it takes weights by
name with vLLM's tied-embedding rule, samples from `{"prompt_embeds": tensor}` prompts and answers with
`RequestOutput`-shaped objects. The real engine runs only in the test marked `cuda`.
"""

import importlib.util
import json
import math
import os
import socket
from types import SimpleNamespace

import pytest
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType
from grpo_fixtures import FRAMES, tiny_grpo_config
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    PhiConfig,
    Qwen2ForCausalLM,
    SiglipVisionConfig,
)

import r1video.model  # noqa: F401  (registers TinyLLaVA-Video with the Auto classes)
from r1video.data.loaders import load_grpo_dataset
from r1video.data.synth import generate_synthetic_dataset
from r1video.model import (
    TinyLlavaVideoConfig,
    TinyLlavaVideoForConditionalGeneration,
    build_tiny_model,
    build_tiny_tokenizer,
    load_pretrained,
)
from r1video.model.templates import QUESTION_TEMPLATES, VIDEO_PLACEHOLDER
from r1video.policies import policy_for
from r1video.trainer import VideoGRPOTrainer
from r1video.trainer.grpo_config import VideoGRPOConfig
from r1video.trainer.vllm_rollouts import (
    FSDP_UNSUPPORTED,
    PromptEmbedsVLLMGeneration,
    build_prompt_embeds,
    completions_from_outputs,
    export_language_model,
    vllm_export_dir,
    vllm_weight_name,
)
from rewards import get_reward_funcs


@pytest.fixture(scope="module")
def tied():
    return build_tiny_model(seed=0)


@pytest.fixture(scope="module")
def untied():
    return build_tiny_model(seed=1, tie_word_embeddings=False, text_tie_word_embeddings=False)


def lm_names(model) -> list[str]:
    names = [vllm_weight_name(n, model.config.tie_word_embeddings) for n, _ in model.named_parameters()]
    return [n for n in names if n is not None]


# ---- export and names ---------------------------------------------------------------------------------------------


def test_export_writes_a_stock_causal_lm_directory(tied, tmp_path):
    model, processor = tied
    eos = [processor.tokenizer.eos_token_id]
    export_language_model(model, processor.tokenizer, tmp_path, eos)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == ["Qwen2ForCausalLM"]
    assert config["model_type"] == "qwen2"
    assert config["vocab_size"] == model.get_input_embeddings().weight.shape[0]
    assert config["hidden_size"] == model.config.text_config.hidden_size
    assert config["tie_word_embeddings"] is True
    assert config["dtype"] == "bfloat16"
    generation = json.loads((tmp_path / "generation_config.json").read_text())
    assert generation["eos_token_id"] == eos
    assert generation["pad_token_id"] == processor.tokenizer.pad_token_id
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    assert tokenizer.get_vocab() == processor.tokenizer.get_vocab()
    assert tokenizer.convert_tokens_to_ids(VIDEO_PLACEHOLDER) == processor.video_token_id
    assert not (tmp_path / "model.safetensors").exists()  # the engine starts from dummy weights


def test_export_vocab_size_follows_the_embedding_matrix_not_the_tokenizer(tmp_path):
    model, processor = build_tiny_model(seed=0)
    model.resize_token_embeddings(len(processor.tokenizer) + 10)
    export_language_model(model, processor.tokenizer, tmp_path, [processor.tokenizer.eos_token_id])
    assert json.loads((tmp_path / "config.json").read_text())["vocab_size"] == len(processor.tokenizer) + 10


@pytest.mark.parametrize("which", ["tied", "untied"])
def test_every_language_model_parameter_maps_once_to_a_stock_name(which, request):
    model, _ = request.getfixturevalue(which)
    tie = model.config.tie_word_embeddings
    assert tie is (which == "tied")
    mapped = lm_names(model)
    stock = Qwen2ForCausalLM(model.config.text_config)
    assert len(mapped) == len(set(mapped))
    assert set(mapped) == {name for name, _ in stock.named_parameters()}
    assert ("lm_head.weight" in mapped) is not tie
    lm_params = [n for n, _ in model.named_parameters() if n.startswith(("model.language_model.", "lm_head."))]
    assert len(mapped) == len(lm_params) - (1 if tie and "lm_head.weight" in lm_params else 0)
    for name, _ in model.named_parameters():
        if name.startswith(("model.vision_tower.", "model.connector.")):
            assert vllm_weight_name(name, tie) is None


def test_tied_head_is_never_sent_and_unknown_names_raise():
    assert vllm_weight_name("lm_head.weight", tie_word_embeddings=True) is None
    assert vllm_weight_name("lm_head.weight", tie_word_embeddings=False) == "lm_head.weight"
    assert vllm_weight_name("model.language_model.norm.weight", True) == "model.norm.weight"
    with pytest.raises(ValueError, match="not part of the language model"):
        vllm_weight_name("model.projector.weight", True)


@pytest.mark.parametrize("which", ["tied", "untied"])
def test_exported_weights_load_into_stock_qwen2_with_the_policys_logits(which, request, tmp_path):
    model, processor = request.getfixturevalue(which)
    export_language_model(
        model,
        processor.tokenizer,
        tmp_path,
        [processor.tokenizer.eos_token_id],
        dtype=torch.float32,
        save_weights=True,
    )
    stock = Qwen2ForCausalLM.from_pretrained(tmp_path, dtype=torch.float32).eval()
    inputs_embeds = torch.randn(2, 9, model.config.text_config.hidden_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(inputs_embeds=inputs_embeds).logits
        got = stock(inputs_embeds=inputs_embeds).logits
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_any_causal_lm_exports_phi_with_its_biased_head(tmp_path):
    tokenizer = build_tiny_tokenizer()
    config = TinyLlavaVideoConfig(
        text_config=PhiConfig(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2
        ),
        vision_config=SiglipVisionConfig(
            image_size=32,
            patch_size=8,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
        ),
        num_queries=8,
        group=2,
        resampler_heads=2,
        resampler_dim_head=8,
        image_token_id=1,
    )
    torch.manual_seed(0)
    model = TinyLlavaVideoForConditionalGeneration(config).eval()
    export_language_model(model, tokenizer, tmp_path, [tokenizer.eos_token_id], dtype=torch.float32, save_weights=True)
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == ["PhiForCausalLM"]
    stock = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32).eval()
    assert set(lm_names(model)) == {name for name, _ in stock.named_parameters()}
    inputs_embeds = torch.randn(1, 5, 32)
    with torch.no_grad():
        torch.testing.assert_close(
            stock(inputs_embeds=inputs_embeds).logits, model(inputs_embeds=inputs_embeds).logits
        )


# ---- prompt embeddings --------------------------------------------------------------------------------------------


def test_prompt_embeds_one_tensor_per_distinct_prompt_equal_to_embed_inputs(tied):
    model, processor = tied
    torch.manual_seed(0)
    size = model.config.vision_config.image_size
    pixels = [torch.randn(FRAMES, 3, size, size) for _ in range(2)]
    with torch.no_grad():
        tower = model.model.get_video_tower_features(pixels)

    def video_inputs(rows, input_ids=None):  # as VideoGRPOTrainer._video_inputs_fn with reuse_vision
        rows = rows[rows >= 0]
        if rows.numel() == 0:
            return {}
        used, remapped = torch.unique(rows, return_inverse=True)
        return {"video_tower_features": [tower[i] for i in used.tolist()], "video_index": remapped}

    video_prompt = processor.tokenize_prompts([f"USER: {VIDEO_PLACEHOLDER} what moves? ASSISTANT:"])[0]
    other_prompt = processor.tokenize_prompts([f"USER: {VIDEO_PLACEHOLDER} which colour is the ball? ASSISTANT:"])[0]
    text_prompt = processor.tokenize_prompts(["USER: count to three ASSISTANT:"])[0]
    prompt_ids = [video_prompt, video_prompt, other_prompt, other_prompt, video_prompt, text_prompt, text_prompt]
    row_videos = [0, 0, 1, 1, 1, -1, -1]
    embeds = build_prompt_embeds(
        policy_for(model),
        model,
        prompt_ids,
        row_videos,
        video_inputs,
        processor.tokenizer.pad_token_id,
        torch.bfloat16,
    )

    assert len(embeds) == len(prompt_ids)
    assert embeds[0] is embeds[1] and embeds[2] is embeds[3] and embeds[5] is embeds[6]
    assert len({id(e) for e in embeds}) == 4  # same ids with another video is another prompt
    hidden = model.config.text_config.hidden_size
    for row, tensor in enumerate(embeds):
        assert tensor.shape == (len(prompt_ids[row]), hidden)
        assert tensor.dtype == torch.bfloat16 and tensor.device.type == "cpu" and not tensor.requires_grad
        assert tensor.is_contiguous() and tensor.untyped_storage().nbytes() == tensor.numel() * 2  # owns its bytes
        ids = torch.tensor([prompt_ids[row]])
        video = row_videos[row]
        kwargs = {} if video < 0 else {"video_tower_features": [tower[video]], "video_index": torch.tensor([0])}
        with torch.no_grad():
            expected = model.model.embed_inputs(ids, **kwargs)[0].to(torch.bfloat16)
        torch.testing.assert_close(tensor, expected, rtol=0, atol=0)
    assert not torch.equal(embeds[0], embeds[4])  # video 0 vs video 1 over the same ids


# ---- outputs ------------------------------------------------------------------------------------------------------


def request_output(prompt_len, *completions):
    """A vLLM `RequestOutput` as the engine returns it for a prompt-embeds request: `(token_ids, logprobs)` pairs."""
    outputs = []
    for token_ids, logprobs in completions:
        entries = None
        if logprobs is not None:
            entries = [{t: SimpleNamespace(logprob=lp, rank=1)} for t, lp in zip(token_ids, logprobs, strict=True)]
        outputs.append(SimpleNamespace(token_ids=token_ids, logprobs=entries))
    return SimpleNamespace(prompt_token_ids=[0] * prompt_len, outputs=outputs)


def test_outputs_map_to_completion_ids_and_sampled_logprobs_cut_after_eos():
    eos = 9
    outputs = [
        request_output(5, ([4, 5, eos], [-0.1, -0.2, -0.3])),
        request_output(5, ([6, eos, 7, eos], [-1.0, -2.0, -3.0, -4.0])),  # a stop setting let it run on
        request_output(7, ([1, 2, 3], [-0.5, float("nan"), -0.7])),  # no EOS: truncated at max_tokens
    ]
    completion_ids, logprobs = completions_from_outputs(outputs, [eos, 10])
    assert completion_ids == [[4, 5, eos], [6, eos], [1, 2, 3]]
    assert logprobs == [[-0.1, -0.2, -0.3], [-1.0, -2.0], [-0.5, None, -0.7]]


def test_outputs_several_completions_per_prompt_and_missing_logprobs():
    outputs = [request_output(3, ([1, 2], None), ([3], None))]
    assert completions_from_outputs(outputs, [2]) == ([[1, 2], [3]], None)


# ---- engine seams -------------------------------------------------------------------------------------------------


class HFEngine:
    """vLLM's part, played by a stock `Qwen2ForCausalLM` built from the exported directory's config, as vLLM builds
    its model: `load_weights` by HF name, `generate` from embeds, vLLM's check of stop strings."""

    def __init__(self, model_dir, seed=0):
        self.model_dir = model_dir
        config = AutoConfig.from_pretrained(model_dir)
        self.model = Qwen2ForCausalLM(config).float().eval()
        self.tied = config.tie_word_embeddings
        self.generator = torch.Generator().manual_seed(seed)
        self.loaded, self.resets, self.requests = [], 0, []
        runner = SimpleNamespace(model=SimpleNamespace(load_weights=self.load_weights))
        self.llm_engine = SimpleNamespace(
            model_executor=SimpleNamespace(driver_worker=SimpleNamespace(model_runner=runner))
        )

    def load_weights(self, weights):
        names = [name for name, _ in weights]
        if self.tied and "lm_head.weight" in names and "model.embed_tokens.weight" not in names:
            raise ValueError("'lm_head.weight' was skipped because it is tied to 'model.embed_tokens.weight'")
        for name, tensor in weights:
            self.model.get_parameter(name).data.copy_(tensor)  # unknown names raise, as in vLLM
            self.loaded.append(name)

    def reset_prefix_cache(self):
        self.resets += 1

    @torch.no_grad()
    def generate(self, prompts, sampling_params, use_tqdm):
        params = sampling_params
        if params.get("stop") and not params.get("detokenize", True):
            # vllm 0.30 SamplingParams._verify_args (vllm/sampling_params.py)
            raise ValueError(
                "stop strings are only supported when detokenize is True. Set detokenize=True to use stop."
            )
        self.requests.append((prompts, sampling_params))
        bias = torch.zeros(self.model.config.vocab_size)
        for token, value in (params.get("logit_bias") or {}).items():
            bias[token] = value
        eos = set(self.eos_token_ids)
        results = []
        for prompt in prompts:
            embeds = prompt["prompt_embeds"].to(torch.float32)[None]
            tokens, logprobs = [], []
            for _ in range(params["max_tokens"]):
                logits = self.model(inputs_embeds=embeds).logits[0, -1] + bias
                logp = torch.log_softmax(logits / params["temperature"], dim=-1)  # processed log-probs
                token = int(torch.multinomial(logp.exp(), 1, generator=self.generator))
                tokens.append(token)
                logprobs.append(float(logp[token]))
                if token in eos:
                    break
                embeds = torch.cat([embeds, self.model.get_input_embeddings()(torch.tensor([[token]]))], dim=1)
            results.append(request_output(len(prompt["prompt_embeds"]), (tokens, logprobs)))
        return results


class CPUEmbedsGeneration(PromptEmbedsVLLMGeneration):
    """The real class with `HFEngine` as its engine (fp32) and the sampling parameters left as a dict."""

    def _make_llm(self, lm_dir):
        llm = HFEngine(lm_dir)
        llm.eos_token_ids = self.eos_token_ids
        return llm

    def _sampling_params(self):
        return self.sampling_kwargs()


def make_engine(model, processor, export_dir, **kwargs):
    settings = dict(
        export_dir=export_dir,
        model=model,
        accelerator=Accelerator(cpu=True),
        processing_class=processor,
        eos_token_ids=[processor.tokenizer.eos_token_id],
        banned_token_ids=[processor.video_token_id],
        dtype=torch.float32,
    )
    settings.update(kwargs)
    return CPUEmbedsGeneration(**settings)


@pytest.mark.parametrize("which", ["tied", "untied"])
def test_weight_sync_sends_the_language_model_under_stock_names(which, request, tmp_path):
    model, processor = request.getfixturevalue(which)
    engine = make_engine(model, processor, tmp_path)
    engine.sync_weights()
    assert engine.llm.loaded == lm_names(model)
    assert engine.llm.resets == 1
    inputs_embeds = torch.randn(1, 7, model.config.text_config.hidden_size)
    with torch.no_grad():
        torch.testing.assert_close(
            engine.llm.model(inputs_embeds=inputs_embeds).logits, model(inputs_embeds=inputs_embeds).logits
        )


def test_sampling_kwargs_follow_trls_mapping(tied, tmp_path):
    model, processor = tied
    engine = make_engine(
        model,
        processor,
        tmp_path,
        temperature=0.7,
        top_p=0.9,
        top_k=20,
        min_p=None,
        repetition_penalty=1.05,
        max_completion_length=33,
    )
    video = processor.video_token_id
    assert engine.sampling_kwargs() == {
        "n": 1,
        "repetition_penalty": 1.05,
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 20,
        "min_p": 0.0,
        "max_tokens": 33,
        "logprobs": 0,
        "detokenize": False,
        "logit_bias": {video: -100.0},
    }
    engine = make_engine(
        model,
        processor,
        tmp_path,
        generation_kwargs={"seed": 3, "temperature": 1.2, "logit_bias": {5: 2.0}},
        structured_outputs_regex="<answer>.*</answer>",
    )
    kwargs = engine.sampling_kwargs()
    assert kwargs["seed"] == 3 and kwargs["temperature"] == 1.2  # generation_kwargs win, as in TRL
    assert kwargs["logit_bias"] == {5: 2.0, video: -100.0}  # the placeholder stays banned
    assert kwargs["structured_outputs"] == {"regex": "<answer>.*</answer>"}


def test_llm_kwargs_keep_trls_colocate_settings_on_the_exported_directory(tied, tmp_path):
    model, processor = tied
    engine = make_engine(model, processor, tmp_path, dtype=torch.bfloat16, max_num_seqs=8, gpu_memory_utilization=0.4)
    kwargs = engine._llm_kwargs("/tmp/lm")
    assert kwargs["model"] == "/tmp/lm"
    assert kwargs["enable_prompt_embeds"] is True
    assert kwargs["load_format"] == "dummy"
    assert kwargs["dtype"] == "bfloat16"
    assert kwargs["distributed_executor_backend"] == "external_launcher"
    assert kwargs["logprobs_mode"] == "processed_logprobs"
    assert kwargs["max_num_batched_tokens"] == 4096
    assert kwargs["max_num_seqs"] == 8 and kwargs["gpu_memory_utilization"] == 0.4
    assert kwargs["seed"] == 0


def test_generate_embeds_rejects_a_wrong_width(tied, tmp_path):
    model, processor = tied
    engine = make_engine(model, processor, tmp_path)
    with pytest.raises(ValueError, match="prompt embeddings must be"):
        engine.generate_embeds([torch.zeros(5, model.config.text_config.hidden_size + 1)])


def video_prompt_embeds(model, processor, rows=2):
    """`rows` copies of one text prompt's embeddings, as the trainer hands them to the engine."""
    ids = processor.tokenize_prompts(["USER: count to three ASSISTANT:"])[0]
    return build_prompt_embeds(
        policy_for(model),
        model,
        [ids] * rows,
        [-1] * rows,
        lambda videos, input_ids: {},
        processor.tokenizer.pad_token_id,
        torch.float32,
    )


@pytest.mark.parametrize("stop", [["</answer>"], "</answer>"])
def test_stop_strings_reach_the_engine_with_detokenization_on(tied, tmp_path, stop):
    model, processor = tied
    engine = make_engine(model, processor, tmp_path, generation_kwargs={"stop": stop}, max_completion_length=3)
    engine.sync_weights()
    completion_ids, _ = engine.generate_embeds(video_prompt_embeds(model, processor))
    assert len(completion_ids) == 2
    ((_, params),) = engine.llm.requests
    assert params["stop"] == stop and params["detokenize"] is True
    # Without stop strings the engine still skips detokenization (the trainer decodes the ids itself).
    assert make_engine(model, processor, tmp_path).sampling_kwargs()["detokenize"] is False


def test_stop_strings_with_detokenize_off_are_refused_naming_both_keys(tied, tmp_path):
    model, processor = tied
    engine = make_engine(model, processor, tmp_path, generation_kwargs={"stop": ["</answer>"], "detokenize": False})
    with pytest.raises(ValueError, match=r"stop=\['</answer>'\] and detokenize=False.*stop_token_ids"):
        engine.generate_embeds(video_prompt_embeds(model, processor))
    assert engine.llm.requests == []


def test_fsdp_is_refused_before_the_engine_is_built(tied, tmp_path):
    # accelerate selects FSDP only on accelerators, so no CPU Accelerator reports it: a stand-in that reports FSDP
    # (the one attribute the check reads) shows the refusal comes first, before anything is exported or built.
    model, processor = tied
    with pytest.raises(NotImplementedError) as error:
        make_engine(model, processor, tmp_path, accelerator=SimpleNamespace(distributed_type=DistributedType.FSDP))
    assert str(error.value) == FSDP_UNSUPPORTED and "reuse_vision" in FSDP_UNSUPPORTED
    assert not any(tmp_path.iterdir())


def test_export_goes_to_the_same_directory_on_every_start(tied, tmp_path):
    model, processor = tied
    export_dir = vllm_export_dir(tmp_path / "run", process_index=1)
    assert export_dir == str(tmp_path / "run" / "vllm_lm" / "process-1")
    first = make_engine(model, processor, export_dir)
    second = make_engine(model, processor, export_dir)  # a restart of the same run
    assert first.llm.model_dir == second.llm.model_dir == export_dir
    assert json.loads((tmp_path / "run/vllm_lm/process-1/config.json").read_text())["architectures"] == [
        "Qwen2ForCausalLM"
    ]
    assert vllm_export_dir(tmp_path / "run", process_index=0) != export_dir  # ranks never share files


# ---- the PEFT + tensor-parallel barrier (trl#3671), two real processes over gloo ----------------------------------


def _tp_worker(rank, world_size, port, export_root, results):
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1", MASTER_PORT=port
    )
    from peft import LoraConfig, get_peft_model

    accelerator = Accelerator(cpu=True)  # initialises the gloo default group
    model, processor = build_tiny_model(seed=0)
    policy = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"]))
    calls = []
    real_barrier = torch.distributed.barrier

    def recording_barrier(*args, **kwargs):  # records, then runs the real barrier
        calls.append(("barrier", kwargs.get("device_ids")))
        return real_barrier(*args, **kwargs)

    torch.distributed.barrier = recording_barrier
    engine = make_engine(
        policy,
        processor,
        vllm_export_dir(export_root, rank),
        accelerator=accelerator,
        tensor_parallel_size=world_size,
        max_completion_length=2,
    )
    calls.clear()  # _init_vllm's wait_for_everyone
    engine.llm.requests = _Recorder(engine.llm.requests, calls)
    completion_ids, _ = engine.generate_embeds(video_prompt_embeds(model.eval(), processor, rows=rank + 1))
    torch.distributed.barrier = real_barrier
    results.put((rank, calls, len(completion_ids)))


class _Recorder(list):
    """The engine's request list, noting in `calls` when a request arrives."""

    def __init__(self, items, calls):
        super().__init__(items)
        self.calls = calls

    def append(self, item):
        self.calls.append(("generate", len(item[0])))
        super().append(item)


@pytest.mark.slow  # two spawned processes import torch, transformers and peft: about a minute on 2 busy cores
def test_peft_with_tensor_parallelism_waits_at_a_barrier_before_generating(tmp_path):
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    context = mp.get_context("spawn")
    results = context.Queue()
    mp.start_processes(_tp_worker, args=(2, port, str(tmp_path), results), nprocs=2, start_method="spawn")
    by_rank = dict((rank, (calls, count)) for rank, calls, count in (results.get(timeout=5) for _ in range(2)))
    for rank, (calls, count) in by_rank.items():
        # The barrier on the default group, with this rank's device, then vLLM's call on both ranks' prompts (1 + 2).
        assert calls == [("barrier", [rank]), ("generate", 3)]
        assert count == rank + 1  # each rank keeps its own rows (the ranks hold different numbers)


# ---- trainer wiring -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    dataset = generate_synthetic_dataset(root, n=4, n_test=2, n_coldstart=2, size=32, beats=8, frames_per_beat=1)
    return load_grpo_dataset(dataset.grpo_train, dataset.root, question_template=QUESTION_TEMPLATES["r1"])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    build_tiny_model(out)
    return str(out)


def grpo_args(tmp_path, **overrides) -> VideoGRPOConfig:
    return tiny_grpo_config(tmp_path, **{"beta": 0.0, "use_vllm": True, **overrides})


def make_trainer(model_dir, dataset, args, trainer_class=VideoGRPOTrainer):
    model, processor = load_pretrained(model_dir)
    return trainer_class(
        model=model,
        reward_funcs=get_reward_funcs(["tinyllava_r1"])
        + [lambda completions, **kw: [len(str(c)) % 7.0 for c in completions]],
        args=args,
        train_dataset=dataset,
        processing_class=processor,
    )


class HFEngineTrainer(VideoGRPOTrainer):
    """The trainer with its engine configured from its args by `from_trainer`, `HFEngine` inside, fp32."""

    def _make_vllm_generation(self):
        engine = CPUEmbedsGeneration.from_trainer(self)
        engine.dtype = torch.float32  # from_trainer picks bf16 (CUDA); this engine compares in fp32
        return engine


def test_use_vllm_trains_a_step_through_prompt_embeds(model_dir, data, tmp_path):
    args = grpo_args(tmp_path)
    trainer = make_trainer(model_dir, data, args, trainer_class=HFEngineTrainer)
    engine = trainer.vllm_generation
    assert isinstance(engine, CPUEmbedsGeneration)
    assert trainer.use_vllm and trainer.args.use_vllm
    assert trainer.args is not args and args.use_vllm  # TRL saw a copy with use_vllm off; the caller's is untouched
    assert engine.llm.model_dir == os.path.join(args.output_dir, "vllm_lm", "process-0")  # stable: vLLM's cache key
    trainer.train()

    ((prompts, params),) = engine.llm.requests
    assert len(prompts) == trainer.args.per_device_train_batch_size
    num_generations = trainer.args.num_generations
    embeds = [p["prompt_embeds"] for p in prompts]
    for start in range(0, len(embeds), num_generations):
        assert all(e is embeds[start] for e in embeds[start : start + num_generations])
    assert params["n"] == 1 and params["max_tokens"] == trainer.args.max_completion_length
    # Synced once before the first generation, with the language model only.
    assert engine.llm.resets == 1
    assert engine.llm.loaded == lm_names(trainer.accelerator.unwrap_model(trainer.model))
    logged = trainer.state.log_history[0]
    # vLLM's log-probs reached TRL's importance-sampling correction, and agree with the trainer's own.
    assert logged["sampling/sampling_logp_difference/max"] < 0.005  # the banned placeholder's mass, ~1/vocab
    assert math.isclose(logged["sampling/importance_sampling_ratio/mean"], 1.0, abs_tol=0.02)


def test_use_vllm_does_not_build_trls_engine(model_dir, data, tmp_path):
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("checks the error raised where vllm is absent")
    # TRL's own engine would fail with TRL's "pip install trl[vllm]" message; this is ours, from our engine class.
    with pytest.raises(ImportError, match=r"pip install -e '\.\[vllm\]'"):
        make_trainer(model_dir, data, grpo_args(tmp_path))


def test_server_mode_raises_before_building_anything(model_dir, data, tmp_path):
    with pytest.raises(NotImplementedError, match="prompt_embeds"):
        make_trainer(model_dir, data, grpo_args(tmp_path, vllm_mode="server"))


# ---- the real engine ----------------------------------------------------------------------------------------------


@pytest.fixture
def gpu_model_dir(tmp_path):
    # Head size 64: the tiny default (16) is below what some vLLM attention backends take.
    build_tiny_model(
        tmp_path / "model",
        text_hidden_size=128,
        text_num_attention_heads=2,
        text_num_key_value_heads=1,
        text_intermediate_size=256,
    )
    return str(tmp_path / "model")


@pytest.mark.cuda
@pytest.mark.skipif(
    not torch.cuda.is_available() or importlib.util.find_spec("vllm") is None, reason="needs CUDA and vllm"
)
def test_vllm_engine_trains_a_step_from_prompt_embeds(gpu_model_dir, data, tmp_path):
    """End to end on a GPU: export, engine on the exported directory, sync, one GRPO step with vLLM rollouts."""
    args = grpo_args(tmp_path, use_cpu=False, bf16=True, vllm_gpu_memory_utilization=0.2, vllm_max_model_length=1024)
    trainer = make_trainer(gpu_model_dir, data, args)
    engine = trainer.vllm_generation
    assert type(engine) is PromptEmbedsVLLMGeneration
    assert engine.llm.llm_engine.model_config.enable_prompt_embeds
    trainer.train()
    logged = trainer.state.log_history[0]
    assert logged["completions/mean_length"] > 0
    # A bf16 engine against the trainer's forward: close, not equal.
    assert logged["sampling/sampling_logp_difference/mean"] < 0.1
    assert 0.8 < logged["sampling/importance_sampling_ratio/mean"] < 1.2
