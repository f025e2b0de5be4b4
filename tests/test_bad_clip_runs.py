"""A real tiny GRPO run whose every clip fails to decode stops with one clear line and leaves no model behind.

It trained at loss 0 for every step, wrote its checkpoints, exited 0 and said "saved to ..." (the bad-video limit only
counted after 20 clips); with more steps it stopped with a traceback, its checkpoints of a model that saw no video
left in the folder.
"""

import subprocess
import sys
from pathlib import Path

import pytest
from grpo_fixtures import tiny_grpo_config, varied_reward
from smoke_runs import SMOKE_ENV, prepare_smoke_run

from r1video.data.bad_samples import TooManyBadSamplesError
from r1video.data.loaders import load_grpo_dataset
from r1video.data.synth import generate_synthetic_dataset
from r1video.model import build_tiny_model, load_pretrained
from r1video.model.templates import QUESTION_TEMPLATES
from r1video.trainer import VideoGRPOTrainer

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def broken_clips(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("broken")
    prepare_smoke_run(workdir)
    for clip in (workdir / "runs/synth/videos").rglob("*.mp4"):
        clip.write_bytes(clip.read_bytes()[:100])  # an interrupted download: no clip decodes
    return workdir


def _grpo(workdir: Path, output_dir: str, *extra: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "r1video.grpo", "--config", str(REPO / "recipes/tiny/grpo_smoke.yaml"),
        "--output_dir", output_dir, "--save_strategy", "steps", "--save_steps", "1", *extra,
    ]  # fmt: skip
    return subprocess.run(command, cwd=workdir, env=SMOKE_ENV, capture_output=True, text=True, timeout=600)


def _error_line(result: subprocess.CompletedProcess) -> str:
    errors = [line for line in result.stderr.splitlines() if line.startswith("r1video grpo: error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    return errors[0]


def _left_behind(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("checkpoint-") or p.suffix == ".safetensors")


def test_a_run_whose_clips_all_fail_stops_at_the_third_clip(broken_clips):
    # One clip per step (1 prompt x 4 rollouts): at the default limit of 5%, 3 failures in a row stop the run.
    result = _grpo(broken_clips, "runs/all-bad", "--max_steps", "6")
    assert result.returncode == 1, result.stderr[-2000:]
    assert _error_line(result).startswith("r1video grpo: error: the first 3 videos all failed to decode")
    assert "Traceback" not in result.stderr and "saved to" not in result.stdout + result.stderr
    assert "checkpoint-1 not saved" in result.stderr and "checkpoint-2 not saved" in result.stderr
    assert _left_behind(broken_clips / "runs/all-bad") == []


def test_a_run_that_ends_before_the_limit_acts_saves_nothing(tmp_path):
    # 2 clips per step at a 50% limit: 2 failures in a row are no proof (0.5 ** 2), and the run ends after one step
    # with no video decoded. The checkpoint due at step 1 is not written and `train` raises instead of returning.
    dataset = generate_synthetic_dataset(
        tmp_path / "synth", n=4, n_test=1, n_coldstart=1, size=32, beats=8, frames_per_beat=1
    )
    for clip in (tmp_path / "synth").rglob("*.mp4"):
        clip.write_bytes(b"")
    rows = load_grpo_dataset(dataset.grpo_train, dataset.root, question_template=QUESTION_TEMPLATES["r1"])
    build_tiny_model(tmp_path / "model")
    model, processor = load_pretrained(tmp_path / "model")
    args = tiny_grpo_config(tmp_path, save_strategy="steps", save_steps=1, max_bad_video_fraction=0.5)
    trainer = VideoGRPOTrainer(
        model=model, reward_funcs=varied_reward, args=args, train_dataset=rows, processing_class=processor
    )
    with pytest.raises(TooManyBadSamplesError, match="training ended with no video decoded: the 2 clips tried"):
        trainer.train()
    assert not (tmp_path / "out").exists() or _left_behind(tmp_path / "out") == []
