"""Model families behind one interface: how each takes video ([`VideoPolicy`], contract in `base.py`).

Importing this package registers the built-in families; `policy_for(model)` and `load_policy(path)` find a family by
its config's `model_type`.
"""

from r1video.policies import (  # noqa: F401  (registers the built-in families)
    llava_onevision,
    qwen2_5_vl,
    qwen3_5,
    qwen3_vl,
    smolvlm,
    tinyllava_video,
)
from r1video.policies.base import IGNORE_INDEX, Clip, ModelCardFacts, VideoPolicy
from r1video.policies.registry import (
    UnknownFamilyError,
    families,
    family_names,
    load_policy,
    load_processor,
    policy_for,
    policy_named,
    policy_of_checkpoint,
    register,
)

__all__ = [
    "IGNORE_INDEX",
    "Clip",
    "ModelCardFacts",
    "UnknownFamilyError",
    "VideoPolicy",
    "families",
    "family_names",
    "load_policy",
    "load_processor",
    "policy_for",
    "policy_named",
    "policy_of_checkpoint",
    "register",
]
