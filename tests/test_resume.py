"""Resuming: a run killed with SIGKILL ends with the weights of an uninterrupted one; a finished run trains no more;
a changed recipe is refused unless allowed (and then applied); incomplete checkpoints are skipped naming what is
missing; the bad-video tally carries over."""

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from smoke_runs import SMOKE_ENV, prepare_smoke_run

from r1video.policies import Clip
from r1video.runs import data_fingerprint, recipe_changes
from r1video.trainer.checkpoints import incomplete_reason, last_complete_checkpoint, resolve_resume
from r1video.trainer.rollout_buffer import load_rollout_buffer, save_rollout_buffer

REPO = Path(__file__).resolve().parents[1]
STAGES = {  # entry-point module -> its CPU smoke recipe
    "r1video.grpo": str(REPO / "recipes/tiny/grpo_smoke.yaml"),
    "r1video.sft": str(REPO / "recipes/tiny/coldstart_smoke.yaml"),
}
ENV = SMOKE_ENV


def _fake_checkpoint(path: Path, step: int, state: str | None = "ok", weights: bool = True) -> Path:
    path.mkdir(parents=True)
    if weights:
        save_file({"w": torch.zeros(2)}, path / "model.safetensors")
    if state == "ok":
        (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    elif state == "truncated":
        (path / "trainer_state.json").write_text('{"global_st')
    return path


def test_half_written_checkpoints_are_never_picked(tmp_path):
    _fake_checkpoint(tmp_path / "checkpoint-2", 2)
    _fake_checkpoint(tmp_path / "checkpoint-4", 4)
    _fake_checkpoint(tmp_path / "checkpoint-6", 6, state=None)  # killed before trainer_state.json
    _fake_checkpoint(tmp_path / "checkpoint-8", 8, state="truncated")  # killed while writing it
    _fake_checkpoint(tmp_path / "checkpoint-10", 10, weights=False)
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-4")
    assert resolve_resume(True, str(tmp_path)) == str(tmp_path / "checkpoint-4")
    assert resolve_resume("latest", str(tmp_path)) == str(tmp_path / "checkpoint-4")
    assert "interrupted" in incomplete_reason(tmp_path / "checkpoint-6")
    with pytest.raises(ValueError, match="truncated"):
        resolve_resume(str(tmp_path / "checkpoint-8"), str(tmp_path))
    assert resolve_resume(True, str(tmp_path / "empty")) is None
    assert resolve_resume(None, str(tmp_path)) is None


def _train(stage: str, output_dir: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", stage, "--config", STAGES[stage], "--output_dir", output_dir,
        "--max_steps", "6", "--save_strategy", "steps", "--save_steps", "2", "--logging_steps", "1", *extra,
    ]  # fmt: skip


# Killed once checkpoint-3 is written. Under `num_iterations` 2 or `steps_per_generation` 2 a generation cycle is two
# steps, so step 4 trains on rollouts buffered at step 3 and step 5 generates afresh: the resumed run must do the same.
SIGKILL_RUNS = [
    pytest.param("r1video.grpo", ["--num_iterations", "2"], id="grpo-num_iterations-2"),
    pytest.param(
        "r1video.grpo", ["--steps_per_generation", "2"], id="grpo-steps_per_generation-2", marks=pytest.mark.slow
    ),
    pytest.param("r1video.grpo", [], id="grpo", marks=pytest.mark.slow),
    pytest.param("r1video.sft", [], id="sft", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("stage", "extra"), SIGKILL_RUNS)
def test_sigkill_then_resume_ends_with_the_same_weights(tmp_path, stage, extra):
    prepare_smoke_run(tmp_path)
    extra = ["--save_steps", "1", *extra]

    subprocess.run(
        _train(stage, "runs/straight", *extra), cwd=tmp_path, env=ENV, check=True, capture_output=True, timeout=600
    )

    victim = subprocess.Popen(
        _train(stage, "runs/killed", *extra),
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    checkpoint = tmp_path / "runs/killed/checkpoint-3"
    deadline = time.time() + 300
    while incomplete_reason(checkpoint) is not None and victim.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()

    resumed = subprocess.run(
        _train(stage, "runs/killed", *extra, "--resume_from_checkpoint", "true", "--log_level", "info"),
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # from the odd step (a checkpoint-4 would mean the kill came a whole step late)
    assert re.search(r"resuming from runs/killed/checkpoint-3\b", resumed.stderr), resumed.stderr[-2000:]
    straight = load_file(tmp_path / "runs/straight/model.safetensors")
    after_kill = load_file(tmp_path / "runs/killed/model.safetensors")
    assert straight.keys() == after_kill.keys()
    for name, tensor in straight.items():
        assert torch.equal(tensor, after_kill[name]), name
    first = load_file(tmp_path / "runs/straight/checkpoint-2/model.safetensors")
    assert any(not torch.equal(first[k], straight[k]) for k in straight), "training did not change the weights"
    if stage == "r1video.grpo" and extra[2:]:  # the resume really began inside a cycle, from buffered rollouts
        assert load_rollout_buffer(str(checkpoint / "rollout_buffer.safetensors"))[2] is not None


def test_the_rollout_buffer_round_trips_bit_for_bit_with_each_shared_clip_stored_once(tmp_path):
    clip = Clip({"pixel_values_videos": torch.randn(8, 3, 32, 32)}, 8, list(range(0, 16, 2)))
    other = Clip({"pixel_values_videos": torch.randn(8, 3, 32, 32), "grid": torch.tensor([[4, 2, 2]])}, 8, [])
    encoding, other_encoding = torch.randn(8, 4), torch.randn(8, 4)
    logps = torch.randn(4, 16, dtype=torch.bfloat16)
    buffer = [
        {
            "completion_ids": torch.arange(32).view(4, 8)[:, ::2],  # a strided view
            "old_per_token_logps": logps[:2],
            "num_items_in_batch": torch.tensor(12.0),
            "video_clip": [clip, clip, None],
            "video_encoding": None,
        },
        {
            "completion_ids": torch.arange(8).view(2, 4),
            "old_per_token_logps": logps[2:],  # the same storage as slice 0's
            "num_items_in_batch": torch.tensor(12.0),
            "video_clip": [other, clip, None],
            "video_encoding": [other_encoding, encoding, None],
        },
    ]
    path = tmp_path / "rollout_buffer.safetensors"
    save_rollout_buffer(str(path), 3, [2, 1], buffer)
    step, cycle, loaded = load_rollout_buffer(str(path))
    assert (step, cycle) == (3, [2, 1])
    for saved, back in zip(buffer, loaded, strict=True):
        assert saved.keys() == back.keys()
        for key in ("completion_ids", "old_per_token_logps", "num_items_in_batch"):
            assert back[key].dtype == saved[key].dtype and torch.equal(back[key], saved[key]), key
        assert back["video_clip"][2] is None
        for a, b in zip(saved["video_clip"][:2], back["video_clip"][:2], strict=True):
            assert a.inputs.keys() == b.inputs.keys() and all(torch.equal(a.inputs[k], b.inputs[k]) for k in a.inputs)
            assert (a.num_frames, a.frame_indices) == (b.num_frames, b.frame_indices)
    assert loaded[0]["video_encoding"] is None and loaded[1]["video_encoding"][2] is None
    assert all(
        torch.equal(a, b)
        for a, b in zip(buffer[1]["video_encoding"][:2], loaded[1]["video_encoding"][:2], strict=True)
    )
    assert loaded[0]["video_clip"][0] is loaded[0]["video_clip"][1] is loaded[1]["video_clip"][1]
    pixels = clip.inputs["pixel_values_videos"]
    assert path.stat().st_size < 2.5 * pixels.numel() * 4, "a clip shared by rows was stored more than once"

    save_rollout_buffer(str(path), 4, [2, 1], None)  # at a generation boundary nothing is kept
    assert load_rollout_buffer(str(path)) == (4, [2, 1], None)
    with pytest.raises(TypeError, match="'prompts'"):
        save_rollout_buffer(str(path), 3, [2, 1], [{"prompts": ["a text"]}])


def test_resume_seams_still_exist_in_transformers():
    import inspect

    from transformers import Trainer

    def params(method):
        return list(inspect.signature(method).parameters)

    assert params(Trainer._load_from_checkpoint)[:3] == ["self", "resume_from_checkpoint", "model"]
    assert params(Trainer._init_training_state) == [
        "self", "max_steps", "num_update_steps_per_epoch", "num_train_epochs", "resume_from_checkpoint", "trial"
    ]  # fmt: skip
    assert params(Trainer._load_optimizer_and_scheduler) == ["self", "checkpoint"]
    assert params(Trainer._save_checkpoint) == ["self", "model", "trial"]


# A finished 6-step GRPO run (checkpoints 2, 4, 6) on data where every other clip is corrupt, shared by the tests
# below; each copies `runs/done` before changing it.


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("finished")
    prepare_smoke_run(workdir)
    for clip in sorted((workdir / "runs/synth/videos/train").glob("*.mp4"))[::2]:
        clip.write_bytes(clip.read_bytes()[:100])
    command = _train("r1video.grpo", "runs/done", "--max_bad_video_fraction", "1.0")
    subprocess.run(command, cwd=workdir, env=ENV, check=True, capture_output=True, timeout=600)
    assert _state(workdir / "runs/done/checkpoint-6")["stateful_callbacks"]["BadVideoTally"]["attributes"]["num_bad"]
    return workdir


def _state(checkpoint: Path) -> dict:
    return json.loads((checkpoint / "trainer_state.json").read_text())


def _copy_run(finished: Path, name: str, drop: tuple[str, ...] = ()) -> Path:
    run = finished / "runs" / name
    shutil.copytree(finished / "runs/done", run)
    for path in drop:
        shutil.rmtree(run / path) if (run / path).is_dir() else (run / path).unlink()
    return run


def _resume(finished: Path, name: str, *extra: str) -> subprocess.CompletedProcess:
    command = _train("r1video.grpo", f"runs/{name}", "--max_bad_video_fraction", "1.0")
    command += ["--resume_from_checkpoint", "true", *extra]
    return subprocess.run(command, cwd=finished, env=ENV, capture_output=True, text=True, timeout=600)


def _same_weights(a: Path, b: Path) -> bool:
    first, second = load_file(a), load_file(b)
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_resuming_a_finished_run_trains_nothing_and_says_where_it_resumed(finished):
    # Killed during its final save: checkpoint-6 of max_steps 6 is there, the final model is not.
    run = _copy_run(finished, "final-save-killed", drop=("model.safetensors",))
    resumed = _resume(finished, "final-save-killed")  # default log level
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not (run / "checkpoint-7").exists()
    assert _state(run / "checkpoint-6") == _state(finished / "runs/done/checkpoint-6")
    assert _same_weights(run / "model.safetensors", finished / "runs/done/model.safetensors")
    assert "resuming from runs/final-save-killed/checkpoint-6" in resumed.stderr, resumed.stderr[-2000:]


def test_resuming_a_finished_sft_run_trains_nothing(finished):
    # 16 rows at 4 a step: 4 steps an epoch, so max_steps 6 ends inside the second epoch.
    train = _train("r1video.sft", "runs/sft", "--save_steps", "6", "--max_bad_video_fraction", "1.0")
    subprocess.run(train, cwd=finished, env=ENV, check=True, capture_output=True, timeout=600)
    (finished / "runs/sft/model.safetensors").unlink()
    resumed = subprocess.run(
        [*train, "--resume_from_checkpoint", "true"],
        cwd=finished,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert sorted(p.name for p in (finished / "runs/sft").glob("checkpoint-*")) == ["checkpoint-6"]
    assert _same_weights(finished / "runs/sft/model.safetensors", finished / "runs/sft/checkpoint-6/model.safetensors")


def test_a_changed_recipe_is_refused_unless_allowed_and_an_allowed_learning_rate_takes_effect(finished):
    run = _copy_run(finished, "changed", drop=("checkpoint-6", "model.safetensors"))
    other_data = finished / "runs/synth/grpo_train_reversed.jsonl"
    lines = (finished / "runs/synth/grpo_train.jsonl").read_text().splitlines()
    other_data.write_text("\n".join(reversed(lines)) + "\n")

    refused = _resume(finished, "changed", "--learning_rate", "5e-3", "--train_file", str(other_data))
    # One line, exit 2, before the model loads (on 666becb: a traceback, exit 1, after loading it).
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert "Traceback" not in refused.stderr and "Loading weights" not in refused.stderr, refused.stderr[-3000:]
    assert refused.stderr.strip().splitlines()[-1].startswith("r1video grpo: error: resuming from runs/changed/")
    assert "learning_rate: 0.0001 → 0.005" in refused.stderr, refused.stderr[-2000:]
    assert re.search(
        r"train_file: 'local:grpo_train.jsonl#\w+' → 'local:grpo_train_reversed.jsonl#\w+'", refused.stderr
    )
    assert "--allow_changed learning_rate,train_file" in refused.stderr
    assert not (run / "checkpoint-6").exists()

    allowed = _resume(
        finished, "changed", "--learning_rate", "5e-3", "--allow_changed", "learning_rate",
        "--restore_callback_states_from_checkpoint", "true",  # transformers' own callback restore must not undo ours
    )  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr[-3000:]
    history = {entry["step"]: entry["learning_rate"] for entry in _state(run / "checkpoint-6")["log_history"]
               if "learning_rate" in entry}  # fmt: skip
    assert history == {1: 1e-4, 2: 1e-4, 3: 1e-4, 4: 1e-4, 5: 5e-3, 6: 5e-3}
    # The bad-video tally went on from checkpoint-4's, so it matches the uninterrupted run's.
    tally = _state(run / "checkpoint-6")["stateful_callbacks"]["BadVideoTally"]
    assert tally == _state(finished / "runs/done/checkpoint-6")["stateful_callbacks"]["BadVideoTally"]


def test_data_fingerprint_sees_a_changed_file_under_the_same_name(tmp_path):
    from types import SimpleNamespace

    data = tmp_path / "train.jsonl"
    data.write_text('{"a": 1}\n')
    stored = {"recipe": {"train_file": str(data)}, "data": data_fingerprint(SimpleNamespace(train_file=str(data)))}
    data.write_text('{"a": 2}\n')
    now = data_fingerprint(SimpleNamespace(train_file=str(data)))
    assert list(recipe_changes(stored, {"train_file": str(data)}, now)) == ["train_file"]
    assert recipe_changes(stored, {"train_file": str(data)}, stored["data"]) == {}


@pytest.mark.parametrize(
    "file", ["optimizer.pt", "scheduler.pt", "rng_state.pth", "rollout_buffer.safetensors", "trainer_state.json"]
)
def test_a_checkpoint_missing_a_file_its_save_wrote_is_skipped(finished, tmp_path, caplog, file):
    run = tmp_path / "run"
    shutil.copytree(finished / "runs/done", run)
    (run / "checkpoint-6" / file).unlink()
    with caplog.at_level(logging.WARNING):
        assert last_complete_checkpoint(run) == str(run / "checkpoint-4")
    assert "checkpoint-6: " in caplog.text and file in caplog.text
    with pytest.raises(ValueError, match=re.escape(file)):
        resolve_resume(str(run / "checkpoint-6"), str(run))


def test_a_model_only_checkpoint_is_complete(finished, tmp_path):
    checkpoint = tmp_path / "checkpoint-6"
    shutil.copytree(finished / "runs/done/checkpoint-6", checkpoint)
    state = _state(checkpoint)
    state["stateful_callbacks"]["RunRecord"]["attributes"]["saved_files"] = []  # as save_only_model records it
    (checkpoint / "trainer_state.json").write_text(json.dumps(state))
    for file in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
        (checkpoint / file).unlink()
    assert incomplete_reason(checkpoint) is None


def test_half_written_weights_are_skipped_and_the_run_resumes_from_the_newest_complete_checkpoint(finished):
    run = _copy_run(finished, "half-weights", drop=("model.safetensors",))
    weights = run / "checkpoint-6/model.safetensors"
    os.truncate(weights, weights.stat().st_size // 2)
    assert "model.safetensors" in incomplete_reason(run / "checkpoint-6")

    resumed = _resume(finished, "half-weights")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert re.search(
        r"not resuming from runs/half-weights/checkpoint-6: model.safetensors .*cut short", resumed.stderr
    )
    assert "resuming from runs/half-weights/checkpoint-4" in resumed.stderr
    assert _same_weights(run / "model.safetensors", finished / "runs/done/model.safetensors")


@pytest.mark.parametrize(
    ("file", "damage", "reason"),
    [
        ("optimizer.pt", "truncate", "optimizer.pt is cut short"),
        ("scheduler.pt", "empty", "scheduler.pt is empty"),
        ("rng_state.pth", "truncate", "rng_state.pth is cut short"),
        ("rollout_buffer.safetensors", "truncate", "rollout_buffer.safetensors is cut short"),
    ],
)
def test_a_cut_or_empty_state_file_makes_a_checkpoint_incomplete(finished, tmp_path, file, damage, reason):
    run = tmp_path / "run"
    shutil.copytree(finished / "runs/done", run)
    state = run / "checkpoint-6" / file
    os.truncate(state, 0 if damage == "empty" else state.stat().st_size // 2)
    assert incomplete_reason(run / "checkpoint-6").startswith(reason)
    assert last_complete_checkpoint(run) == str(run / "checkpoint-4")


def test_a_resume_over_a_cut_optimizer_state_falls_back_to_the_previous_checkpoint(finished):
    # On 666becb the cut optimizer.pt was taken as complete and the resume crashed in torch.load.
    run = _copy_run(finished, "cut-optimizer", drop=("model.safetensors",))
    optimizer = run / "checkpoint-6/optimizer.pt"
    os.truncate(optimizer, optimizer.stat().st_size - 100)
    resumed = _resume(finished, "cut-optimizer")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "not resuming from runs/cut-optimizer/checkpoint-6: optimizer.pt is cut short" in resumed.stderr
    assert "resuming from runs/cut-optimizer/checkpoint-4" in resumed.stderr
    assert _same_weights(run / "model.safetensors", finished / "runs/done/model.safetensors")


def test_a_run_copied_to_another_folder_resumes(finished, tmp_path):
    # The recipe's paths are relative (runs/tiny-model, runs/synth/...): on 666becb their absolute paths were hashed,
    # so the copy was refused as "a changed recipe".
    moved = tmp_path / "moved"
    for part in ("tiny-model", "synth", "done"):
        shutil.copytree(finished / "runs" / part, moved / "runs" / part)
    (moved / "runs/done/model.safetensors").unlink()
    command = _train(
        "r1video.grpo", "runs/done", "--max_bad_video_fraction", "1.0", "--resume_from_checkpoint", "true"
    )
    resumed = subprocess.run(command, cwd=moved, env=ENV, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from runs/done/checkpoint-6" in resumed.stderr
    assert _same_weights(moved / "runs/done/model.safetensors", finished / "runs/done/model.safetensors")


def test_a_new_run_into_a_folder_holding_another_runs_checkpoints_is_refused(finished):
    run = _copy_run(finished, "other-run")
    before = {path: path.read_bytes() for path in run.rglob("*") if path.is_file()}
    # No resume_from_checkpoint: on 666becb this started at step 1 and wrote its checkpoints over the old ones.
    command = _train("r1video.grpo", "runs/other-run", "--max_bad_video_fraction", "1.0", "--learning_rate", "5e-3")
    refused = subprocess.run(command, cwd=finished, env=ENV, capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert "Traceback" not in refused.stderr and "Loading weights" not in refused.stderr, refused.stderr[-3000:]
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith("r1video grpo: error: runs/other-run holds the checkpoints of another run"), last
    assert "learning_rate: 0.0001 → 0.005" in last and "--resume_from_checkpoint true --allow_changed" in last
    assert {path: path.read_bytes() for path in run.rglob("*") if path.is_file()} == before


def test_ctrl_c_says_where_the_last_checkpoint_is_and_the_same_command_resumes_without_overwriting(tmp_path):
    prepare_smoke_run(tmp_path)
    command = _train("r1video.grpo", "runs/ctrl-c", "--save_steps", "1")
    victim = subprocess.Popen(
        command, cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 300
    while incomplete_reason(tmp_path / "runs/ctrl-c/checkpoint-2") is not None and time.time() < deadline:
        assert victim.poll() is None, victim.communicate()[1][-3000:]
        time.sleep(0.05)
    victim.send_signal(signal.SIGINT)
    _, err = victim.communicate(timeout=300)
    # On 666becb: a 45-line traceback and no hint, exit 1; the same command again started at step 1.
    assert victim.returncode == 130, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    hint = re.search(
        r"^r1video grpo: interrupted; the last checkpoint is runs/ctrl-c/checkpoint-([2-5]): run the same command "
        r"again to resume from it$",
        err,
        re.MULTILINE,
    )
    assert hint, err[-2000:]
    last = int(hint.group(1))
    saved = {path: path.read_bytes() for path in (tmp_path / "runs/ctrl-c").glob("checkpoint-*/*") if path.is_file()
             and int(path.parent.name.split("-")[1]) <= last}  # fmt: skip

    again = subprocess.run(command, cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming from runs/ctrl-c/checkpoint-{last}" in again.stderr, again.stderr[-2000:]
    assert all(path.read_bytes() == content for path, content in saved.items()), "a saved checkpoint was overwritten"
    assert _state(tmp_path / "runs/ctrl-c/checkpoint-6")["global_step"] == 6
