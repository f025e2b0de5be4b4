"""`r1video eval` and `r1video infer` end to end on tiny benchmark copies with a tiny random model."""

import json
import os

import pytest
from eval_fixtures import MAKERS, MVBENCH_TASKS, write_clip

from r1video.eval import EvalConfig, build_prompt, get_benchmark, load_samples, run_evaluation
from r1video.eval import cli as eval_cli
from r1video.eval import infer as infer_cli
from r1video.model import build_tiny_model, load_pretrained
from r1video.policies import policy_for

EXPECTED = {  # benchmark -> (questions, groups, headline label)
    "mvbench": (5, ["Action Sequence", "Action Antonym", "Object Shuffle", "Episodic Reasoning"], "Avg (micro"),
    "videomme": (4, ["short", "medium", "long"], "Avg (micro"),
    "mlvu": (9, ["plotQA", "needle", "ego", "count", "order", "anomaly_reco", "topic_reasoning"], "M-Avg (macro"),
    "mmvu": (2, ["multiple-choice"], "Avg (micro"),
    "longvideobench": (3, ["8-15s", "15-60s"], "Avg (micro"),
}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny-model")
    build_tiny_model(out, seed=0)
    return str(out)


@pytest.fixture(scope="module")
def tiny(model_dir):
    return load_pretrained(model_dir)


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    root = tmp_path_factory.mktemp("benchmarks")
    return {name: make(root / name) for name, make in MAKERS.items()}


def _read_predictions(output_dir):
    with open(os.path.join(output_dir, "predictions.jsonl")) as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize("benchmark", list(EXPECTED))
