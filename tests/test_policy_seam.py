"""The policy-family seam (issue 24): outside `r1video/model/` and the TinyLLaVA-Video policy module, no code names a
TinyLLaVA-Video class or method; the registry finds families by `model_type`; a family without a vLLM route is refused
at trainer start-up.

The names checked are read from each module's syntax tree (imports, names, attributes, calls), like
`tests/test_layers.py` reads imports:

- imports from `r1video.model` other than `r1video.model.templates` (the question templates, which are data, not
  the family);
- any name or attribute starting with `TinyLlava` (`TinyLlavaVideoConfig`, `TinyLlavaVideoModel`,
  `TinyLlavaVideoForConditionalGeneration`, `TinyLlavaVideoPreTrainedModel`, `TinyLlavaVideoProcessor`, ...);
- the names and attributes in [`FAMILY_NAMES`] (TinyLLaVA-Video's methods, attributes and helpers);
- `tokenize_prompts` called with fewer than two arguments (the processor's `tokenize_prompts(texts)`; the policy's
  takes `(processor, texts, clips)`).
"""

import ast
from pathlib import Path

import pytest
import torch
from grpo_fixtures import tiny_grpo_config

from r1video.policies import UnknownFamilyError, families, load_policy, policy_for, register
from r1video.policies.registry import _FAMILIES
from r1video.policies.tinyllava_video import TinyLlavaVideoPolicy

ROOT = Path(__file__).resolve().parents[1]
EXEMPT = ("r1video/model/", "r1video/policies/tinyllava_video.py")
# Names of FAMILY_NAMES that another family's own transformers model also uses, allowed in that family's module only
# (LLaVA-OneVision's SigLIP encoder is transformers' `LlavaOnevisionModel.vision_tower`, SmolVLM's pixel shuffle +
# projection `SmolVLMModel.connector`).
OWN_NAMES = {"r1video/policies/llava_onevision.py": {"vision_tower"}, "r1video/policies/smolvlm.py": {"connector"}}
FAMILY_NAMES = {
    # model methods and attributes
    "get_video_tower_features",
    "video_tower_features",
    "embed_inputs",
    "vision_tower",
    "connector",
    "num_queries",
    # processor methods
    "preprocess_frames",
    "expand_placeholders",
    # r1video.model's loaders, builders and prompt format
    "load_pretrained",
    "load_checkpoint_weights",
    "released_key_renames",
    "build_tiny_model",
    "build_tiny_tokenizer",
    "tiny_config",
    "make_frame_processor",
    "preprocess_video_frames",
    "qwen2_base_prompt",
    "load_chat_template",
}


def family_names_used(path: Path) -> list[str]:
    """`line: what` for every TinyLLaVA-Video name the module at `path` uses.

    `connector` is also a keyword of the interface (`freeze(model, *, vision, connector, language_model)`): a family
    module reading its own `freeze` argument names nothing of TinyLLaVA-Video's.
    """
    found = []
    tree = ast.parse(path.read_text())
    freeze_arguments = {
        id(name)
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef) and function.name == "freeze"
        for name in ast.walk(function)
        if isinstance(name, ast.Name) and name.id in {a.arg for a in function.args.kwonlyargs}
    }
    for node in ast.walk(tree):
        names = []
        if id(node) in freeze_arguments:
            continue
        if isinstance(node, ast.Import):
            names = [("import " + a.name) for a in node.names if a.name.startswith("r1video.model")]
            names = [n for n in names if n != "import r1video.model.templates"]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("r1video.model") and node.module != "r1video.model.templates":
                names = [f"from {node.module} import"]
            names += [a.name for a in node.names if a.name.startswith("TinyLlava") or a.name in FAMILY_NAMES]
        elif isinstance(node, ast.Name):
            names = [node.id] if node.id.startswith("TinyLlava") or node.id in FAMILY_NAMES else []
        elif isinstance(node, ast.Attribute):
            names = [node.attr] if node.attr.startswith("TinyLlava") or node.attr in FAMILY_NAMES else []
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "tokenize_prompts" and len(node.args) + len(node.keywords) < 2:
                names = ["tokenize_prompts(texts) of the processor"]
        where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
        found += [f"{where}:{node.lineno}: {name}" for name in names]
    return sorted(found, key=lambda hit: int(hit.split(":")[1]))


