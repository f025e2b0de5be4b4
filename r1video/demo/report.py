"""The demo's results: the table in the paper's shape and the `results.json` payload."""

from r1video.demo.evaluate import ANSWER_TYPES

STAGES = {"base": "Base (option SFT)", "coldstart": "Cold start", "grpo": "GRPO (R1)"}
# The paper's three rows (seed-facts §10.2): the option-trained model, the cold start and R1, both in reason mode.
PAPER_ROWS = [("base", "option"), ("coldstart", "reason"), ("grpo", "reason")]


def format_table(evaluations: dict, tasks: list[str]) -> str:
    """A plain-text table: one row per (stage, answer type), accuracy per task and overall, format compliance.

    Args:
        evaluations: Stage → answer type → an evaluation dict (`accuracy`, `stderr`, `per_task`, `format`, `n`).
        tasks: Task columns, in order.
    """
    header = ["Stage", "Answer", *tasks, "Overall", "Format"]
    rows = []
    for stage, answer_type in PAPER_ROWS + [(s, a) for s in STAGES for a in ANSWER_TYPES if (s, a) not in PAPER_ROWS]:
        result = evaluations.get(stage, {}).get(answer_type)
        if result is None:
            continue
        fmt = "-" if result["format"] is None else f"{result['format']:.0f}%"
        rows.append(
            [
                STAGES[stage],
                ANSWER_TYPES[answer_type],
                *[f"{result['per_task'].get(t, 0.0):.1f}" for t in tasks],
                f"{result['accuracy']:.1f} ± {result['stderr']:.1f}",
                fmt,
            ]
        )
        if len(rows) == len(PAPER_ROWS):
            rows.append(None)  # rule between the paper's rows and the extra ones
    widths = [max(len(str(r[i])) for r in [header, *[r for r in rows if r]]) for i in range(len(header))]

    def line(cells):
        return "  ".join(
            str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    rule = "-" * len(line(header))
    out = [line(header), rule]
    out += [rule if r is None else line(r) for r in rows]
    n = next(iter(next(iter(evaluations.values())).values()))["n"]
    out.append(f"held-out accuracy (%, greedy, n={n} per row, ± = sampling error); format = strict think/answer")
    return "\n".join(out)


def pick_examples(before: list[dict], after: list[dict], n: int = 2) -> list[tuple[dict, dict]]:
    """`n` pairs `(before, after)` of prediction records of the same held-out questions: those GRPO turned right
    first, then those it kept right, then the rest, each in the file's order.

    Args:
        before, after: `predictions.jsonl` records of the cold start and of GRPO (`id`, `answer`, `prediction`,
            `completion`), in reason mode.
    """
    by_id = {record["id"]: record for record in before}
    pairs = [(by_id[record["id"]], record) for record in after if record["id"] in by_id]

    def rank(pair):
        was_right, is_right = (r["prediction"] == r["answer"] for r in pair)
        return 0 if is_right and not was_right else 1 if is_right else 2

    return sorted(pairs, key=rank)[:n]


def format_examples(pairs: list[tuple[dict, dict]], questions: dict[str, dict], width: int = 100) -> str:
    """The before/after lines of [`pick_examples`]' pairs: the question (options on one line) and the right letter,
    then each stage's reply (whitespace collapsed, the end kept when long) and the letter read from it.

    Args:
        questions: Question id → its benchmark record (`question`, `choices` `{letter: text}`, `answer`).
    """
    import textwrap

    lines = []
    for before, after in pairs:
        question = questions.get(after["id"], {})
        options = " ".join(f"{letter}. {text}" for letter, text in question.get("choices", {}).items())
        head = f"{question.get('question', after['id'])} {options} (right answer: {after['answer']})"
        lines += textwrap.wrap(head, width, initial_indent="  Q: ", subsequent_indent="     ")
        for label, record in (("cold start", before), ("GRPO", after)):
            reply = " ".join(record["completion"].split()) or "(empty)"
            if len(reply) > 2 * width:
                reply = reply[:40] + " … " + reply[-(2 * width - 43) :]
            verdict = "right" if record["prediction"] == record["answer"] else "wrong"
            text = f"{reply} → {record['prediction'] or 'no answer'} ({verdict})"
            lines += textwrap.wrap(text, width, initial_indent=f"  {label + ':':<12}", subsequent_indent=" " * 14)
    return "\n".join(lines)
