"""Model families by `model_type`: which [`VideoPolicy`] a model, a config, a processor or a checkpoint belongs to.

Built-in families register when `r1video.policies` is imported; a plugin registers its own with [`register`].

    policy = policy_for(model)                       # a model, its config, a processor, or a model_type string
    policy, model, processor = load_policy("Zhang199/TinyLLaVA-Video-R1")
"""

import json
import os

from r1video.policies.base import VideoPolicy

_FAMILIES: dict[str, type[VideoPolicy]] = {}  # model_type -> policy class


class UnknownFamilyError(ValueError):
    """No registered family handles a model type."""


def register(policy_cls: type[VideoPolicy]) -> type[VideoPolicy]:
    """Register a policy class under each of its `model_types` (a class decorator). Re-registering replaces."""
    if not policy_cls.model_types:
        raise ValueError(f"{policy_cls.__name__} lists no model_types")
    for model_type in policy_cls.model_types:
        _FAMILIES[model_type] = policy_cls
    return policy_cls


def families() -> dict[str, str]:
    """`model_type -> family name` of every registered family."""
    return {model_type: cls.name for model_type, cls in sorted(_FAMILIES.items())}


def family_names() -> dict[str, str]:
    """`family name -> model_type` of every registered family (its first `model_type` in sorted order); the names
    `--policy NAME` takes (`VideoPolicy.name`: `tinyllava_video`, `qwen2_5_vl`, ...)."""
    names = {}
    for model_type, name in families().items():
        names.setdefault(name, model_type)
    return names


def policy_named(name: str) -> VideoPolicy:
    """The policy of the family called `name` (`VideoPolicy.name`).

    Raises:
        UnknownFamilyError: no registered family has that name (one line listing them).
    """
    names = family_names()
    if name not in names:
        raise UnknownFamilyError(f"no registered model family {name!r}; known: {', '.join(names)}")
    return _FAMILIES[names[name]]()


def _unknown(model_type, where: str) -> UnknownFamilyError:
    known = ", ".join(f"{t} ({name})" for t, name in families().items()) or "none"
    return UnknownFamilyError(f"{where}: no r1video policy for model_type {model_type!r}; known families: {known}")


def policy_for_model_type(model_type: str, where: str = "model") -> VideoPolicy:
    """The policy of a `model_type`.

    Raises:
        UnknownFamilyError: one line naming the type and listing the known families.
    """
    if model_type not in _FAMILIES:
        raise _unknown(model_type, where)
    return _FAMILIES[model_type]()


def policy_for(obj) -> VideoPolicy:
    """The policy of a model (wrapped ones included: DDP, DeepSpeed, PEFT), a config, a processor or a `model_type`.

    Raises:
        UnknownFamilyError: the object's family is not registered (one line, listing the known families).
        TypeError: `obj` is none of those.
    """
    if isinstance(obj, VideoPolicy):
        return obj
    if isinstance(obj, str):
        return policy_for_model_type(obj)
    for cls in type(obj).__mro__:  # a processor
        for policy_cls in dict.fromkeys(_FAMILIES.values()):
            if cls.__name__ in policy_cls.processor_class_names:
                return policy_cls()
    model_type = getattr(obj, "model_type", None)  # a config
    inner = obj
    while model_type is None and inner is not None:  # a model, perhaps inside DDP / DeepSpeed / PEFT wrappers
        model_type = getattr(getattr(inner, "config", None), "model_type", None)
        inner = getattr(inner, "module", None)
    if model_type is None:
        raise TypeError(f"cannot tell the model family of a {type(obj).__name__}: pass a model, config or processor")
    return policy_for_model_type(model_type, where=type(obj).__name__)


def model_type_of(name_or_path: str, *, revision: str | None = None, trust_remote_code: bool = False) -> str:
    """The `model_type` of a checkpoint, read from its `config.json`: in a local folder, or fetched from the Hub
    (`cached_file`, so that no config class and no remote code is needed to tell the family).

    Raises:
        ValueError: a local folder without `config.json`, or a `config.json` without `model_type`.
    """
    path = str(name_or_path)
    if os.path.isdir(path):
        config_file = os.path.join(path, "config.json")
        if not os.path.isfile(config_file):
            raise ValueError(f"{path}: no config.json, so the model family is unknown")
    else:
        from transformers.utils import cached_file

        config_file = cached_file(path, "config.json", revision=revision)
    with open(config_file) as f:
        model_type = json.load(f).get("model_type")
    if not model_type:
        raise ValueError(f"{path}: config.json has no model_type, so the model family is unknown")
    return model_type


def policy_of_checkpoint(name_or_path: str, *, revision=None, trust_remote_code: bool = False) -> VideoPolicy:
    """The policy for a checkpoint folder or Hub id, from its `model_type`."""
    model_type = model_type_of(name_or_path, revision=revision, trust_remote_code=trust_remote_code)
    return policy_for_model_type(model_type, where=str(name_or_path))


def load_policy(
    name_or_path: str,
    *,
    dtype="float32",
    attn_implementation: str | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
) -> tuple[VideoPolicy, object, object]:
    """`(policy, model, processor)` for a checkpoint folder or Hub id; the family comes from its `model_type`.

    Raises:
        UnknownFamilyError: the checkpoint's `model_type` has no registered family (one line).
    """
    policy = policy_of_checkpoint(name_or_path, revision=revision, trust_remote_code=trust_remote_code)
    model, processor = policy.load(
        name_or_path,
        dtype=dtype,
        attn_implementation=attn_implementation,
        revision=revision,
        trust_remote_code=trust_remote_code,
    )
    return policy, model, processor


def load_processor(name_or_path: str, *, revision: str | None = None, trust_remote_code: bool = False):
    """`(policy, processor)` for a checkpoint folder or Hub id, without loading the weights."""
    policy = policy_of_checkpoint(name_or_path, revision=revision, trust_remote_code=trust_remote_code)
    return policy, policy.load_processor(name_or_path, revision=revision, trust_remote_code=trust_remote_code)
