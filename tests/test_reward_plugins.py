"""Reward plugins written as docs/rewards.md shows them, called the way `r1video grpo` calls them: through the same
calling layer (`SafeReward`), in a real GRPO step, and refused at start-up when they cannot take the trainer's keyword
arguments."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from grpo_fixtures import tiny_grpo_config

import r1video.model  # noqa: F401  (registers TinyLLaVA-Video with the Auto classes)
from r1video.cli import main as cli_main
from r1video.data.loaders import load_grpo_dataset
from r1video.data.synth import generate_synthetic_dataset
from r1video.model import build_tiny_model, load_pretrained
from r1video.model.templates import QUESTION_TEMPLATES
from r1video.trainer import VideoGRPOTrainer
from rewards import SafeReward, check_reward, get_reward_funcs

REPO = Path(__file__).resolve().parents[1]
DOCS = (REPO / "docs/rewards.md").read_text()
TRAINER_ARGUMENTS = {"prompts", "completion_ids", "trainer_state", "log_extra", "log_metric"}


def docs_block(first_line: str) -> str:
    """The docs' ```python block whose first line is `first_line`."""
    for block in re.findall(r"```python\n(.*?)```", DOCS, re.DOTALL):
        if block.startswith(first_line):
            return block
    raise AssertionError(f"docs/rewards.md has no python block starting {first_line!r}")


@pytest.fixture
def plugin_dir(tmp_path):
    """A folder holding the docs' `my_rewards.py`, exactly as the docs write it."""
    (tmp_path / "my_rewards.py").write_text(docs_block("# my_rewards.py"))
    return tmp_path


def docs_rewards(plugin_dir, max_chars, keyword):
    names = ["my_rewards.py:concise_reward", "my_rewards.py:get_keyword_reward"]
    kwargs = {names[0]: {"max_chars": max_chars}, names[1]: {"keyword": keyword}}
    # `r1video grpo` hands the trainer its rewards wrapped in SafeReward (r1video/grpo.py)
    return [SafeReward(func) for func in get_reward_funcs(names, kwargs, search_dirs=[str(plugin_dir)])]


def as_messages(texts):
    """Completions as GRPOTrainer passes them for conversational data (r1video's prompts are messages)."""
    return [[{"role": "assistant", "content": text}] for text in texts]


def test_the_docs_plugins_get_the_completion_text_the_docs_promise(plugin_dir):
    concise, keyword = docs_rewards(plugin_dir, max_chars=30, keyword="because")
    texts = ["<think>It moves left because it rolls.</think><answer>A</answer>", "<answer>B</answer>"]
    columns = {"problem": ["What moves?"] * 2, "prompts": [[{"role": "user", "content": "Q"}]] * 2}
    assert len(texts[0]) > 30 >= len(texts[1])
    assert concise(completions=as_messages(texts), **columns) == [0.0, 1.0]  # was [1.0, 1.0]: len() of a list
    assert keyword(completions=as_messages(texts), **columns) == [1.0, 0.0]  # was [0.0, 0.0]: "because" in a list


def test_a_reward_that_annotates_messages_gets_them_as_trl_gives_them():
    def trl_style(completions: list[list[dict[str, str]]], **kwargs):
        return [float(completion[0]["content"].startswith("<think>")) for completion in completions]

    def plain(completions, **kwargs):
        return [float(isinstance(completion, str)) for completion in completions]

    completions = as_messages(["<think>x</think><answer>A</answer>", "A"])
    assert SafeReward(trl_style)(completions=completions) == [1.0, 0.0]
    (trl_own,) = get_reward_funcs(["trl.rewards:think_format_reward"])  # reads completion[0]["content"]
    assert SafeReward(trl_own)(completions=as_messages(["<think>\nx\n</think>\nA", "A"])) == [1.0, 0.0]
    assert SafeReward(plain)(completions=completions) == [1.0, 1.0]
    assert SafeReward(plain)(completions=["A", "B"]) == [1.0, 1.0]  # plain-text data: unchanged


