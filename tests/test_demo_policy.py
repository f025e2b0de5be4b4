"""`r1video demo --policy NAME`: the toy pipeline (base, cold start, GRPO, held-out table, curves) on a tiny random
model of another family, through the same recipes and entry points; `r1video bench demo-learning --policy NAME`."""

import json
from pathlib import Path

import pytest
import yaml

from r1video.bench import cli as bench_cli
from r1video.bench import demo_learning
from r1video.demo import cli
from r1video.demo.stages import build_model, default_recipe_dir


def model_type(folder) -> str:
    return json.loads((folder / "config.json").read_text())["model_type"]


def test_fast_demo_on_qwen2_5_vl_reaches_the_table(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["--fast", "--quiet", "--policy", "qwen2_5_vl", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "policy qwen2_5_vl" in printed and "held-out accuracy" in printed and "GRPO (R1)" in printed
    for stage in ("model", "base", "grpo"):
        assert model_type(out / stage) == "qwen2_5_vl", stage
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["policy"] == "qwen2_5_vl"
    assert set(results["evaluations"]) == {"base", "coldstart", "grpo"}
    assert (out / "curves.png").is_file()


def test_a_family_yaml_beside_the_recipes_gives_the_tiny_models_arguments(tmp_path):
    (tmp_path / "model_qwen2_5_vl.yaml").write_text("text_num_hidden_layers: 1\n")
    build_model(str(tmp_path), str(tmp_path / "model"), seed=0, policy="qwen2_5_vl")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["model_type"] == "qwen2_5_vl" and config["text_config"]["num_hidden_layers"] == 1


FAMILY_YAMLS = sorted(Path(default_recipe_dir()).glob("model_*.yaml"))


def test_the_families_measured_by_the_demo_ship_a_model_yaml():
    """docs/demo.md's per-family learning figures were measured with these files."""
    assert {path.stem.removeprefix("model_") for path in FAMILY_YAMLS} >= {"qwen2_5_vl", "llava_onevision"}


@pytest.mark.parametrize("path", FAMILY_YAMLS, ids=lambda path: path.stem)
def test_a_shipped_family_yaml_builds_a_model_as_wide_as_tinyllavas(path, tmp_path):
    """Each family's demo model is sized like the TinyLLaVA-Video demo model (`model.yaml`): with the tiny builders'
    own defaults (a 64-wide LLM, a 32-wide tower) the Qwen2.5-VL base stayed at chance."""
    family = path.stem.removeprefix("model_")
    build_model(default_recipe_dir(), str(tmp_path / "model"), seed=0, policy=family)
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    tinyllava = yaml.safe_load((Path(default_recipe_dir()) / "model.yaml").read_text())
    assert config["model_type"] == family
    assert config["text_config"]["hidden_size"] == tinyllava["text_hidden_size"]
    assert config["vision_config"]["hidden_size"] == tinyllava["vision_hidden_size"]


def test_without_policy_the_demo_model_is_tinyllava_from_model_yaml(tmp_path):
    build_model(default_recipe_dir(), str(tmp_path / "model"), seed=0)
    assert model_type(tmp_path / "model") == "tinyllava"


def test_an_unknown_family_is_refused_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--fast", "--policy", "qwen9", "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "no registered model family 'qwen9'" in err and "qwen2_5_vl" in err
    assert not (tmp_path / "run").exists()


def test_bench_demo_learning_runs_each_seeds_demo_on_the_family(tmp_path):
    """`r1video bench demo-learning --policy NAME` runs `r1video demo --policy NAME` per seed (the runs themselves
    take minutes: the command each seed gets is checked here; it is the command the fast test above runs)."""
    command = demo_learning.demo_command(str(tmp_path), 1, fast=True, policy="smolvlm")
    assert command[1:] == ["-m", "r1video.demo.cli", "--out", str(tmp_path / "seed1"), "--seed", "1", "--quiet",
                           "--fast", "--policy", "smolvlm"]  # fmt: skip
    assert "--policy" not in demo_learning.demo_command(str(tmp_path), 0, fast=False)
    with pytest.raises(SystemExit) as exit_info:  # only entries measured per family take --policy
        bench_cli.main(["overhead", "--policy", "smolvlm"])
    assert exit_info.value.code == 2


def demo_result(cold: float, grpo: float, cpu_minutes: float = 12.0) -> dict:
    """The parts of a demo's `results.json` the bench reads."""

    def evaluation(accuracy, fmt=None):
        return {"accuracy": accuracy, "stderr": 2.5, "format": fmt}

    return {
        "evaluations": {
            "base": {"option": evaluation(80.0)},
            "coldstart": {"reason": evaluation(cold, 95.0)},
            "grpo": {"reason": evaluation(grpo, 99.0)},
        },
        "grpo_reward": {"rise": 0.5},
        "timings_s": {"base": 300.0, "grpo": 300.0},
        "cpu_minutes": cpu_minutes,
    }


def test_a_familys_learning_target_holds_for_every_seed_not_the_mean():
    """Issue 25's target for another family: each seed ≥ its cold start + 10 and ≤ 20 minutes alone (CPU-minutes).
    TinyLLaVA-Video's own target (issue 7) is the mean over the seeds."""
    one_short = {0: demo_result(50.0, 75.0), 1: demo_result(50.0, 58.0)}  # +25 and +8: mean +16.5
    assert demo_learning.summarise(one_short)["met"]
    assert not demo_learning.summarise(one_short, each_seed=True)["met"]
    both = {0: demo_result(50.0, 75.0), 1: demo_result(50.0, 61.0)}
    assert demo_learning.summarise(both, each_seed=True)["met"]
    too_slow = {0: demo_result(50.0, 75.0), 1: demo_result(50.0, 61.0, cpu_minutes=25.0)}
    assert not demo_learning.summarise(too_slow, each_seed=True)["met"]


def test_a_family_recipe_beside_the_shared_one_is_the_stage_recipe_for_that_family(tmp_path):
    """`r1video demo --policy NAME` reads `RECIPES/{stage}_{NAME}.yaml` where there is one, the shared recipe else."""
    from r1video.demo.stages import parse_recipe, recipe_path

    recipes = default_recipe_dir()
    for stage in ("model", "base", "coldstart", "grpo"):
        (tmp_path / f"{stage}.yaml").write_text(Path(recipe_path(recipes, stage)).read_text())
    shared = yaml.safe_load((tmp_path / "grpo.yaml").read_text())
    (tmp_path / "grpo_smolvlm.yaml").write_text(yaml.safe_dump(shared | {"max_steps": 7}))
    assert parse_recipe(str(tmp_path), "grpo", [], "smolvlm")[1].max_steps == 7
    assert parse_recipe(str(tmp_path), "grpo", [], "qwen2_5_vl")[1].max_steps == shared["max_steps"]
    assert parse_recipe(str(tmp_path), "grpo", [])[1].max_steps == shared["max_steps"]
    assert recipe_path(str(tmp_path), "base", "smolvlm") == str(tmp_path / "base.yaml")
