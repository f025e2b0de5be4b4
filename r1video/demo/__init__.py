"""`r1video demo`: the TinyLLaVA-Video-R1 pipeline at toy scale on CPU, with no downloads, on the user's path.

Synthetic videos ([`r1video.data.synth`]) → a tiny model trained to answer with the option letter (the "base") →
a cold start on 16 reasoning-format samples (chosen by validation accuracy) → GRPO with the `tinyllava_r1` reward →
greedy held-out evaluation of every stage, as a table in the paper's shape. Every training stage is a recipe
(`recipes/demo/*.yaml`) run through the entry points of `r1video sft` / `r1video grpo`, and every evaluation goes
through `r1video eval`'s runner; this package is the glue:

- [`r1video.demo.settings`]: what only the demo decides (data sizes, cold-start replay, evaluation, `--fast`).
- [`r1video.demo.data`]: the data set, the recipes' training files, and benchmark folders in MMVU's layout.
- [`r1video.demo.stages`]: a recipe run as the CLI runs it; the random initial model (`recipes/demo/model.yaml`).
- [`r1video.demo.evaluate`]: a checkpoint through the eval runner, with per-task accuracy and format compliance.
- [`r1video.demo.pipeline`]: the stages in order, the cold-start choice on validation, `results.json`.
- [`r1video.demo.report`]: the table; [`r1video.demo.plot`]: the curves of any run (`r1video plot RUN_DIR`).
"""
