"""`r1video eval` and `r1video infer` on a real 4K clip: each frame is preprocessed as it is decoded, as in training.

A 3840x2160 RGB frame is 24.9 MB; the clips here have 4 frames. Decoded whole (the old path), eval and infer held the
stacked clip (99.5 MB) before preprocessing it; preprocessed frame by frame, only the model's `[4, 3, S, S]` input is
kept. `tracemalloc` sees every array numpy allocates, which is where a held clip lives.
"""

import os
import shutil
import tracemalloc

import pytest
from eval_fixtures import make_mmvu, write_4k_clip

from r1video.eval import EvalConfig, run_evaluation
from r1video.eval import infer as infer_cli
from r1video.model import build_tiny_model, load_pretrained

FULL_FRAME = 3840 * 2160 * 3  # bytes of one RGB frame


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny-model")
    build_tiny_model(out, seed=0)
    return str(out)


@pytest.fixture(scope="module")
def clip_4k(tmp_path_factory):
    return write_4k_clip(str(tmp_path_factory.mktemp("4k") / "clip.mp4"))


def _peak_bytes(run) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_eval_preprocesses_a_4k_clip_frame_by_frame(model_dir, clip_4k, tmp_path):
    root = make_mmvu(tmp_path / "mmvu")
    for name in ("videos/Chemistry/0.mp4", "videos/Art/1.mp4"):  # the benchmark's clips, now in 4K
        shutil.copy(clip_4k, os.path.join(root, name))
    model, processor = load_pretrained(model_dir)
    config = EvalConfig("mmvu", root, "tiny", output_dir=str(tmp_path / "out"), num_frames=4, max_new_tokens=2)
    results = []
    peak = _peak_bytes(lambda: results.append(run_evaluation(config, model, processor, progress=False)))
    assert results[0].num_generated == 2
    assert peak < 2 * FULL_FRAME, f"eval held {peak / 2**20:.0f} MiB of arrays for a 4-frame 4K clip"


def test_infer_preprocesses_a_4k_clip_frame_by_frame(model_dir, clip_4k, capsys):
    argv = ["--model", model_dir, "--video", clip_4k, "--question", "What?", "--frames", "4", "--max-new-tokens", "2"]
    # A first run imports what infer loads lazily (the model families, the console); those imports would count as
    # held memory, depending on which tests ran before.
    assert infer_cli.main(argv) == 0
    capsys.readouterr()
    codes = []
    peak = _peak_bytes(lambda: codes.append(infer_cli.main(argv)))
    assert codes == [0] and "[4 frames of 4" in capsys.readouterr().err
    assert peak < 2 * FULL_FRAME, f"infer held {peak / 2**20:.0f} MiB of arrays for a 4-frame 4K clip"
