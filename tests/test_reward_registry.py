"""Finding rewards by name (registry, "module:attr", entry points), binding reward_kwargs, and calling them safely."""

import math
import pickle
import sys
import textwrap

import pytest

import rewards
from rewards import (
    RewardError,
    SafeReward,
    available_rewards,
    call_reward,
    get_reward_funcs,
    register_reward,
    registry,
    resolve_reward,
)

# Every built-in name, the arguments it needs, and the metric name TRL will log it under.
BUILT_IN_NAMES = {
    "format": ({}, "format_reward"),
    "accuracy": ({}, "accuracy_reward"),
    "think_length": ({}, "think_length_reward"),
    "tinyllava_r1": ({}, "tinyllava_r1_reward"),
    "soft_overlong_punishment": (
        {"max_completion_len": 10, "soft_punish_cache": 4},
        "soft_overlong_punishment_reward",
    ),
    "repetition_penalty": ({}, "repetition_penalty_reward"),
}

PLUGIN_SOURCE = """
def length_reward(completions, min_chars=10, **kwargs):
    return [float(len(c) >= min_chars) for c in completions]


class KeywordReward:
    __name__ = "keyword_reward"

    def __init__(self, keyword):
        self.keyword = keyword

    def __call__(self, completions, **kwargs):
        return [float(self.keyword in c) for c in completions]


def get_keyword_reward(keyword: str):
    if not keyword:
        raise ValueError("keyword must not be empty")
    return KeywordReward(keyword)


def not_a_reward():
    return 42
"""


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch, request):
    """A directory on sys.path holding a plugin module whose name is unique to the test."""
    module = "plugin_" + request.node.name.replace("[", "_").replace("]", "").replace("-", "_")
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(PLUGIN_SOURCE))
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path, module


