"""Prompts as data: one question-template mechanism (a name, a .txt file or a literal with `{Question}`) for synth,
GRPO, the demo, the bench and eval, and no copy of a template string outside `r1video.model.templates`."""

import ast
import json
from pathlib import Path

import pytest

from r1video import grpo
from r1video.data.loaders import load_grpo_dataset
from r1video.data.synth import generate_synthetic_dataset
from r1video.model.templates import (
    OPTION_INSTRUCTION,
    QUESTION_TEMPLATES,
    REASON_INSTRUCTION,
    grpo_question,
    resolve_question_template,
)

REPO = Path(__file__).resolve().parents[1]


def test_names_files_and_literals_resolve(tmp_path):
    assert resolve_question_template("r1") == "{Question} " + REASON_INSTRUCTION == grpo_question("{Question}")
    assert resolve_question_template("r1_eval") == "{Question}\n" + REASON_INSTRUCTION
    assert resolve_question_template("option") == "{Question}\n" + OPTION_INSTRUCTION
    assert resolve_question_template("none") == "{Question}"
    path = tmp_path / "mine.txt"
    path.write_text("Watch closely. {Question} Reply {{in braces}}.\n")
    assert resolve_question_template(str(path)).format(Question="Q?") == "Watch closely. Q? Reply {in braces}."
    assert resolve_question_template("Look: {Question}") == "Look: {Question}"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("r2", "neither a template name (r1, r1_eval"),
        ("{Question} and {Answer}", "a field other than {Question}"),
        ("missing.txt", "cannot read template file 'missing.txt'"),
    ],
)
def test_bad_templates_name_the_recipe_key(value, message):
    with pytest.raises(ValueError, match="question_template") as info:
        resolve_question_template(value)
    assert message in str(info.value)


def test_a_grpo_recipe_takes_a_template_file(tmp_path):
    """Before, the recipe key accepted only `r1` or `none`; a file's template now reaches every GRPO prompt."""
    synth = generate_synthetic_dataset(tmp_path / "synth", n=2, n_test=1, n_coldstart=1, size=32, beats=8)
    template = tmp_path / "prompt.txt"
    template.write_text("{Question}\nThink, then answer.\n")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"train_file: {synth.grpo_train}\nvideo_root: {synth.root}\nquestion_template: {template}\n"
        "use_cpu: true\nbf16: false\n"
    )
    script_args, _, _ = grpo.make_parser().parse_args_and_config(
        args=["--config", str(recipe), "--output_dir", str(tmp_path / "out")]
    )
    rows = load_grpo_dataset(
        script_args.train_file, script_args.video_root, resolve_question_template(script_args.question_template)
    )
    problem = json.loads(Path(synth.grpo_train).read_text().splitlines()[0])["problem"]
    assert rows[0]["prompt"][0]["content"][-1]["text"] == f"{problem}\nThink, then answer."


def test_synth_writes_its_reasoning_samples_with_the_chosen_template(tmp_path):
    for name in ("r1", "r1_eval"):
        synth = generate_synthetic_dataset(
            tmp_path / name, n=2, n_test=1, n_coldstart=4, size=32, beats=8, question_template=name
        )
        records = json.loads(Path(synth.coldstart).read_text())
        for record in records:
            problem = record["conversations"][0]["value"].removeprefix("<image>\n")
            assert problem.endswith(QUESTION_TEMPLATES[name].removeprefix("{Question}"))
        option = json.loads(Path(synth.sft_train).read_text())[0]["conversations"][0]["value"]
        assert option.endswith("\n" + OPTION_INSTRUCTION)


def _code_strings(path: Path):
    """String constants of a module that are not docstrings."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.value


def test_no_copy_of_an_instruction_outside_the_templates_module():
    texts = ["Output the thinking process", "Answer with the option's letter", "Answer the question directly"]
    copies = [
        str(path.relative_to(REPO))
        for folder in ("r1video", "rewards")
        for path in (REPO / folder).rglob("*.py")
        if path.name != "templates.py"
        for value in _code_strings(path)
        if any(text in value for text in texts)
    ]
    assert copies == []
