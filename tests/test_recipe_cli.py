"""`r1video sft` / `r1video grpo` as a new user meets them: a screen of help without torch, one-line usage errors
(exit 2) naming the file, key or flag, stage-unused keys refused, the CPU thread count, a compact console."""

import dataclasses
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import trl
import yaml

from r1video import grpo
from r1video.cli import main as cli_main
from r1video.data.cli import main as data_main
from r1video.recipe_cli import short_help
from r1video.trainer.video_options import VideoGRPOOptions, VideoSFTOptions, VideoTrainingOptions

REPO = Path(__file__).resolve().parents[1]
GRPO_SMOKE = REPO / "recipes/tiny/grpo_smoke.yaml"
SFT_SMOKE = REPO / "recipes/tiny/coldstart_smoke.yaml"


def _light_check(code: str) -> subprocess.CompletedProcess:
    script = f"import sys\n{code}\nheavy = [m for m in ('torch', 'transformers') if m in sys.modules]\nprint('HEAVY', heavy)"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)


def test_import_r1video_and_every_help_screen_load_no_torch():
    """Every command's `--help` (each checked on its own: `tiny` and `bench` imported torch before issue 28)."""
    result = _light_check(
        "import r1video, r1video.cli, r1video.grpo, r1video.sft, r1video.trainer\n"
        "from r1video.cli import COMMANDS, main\n"
        "commands = [[name] for name in COMMANDS] + [['data', 'validate'], ['data', 'synth'], ['bench', 'gpu']]\n"
        "for argv in [[]] + commands:\n"
        "    try:\n"
        "        main([*argv, '--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "    assert 'torch' not in sys.modules, f'{argv} --help imported torch'"
    )
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout


