"""`r1video demo`: every stage runs and writes its outputs (`--fast`); learning is checked by the slow test."""

import json

import pytest

from r1video.demo import cli, plot
from r1video.demo.report import format_table


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    assert cli.main(["--fast", "--quiet", "--out", str(out)]) == 0
    return out


def test_fast_demo_writes_table_results_curves_and_checkpoint(fast_run, capsys):
    results = json.loads((fast_run / "results.json").read_text())
    for stage in ("base", "coldstart", "grpo"):
        for answer_type in ("option", "reason"):
            evaluation = results["evaluations"][stage][answer_type]
            assert 0 <= evaluation["accuracy"] <= 100
            assert set(evaluation["per_task"]) == {"colour", "count", "order"}
    assert results["coldstart_choice"]["step"] is not None
    assert results["grpo_reward"]["first"] is not None
    assert (fast_run / "curves.png").stat().st_size > 0
    assert (fast_run / "grpo" / "model.safetensors").exists()
    for stage in ("base", "coldstart", "grpo"):
        assert (fast_run / stage / "trainer_state.json").exists()
    assert "Cold start" in results["table"] and "GRPO (R1)" in results["table"]


def test_plot_draws_any_run_folder(fast_run, tmp_path, capsys):
    out = tmp_path / "grpo.png"
    assert plot.main([str(fast_run / "grpo"), "--out", str(out)]) == 0
    assert out.stat().st_size > 0 and str(out) in capsys.readouterr().out
    with pytest.raises(SystemExit):
        plot.main([str(tmp_path / "empty")])


def test_table_has_the_paper_rows_first():
    result = {"accuracy": 50.0, "stderr": 5.0, "per_task": {"direction": 50.0}, "format": 90.0, "n": 100}
    option = {**result, "format": None}
    evaluations = {s: {"option": option, "reason": result} for s in ("base", "coldstart", "grpo")}
    lines = format_table(evaluations, ["direction"]).splitlines()
    assert [line.split("  ")[0].strip() for line in lines[2:5]] == ["Base (option SFT)", "Cold start", "GRPO (R1)"]
    assert "Option" in lines[2] and "Reason" in lines[3] and "Reason" in lines[4]


@pytest.mark.slow
def test_default_demo_learns(tmp_path):
    """The learning target on one seed (the 3-seed target is `r1video bench demo-learning`)."""
    assert cli.main(["--quiet", "--out", str(tmp_path / "run")]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["evaluations"]["base"]["option"]["accuracy"] >= 60  # the base sees (chance is 25)
    assert results["evaluations"]["grpo"]["reason"]["format"] >= 90
    assert results["grpo_reward"]["rise"] > 0
    assert results["gain_reason_vs_coldstart"] >= 0


def test_unknown_task_is_refused_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["--tasks", "colour,size", "--out", str(tmp_path / "run")])
    assert "unknown task(s) size" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
