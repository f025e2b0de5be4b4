"""Finding rewards by name: the built-in registry, `"package.module:attr"`, a plugin file (`"path/to/file.py:attr"`, or
`"module:attr"` for a `module.py` in the working directory), and the `r1video.rewards` entry points.

A name resolves to either a reward function (it takes `completions` or `completion_ids`) or a factory (anything
else callable, classes included) that is called with the recipe's `reward_kwargs` and returns a reward function.
"""

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import entry_points
from typing import Any

ENTRY_POINT_GROUP = "r1video.rewards"

# Parameters a reward function receives from the trainer, never from `reward_kwargs`.
_TRAINER_ARGUMENTS = ("completions", "completion_ids", "prompts")

# name -> reward function or factory, or a "module:attr" string imported on first use.
_REGISTRY: dict[str, Callable | str] = {}


def register_reward(name: str, target: str | None = None) -> Callable:
    """Registers a reward function or a reward factory under `name`.

    Use it as a decorator, or with `target="package.module:attr"` to register something that is imported only when
    the name is resolved (this keeps heavy imports out of `import rewards`).

    Args:
        name (`str`):
            Name used in recipes (`reward_funcs: [name]`).
        target (`str`, *optional*):
            A `"package.module:attr"` to register instead of decorating.

    Returns:
        `Callable`: the decorator, which returns the decorated object unchanged (with `target`: `target` itself).

    Raises:
        `ValueError`: the name is already registered.

    Example:
    ```python
    >>> @register_reward("short_answer")
    ... def short_answer_reward(completions, **kwargs):
    ...     return [float(len(c) < 200) for c in completions]
    ```
    """

    def decorator(obj: Callable | str) -> Callable | str:
        if name in _REGISTRY:
            raise ValueError(f"A reward named {name!r} is already registered ({_describe(_REGISTRY[name])}).")
        _REGISTRY[name] = obj
        return obj

    if target is not None:
        return decorator(target)
    return decorator


