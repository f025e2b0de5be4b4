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
