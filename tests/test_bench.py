"""`r1video bench --quick`: every entry runs, reports both sides, and the facts that are not timing noise hold."""

import json

import numpy as np
import pytest

from r1video.bench.cli import main


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    assert main(["--quick", "--json", str(path)]) == 0
    with open(path) as f:
        return json.load(f)


def entry(report, name):
    return next(result for result in report["results"] if result["name"] == name)


def test_every_entry_reports_target_rows_settings_and_the_machine(report, capsys):
    assert [r["name"] for r in report["results"]] == [
        "decode",
        "vision-reuse",
        "temporal-contrast",
        "overhead",
        "memory",
    ]
    assert "not_available" not in report  # demo-learning is run only when named
    assert {"cpu", "cores", "torch", "trl", "transformers", "av", "torch_threads"} <= report["machine"].keys()
    for result in report["results"]:
        assert result["target"] and result["rows"] and result["settings"] and result["metrics"]
        assert result["met"] in (True, False)


def test_decode_times_both_sides_on_the_uniform_frames(report):
    decode = entry(report, "decode")
    metrics = decode["metrics"]
    assert len(metrics["seconds_sampler"]) == len(metrics["seconds_full_decode"]) == decode["settings"]["repeats"]
    assert metrics["indices"] == np.linspace(0, metrics["total_frames"] - 1, 16, dtype=int).tolist()
    full = min(metrics["median_full_decode"], metrics["median_full_decode_one_thread"])
    assert metrics["speedup"] == pytest.approx(full / metrics["median_sampler"])


def test_vision_reuse_tower_sees_one_clip_once_per_step(report):
    result = entry(report, "vision-reuse")
    frames, g = result["settings"]["frames"], result["settings"]["num_generations"]
    on, off = result["metrics"]["tower_frames_reuse"], result["metrics"]["tower_frames_no_reuse"]
    assert on == {"policy": frames, "reference": 0}  # one prompt per step: one clip, encoded once
    # Without reuse each of the G rows re-encodes in generation and policy passes (policy model) and reference pass.
    assert off == {"policy": 2 * g * frames, "reference": g * frames}
    assert result["metrics"]["flops_real"]["vision_to_llm"] == pytest.approx(1.65, abs=0.01)


def test_temporal_contrast_adds_rollouts_not_tower_frames(report):
    result = entry(report, "temporal-contrast")
    frames = result["settings"]["frames"]
    metrics = result["metrics"]
    assert metrics["tower_frames_on"] == metrics["tower_frames_off"] == {"policy": frames, "reference": 0}
    assert result["settings"]["shuffled_generations"] == result["settings"]["num_generations"] // 2
    assert result["met"]


def test_overhead_compares_the_same_work(report):
    lengths = entry(report, "overhead")["metrics"]["completion_mean_length"]
    assert lengths["video"] == lengths["stock"]


def test_memory_vision_part_is_flat_in_g_with_reuse_and_grows_without(report):
    rows = entry(report, "memory")["metrics"]["by_group_size"]
    tower = {(r["num_generations"], r["reuse_vision"]): r["vision_tower_peak_bytes"] for r in rows}
    assert tower[(2, True)] == tower[(4, True)] > 0
    assert tower[(4, False)] == pytest.approx(2 * tower[(2, False)], rel=0.1)
    assert tower[(2, False)] > tower[(2, True)]


def test_unknown_entry_is_an_error():
    with pytest.raises(SystemExit):
        main(["no-such-entry"])
