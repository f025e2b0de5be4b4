"""What a run prints: GRPO samples readable in a narrow terminal and when piped, the step lines, the summary's
trend. (The end-to-end console of a real run is in tests/test_recipe_cli.py.)"""

from r1video.trainer.completions import format_samples
from r1video.trainer.console import compact_line, quarter_means


def _record(reward: float, completion: str, prompt: str = "Which way does the square move? A. left B. right") -> dict:
    return {"step": 3, "prompt": prompt, "completion": completion, "rewards": {"tinyllava_r1_reward": reward},
            "reward": reward, "advantage": reward - 0.5, "format": True}  # fmt: skip


def test_a_long_completion_keeps_its_answer_and_every_line_fits_the_width():
    """TRL's rich table cut piped output at 80 columns, losing the answer letter (`<answer>A…`)."""
    long = "<think>" + "the square moves to the right and then " * 20 + "</think><answer>B</answer>"
    text = format_samples([_record(2.0, long), _record(-2.0, "<answer>A</answer>")], shown=2, width=50)
    lines = text.splitlines()
    assert all(len(line) <= 50 for line in lines), lines
    assert lines[0] == "  sample 1/2 of step 3 | reward 2 | advantage +1.5"
    flat = " ".join(text.split())
    assert "| advantage +1.5 | tinyllava_r1_reward 2" in flat
    assert "…" in flat and "</think><answer>B</answer>" in flat  # start … end: the answer survives
    assert flat.count("prompt: ") == 1  # one prompt for the group's two samples
    assert "sample 2/2 of step 3 | reward -2" in flat and "completion: <answer>A</answer>" in flat


def test_samples_run_from_the_best_to_the_worst_reward():
    records = [_record(r, f"<answer>{r}</answer>", prompt=f"Q{r}") for r in (0.0, 3.0, 1.0, 2.0)]
    heads = [line for line in format_samples(records, shown=3, width=100).splitlines() if "sample" in line]
    assert [h.split(" |")[0] for h in heads] == ["  sample 1/4 of step 3", "  sample 3/4 of step 3",
                                                 "  sample 4/4 of step 3"]  # fmt: skip
    assert "reward 3 " in heads[0] and "reward 0 " in heads[-1]


def test_step_lines_leave_the_end_of_training_to_the_summary():
    assert compact_line({"train_runtime": 2.0, "train_loss": 0.1}, 4, 4) is None
    line = compact_line({"loss": 0.5, "reward": 1.0, "reward_std": 0.5, "rewards/format_reward/mean": 1.0}, 3, 4)
    assert line == "step 3/4 | loss 0.5 | reward 1 ± 0.5 | format_reward 1"


def test_quarter_means_compare_the_first_and_last_quarter():
    assert quarter_means([0.0, 0.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0]) == (0.0, 2.0)
    assert quarter_means([None, 1.0]) == (1.0, 1.0) and quarter_means([]) is None