def test_cli_scores_each_benchmark_and_saves_markdown_and_json(benchmark, copies, model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [
        "--benchmark",
        benchmark,
        "--data-dir",
        copies[benchmark],
        "--model",
        model_dir,
        "--output-dir",
        str(out),
        "--max-new-tokens",
        "4",
        "--frames",
        "4",
        "--batch-size",
        "2",
        "--no-progress",
    ]
    if benchmark == "mvbench":
        argv += ["--tasks", ",".join(MVBENCH_TASKS)]
    assert eval_cli.main(argv) == 0

    questions, groups, headline = EXPECTED[benchmark]
    printed = capsys.readouterr().out
    assert f"| **{headline}" in printed
    results = json.loads((out / "results.json").read_text())
    assert [g["name"] for g in results["groups"]] == groups
    assert results["counts"]["questions"] == questions
    assert results["settings"]["prompt"] == "reason" and results["settings"]["do_sample"] is False
    assert (out / "results.md").read_text() in printed
    records = _read_predictions(out)
    assert len(records) == questions
    # LongVideoBench's own rule: min(N, int(duration)) frames (its fixture clips last 3 s, 3 s and 2.5 s).
    counts = [3, 3, 2] if benchmark == "longvideobench" else [4] * questions
    assert [len(r["frame_indices"]) for r in records] == counts


def test_headline_policy_switch_reports_the_seeded_guess(copies, tiny, tmp_path):
    config = EvalConfig(
        "mlvu",
        copies["mlvu"],
        "tiny",
        output_dir=str(tmp_path),
        max_new_tokens=3,
        num_frames=2,
        no_answer="random",
        seed=3,
    )
    result = run_evaluation(config, *tiny, progress=False)
    head = result.results["headline"]
    assert head["reported"] == "random" and head["average"] == "macro"
    assert "Reported score (`--no-answer random`)" in result.markdown
    # A random 3-token completion never holds an <answer> tag: wrong under the default, guessed under the switch.
    assert head["no_answer_wrong"] == 0.0
    again = run_evaluation(config, *tiny, progress=False)  # resumed: same guesses, same score
    assert again.num_generated == 0 and again.results["headline"] == head


def test_protocol_is_applied_when_scoring_and_named_in_the_table(copies, tiny, tmp_path):
    common = dict(output_dir=str(tmp_path), max_new_tokens=3, num_frames=2, seed=3)
    robust = run_evaluation(EvalConfig("mlvu", copies["mlvu"], "tiny", **common), *tiny, progress=False)
    assert "answers read with the robust protocol" in robust.markdown
    assert robust.results["headline"]["protocol"] == "robust" and robust.results["headline"]["reported"] == "wrong"
    # The same stored completions, rescored with the original parser: no generation, its guess reported.
    original = run_evaluation(
        EvalConfig("mlvu", copies["mlvu"], "tiny", protocol="original", **common), *tiny, progress=False
    )
    assert original.num_generated == 0
    assert "answers read with the original protocol" in original.markdown
    assert original.results["headline"]["reported"] == "random"
    # With the option prompt, `original` is TinyLLaVA-Video's own parser (tests/test_eval_longvideobench.py).
    assert EvalConfig("mlvu", copies["mlvu"], "tiny", protocol="original", prompt="option").no_answer == "random"


def test_batched_generation_gives_the_greedy_answers_of_one_by_one(copies, tiny, tmp_path):
    # The questions differ in length, so the batch of 4 is really left-padded.
    samples = load_samples(EvalConfig("videomme", copies["videomme"], "tiny"))
    layouts = get_benchmark("videomme").layouts
    prompts = [build_prompt(s, "option", layouts, policy_for(tiny[0]), tiny[1]) for s in samples]
    assert len({len(tiny[1].tokenizer(p).input_ids) for p in prompts}) == 4
    common = dict(max_new_tokens=6, num_frames=4, prompt="option")
    one = run_evaluation(
        EvalConfig("videomme", copies["videomme"], "tiny", output_dir=str(tmp_path / "b1"), batch_size=1, **common),
        *tiny,
        progress=False,
    )
    four = run_evaluation(
        EvalConfig("videomme", copies["videomme"], "tiny", output_dir=str(tmp_path / "b4"), batch_size=4, **common),
        *tiny,
        progress=False,
    )
    assert one.num_generated == four.num_generated == 4
    completions = [r["completion"] for r in _read_predictions(one.output_dir)]
    assert [r["completion"] for r in _read_predictions(four.output_dir)] == completions
    assert any(completions)


class TestResume:
    def test_interrupted_run_resumes_where_it_stopped(self, copies, tiny, tmp_path):
        config = EvalConfig(
            "mlvu", copies["mlvu"], "tiny", output_dir=str(tmp_path), max_new_tokens=4, num_frames=2, batch_size=2
        )
        seen = []

        def stop_after_three(record):
            seen.append(record["id"])
            if len(seen) == 3:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            run_evaluation(config, *tiny, progress=False, on_record=stop_after_three)
        before = _read_predictions(tmp_path)
        assert [r["id"] for r in before] == seen == ["1_plotQA/0", "1_plotQA/1", "1_plotQA/2"]

        result = run_evaluation(config, *tiny, progress=False)
        after = _read_predictions(tmp_path)
        assert (result.num_resumed, result.num_generated) == (3, 6)
        assert after[:3] == before  # done answers were neither redone nor rewritten
        assert len({r["id"] for r in after}) == len(after) == 9

    def test_a_line_cut_by_a_kill_is_dropped_and_redone(self, copies, tiny, tmp_path):
        config = EvalConfig("mmvu", copies["mmvu"], "tiny", output_dir=str(tmp_path), max_new_tokens=3, num_frames=2)
        run_evaluation(config, *tiny, progress=False)
        path = tmp_path / "predictions.jsonl"
        lines = path.read_text().splitlines(keepends=True)
        path.write_text(lines[0] + lines[1][: len(lines[1]) // 2])  # killed while writing the second record
        result = run_evaluation(config, *tiny, progress=False)
        assert (result.num_resumed, result.num_generated) == (1, 1)
        assert [r["id"] for r in _read_predictions(tmp_path)] == ["mc-0", "mc-1"]

    def test_resuming_with_other_settings_is_refused_unless_overwriting(
        self, copies, tiny, model_dir, tmp_path, capsys
    ):
        config = EvalConfig(
            "mmvu", copies["mmvu"], model_dir, output_dir=str(tmp_path), max_new_tokens=3, num_frames=2
        )
        run_evaluation(config, *tiny, progress=False)
        argv = [
            "--benchmark",
            "mmvu",
            "--data-dir",
            copies["mmvu"],
            "--model",
            model_dir,
            "--output-dir",
            str(tmp_path),
            "--max-new-tokens",
            "3",
            "--frames",
            "2",
            "--prompt",
            "option",
            "--no-progress",
        ]
        assert eval_cli.main(argv) == 2
        assert "prompt: 'reason' -> 'option'" in capsys.readouterr().err
        assert eval_cli.main([*argv, "--overwrite"]) == 0
        assert json.loads((tmp_path / "results.json").read_text())["settings"]["prompt"] == "option"


def test_unreadable_video_is_counted_wrong_and_the_run_goes_on(copies, tiny, tmp_path):
    root = MAKERS["mmvu"](tmp_path / "MMVU")
    with open(os.path.join(root, "videos/Art/1.mp4"), "wb") as f:
        f.write(b"\x00" * 500)
    config = EvalConfig("mmvu", root, "tiny", output_dir=str(tmp_path / "out"), max_new_tokens=3, num_frames=2)
    result = run_evaluation(config, *tiny, progress=False)
    assert result.results["counts"]["video_errors"] == 1
    broken = [r for r in _read_predictions(tmp_path / "out") if r["id"] == "mc-1"][0]
    assert broken["status"] == "video_error" and "1.mp4" in broken["error"]


def test_missing_copy_fails_with_the_file_named(tmp_path, model_dir, capsys):
    argv = ["--benchmark", "videomme", "--data-dir", str(tmp_path), "--model", model_dir, "--no-progress"]
    assert eval_cli.main(argv) == 2  # bad input: a usage error, as the training commands' (1 before issue 28)
    assert "videomme/test-00000-of-00001.parquet: missing" in capsys.readouterr().err


def test_sampling_is_reproducible_with_a_seed(copies, tiny, tmp_path):
    def run(name):
        config = EvalConfig(
            "mmvu",
            copies["mmvu"],
            "tiny",
            output_dir=str(tmp_path / name),
            max_new_tokens=8,
            num_frames=2,
            do_sample=True,
            temperature=1.0,
            seed=5,
        )
        run_evaluation(config, *tiny, progress=False)
        return [r["completion"] for r in _read_predictions(tmp_path / name)]

    assert run("a") == run("b")


def test_infer_streams_the_answer_and_reports_the_option(model_dir, tmp_path, capsys):
    video = write_clip(str(tmp_path / "clip.mp4"))
    argv = [
        "--model",
        model_dir,
        "--video",
        video,
        "--question",
        "Which way does the square move?",
        "--options",
        "left",
        "right",
        "--frames",
        "4",
        "--max-new-tokens",
        "5",
        "--show-prompt",
    ]
    assert infer_cli.main(argv) == 0
    out = capsys.readouterr()
    assert "Which way does the square move?\nOptions:\nA. left\nB. right\nOutput the thinking" in out.out
    assert "\nAnswer: " in out.out
    assert "[4 frames of 24" in out.err


def test_infer_names_a_missing_or_unreadable_video(model_dir, tmp_path, capsys):
    argv = ["--model", model_dir, "--video", str(tmp_path / "none.mp4"), "--question", "What?"]
    assert infer_cli.main(argv) == 2
    assert capsys.readouterr().err == f"r1video infer: error: --video: file not found: {tmp_path / 'none.mp4'}\n"
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 500)
    argv = ["--model", model_dir, "--video", str(tmp_path / "bad.mp4"), "--question", "What?"]
    assert infer_cli.main(argv) == 2
    assert "r1video infer: error: cannot read the video:" in capsys.readouterr().err


def test_infer_and_eval_sample_the_frames_the_models_run_recorded(model_dir, copies, tmp_path, capsys):
    """A checkpoint trained on 4 frames is read with 4 unless --frames says otherwise (16 before issue 28)."""
    import shutil

    from r1video.trainer.checkpoints import RunRecord

    trained = shutil.copytree(model_dir, tmp_path / "trained")
    record = RunRecord(recipe={"num_frames": 4, "fps": None, "max_frames": None, "learning_rate": 1e-6})
    (trained / "trainer_state.json").write_text(json.dumps({"stateful_callbacks": {"RunRecord": record.state()}}))
    video = write_clip(str(tmp_path / "clip.mp4"))
    argv = ["--model", str(trained), "--video", video, "--question", "Which way?", "--max-new-tokens", "2"]
    assert infer_cli.main(argv) == 0
    err = capsys.readouterr().err
    assert "4 frames per clip, as the model's training run sampled" in err and "[4 frames of 24" in err
    assert infer_cli.main([*argv, "--frames", "3"]) == 0
    assert "[3 frames of 24" in capsys.readouterr().err
    assert infer_cli.main([*argv[:1], model_dir, *argv[2:]]) == 0  # no run record: 16
    assert "[16 frames of 24" in capsys.readouterr().err

    out = tmp_path / "eval"
    argv = ["--benchmark", "mmvu", "--data-dir", copies["mmvu"], "--model", str(trained), "--output-dir", str(out),
            "--limit", "1", "--max-new-tokens", "2"]  # fmt: skip
    assert eval_cli.main(argv) == 0
    assert json.loads((out / "results.json").read_text())["settings"]["num_frames"] == 4


def test_fps_mode_batches_videos_of_different_frame_counts(copies, tiny, tmp_path):
    config = EvalConfig(
        "mvbench",
        copies["mvbench"],
        "tiny",
        output_dir=str(tmp_path),
        tasks=MVBENCH_TASKS,
        fps=1.0,
        max_frames=8,
        batch_size=5,
        max_new_tokens=3,
    )
    result = run_evaluation(config, *tiny, progress=False)
    assert result.num_generated == 5
    # 3 s clips give 3 frames; the 10 s frame folder gives 10, capped at 8.
    assert [len(r["frame_indices"]) for r in _read_predictions(tmp_path)] == [3, 3, 3, 3, 8]


def _mmvu_argv(copies, model_dir, out) -> list[str]:
    return ["--benchmark", "mmvu", "--data-dir", copies["mmvu"], "--model", model_dir, "--output-dir", str(out),
            "--max-new-tokens", "3", "--frames", "2", "--no-progress"]  # fmt: skip


def test_an_eval_into_a_folder_another_run_holds_is_refused_in_one_line(copies, model_dir, tmp_path, capsys):
    from r1video.runs import run_lock

    out = tmp_path / "out"
    # On 666becb two evals into one folder both generated every question: 14 duplicate predictions in one file.
    with run_lock(str(out)):
        assert eval_cli.main(_mmvu_argv(copies, model_dir, out)) == 1
    err = capsys.readouterr().err
    assert f"r1video eval: error: {out} is in use by process {os.getpid()}" in err and len(err.splitlines()) == 1
    assert not (out / "predictions.jsonl").exists()
    assert eval_cli.main(_mmvu_argv(copies, model_dir, out)) == 0  # the lock is gone once its holder ends
    assert not (out / "_run.lock").exists()


def _can_mount_tmpfs() -> bool:
    import shutil
    import subprocess

    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"], capture_output=True, timeout=30
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs unprivileged user and mount namespaces for a small tmpfs")
def test_a_full_disk_during_eval_is_one_line_naming_the_file(copies, model_dir, tmp_path):
    import subprocess
    import sys

    (tmp_path / "small").mkdir()
    # A 64 KiB tmpfs with two 4 KiB pages left: the lock and run.json fit, the first prediction does not.
    fill = "mount -t tmpfs -o size=64k tmpfs small && dd if=/dev/zero of=small/fill bs=4k count=14 2>/dev/null"
    command = [sys.executable, "-m", "r1video", "eval", *_mmvu_argv(copies, model_dir, "small/out")]
    full = subprocess.run(
        ["unshare", "-rm", "sh", "-c", f'{fill} && exec "$@"', "sh", *command],
        cwd=tmp_path, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert full.returncode == 1, full.stderr[-3000:]
    assert "Traceback" not in full.stderr, full.stderr[-3000:]
    last = full.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "r1video eval: error: no space left on the device while writing small/out/predictions.jsonl"
    )