@pytest.fixture
def scratch_registry(monkeypatch):
    """Lets a test register names without leaking them into other tests."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_every_built_in_is_available_and_builds_with_a_stable_metric_name():
    assert set(BUILT_IN_NAMES) <= set(available_rewards())
    names = list(BUILT_IN_NAMES)
    funcs = get_reward_funcs(names, {name: kwargs for name, (kwargs, _) in BUILT_IN_NAMES.items() if kwargs})
    assert [func.__name__ for func in funcs] == [metric for _, metric in BUILT_IN_NAMES.values()]


def test_trl_rewards_are_trl_own_functions():
    overlong, repetition = get_reward_funcs(
        ["soft_overlong_punishment", "repetition_penalty"],
        {"soft_overlong_punishment": {"max_completion_len": 10, "soft_punish_cache": 4}},
    )
    assert type(overlong).__module__ == type(repetition).__module__ == "trl.rewards.other_rewards"
    ids = [[1] * 5, [1] * 8, [1] * 12]
    assert call_reward(overlong, ["a"] * 3, completion_ids=ids) == [0.0, -0.5, -1.0]
    assert call_reward(repetition, ["a", "b"], completion_ids=[[1, 2, 3, 4], [5] * 6]) == [0.0, -0.75]


def test_unknown_name_lists_what_exists():
    with pytest.raises(ValueError, match="Unknown reward 'acuracy'") as error:
        get_reward_funcs(["acuracy"])
    for name in BUILT_IN_NAMES:
        assert name in str(error.value).split("Available rewards: ")[1]
    assert "package.module:attr" in str(error.value)


def test_duplicate_registration_raises(scratch_registry):
    with pytest.raises(ValueError, match="'format' is already registered"):
        register_reward("format")(lambda completions, **kwargs: [0.0] * len(completions))
    assert resolve_reward("format") is rewards.format_reward


def test_registered_plugin_is_found_by_name(scratch_registry):
    @register_reward("short_answer")
    def short_answer_reward(completions, **kwargs):
        return [float(len(c) < 5) for c in completions]

    (func,) = get_reward_funcs(["short_answer"])
    assert func(["abc", "abcdefgh"]) == [1.0, 0.0]


class TestRewardKwargs:
    def test_factory_arguments_are_passed(self):
        (func,) = get_reward_funcs(["tinyllava_r1"], {"tinyllava_r1": {"max_think_chars": 100}})
        assert func(["<think>" + "x" * 50 + "</think><answer>A</answer>"], solution=["A"]) == [1.75]

    def test_unknown_argument_names_reward_and_key(self):
        with pytest.raises(ValueError, match="'tinyllava_r1'.*max_think_char'"):
            get_reward_funcs(["tinyllava_r1"], {"tinyllava_r1": {"max_think_char": 100}})

    def test_missing_required_argument_names_reward_and_key(self):
        with pytest.raises(ValueError, match="'soft_overlong_punishment'.*max_completion_len"):
            get_reward_funcs(["soft_overlong_punishment"])

    def test_bad_value_names_the_reward(self):
        with pytest.raises(ValueError, match="'think_length'.*max_chars must be positive"):
            get_reward_funcs(["think_length"], {"think_length": {"max_chars": 0}})

    def test_plain_function_rejects_keys_it_does_not_name(self):
        # format_reward has **kwargs for dataset columns; a misspelt key must not vanish into it.
        with pytest.raises(ValueError, match="'format' has 'strict'"):
            get_reward_funcs(["format"], {"format": {"strict": True}})

    def test_kwargs_for_a_reward_not_in_the_list(self):
        with pytest.raises(ValueError, match=r"entries for \['accuracy'\]"):
            get_reward_funcs(["format"], {"accuracy": {"first_char": True}})

    def test_kwargs_must_be_a_mapping(self):
        with pytest.raises(ValueError, match="reward_kwargs for 'accuracy' must be a mapping"):
            get_reward_funcs(["accuracy"], {"accuracy": ["first_char"]})

    def test_repeated_name(self):
        with pytest.raises(ValueError, match="'format' more than once"):
            get_reward_funcs(["format", "accuracy", "format"])


class TestModuleAttr:
    def test_function_and_factory(self, plugin_dir):
        _, module = plugin_dir
        length, keyword = get_reward_funcs(
            [f"{module}:length_reward", f"{module}:get_keyword_reward"],
            {f"{module}:get_keyword_reward": {"keyword": "cup"}},
        )
        assert length.__name__ == "length_reward" and keyword.__name__ == "keyword_reward"
        assert length(["short", "long enough text"], solution=["A", "B"]) == [0.0, 1.0]
        assert keyword(["the cup", "the ball"]) == [1.0, 0.0]

    def test_arguments_bound_to_a_plain_function(self, plugin_dir):
        _, module = plugin_dir
        (func,) = get_reward_funcs([f"{module}:length_reward"], {f"{module}:length_reward": {"min_chars": 3}})
        assert func.__name__ == "length_reward"
        assert func(["ab", "abc"]) == [0.0, 1.0]
        assert pickle.loads(pickle.dumps(func))(["ab", "abc"]) == [0.0, 1.0]

    def test_factory_validation_error_names_the_reward(self, plugin_dir):
        _, module = plugin_dir
        name = f"{module}:get_keyword_reward"
        with pytest.raises(ValueError, match="keyword must not be empty") as error:
            get_reward_funcs([name], {name: {"keyword": ""}})
        assert name in str(error.value)

    def test_missing_attribute(self, plugin_dir):
        _, module = plugin_dir
        with pytest.raises(ValueError, match=f"module '{module}' has no attribute 'nope'"):
            resolve_reward(f"{module}:nope")

    def test_missing_module(self):
        with pytest.raises(ValueError, match="cannot import module 'r1video_no_such_plugin'"):
            resolve_reward("r1video_no_such_plugin:reward")

    def test_malformed_path(self):
        with pytest.raises(ValueError, match="not of the form 'package.module:attr'"):
            resolve_reward("rewards.format:")

    def test_factory_returning_a_non_callable(self, plugin_dir):
        _, module = plugin_dir
        with pytest.raises(ValueError, match="returned 42, which is not callable"):
            get_reward_funcs([f"{module}:not_a_reward"])

    def test_two_rewards_with_one_metric_name(self, plugin_dir):
        _, module = plugin_dir
        with pytest.raises(ValueError, match="would both log as 'rewards/format_reward'"):
            get_reward_funcs(["format", "rewards.format:format_reward"])


def make_distribution(site, module, entry_points):
    """Writes an installed-looking distribution (module + *.dist-info with METADATA and entry_points.txt)."""
    (site / f"{module}.py").write_text(textwrap.dedent(PLUGIN_SOURCE))
    dist_info = site / f"{module}-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (dist_info / "entry_points.txt").write_text(f"[r1video.rewards]\n{lines}")


class TestEntryPoints:
    def test_installed_plugin_resolves(self, tmp_path, monkeypatch):
        module = "r1video_ep_plugin"
        make_distribution(
            tmp_path,
            module,
            {"keyword": f"{module}:get_keyword_reward", "format": f"{module}:length_reward"},
        )
        monkeypatch.syspath_prepend(str(tmp_path))
        from importlib.metadata import distribution

        assert distribution(module).version == "0.1"
        assert "keyword" in available_rewards()
        (func,) = get_reward_funcs(["keyword"], {"keyword": {"keyword": "cup"}})
        assert func(["a cup", "a ball"]) == [1.0, 0.0]
        # A built-in name is never shadowed by a plugin.
        assert resolve_reward("format") is rewards.format_reward
        with pytest.raises(ValueError, match="Available rewards: accuracy, format, keyword, "):
            get_reward_funcs(["keywords"])

    def test_broken_entry_point_names_the_reward(self, tmp_path, monkeypatch):
        make_distribution(tmp_path, "r1video_ep_broken", {"broken": "r1video_ep_missing_module:reward"})
        monkeypatch.syspath_prepend(str(tmp_path))
        with pytest.raises(ValueError, match="Reward 'broken': cannot load entry point 'r1video_ep_missing_module"):
            get_reward_funcs(["broken"])


def flaky_reward(completions, solution, **kwargs):
    return [1.0 / len(s) for s in solution]  # raises on an empty solution


class TestCallReward:
    def test_exception_names_reward_and_sample(self):
        with pytest.raises(RewardError, match=r"'flaky_reward' raised on sample 2: ZeroDivisionError") as error:
            call_reward(flaky_reward, ["a", "b", "c"], solution=["A", "B", ""], trainer_state=None)
        assert isinstance(error.value.__cause__, ZeroDivisionError)

    def test_nan_names_reward_and_sample(self):
        def nan_reward(completions, **kwargs):
            return [0.0, math.nan]

        with pytest.raises(RewardError, match="'nan_reward' returned nan for sample 1"):
            call_reward(nan_reward, ["a", "b"])

    def test_wrong_length_names_the_reward(self):
        def short_reward(completions, **kwargs):
            return [1.0]

        with pytest.raises(RewardError, match="'short_reward' returned 1 values for 2 completions"):
            call_reward(short_reward, ["a", "b"])

    def test_non_numbers_are_rejected(self):
        def text_reward(completions, **kwargs):
            return ["1.0" for _ in completions]

        with pytest.raises(RewardError, match="'text_reward' returned '1.0' for sample 0"):
            call_reward(text_reward, ["a"])

    def test_none_means_not_applicable_and_passes(self):
        assert call_reward(rewards.accuracy_reward, ["<answer>A</answer>"] * 2, solution=["A", None]) == [1.0, None]

    def test_safe_reward_keeps_the_name_and_pickles(self):
        safe = SafeReward(rewards.tinyllava_r1_reward)
        assert safe.__name__ == "tinyllava_r1_reward"
        restored = pickle.loads(pickle.dumps(safe))
        assert restored(["A", "B"], solution=["A", "A"], prompts=["q", "q"]) == [1.0, -2.0]
        with pytest.raises(RewardError, match="'tinyllava_r1_reward'"):
            safe(["A"], solution=[])  # a column of the wrong length


PLUGIN = "def short(completions, **kwargs):\n    return [float(len(c) < 10) for c in completions]\n"


@pytest.mark.parametrize("name", ["my_plugin_a:short", "my_plugin_a.py:short", "sub/my_plugin_a.py:short"])
def test_a_plugin_file_in_the_working_directory_loads_without_it_on_sys_path(tmp_path, monkeypatch, name):
    """`r1video grpo` runs from a console script, whose sys.path has no working directory: the file is found anyway."""
    folder = tmp_path / "sub" if name.startswith("sub/") else tmp_path
    folder.mkdir(exist_ok=True)
    (folder / "my_plugin_a.py").write_text(PLUGIN)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(tmp_path))])
    monkeypatch.delitem(sys.modules, "my_plugin_a", raising=False)
    (func,) = get_reward_funcs([name])
    assert func.__name__ == "short" and func(["ok", "far too long"]) == [1.0, 0.0]
    assert pickle.loads(pickle.dumps(func)) is func


def test_a_plugin_is_looked_for_in_each_search_dir_and_the_error_lists_them(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "my_plugin_b.py").write_text(PLUGIN)
    dirs = [str(tmp_path / "a"), str(tmp_path / "b")]
    assert get_reward_funcs(["my_plugin_b.py:short"], search_dirs=dirs)[0].__name__ == "short"
    with pytest.raises(ValueError, match=r"no file 'gone\.py' \(looked in .*a, .*b\)"):
        get_reward_funcs(["gone.py:short"], search_dirs=dirs)
    with pytest.raises(ValueError, match=r"cannot import module 'gone_module'.*no gone_module\.py in .*a, .*b"):
        get_reward_funcs(["gone_module:short"], search_dirs=dirs)


def test_a_plugin_file_never_shadows_an_imported_module(tmp_path):
    (tmp_path / "rewards.py").write_text(PLUGIN)
    (func,) = get_reward_funcs(["rewards.py:short"], search_dirs=[str(tmp_path)])
    assert func.__module__ != "rewards" and sys.modules["rewards"] is rewards