def modules_outside_the_family():
    for package in ("r1video", "rewards"):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if not relative.startswith(EXEMPT):
                yield path


def test_no_module_outside_the_family_names_a_tinyllava_video_class_or_method():
    found = [
        hit
        for path in modules_outside_the_family()
        for hit in family_names_used(path)
        if hit.split(": ", 1)[1] not in OWN_NAMES.get(path.relative_to(ROOT).as_posix(), set())
    ]
    assert not found, "\n".join(found)


def test_the_check_sees_what_it_forbids(tmp_path):
    """The reader catches each kind of use (so an empty result above means something)."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from r1video.model import load_pretrained\n"
        "from r1video.model.modeling import TinyLlavaVideoModel\n"
        "def f(model, processor, policy):\n"
        "    model.model.get_video_tower_features([])\n"
        "    processor.tokenize_prompts(['x'])\n"
        "    policy.tokenize_prompts(processor, ['x'], [None])\n"
    )
    found = family_names_used(sample)
    assert sorted(hit.split(": ", 1)[1] for hit in found) == sorted(
        [
            "from r1video.model import",
            "load_pretrained",
            "from r1video.model.modeling import",
            "TinyLlavaVideoModel",
            "get_video_tower_features",
            "tokenize_prompts(texts) of the processor",
        ]
    )


def test_the_registry_finds_the_family_of_a_model_a_config_a_processor_and_a_folder(tmp_path):
    policy = TinyLlavaVideoPolicy()
    model, processor = policy.build_tiny(tmp_path / "tiny")
    assert families()["tinyllava"] == "tinyllava_video"
    for obj in (model, model.config, processor, "tinyllava"):
        assert isinstance(policy_for(obj), TinyLlavaVideoPolicy), obj
    found, loaded, loaded_processor = load_policy(str(tmp_path / "tiny"))
    assert isinstance(found, TinyLlavaVideoPolicy) and type(loaded_processor) is type(processor)
    assert all(torch.equal(a, b) for a, b in zip(loaded.parameters(), model.parameters(), strict=True))


def test_an_unknown_model_type_is_one_line_listing_the_families(tmp_path):
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "not_a_video_lm"}')
    with pytest.raises(UnknownFamilyError) as caught:
        load_policy(str(folder))
    message = str(caught.value)
    assert "\n" not in message and "'not_a_video_lm'" in message and "tinyllava (tinyllava_video)" in message


class _NoVLLMRoute(TinyLlavaVideoPolicy):
    """TinyLLaVA-Video as a family without a vLLM route (a real policy class, registered under its own type)."""

    name = "no_vllm_route"
    model_types = ("tinyllava_without_vllm",)
    vllm_route = None


def test_use_vllm_with_a_family_without_a_vllm_route_is_refused_at_start_up(tmp_path):
    from r1video.trainer import VideoGRPOTrainer
    from rewards import get_reward_funcs

    register(_NoVLLMRoute)
    try:
        model, processor = TinyLlavaVideoPolicy().build_tiny()
        args = tiny_grpo_config(tmp_path, use_vllm=True)
        with pytest.raises(NotImplementedError) as caught:
            VideoGRPOTrainer(
                model=model,
                reward_funcs=get_reward_funcs(["accuracy"]),
                args=args,
                processing_class=processor,
                policy=policy_for("tinyllava_without_vllm"),
            )
    finally:
        for model_type in _NoVLLMRoute.model_types:
            _FAMILIES.pop(model_type, None)
    message = str(caught.value)
    assert "\n" not in message and "no_vllm_route" in message and "use_vllm: false" in message