def available_rewards() -> list[str]:
    """Returns the sorted names of the registered rewards and of the installed `r1video.rewards` entry points."""
    return sorted(set(_REGISTRY) | {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def resolve_reward(name: str, search_dirs: Iterable[str] | None = None) -> Callable:
    """Finds what `name` stands for, without calling it.

    Lookup order: a registered name, then `"package.module:attr"` (imported with `importlib`, no `sys.path`
    changes; a module that is not installed is looked for as a `.py` file in `search_dirs`), or
    `"path/to/file.py:attr"` (relative to the first of `search_dirs` that has it), then an entry point called `name`
    in the group `r1video.rewards` of any installed distribution.

    Args:
        name (`str`):
            A registered name, a `"package.module:attr"` path, a `"file.py:attr"` path or an entry-point name.
        search_dirs (`Iterable[str]`, *optional*):
            Folders a plugin file is looked for in, in order; defaults to the working directory.

    Returns:
        `Callable`: the reward function or reward factory.

    Raises:
        `ValueError`: nothing matches (the message lists the available names, or the files looked for), or the
            import fails.
    """
    if name in _REGISTRY:
        obj = _REGISTRY[name]
        return _import_attr(name, obj) if isinstance(obj, str) else obj
    if ":" in name:
        return _import_attr(name, name, search_dirs)
    matches = list(entry_points(group=ENTRY_POINT_GROUP, name=name))
    if len(matches) > 1:
        values = ", ".join(ep.value for ep in matches)
        raise ValueError(f"Reward {name!r} is declared by several installed entry points: {values}.")
    if matches:
        try:
            return matches[0].load()
        except Exception as error:
            raise ValueError(f"Reward {name!r}: cannot load entry point {matches[0].value!r}: {error}") from error
    raise ValueError(
        f"Unknown reward {name!r}. Available rewards: {', '.join(available_rewards())}. "
        "A plugin can also be given as 'package.module:attr', 'path/to/file.py:attr' or installed under the entry-point group "
        f"{ENTRY_POINT_GROUP!r}."
    )


def build_reward(
    name: str, kwargs: Mapping[str, Any] | None = None, search_dirs: Iterable[str] | None = None
) -> Callable:
    """Resolves `name` and binds its arguments, returning a reward function ready for the trainer.

    A factory is called with `kwargs`. A reward function with `kwargs` is wrapped in a [`BoundReward`] that passes
    them on every call; each key must then be a named parameter of the function.

    Args:
        name (`str`):
            As accepted by [`resolve_reward`].
        kwargs (`Mapping[str, Any]`, *optional*):
            The recipe's `reward_kwargs[name]`.
        search_dirs (`Iterable[str]`, *optional*):
            As in [`resolve_reward`].

    Returns:
        `Callable`: a reward function following TRL's contract; its `__name__` is the metric key.

    Raises:
        `ValueError`: the name is unknown, an argument does not fit the signature (the message names both the
            reward and the argument), the factory rejects the values, or the reward function takes no `**kwargs`
            (`GRPOTrainer` passes it `prompts`, `completion_ids`, its own extras and every dataset column).
    """
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise ValueError(f"reward_kwargs for {name!r} must be a mapping of argument names to values, got {kwargs!r}.")
    kwargs = dict(kwargs or {})
    obj = resolve_reward(name, search_dirs)
    if not callable(obj):
        raise ValueError(f"Reward {name!r} resolves to {obj!r}, which is not callable.")
    if is_reward_function(obj):
        _check_takes_trainer_keywords(name, obj)
        if not kwargs:
            return obj
        _check_bound_kwargs(name, obj, kwargs)
        return BoundReward(obj, kwargs)
    try:
        inspect.signature(obj).bind(**kwargs)
    except TypeError as error:
        raise ValueError(f"reward_kwargs for {name!r} do not fit {_describe(obj)}: {error}.") from error
    try:
        reward = obj(**kwargs)
    except (TypeError, ValueError) as error:
        raise ValueError(f"Reward {name!r}: {_describe(obj)} rejected reward_kwargs {kwargs}: {error}") from error
    if not callable(reward):
        raise ValueError(f"Reward {name!r}: {_describe(obj)} returned {reward!r}, which is not callable.")
    _check_takes_trainer_keywords(name, reward)
    return reward


def get_reward_funcs(
    names: Iterable[str],
    reward_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    search_dirs: Iterable[str] | None = None,
) -> list:
    """Builds the reward functions named in a recipe, checking everything before any model loads.

    Args:
        names (`Iterable[str]`):
            The recipe's `reward_funcs`, in order.
        reward_kwargs (`Mapping[str, Mapping[str, Any]]`, *optional*):
            The recipe's `reward_kwargs`: arguments per reward name.
        search_dirs (`Iterable[str]`, *optional*):
            Folders plugin files are looked for in (default: the working directory), as in [`resolve_reward`].

    Returns:
        `list[Callable]`: one reward function per name, in order.

    Raises:
        `ValueError`: a name is unknown or repeated, `reward_kwargs` has a key missing from `names`, arguments do
            not fit, or two rewards would log under the same metric name.

    Example:
    ```python
    >>> funcs = get_reward_funcs(["tinyllava_r1"], {"tinyllava_r1": {"max_think_chars": 600}})
    >>> [f.__name__ for f in funcs]
    ['tinyllava_r1_reward']
    ```
    """
    names = list(names)
    reward_kwargs = dict(reward_kwargs or {})
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"reward_funcs lists {', '.join(map(repr, repeated))} more than once.")
    extra = [key for key in reward_kwargs if key not in names]
    if extra:
        raise ValueError(f"reward_kwargs has entries for {extra}, which are not in reward_funcs {names}.")
    funcs = [build_reward(name, reward_kwargs.get(name), search_dirs) for name in names]
    metric_names = [reward_name(func) for func in funcs]
    for i, metric in enumerate(metric_names):
        if metric in metric_names[:i]:
            other = names[metric_names.index(metric)]
            raise ValueError(f"Rewards {other!r} and {names[i]!r} would both log as 'rewards/{metric}'.")
    return funcs


def is_reward_function(obj: Callable) -> bool:
    """Returns whether `obj` is a reward function (it takes `completions` or `completion_ids`) rather than a factory."""
    if isinstance(obj, type):
        return False
    try:
        parameters = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return False
    return "completions" in parameters or "completion_ids" in parameters


def reward_name(func: Callable) -> str:
    """Returns the metric name of a reward function: its `__name__`, else its class name (as TRL does)."""
    return getattr(func, "__name__", type(func).__name__)


class BoundReward:
    """A reward function with fixed keyword arguments from `reward_kwargs`; picklable, and named like the function.

    Args:
        func (`Callable`):
            The reward function.
        kwargs (`dict[str, Any]`):
            Arguments passed on every call, after the dataset columns.
    """

    def __init__(self, func: Callable, kwargs: dict[str, Any]):
        self.func = func
        self.kwargs = kwargs
        self.__name__ = reward_name(func)

    def __call__(self, completions: list, **columns) -> list[float | None]:
        return self.func(completions=completions, **{**columns, **self.kwargs})

    def __repr__(self) -> str:
        return f"BoundReward({self.__name__}, {self.kwargs})"


def _check_takes_trainer_keywords(name: str, func: Callable) -> None:
    # GRPOTrainer calls every reward with prompts, completion_ids, trainer_state, log_extra, log_metric and each
    # dataset column as keyword arguments: without **kwargs the first step would stop with a TypeError, after the
    # model has loaded.
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return
    if not any(parameter.kind is parameter.VAR_KEYWORD for parameter in parameters):
        raise ValueError(
            f"Reward {name!r}: {_describe(func)} takes no **kwargs, but GRPOTrainer passes every reward prompts, "
            "completion_ids, trainer_state, log_extra, log_metric and each dataset column by keyword; "
            "add **kwargs to its parameters."
        )


def _check_bound_kwargs(name: str, func: Callable, kwargs: dict[str, Any]) -> None:
    # A reward function's **kwargs swallows dataset columns, so only named parameters can be bound: a misspelt key
    # must fail here, not be ignored for a whole run.
    named = {
        parameter.name
        for parameter in inspect.signature(func).parameters.values()
        if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
        and parameter.name not in _TRAINER_ARGUMENTS
    }
    for key in kwargs:
        if key not in named:
            raise ValueError(
                f"reward_kwargs for {name!r} has {key!r}, which is not a parameter of {_describe(func)}; "
                f"it accepts {sorted(named) or 'none'}."
            )


def plugin_file(name: str, search_dirs: Iterable[str] | None = None) -> str | None:
    """The absolute path of the plugin file `name` stands for, or `None` when it names no file found in
    `search_dirs` (a registered name, an installed module, an entry point, or nothing).

    `"file.py:attr"` stands for that file; `"module:attr"` for `module.py` (`pkg.mod:attr`: `pkg/mod.py`) when no
    installed module of that name exists.
    """
    module_name, sep, _ = name.partition(":")
    if not sep or name in _REGISTRY:
        return None
    if not module_name.endswith(".py"):
        top = module_name.split(".")[0]
        if top in sys.modules or importlib.util.find_spec(top) is not None:
            return None
        module_name = module_name.replace(".", os.sep) + ".py"
    for folder in _search_dirs(search_dirs):
        path = os.path.join(folder, os.path.expanduser(module_name))
        if os.path.isfile(path):
            return os.path.abspath(path)
    return None


def _search_dirs(search_dirs: Iterable[str] | None) -> list[str]:
    return list(search_dirs) if search_dirs is not None else [os.getcwd()]


def _import_attr(name: str, path: str, search_dirs: Iterable[str] | None = None) -> Callable:
    module_name, _, attr_path = path.partition(":")
    if not module_name or not attr_path:
        raise ValueError(f"Reward {name!r}: {path!r} is not of the form 'package.module:attr' or 'file.py:attr'.")
    file = plugin_file(path, search_dirs)
    if file is not None:
        obj = _load_file(name, file)
    elif module_name.endswith(".py"):
        looked = ", ".join(_search_dirs(search_dirs))
        raise ValueError(f"Reward {name!r}: no file {module_name!r} (looked in {looked}).")
    else:
        try:
            obj = importlib.import_module(module_name)
        except ImportError as error:
            file_name = module_name.replace(".", os.sep) + ".py"
            looked = ", ".join(_search_dirs(search_dirs))
            raise ValueError(
                f"Reward {name!r}: cannot import module {module_name!r} ({error}); no {file_name} in {looked} either."
            ) from error
    for attr in attr_path.split("."):
        if not hasattr(obj, attr):
            raise ValueError(f"Reward {name!r}: module {module_name!r} has no attribute {attr_path!r}.")
        obj = getattr(obj, attr)
    return obj


def _load_file(name: str, path: str):
    # Python's recipe for importing a source file directly; the module is named after the file so that its functions
    # keep a module to be pickled by and `mod:attr` and `mod.py:attr` load it once.
    module_name = os.path.splitext(os.path.basename(path))[0]
    loaded = sys.modules.get(module_name)
    if loaded is not None:
        if os.path.abspath(getattr(loaded, "__file__", "") or "") == path:
            return loaded
        module_name = f"r1video_reward_plugin_{module_name}"  # never shadow an imported module (`rewards.py`)
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[module_name]
        raise ValueError(f"Reward {name!r}: {path} failed to import: {type(error).__name__}: {error}") from error
    return module


def _describe(obj: Callable | str) -> str:
    if isinstance(obj, str):
        return obj
    module = getattr(obj, "__module__", None) or type(obj).__module__
    qualname = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    try:
        return f"{module}.{qualname}{inspect.signature(obj)}"
    except (TypeError, ValueError):
        return f"{module}.{qualname}"
