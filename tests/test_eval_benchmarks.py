"""Benchmark loaders read the published layouts, and a missing or malformed copy names the file at fault."""

import json
import os

import pytest
from eval_fixtures import MVBENCH_TASKS, make_mlvu, make_mmvu, make_mvbench, make_videomme, write_json

from r1video.eval import BenchmarkDataError, EvalConfig, get_benchmark, load_samples
from r1video.eval.benchmarks import mlvu, mmvu, mvbench, videomme


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    root = tmp_path_factory.mktemp("benchmarks")
    return {
        "mvbench": make_mvbench(root / "MVBench"),
        "videomme": make_videomme(root / "Video-MME"),
        "mlvu": make_mlvu(root / "MLVU"),
        "mmvu": make_mmvu(root / "MMVU"),
    }


class TestMVBench:
    def test_reads_task_files_with_answer_letters_and_video_paths(self, copies):
        samples = mvbench.load(copies["mvbench"], tasks=MVBENCH_TASKS)
        assert [s.group for s in samples] == [
            "Action Sequence",
            "Action Sequence",
            "Action Antonym",
            "Object Shuffle",
            "Episodic Reasoning",
        ]
        first = samples[0]
        assert first.id == "action_sequence/0"
        assert first.choices == ("Sat.", "Ran.") and first.answer == "B"
        assert first.video == os.path.join(copies["mvbench"], "video", "star/Charades_v1_480", "AAA.mp4")

    def test_readers_follow_the_original(self, copies):
        by_group = {s.group: s for s in mvbench.load(copies["mvbench"], tasks=MVBENCH_TASKS)}
        # Plain video tasks ignore start/end, as the original's pytorchvideo reader did.
        assert (by_group["Action Sequence"].reader, by_group["Action Sequence"].bound) == ("uniform", None)
        assert (by_group["Action Antonym"].reader, by_group["Action Antonym"].bound) == ("segments", None)
        assert (by_group["Episodic Reasoning"].reader, by_group["Episodic Reasoning"].bound) == (
            "frame_dir",
            (2.0, 8.0),
        )

    def test_respect_bounds_samples_bounded_video_tasks_inside_their_bound(self, copies):
        samples = mvbench.load(copies["mvbench"], tasks=["action_sequence"], respect_bounds=True)
        assert [(s.reader, s.bound) for s in samples] == [("segments", (1.0, 2.0)), ("segments", (0.5, 2.5))]

    def test_missing_task_file_is_named(self, copies):
        # The copy has 4 of the 20 task files; asking for all of them names the first one missing.
        with pytest.raises(BenchmarkDataError, match=r"json/action_prediction.json: missing \(MVBench task file"):
            mvbench.load(copies["mvbench"])

    def test_unknown_task_lists_the_known_ones(self, copies):
        with pytest.raises(ValueError, match="unknown MVBench task.*Action Sequence"):
            mvbench.load(copies["mvbench"], tasks=["cooking"])


class TestVideoMME:
    def test_reads_the_parquet_with_duration_groups(self, copies):
        samples = videomme.load(copies["videomme"])
        assert [s.group for s in samples] == ["short", "short", "medium", "long"]
        assert samples[0].choices == ("One.", "Two.", "Three.", "Four.")
        assert [s.answer for s in samples] == ["A", "C", "B", "D"]
        assert samples[0].id == "000-1"
        assert samples[0].video == os.path.join(copies["videomme"], "data", "vid0.mp4")

    def test_videos_folder_is_used_when_there_is_no_data_folder(self, tmp_path):
        root = make_videomme(tmp_path / "Video-MME")
        os.rename(os.path.join(root, "data"), os.path.join(root, "videos"))
        assert videomme.load(root)[0].video == os.path.join(root, "videos", "vid0.mp4")

    def test_duration_selection(self, copies):
        assert [s.group for s in videomme.load(copies["videomme"], tasks=["long"])] == ["long"]

    def test_missing_parquet_is_named(self, tmp_path):
        with pytest.raises(BenchmarkDataError, match="videomme/test-00000-of-00001.parquet: missing"):
            videomme.load(tmp_path)

    def test_corrupt_parquet_is_named(self, tmp_path):
        (tmp_path / "videomme").mkdir()
        (tmp_path / "videomme/test-00000-of-00001.parquet").write_bytes(b"not parquet")
        with pytest.raises(BenchmarkDataError, match="not a readable parquet file"):
            videomme.load(tmp_path)


