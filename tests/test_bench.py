"""`r1video bench --quick`: every entry runs, reports both sides, and the facts that are not timing noise hold."""

import json
import os

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
        "clip-memory",
    ]
    assert "not_available" not in report  # demo-learning is run only when named
    assert {"cpu", "cores", "torch", "trl", "transformers", "av", "torch_threads"} <= report["machine"].keys()
    for result in report["results"]:
        assert result["target"] and result["rows"] and result["settings"] and result["metrics"]
        assert result["met"] in (True, False)


def test_decode_times_every_side_and_checks_the_frames(report):
    decode = entry(report, "decode")
    (clip,) = decode["metrics"]["clips"]
    assert clip["identical_to_full_decode"]
    repeats = decode["settings"]["repeats"]
    assert len(clip["seconds"]["r1video"]) == len(clip["seconds"]["full_decode"]) == repeats
    full = min(clip["seconds"]["full_decode"][0], clip["seconds"]["full_decode_one_thread"][0])  # one repeat
    assert clip["vs_full_decode"][0] == pytest.approx(full / clip["seconds"]["r1video"][0])


def test_decode_measures_the_clips_of_a_folder(tmp_path, capsys):
    from test_video_inputs import real_content_frames, write_clip

    write_clip(tmp_path / "content.mp4", real_content_frames(30), gop=10)
    (tmp_path / "notes.txt").write_text("not a clip")
    assert main(["decode", "--clips", str(tmp_path), "--repeats", "1", "--json", str(tmp_path / "out.json")]) == 0
    with open(tmp_path / "out.json") as f:
        (clip,) = entry(json.load(f), "decode")["metrics"]["clips"]
    assert (clip["clip"], clip["frames"], clip["keyframes"], clip["identical_to_full_decode"]) == (
        "content.mp4",
        30,
        3,
        True,
    )
    assert "content.mp4 (128x96, 30 frames, 3 keyframes)" in capsys.readouterr().out


def test_clip_memory_after_stays_below_before(report):
    result = entry(report, "clip-memory")
    clips = result["settings"]["clips"]
    before, after = result["metrics"][f"before_{clips}_clips"], result["metrics"][f"after_{clips}_clips"]
    assert after["input_bytes"] == before["input_bytes"] > 0
    assert after["peak_bytes"] < before["peak_bytes"]


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


def test_gpu_acceptance_tiny_runs_end_to_end_without_pyav_or_vllm(tmp_path):
    """`r1video bench gpu --tiny`: the acceptance run's code on CPU, with PyAV and vLLM made unimportable as on the
    target machine (clips are drawn in memory)."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['av'] = None; sys.modules['vllm'] = None\n"
        "from r1video.cli import main\n"
        f"sys.exit(main(['bench', 'gpu', '--tiny', '--out', {str(tmp_path)!r}]))\n"
    )
    # A fresh single process, as on the target: no process-group variables left by earlier in-process tests.
    dist_vars = {"RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"}
    env = {k: v for k, v in os.environ.items() if k not in dist_vars}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_acceptance.json").read_text())
    assert report["plan"]["timed_steps"] == len(report["grpo"]["reuse"]["steps"]) >= 1
    for side in ("reuse", "no_reuse"):
        grpo = report["grpo"][side]
        assert grpo["trained"] == {"llm": True, "connector": True, "vision_tower": False}
        median = grpo["median"]
        assert median["rollout_seconds"] > 0 and median["logprob_passes_seconds"] > 0 and median["update_seconds"] > 0
        assert median["rollout_tokens_per_second"] > 0
    assert set(report["eval"]) == {"batch_1", "batch_8"}
    assert all(entry["clips_per_second"] > 0 for entry in report["eval"].values())
    table = (tmp_path / "gpu_acceptance.md").read_text()
    assert "| vision reuse off |" in table and "| batch 8 |" in table