def test_the_docs_check_snippet_prints_what_it_says(plugin_dir):
    snippet = docs_block("from rewards import check_reward")
    expected = re.search(r"# (\[.*\])\s*$", snippet).group(1)
    result = subprocess.run([sys.executable, "-c", snippet], cwd=plugin_dir, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


class Recorder:
    """A reward that keeps what it was called with, and scores nothing."""

    __name__ = "recorder"

    def __init__(self):
        self.calls = []

    def __call__(self, completions, **kwargs):
        self.calls.append((completions, kwargs))
        return [0.0] * len(completions)


@pytest.fixture(scope="module")
def step_inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    dataset = generate_synthetic_dataset(root, n=8, n_test=2, n_coldstart=2, size=32, beats=8, frames_per_beat=1)
    data = load_grpo_dataset(dataset.grpo_train, dataset.root, question_template=QUESTION_TEMPLATES["r1"])
    model_dir = tmp_path_factory.mktemp("model")
    build_tiny_model(model_dir)
    return data, str(model_dir)


def test_a_grpo_step_scores_the_docs_plugins_on_the_text_and_check_reward_calls_alike(
    plugin_dir, step_inputs, tmp_path
):
    data, model_dir = step_inputs
    model, processor = load_pretrained(model_dir)
    recorder = Recorder()
    max_chars, keyword = 30, " "
    trainer = VideoGRPOTrainer(
        model=model,
        reward_funcs=[*docs_rewards(plugin_dir, max_chars, keyword), SafeReward(recorder)],
        args=tiny_grpo_config(tmp_path, max_completion_length=16),
        train_dataset=data,
        processing_class=processor,
    )
    trainer.train()
    texts = [messages[-1]["content"] for messages in trainer._logs["completion"]]  # what the model generated
    concise = [float(len(text) <= max_chars) for text in texts]
    has_keyword = [float(keyword in text) for text in texts]
    assert 0.0 in concise and 1.0 in has_keyword  # seed 0: the step tells the hand-over of text from that of lists
    assert list(trainer._logs["rewards"]["concise_reward"]) == concise
    assert list(trainer._logs["rewards"]["keyword_reward"]) == has_keyword

    ((completions, kwargs),) = recorder.calls
    assert completions == texts
    assert TRAINER_ARGUMENTS <= set(kwargs) and {"problem", "solution"} <= set(kwargs)
    check_reward(recorder, ["<answer>A</answer>"], problem=["What moves?"], solution=["A"])
    checked, checked_kwargs = recorder.calls[-1]
    assert checked == ["<answer>A</answer>"]
    assert TRAINER_ARGUMENTS <= set(checked_kwargs)


# ---- a plugin without **kwargs: refused at start-up, before any model loads ------------------------------------


@pytest.fixture
def recipe(tmp_path):
    """A GRPO recipe whose files exist; its model folder is empty, so loading a model would fail differently."""
    (tmp_path / "train.jsonl").write_text("{}\n")
    (tmp_path / "videos").mkdir()
    (tmp_path / "model").mkdir()
    (tmp_path / "my_rewards.py").write_text(
        "def short(completions):\n    return [float(len(c) < 200) for c in completions]\n\n"
        "class Short:\n    def __call__(self, completions, solution):\n        return [0.0] * len(completions)\n\n"
        "def get_short():\n    return Short()\n"
    )
    settings = yaml.safe_load((REPO / "recipes/tiny/grpo_smoke.yaml").read_text())
    settings.update(
        model_name_or_path=str(tmp_path / "model"), train_file=str(tmp_path / "train.jsonl"),
        video_root=str(tmp_path / "videos"), output_dir=str(tmp_path / "out"),
    )  # fmt: skip

    def write(reward: str) -> str:
        path = tmp_path / "recipe.yaml"
        path.write_text(yaml.safe_dump({**settings, "reward_funcs": ["tinyllava_r1", reward]}))
        return str(path)

    return write


@pytest.mark.parametrize("reward, shown", [("my_rewards.py:short", "my_rewards.short(completions)"),
                                           ("my_rewards.py:get_short", "Short(completions, solution)")])  # fmt: skip
def test_a_plugin_without_kwargs_stops_grpo_at_start_up_with_one_line(recipe, reward, shown, capsys):
    assert cli_main(["grpo", "--config", recipe(reward)]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("r1video grpo: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert f"{reward}'" in lines[0] and shown in lines[0] and "takes no **kwargs" in lines[0]
    assert "prompts" in lines[0] and "add **kwargs" in lines[0]