class TestMLVU:
    def test_reads_the_seven_multiple_choice_tasks(self, copies):
        samples = mlvu.load(copies["mlvu"])
        assert list(dict.fromkeys(s.group for s in samples)) == list(mlvu.TASKS)
        assert len(samples) == 9
        assert samples[0].answer == "B"
        assert samples[0].video == os.path.join(copies["mlvu"], "video", "1_plotQA", "1_plotQA_0.mp4")

    def test_task_selection_accepts_file_stems(self, copies):
        assert {s.group for s in mlvu.load(copies["mlvu"], tasks=["4_count", "ego"])} == {"count", "ego"}


class TestMMVU:
    def test_reads_multiple_choice_only_and_maps_the_download_url_to_the_copy(self, copies):
        samples = mmvu.load(copies["mmvu"])
        assert [s.id for s in samples] == ["mc-0", "mc-1"]
        assert samples[0].choices[1] == "Hydrogen" and samples[0].answer == "B"
        assert samples[0].video == os.path.join(copies["mmvu"], "videos/Chemistry/0.mp4")


class TestMalformedCopies:
    def test_bad_json_is_named_with_its_line(self, tmp_path):
        (tmp_path / "validation.json").write_text('[{"id": 1,}]')
        with pytest.raises(BenchmarkDataError, match=r"validation.json: not valid JSON .*line 1"):
            mmvu.load(tmp_path)

    def test_missing_field_names_file_and_record(self, tmp_path):
        write_json(tmp_path / "json/1_plotQA.json", [{"video": "a.mp4", "question": "q?", "answer": "x"}])
        with pytest.raises(BenchmarkDataError, match=r"1_plotQA.json: record 0: missing field 'candidates'"):
            mlvu.load(tmp_path, tasks=["plotQA"])

    def test_answer_not_among_candidates_is_an_error(self, tmp_path):
        record = {"video": "a.mp4", "question": "q?", "candidates": ["x", "y"], "answer": "z"}
        write_json(tmp_path / "json/object_shuffle.json", [record])
        with pytest.raises(BenchmarkDataError, match="record 0: answer 'z' is not one of the candidates"):
            mvbench.load(tmp_path, tasks=["Object Shuffle"])

    def test_missing_videos_are_listed_before_any_model_loads(self, tmp_path):
        root = make_mmvu(tmp_path / "MMVU")
        os.remove(os.path.join(root, "videos/Art/1.mp4"))
        config = EvalConfig(benchmark="mmvu", data_dir=root, model="never-loaded")
        with pytest.raises(BenchmarkDataError, match=r"1 of 2 videos are missing:\n.*videos/Art/1.mp4.*sample mc-1"):
            load_samples(config)

    def test_limit_keeps_the_first_questions_of_each_group(self, copies):
        config = EvalConfig(benchmark="mlvu", data_dir=copies["mlvu"], model="m", limit=1)
        samples = load_samples(config)
        assert len(samples) == 7 and samples[0].id == "1_plotQA/0"

    def test_every_benchmark_is_registered_with_both_prompt_layouts(self):
        for name in ["mvbench", "videomme", "mlvu", "mmvu"]:
            assert set(get_benchmark(name).layouts) == {"reason", "option"}
        with pytest.raises(ValueError, match="unknown benchmark"):
            get_benchmark("nextqa")


def test_fixture_layout_matches_the_published_file_names(copies):
    """The fixture is only useful if it uses the real names; the loaders' tables are the reference."""
    assert os.path.exists(os.path.join(copies["videomme"], videomme.PARQUET))
    for stem in mlvu.TASKS.values():
        assert os.path.exists(os.path.join(copies["mlvu"], "json", f"{stem}.json"))
    with open(os.path.join(copies["mmvu"], "validation.json")) as f:
        assert {r["question_type"] for r in json.load(f)} == {"multiple-choice", "open-ended"}
