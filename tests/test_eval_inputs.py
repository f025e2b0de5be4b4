"""Evaluation inputs as real copies have them: annotation paths that leave the video root, damaged prediction files,
and results files that must not record local absolute paths."""

import json
import os

import pytest
from eval_fixtures import MAKERS, MVBENCH_TASKS, write_clip, write_json

from r1video.eval import BenchmarkDataError, EvalConfig, get_benchmark, run_evaluation
from r1video.eval.predictions import PredictionLog
from r1video.model import build_tiny_model, load_pretrained

ESCAPES = ["../../../outside/secret.mp4", "/etc/hostname"]


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    root = tmp_path_factory.mktemp("benchmarks")
    return {name: make(root / "copies" / name) for name, make in MAKERS.items()}


def _plant(benchmark: str, data_dir: str, name: str) -> None:
    """Make the first question of a copy point at `name`."""
    if benchmark in ("mvbench", "mlvu"):
        task_file = os.path.join(
            data_dir, "json", "object_shuffle.json" if benchmark == "mvbench" else "1_plotQA.json"
        )
        with open(task_file) as f:
            records = json.load(f)
        records[0]["video"] = name
        write_json(task_file, records)
    elif benchmark in ("mmvu", "longvideobench"):
        path = os.path.join(data_dir, "validation.json" if benchmark == "mmvu" else "lvb_val.json")
        with open(path) as f:
            records = json.load(f)
        records[0]["video" if benchmark == "mmvu" else "video_path"] = name
        write_json(path, records)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = os.path.join(data_dir, "videomme", "test-00000-of-00001.parquet")
        rows = pq.read_table(path).to_pylist()
        rows[0]["videoID"] = name.removesuffix(".mp4")
        pq.write_table(pa.Table.from_pylist(rows), path)


@pytest.mark.parametrize("name", ESCAPES, ids=["dotdot", "absolute"])
@pytest.mark.parametrize("benchmark", list(MAKERS))
def test_benchmark_video_paths_stay_inside_the_video_root(benchmark, name, tmp_path):
    data_dir = MAKERS[benchmark](tmp_path / benchmark)
    # A real file where the escaping path points, so only confinement (not a missing file) can stop it.
    write_clip(os.path.join(tmp_path, "outside", "secret.mp4"), count=4)
    _plant(benchmark, data_dir, name)
    with pytest.raises(BenchmarkDataError, match=r"(leaves|outside) the video root") as caught:
        get_benchmark(benchmark).load(data_dir, tasks=MVBENCH_TASKS if benchmark == "mvbench" else None)
    assert os.path.basename(name).removesuffix(".mp4") in str(caught.value)


def test_a_root_relative_absolute_path_still_reads_inside_the_root(copies):
    """As training does: `/x.mp4` is read under the root when it exists there (the original's `root + name`)."""
    _plant("mlvu", copies["mlvu"], "/1_plotQA_0.mp4")
    samples = get_benchmark("mlvu").load(copies["mlvu"], tasks=["plotQA"])
    assert samples[0].video == os.path.join(copies["mlvu"], "video", "1_plotQA", "1_plotQA_0.mp4")


@pytest.mark.parametrize("line", ["[]", "5", '"text"', "null", '{"status": "ok"}'])
def test_a_valid_json_line_that_is_not_a_record_names_file_and_line(tmp_path, line):
    path = tmp_path / "predictions.jsonl"
    path.write_text(json.dumps({"id": "a", "status": "ok"}) + "\n" + line + "\n")
    with pytest.raises(ValueError, match=r"predictions\.jsonl:2: not a prediction record"):
        PredictionLog(path)


def test_results_and_predictions_record_no_absolute_local_paths(copies, tmp_path):
    model_dir = tmp_path / "my-model"
    build_tiny_model(model_dir, seed=0)
    out = tmp_path / "results-here"
    data_dir = copies["mmvu"]
    config = EvalConfig("mmvu", data_dir, str(model_dir), output_dir=str(out), max_new_tokens=2, num_frames=2)
    with open(os.path.join(data_dir, "videos", "Art", "1.mp4"), "w") as f:
        f.write("not a video")  # one unreadable video: its error message is recorded too
    run_evaluation(config, *load_pretrained(model_dir), progress=False)

    written = {name: (out / name).read_text() for name in ("results.json", "results.md", "predictions.jsonl")}
    for name, text in written.items():
        for local in (str(tmp_path), str(model_dir), data_dir):
            assert local not in text, f"{name} records the local path {local}"
    settings = json.loads(written["results.json"])["settings"]
    assert (settings["model"], settings["data_dir"], settings["output_dir"]) == ("my-model", "mmvu", "results-here")
    records = [json.loads(line) for line in written["predictions.jsonl"].splitlines()]
    assert [r["video"] for r in records] == ["videos/Chemistry/0.mp4", "videos/Art/1.mp4"]
    assert "videos/Art/1.mp4" in records[1]["error"]


def test_a_task_file_saved_with_a_byte_order_mark_reads(tmp_path):
    data_dir = MAKERS["mlvu"](tmp_path / "mlvu")
    task_file = os.path.join(data_dir, "json", "1_plotQA.json")
    with open(task_file, "rb") as f:
        content = f.read()
    with open(task_file, "wb") as f:
        f.write(b"\xef\xbb\xbf" + content)
    assert len(get_benchmark("mlvu").load(data_dir, tasks=["plotQA"])) == len(json.loads(content))
