"""`r1video bench vision-reuse --policy all --quick`: one table across every registered family, through the policy
interface alone (a family added by registration is measured without a change here)."""

import json

import pytest
import torch

from r1video.bench.cli import main
from r1video.policies import family_names
from r1video.policies.base import VideoPolicy


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench-families") / "bench.json"
    assert main(["vision-reuse", "--policy", "all", "--quick", "--json", str(path)]) == 0
    return json.loads(path.read_text())


def test_every_registered_family_is_measured_in_one_table(report):
    names = list(family_names())
    assert {"tinyllava_video", "qwen2_5_vl", "qwen3_vl", "qwen3_5", "llava_onevision", "smolvlm"} <= set(names)
    assert [r["settings"]["policy"] for r in report["results"]] == names
    table = report["families_table"].splitlines()
    assert table[0].startswith("| family | encoder frames on / off / TRL |")
    assert [line.split("|")[1].strip() for line in table[2:]] == names


def test_reuse_on_encodes_the_clip_once_and_reuse_off_in_every_row_of_every_pass(report):
    for result in report["results"]:
        frames, g = result["settings"]["frames"], result["settings"]["num_generations"]
        seen = result["metrics"]["encoder_frames"]
        # one prompt per step: one distinct clip, its frames through the frozen encoder once
        assert seen["reuse"] == {"policy": frames, "reference": 0}, result["name"]
        # reuse off: G rows re-encode it in generation and policy passes (policy model) and the reference pass
        assert seen["no_reuse"] == {"policy": 2 * g * frames, "reference": g * frames}, result["name"]
        assert result["met"] is True
        medians = result["metrics"]["median_seconds"]
        assert medians["reuse"] > 0 and medians["no_reuse"] > 0
        # TRL's GRPOTrainer fed the frames as images: measured, or the one-line reason it cannot be
        assert ("trl" in seen) != bool(result["metrics"]["trl_missing"]), result["name"]
        if "trl" in seen:
            assert sum(seen["trl"].values()) >= sum(seen["no_reuse"].values())


def test_families_without_a_flop_model_say_n_a(report):
    by_name = {r["settings"]["policy"]: r for r in report["results"]}
    assert by_name["smolvlm"]["metrics"]["flops"] is None
    assert "n/a" in dict(map(tuple, by_name["smolvlm"]["rows"]))["vision/LLM forward FLOPs, real / tiny"]
    assert by_name["qwen2_5_vl"]["metrics"]["flops"]["real"]["vision_to_llm"] == pytest.approx(0.66, abs=0.01)
    assert by_name["tinyllava_video"]["metrics"]["flops"]["real"]["vision_to_llm"] == pytest.approx(1.65, abs=0.01)


def test_encoder_frames_reads_pixel_values_given_as_a_keyword():
    """SmolVLM2 calls its encoder with `pixel_values=` as a keyword: a hook reading only positional arguments sees
    none."""
    pixels = torch.zeros(5, 3, 8, 8)
    assert VideoPolicy().encoder_frames(None, (), {"pixel_values": pixels}) == 5
    assert VideoPolicy().encoder_frames(None, (pixels,), {}) == 5


def test_an_unknown_family_is_one_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["vision-reuse", "--policy", "qwen2_5_v", "--quick"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "no registered family 'qwen2_5_v'" in err and "qwen2_5_vl" in err


def test_only_per_family_entries_take_a_policy(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["decode", "--policy", "qwen2_5_vl"])
    assert exit_info.value.code == 2
    assert "not measured per family" in capsys.readouterr().err
