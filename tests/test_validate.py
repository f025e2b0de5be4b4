"""`r1video data validate` finds every defect planted in a file, and nothing in a clean one."""

import json

import pytest
from video_fixtures import truncate, write_damaged_clip, write_numbered_clip, write_zero_frame_clip

from r1video.data.cli import main
from r1video.data.validate import validate_file

PROBLEM = "What colour is the box?\nA. red\nB. blue\nC. green\nD. white"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("validate")
    (root / "videos").mkdir()
    for name in ("a", "b", "c"):
        write_numbered_clip(root / "videos" / f"{name}.mp4", count=12)
    (root / "videos" / "notes.mp4").write_text("not a video")
    write_zero_frame_clip(root / "videos" / "blank.mp4")
    truncate(write_numbered_clip(root / "videos" / "cut.mp4", count=12), 0.5)
    write_damaged_clip(root / "videos" / "damaged.mp4", damaged_frame=30)  # off the path of the sampled frames
    return root


def grpo(video, problem=PROBLEM, solution="<answer>B</answer>"):
    return {"problem": problem, "solution": solution, "video_filename": f"./videos/{video}"}


# line -> (record as it is written, the problem `validate` must report there or None)
PLANTED = [
    (grpo("a.mp4"), None),
    ('{"problem": "broken", ', "invalid_json"),
    ({"problem": PROBLEM, "video_filename": "./videos/a.mp4"}, "missing_field"),
    (grpo("a.mp4", problem=5), "wrong_type"),
    (grpo("b.mp4", solution="<answer>E</answer>"), "answer_not_an_option"),
    (grpo("missing.mp4"), "video_missing"),
    (grpo("notes.mp4"), "video_corrupt"),
    (grpo("blank.mp4"), "video_no_frames"),
    ({**grpo("a.mp4"), "video_filename": "../outside.mp4"}, "path_escape"),
    (grpo("a.mp4"), "duplicate"),
    (grpo("cut.mp4"), "video_corrupt"),
    ([1, 2], "wrong_type"),
    (grpo("c.mp4", problem="Describe it.", solution="a box"), None),
    (grpo("damaged.mp4", problem="Which box?\nA. red\nB. blue"), "video_corrupt"),
]


def write_lines(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r, _ in records))
    return path


def test_finds_every_planted_defect(root):
    report = validate_file(write_lines(root / "planted.jsonl", PLANTED), root)
    found = {(issue.line, issue.code) for issue in report.issues}
    expected = {(line, code) for line, (_, code) in enumerate(PLANTED, start=1) if code}
    assert found == expected
    assert report.num_records == len(PLANTED) and not report.ok
    by_line = {issue.line: issue for issue in report.issues}
    assert by_line[3].field == "solution" and by_line[6].field == "video_filename"
    assert "line 1" in by_line[10].message  # the duplicate names the original
    assert "truncated" in by_line[11].message
    assert "damaged data: FFmpeg decodes frame 30 with errors" in by_line[14].message


def test_quick_validation_decodes_only_the_sampled_frames(root, capsys):
    damaged = write_lines(root / "damaged.jsonl", [(grpo("damaged.mp4"), None)])
    assert validate_file(damaged, root, full_decode=False).ok  # frames 0, 16, 32, 49 do not depend on frame 30
    assert main(["validate", str(damaged), "--video-root", str(root)]) == 1
    assert "frame 30" in capsys.readouterr().out
    assert main(["validate", str(damaged), "--video-root", str(root), "--quick"]) == 0


def test_clean_file_has_no_issues(root):
    clean = [(grpo(v), None) for v in ("a.mp4", "b.mp4", "c.mp4")]
    report = validate_file(write_lines(root / "clean.jsonl", clean), root)
    assert report.ok and report.issues == [] and report.num_videos == 3


def test_sft_json_reports_the_line_each_record_starts_on(root):
    records = [
        {
            "id": "1",
            "video": "videos/a.mp4",
            "conversations": [{"from": "human", "value": "<image>\n" + PROBLEM}, {"from": "gpt", "value": "B"}],
        },
        {
            "id": "2",
            "video": "videos/b.mp4",
            "conversations": [{"from": "gpt", "value": "B"}, {"from": "human", "value": "Q"}],
        },
        {
            "id": "1",
            "video": "videos/c.mp4",
            "conversations": [{"from": "user", "value": "<video>\nQ"}, {"from": "assistant", "value": "A"}],
        },
        {
            "id": "4",
            "video": "videos/c.mp4",
            "conversations": [{"from": "human", "value": "<image>\n" + PROBLEM}, {"from": "narrator", "value": "B"}],
        },
    ]
    text = json.dumps(records, indent=2)
    (root / "sft.json").write_text(text)
    starts = [i + 1 for i, line in enumerate(text.splitlines()) if line == "  {"]
    report = validate_file(root / "sft.json", root)
    found = {(issue.line, issue.code) for issue in report.issues}
    assert found == {(starts[1], "bad_conversation"), (starts[2], "duplicate"), (starts[3], "bad_conversation")}


def test_json_syntax_error_gives_its_line(root):
    (root / "broken.json").write_text('[\n  {"video": "videos/a.mp4"},\n  {"video": oops}\n]\n')
    report = validate_file(root / "broken.json", root)
    assert [(issue.line, issue.code) for issue in report.issues][-1] == (3, "invalid_json")


def test_cli_exit_codes_table_and_json(root, capsys):
    planted = write_lines(root / "planted_cli.jsonl", PLANTED)
    assert main(["validate", str(planted), "--video-root", str(root)]) == 1
    table = capsys.readouterr().out
    assert "video_missing" in table and "problems in" in table and "line 6:" in table

    assert main(["validate", str(planted), "--video-root", str(root), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["counts"]["video_corrupt"] == 3
    assert {"line", "field", "code", "message"} <= set(report["issues"][0])

    clean = write_lines(root / "clean_cli.jsonl", [(grpo("a.mp4"), None)])
    assert main(["validate", str(clean), "--video-root", str(root)]) == 0
    assert "OK" in capsys.readouterr().out


def test_empty_gold_answer_is_reported_with_file_and_line(root, capsys):
    # Every reward of such a row is None, so its steps would train nothing, silently.
    records = [(grpo("a.mp4"), None), (grpo("b.mp4", solution="<answer> </answer>"), "empty_answer")]
    path = write_lines(root / "empty_gold.jsonl", records)
    report = validate_file(path, root, check_videos=False)
    assert [(issue.line, issue.field, issue.code) for issue in report.issues] == [(2, "solution", "empty_answer")]
    assert main(["validate", str(path), "--video-root", str(root), "--no-decode"]) == 1
    out = capsys.readouterr().out
    assert "empty_gold.jsonl" in out and "2" in out and "empty gold answer" in out