@pytest.mark.parametrize(
    "argv, message",
    [
        (["grpo", "--config", str(GRPO_SMOKE), "--train_file", "none.jsonl"], "flag --train_file: file not found"),
        (["sft", "--config", str(SFT_SMOKE), "--video_root", "no/clips"], "flag --video_root: folder not found"),
        (["grpo", "--config", str(GRPO_SMOKE), "--model_name_or_path", "runs/nope"], "no model folder at runs/nope"),
        (["grpo", "--config", str(GRPO_SMOKE), "--reward_funcs", "tinylava_r1"], "did you mean tinyllava_r1?"),
        (["eval", "--benchmark", "mmvu", "--data-dir", ".", "--model", "runs/nope"], "--model: no model folder"),
        (["eval", "--benchmark", "mmvu", "--data-dir", "no/MMVU", "--model", "."], "--data-dir: folder not found"),
        (["infer", "--model", "runs/nope", "--video", "a.mp4", "--question", "Q?"], "--model: no model folder"),
        (["infer", "--model", ".", "--video", "none.mp4", "--question", "Q?"], "--video: file not found"),
        (["eval", "--benchmark", "mvbenc", "--data-dir", ".", "--model", "."], "'mvbenc'; did you mean mvbench?"),
        (
            ["infer", "--model", ".", "--video", "a.mp4", "--question", "Q?", "--prompt", "reasn"],
            "did you mean reason?",
        ),
    ],
)
def test_usage_errors_that_need_no_torch_come_before_it_loads(argv, message, tmp_path):
    """One line, exit 2, torch never imported (a mistyped model path no longer reaches the Hub: eval and infer
    retried it there for ~50 s before issue 28; the training commands waited for torch and TRL)."""
    (tmp_path / "runs" / "synth").mkdir(parents=True)  # the smoke recipes' inputs, as the README prepares them
    (tmp_path / "runs" / "tiny-model").mkdir()
    for name in ("grpo_train.jsonl", "coldstart.json"):
        (tmp_path / "runs" / "synth" / name).write_text("{}\n")
    code = f"from r1video.cli import main\ntry:\n    rc = main({argv!r})\nexcept SystemExit as e:\n    rc = e.code\nprint('RC', rc)"
    result = subprocess.run([sys.executable, "-c", f"import sys\n{code}\nprint('TORCH', 'torch' in sys.modules)"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert "RC 2" in result.stdout and "TORCH False" in result.stdout, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith(f"r1video {argv[0]}: error:"), lines


def test_importing_r1video_model_registers_the_auto_classes():
    from transformers import AutoConfig, AutoModelForCausalLM

    import r1video.model

    assert isinstance(AutoConfig.for_model("tinyllava"), r1video.model.TinyLlavaVideoConfig)
    assert AutoModelForCausalLM._model_mapping[r1video.model.TinyLlavaVideoConfig] is (
        r1video.model.TinyLlavaVideoForConditionalGeneration
    )


@pytest.mark.parametrize("stage", ["grpo", "sft"])
def test_stage_help_is_a_screen_led_by_usage_config_and_r1video_keys(stage, capsys):
    assert cli_main([stage, "--help"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) <= 60
    assert lines[0] == f"usage: r1video {stage} --config RECIPE.yaml [--KEY VALUE ...]"
    text = "\n".join(lines)
    for key in ("--config", "--help-all", "--train_file", "--video_root", "--num_frames", "--cpu_threads"):
        assert key in text, key
    grpo_only = ("--reward_funcs", "--question_template", "--reuse_vision", "--advantage_noise_std")
    for key in grpo_only:
        assert (key in text) == (stage == "grpo"), key


def test_short_help_lists_every_r1video_key_of_the_configs():
    from r1video.trainer import VideoGRPOConfig, VideoSFTConfig

    for config, parent, options in ((VideoGRPOConfig, trl.GRPOConfig, VideoGRPOOptions),
                                    (VideoSFTConfig, trl.SFTConfig, VideoSFTOptions)):  # fmt: skip
        own = {f.name for f in dataclasses.fields(config)} - {f.name for f in dataclasses.fields(parent)}
        assert own == {f.name for f in dataclasses.fields(options)}, "add new r1video keys to video_options.py"


def test_frame_fields_are_defined_once_for_both_stages():
    from r1video.trainer import VideoGRPOConfig, VideoSFTConfig

    for config in (VideoGRPOConfig, VideoSFTConfig):
        assert issubclass(config, VideoTrainingOptions)
        assert not {"num_frames", "fps", "max_frames", "max_bad_video_fraction"} & set(
            vars(config).get("__annotations__", {})
        )


def test_help_all_names_the_command_and_describes_negated_flags(capsys):
    assert cli_main(["grpo", "--help-all"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: r1video grpo --config RECIPE.yaml")
    negated = out[out.index("  --no_freeze_vision_tower,") :][:200]
    assert "Keep the vision tower frozen" not in negated
    assert "false" in negated


def test_infer_help_has_no_developer_notes(capsys):
    with pytest.raises(SystemExit):
        cli_main(["infer", "--help"])
    out = capsys.readouterr().out
    assert "ruff" not in out and "T201" not in out


@pytest.fixture
def inputs(tmp_path):
    """Files a recipe can point at: an annotation file, a video folder, a (not loaded) model folder."""
    (tmp_path / "train.jsonl").write_text("{}\n")
    (tmp_path / "videos").mkdir()
    (tmp_path / "model").mkdir()
    return tmp_path


def _recipe(folder: Path, base: Path = GRPO_SMOKE, **keys) -> str:
    recipe = yaml.safe_load(base.read_text())
    recipe.update(
        model_name_or_path=str(folder / "model"), train_file=str(folder / "train.jsonl"),
        video_root=str(folder / "videos"), output_dir=str(folder / "out"),
    )  # fmt: skip
    recipe.update(keys)
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


def _usage_error(capsys, stage: str, argv: list[str]) -> str:
    assert cli_main([stage, *argv]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith(f"r1video {stage}: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_no_arguments_say_that_config_is_needed(capsys):
    assert "--config RECIPE.yaml is needed" in _usage_error(capsys, "grpo", [])


def test_missing_recipe_file_is_named(capsys, tmp_path):
    assert f"recipe file not found: {tmp_path / 'nope.yaml'}" in _usage_error(
        capsys, "sft", ["--config", str(tmp_path / "nope.yaml")]
    )


def test_misspelt_recipe_key_names_the_file_and_the_close_match(capsys, inputs):
    recipe = _recipe(inputs, num_generatons=4)
    line = _usage_error(capsys, "grpo", ["--config", recipe])
    assert recipe in line and "'num_generatons'" in line and "did you mean num_generations?" in line


def test_config_with_an_equals_sign_is_explained(capsys, inputs):
    assert "--config RECIPE.yaml with a space" in _usage_error(capsys, "grpo", [f"--config={_recipe(inputs)}"])


def test_flag_prefixes_are_not_matched(capsys, inputs):
    line = _usage_error(capsys, "grpo", ["--config", _recipe(inputs), "--learning_rat", "1e-5"])
    assert "unknown flag --learning_rat; did you mean --learning_rate?" in line


@pytest.mark.parametrize("key, value", [("reward_funcs", ["format"]), ("question_template", "none"),
                                        ("dataset_text_field", "text")])  # fmt: skip
def test_sft_refuses_keys_it_does_not_use(capsys, inputs, key, value):
    recipe = _recipe(inputs, SFT_SMOKE, **{key: value})
    line = _usage_error(capsys, "sft", ["--config", recipe])
    assert f"{recipe}: key {key} is not used by r1video sft" in line


@pytest.mark.parametrize("stage, base", [("grpo", GRPO_SMOKE), ("sft", SFT_SMOKE)])
@pytest.mark.parametrize("key, value", [("load_in_4bit", True), ("model_init_kwargs", {"revision": "main"})])
def test_both_stages_refuse_model_keys_r1video_does_not_read(capsys, inputs, stage, base, key, value):
    line = _usage_error(capsys, stage, ["--config", _recipe(inputs, base, **{key: value})])
    assert f"{key} is not used by r1video {stage}" in line


@pytest.mark.parametrize("stage, base", [("grpo", GRPO_SMOKE), ("sft", SFT_SMOKE)])
def test_trl_dataset_keys_are_refused_with_what_to_use(capsys, inputs, stage, base):
    line = _usage_error(capsys, stage, ["--config", _recipe(inputs, base, dataset_name="org/data")])
    assert "'dataset_name'" in line and "train_file" in line


@pytest.mark.parametrize("key, message", [("train_file", "train_file: file not found"),
                                          ("video_root", "video_root: folder not found"),
                                          ("model_name_or_path", "model_name_or_path: no model folder at")])  # fmt: skip
def test_missing_inputs_are_named_before_any_model_loads(capsys, inputs, key, message):
    missing = str(inputs / "missing" / "thing")
    line = _usage_error(capsys, "grpo", ["--config", _recipe(inputs, **{key: missing})])
    assert f"{message}" in line and missing in line


def test_unknown_reward_suggests_the_closest_and_lists_the_available_ones(capsys, inputs):
    recipe = _recipe(inputs, reward_funcs=["acuracy"])
    line = _usage_error(capsys, "grpo", ["--config", recipe])
    assert f"{recipe}: reward_funcs: unknown reward 'acuracy'; did you mean accuracy?" in line
    assert "tinyllava_r1" in line and "file.py:function" in line


@pytest.mark.parametrize("stage, base", [("grpo", GRPO_SMOKE), ("sft", SFT_SMOKE)])
def test_unknown_choice_value_names_the_key_the_file_and_the_closest_value(capsys, inputs, stage, base):
    recipe = _recipe(inputs, base, lr_scheduler_type="constnat")
    line = _usage_error(capsys, stage, ["--config", recipe])
    assert f"{recipe}: lr_scheduler_type: unknown value 'constnat'; did you mean constant?" in line
    assert "cosine_with_restarts" in line  # the valid values
    line = _usage_error(capsys, stage, ["--config", _recipe(inputs, base), "--save_strategy", "stepz"])
    assert "flag --save_strategy: unknown value 'stepz'; did you mean steps?" in line


def test_missing_reward_plugin_says_where_it_looked(capsys, inputs, monkeypatch, tmp_path_factory):
    cwd = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(cwd)
    line = _usage_error(capsys, "grpo", ["--config", _recipe(inputs, reward_funcs=["my_rewards:short"])])
    assert "my_rewards.py" in line and str(cwd) in line and str(inputs) in line


def test_a_plugin_beside_the_recipe_is_found_from_another_working_directory(inputs, monkeypatch, tmp_path_factory):
    (inputs / "my_rewards.py").write_text("def short(completions, **kwargs):\n    return [1.0 for _ in completions]\n")
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    seen = {}

    def train(script_args, training_args, model_args):
        from rewards import get_reward_funcs

        seen["rewards"] = get_reward_funcs(script_args.reward_funcs, script_args.reward_kwargs)

    from r1video.recipe_cli import run

    recipe = _recipe(inputs, reward_funcs=["my_rewards:short", "format"], reward_kwargs={})
    assert run("grpo", ["--config", recipe], grpo.make_parser, train) == 0
    assert [f.__name__ for f in seen["rewards"]] == ["short", "format_reward"]


def test_reward_kwargs_as_a_json_flag_override_the_recipe(capsys, inputs):
    seen = {}

    def train(script_args, training_args, model_args):
        seen["kwargs"] = script_args.reward_kwargs

    from r1video.recipe_cli import run

    flag = ["--reward_kwargs", '{"tinyllava_r1": {"rule": "original"}}']
    assert run("grpo", ["--config", _recipe(inputs), *flag], grpo.make_parser, train) == 0
    assert seen["kwargs"] == {"tinyllava_r1": {"rule": "original"}}
    line = _usage_error(capsys, "grpo", ["--config", _recipe(inputs), "--reward_kwargs", "{bad"])
    assert "reward_kwargs: not a JSON mapping" in line


def test_a_bad_flag_value_prints_a_short_usage_and_exits_2(capsys, inputs):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["grpo", "--config", _recipe(inputs), "--learning_rate", "fast"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 2 and "--learning-rate: invalid float value: 'fast'" in err


def test_config_checks_are_one_line_usage_errors(capsys, inputs):
    line = _usage_error(capsys, "grpo", ["--config", _recipe(inputs), "--kl_clamp", "-1"])
    assert "kl_clamp must be > 0" in line


def test_exit_codes_from_a_fresh_interpreter(tmp_path):
    for argv, message in ((["grpo"], "--config RECIPE.yaml is needed"),
                          (["sft", "--config", "missing.yaml"], "recipe file not found: missing.yaml")):  # fmt: skip
        result = subprocess.run(
            [sys.executable, "-m", "r1video", *argv], cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_data_validate_names_a_missing_file_or_video_root(capsys, tmp_path):
    assert data_main(["validate", str(tmp_path / "none.jsonl"), "--video-root", str(tmp_path)]) == 2
    assert f"annotation file not found: {tmp_path / 'none.jsonl'}" in capsys.readouterr().err
    (tmp_path / "a.jsonl").write_text("{}\n")
    assert data_main(["validate", str(tmp_path / "a.jsonl"), "--video-root", str(tmp_path / "clips")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--video-root: folder not found: {tmp_path / 'clips'}" in err


def test_cpu_threads_defaults_to_one_and_zero_keeps_torchs_default(capsys):
    import torch

    from r1video.trainer import VideoSFTConfig
    from r1video.trainer.threads import apply_cpu_threads

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        config = VideoSFTConfig(output_dir="unused", use_cpu=True, report_to="none")
        assert config.cpu_threads == 1
        assert apply_cpu_threads(config) == 1 == torch.get_num_threads()
        assert "training on CPU with 1 torch thread(s)" in capsys.readouterr().out
        torch.set_num_threads(2)
        config = VideoSFTConfig(output_dir="unused", use_cpu=True, report_to="none", cpu_threads=0)
        assert apply_cpu_threads(config) == 2 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def test_short_help_describes_booleans_by_what_true_does():
    text = short_help("sft")
    assert "--freeze_vision_tower true|false" in text and "--no_" not in text


def test_grpo_run_console_samples_summary_and_a_resumed_runs_own_step_count(tmp_path, capsys, monkeypatch):
    """The real smoke recipe, two steps, then resumed to a third with --quiet. The console (not a terminal here) has
    plain lines only: a compact line and two samples per step wrapped to the width, then a short summary; every
    rollout is in completions.jsonl; the resumed run reports the one step it trained (issue 27 item 18)."""
    import r1video.model  # noqa: F401
    from r1video.data.synth import generate_synthetic_dataset
    from r1video.demo.plot import find_logs, plot_run
    from r1video.model import build_tiny_model

    monkeypatch.setenv("COLUMNS", "60")  # a narrow terminal
    synth = generate_synthetic_dataset(tmp_path / "synth", n=4, n_test=1, n_coldstart=1, size=32, beats=8)
    build_tiny_model(tmp_path / "model")
    out = tmp_path / "run"
    argv = ["--config", str(GRPO_SMOKE), "--model_name_or_path", str(tmp_path / "model"),
            "--train_file", synth.grpo_train, "--video_root", synth.root, "--output_dir", str(out),
            "--save_steps", "1", "--max_completion_length", "6", "--reward_funcs", "accuracy", "format"]  # fmt: skip
    capsys.readouterr()  # the setup's own output
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert grpo.main([*argv, "--max_steps", "2"]) == 0
    # no deprecation warnings from r1video's model (`past_key_values`) or recipes (`gradient_checkpointing`)
    assert [str(w.message) for w in caught] == []
    captured = capsys.readouterr()
    printed = captured.out
    assert "training on CPU with 1 torch thread(s) per process (cpu_threads)" in printed
    assert captured.err == ""  # no progress bars, escape codes or library notices when not a terminal
    steps = [line for line in printed.splitlines() if line.startswith("step ")]
    assert [line.split(" |")[0] for line in steps] == ["step 1/2", "step 2/2"]
    assert all(len(line) < 250 and "accuracy_reward" in line for line in steps), steps
    samples = [line for line in printed.splitlines() if line.startswith("  ")]
    assert [line.split(" |")[0] for line in samples if line.startswith("  sample ")] == [
        "  sample 1/4 of step 1", "  sample 4/4 of step 1", "  sample 1/4 of step 2", "  sample 4/4 of step 2"]  # fmt: skip
    assert all(len(line) <= 60 for line in samples), samples
    assert "{'loss'" not in printed and "train metrics" not in printed
    summary = printed[printed.index("trained 2 steps") :].splitlines()
    assert summary[0].startswith("trained 2 steps in ") and summary[1].startswith("reward ")
    assert summary[2].startswith("format ") and " → " in summary[1] + summary[2]
    assert summary[3:] == [f"model  {out}", f"logs   {out / 'trainer_state.json'}, {out / 'completions.jsonl'}"]

    records = [json.loads(line) for line in (out / "completions.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1] * 4 + [2] * 4
    assert set(records[0]) == {"step", "prompt", "completion", "rewards", "reward", "advantage", "format"}
    assert set(records[0]["rewards"]) == {"accuracy_reward", "format_reward"}
    assert "Options" in records[0]["prompt"] or "A." in records[0]["prompt"]

    logs = find_logs(str(tmp_path))
    assert list(logs) == ["run"]  # not again for run/checkpoint-1 and run/checkpoint-2
    history = logs["run"]
    assert any("rewards/accuracy_reward/mean" in entry for entry in history)
    assert Path(plot_run(str(tmp_path))).exists()

    resumed = [*argv, "--max_steps", "3", "--resume_from_checkpoint", "true", "--allow_changed", "max_steps"]
    assert grpo.main([*resumed, "--quiet"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].startswith("trained 1 step in ") and lines[0].endswith("(resumed at step 2; now at step 3 of 3)")
    assert len(lines) == 5 and lines[-2] == f"model  {out}", lines  # the summary only
    assert captured.err == ""
    records = [json.loads(line) for line in (out / "completions.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1] * 4 + [2] * 4 + [3] * 4
