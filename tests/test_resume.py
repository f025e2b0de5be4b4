"""A GRPO run killed with SIGKILL and resumed ends with the same weights as an uninterrupted run."""

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from smoke_runs import SMOKE_ENV, prepare_smoke_run

from r1video.trainer.checkpoints import incomplete_reason, last_complete_checkpoint, resolve_resume

REPO = Path(__file__).resolve().parents[1]
STAGES = {  # entry-point module -> its CPU smoke recipe
    "r1video.grpo": str(REPO / "recipes/tiny/grpo_smoke.yaml"),
    "r1video.sft": str(REPO / "recipes/tiny/coldstart_smoke.yaml"),
}
ENV = SMOKE_ENV


def _fake_checkpoint(path: Path, step: int, state: str | None = "ok", weights: bool = True) -> Path:
    path.mkdir(parents=True)
    if weights:
        (path / "model.safetensors").write_bytes(b"x")
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


# The default run keeps GRPO's (it is also the default run's end-to-end GRPO from a fresh interpreter); SFT's takes
# as long again and runs with `-m slow`.
@pytest.mark.parametrize("stage", ["r1video.grpo", pytest.param("r1video.sft", marks=pytest.mark.slow)])
def test_sigkill_then_resume_ends_with_the_same_weights(tmp_path, stage):
    prepare_smoke_run(tmp_path)

    subprocess.run(_train(stage, "runs/straight"), cwd=tmp_path, env=ENV, check=True, capture_output=True, timeout=600)

    victim = subprocess.Popen(
        _train(stage, "runs/killed"), cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    checkpoint = tmp_path / "runs/killed/checkpoint-4"
    deadline = time.time() + 300
    while incomplete_reason(checkpoint) is not None and victim.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert not (tmp_path / "runs/killed/model.safetensors").exists(), "the run finished before it could be killed"

    resumed = subprocess.run(
        _train(stage, "runs/killed", "--resume_from_checkpoint", "true", "--log_level", "info"),
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert re.search(r"resuming from runs/killed/checkpoint-[46]\b", resumed.stderr), resumed.stderr[-2000:]
    straight = load_file(tmp_path / "runs/straight/model.safetensors")
    after_kill = load_file(tmp_path / "runs/killed/model.safetensors")
    assert straight.keys() == after_kill.keys()
    for name, tensor in straight.items():
        assert torch.equal(tensor, after_kill[name]), name
    first = load_file(tmp_path / "runs/straight/checkpoint-2/model.safetensors")
    assert any(not torch.equal(first[k], straight[k]) for k in straight), "training did not change the weights"


def test_resume_seam_still_exists_in_transformers():
    import inspect

    from transformers import Trainer

    params = list(inspect.signature(Trainer._load_from_checkpoint).parameters)
    assert params[:3] == ["self", "resume_from_checkpoint", "model"]
