"""Results tables: a markdown table for people and a JSON file for scripts, both with the settings used."""

import json
import os

from r1video.eval.scoring import EMPTY, NO_LETTER, NO_TAG, VIDEO_ERROR, Scores

PROTOCOL_NOTES = {
    "robust": "r1video's answer reader, the same as the training reward's.",
    "original": "TinyLLaVA-Video-R1's parser, quirks included (first character of a single-line `<answer>`, "
    "then `(X)`, else a random guess).",
}


def results_payload(
    title: str,
    group_label: str,
    average: str,
    scores_wrong: Scores,
    scores_guess: Scores,
    records: list[dict],
    settings: dict,
) -> dict:
    """Everything the results files hold, as one JSON-able dict.

    Args:
        title: Benchmark display name.
        group_label: What a row is (`Task`, `Duration`).
        average: The headline average, `"micro"` or `"macro"`.
        scores_wrong: Scores with no answer counted wrong.
        scores_guess: Scores with the original's (seeded) random guess for no answer.
        records: The prediction records scored.
        settings: The run settings, stored as they are.
    """
    guess_by_group = {g.name: g for g in scores_guess.groups}
    statuses = [r["status"] for r in records]
    return {
        "benchmark": title,
        "headline": {
            "average": average,
            "no_answer_wrong": getattr(scores_wrong, average),
            "no_answer_random_guess": getattr(scores_guess, average),
            "reported": settings.get("no_answer") or "wrong",
            "protocol": settings.get("protocol", "robust"),
        },
        "micro": {"no_answer_wrong": scores_wrong.micro, "no_answer_random_guess": scores_guess.micro},
        "macro": {"no_answer_wrong": scores_wrong.macro, "no_answer_random_guess": scores_guess.macro},
        "group_label": group_label,
        "groups": [
            {
                "name": g.name,
                "total": g.total,
                "correct": g.correct,
                "accuracy": g.accuracy,
                "correct_random_guess": guess_by_group[g.name].correct,
                "accuracy_random_guess": guess_by_group[g.name].accuracy,
            }
            for g in scores_wrong.groups
        ],
        "counts": {
            "questions": len(records),
            "no_answer_tag": statuses.count(NO_TAG),
            "no_option_letter": statuses.count(NO_LETTER),
            "empty_answer": statuses.count(EMPTY),
            "video_errors": statuses.count(VIDEO_ERROR),
        },
        "settings": settings,
    }


def markdown_table(payload: dict) -> str:
    """The results as a markdown table, headline row last, followed by counts and settings."""
    reported = payload["headline"]["reported"]
    average = payload["headline"]["average"]
    group = payload["group_label"].lower()
    label = f"M-Avg (macro over {group}s)" if average == "macro" else "Avg (micro, all questions)"
    protocol = payload["headline"]["protocol"]
    lines = [
        f"### {payload['benchmark']} (answers read with the {protocol} protocol)",
        "",
        f"Protocol `--protocol {protocol}`: {PROTOCOL_NOTES.get(protocol, '')}",
        "",
        f"| {payload['group_label']} | N | Acc (no answer = wrong) | Acc (no answer = seeded random guess) |",
        "|---|---:|---:|---:|",
    ]
    for g in payload["groups"]:
        lines.append(f"| {g['name']} | {g['total']} | {g['accuracy']:.1f} | {g['accuracy_random_guess']:.1f} |")
    head = payload["headline"]
    lines.append(
        f"| **{label}** | {payload['counts']['questions']} | **{head['no_answer_wrong']:.1f}** "
        f"| **{head['no_answer_random_guess']:.1f}** |"
    )
    counts = payload["counts"]
    no_answer = counts["no_answer_tag"] + counts["no_option_letter"]
    lines += [
        "",
        f"Reported score (`--no-answer {reported}`): "
        f"**{head['no_answer_wrong' if reported == 'wrong' else 'no_answer_random_guess']:.1f}**. "
        f"No answer found in {no_answer} of {counts['questions']} completions "
        f"({counts['no_answer_tag']} without an `<answer>` tag, {counts['no_option_letter']} naming no option); "
        f"{counts['empty_answer']} empty answers (always wrong); {counts['video_errors']} unreadable videos "
        "(always wrong).",
        "",
        "Settings: " + ", ".join(f"{k}={v}" for k, v in payload["settings"].items()),
    ]
    return "\n".join(lines) + "\n"


def write_results(payload: dict, output_dir: str | os.PathLike) -> tuple[str, str]:
    """Write `results.json` and `results.md` into `output_dir`; returns their paths."""
    os.makedirs(output_dir, exist_ok=True)
    json_path = os.path.join(output_dir, "results.json")
    md_path = os.path.join(output_dir, "results.md")
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2)
        f.write("\n")
    with open(md_path, "w", encoding="utf-8") as f:
        f.write(markdown_table(payload))
    return json_path, md_path
