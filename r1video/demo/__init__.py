"""`r1video demo`: the TinyLLaVA-Video-R1 pipeline at toy scale on CPU, with no downloads.

Synthetic videos ([`r1video.data.synth`]) → a tiny model trained to answer with the option letter (the "base") →
a cold start on 16 reasoning-format samples (chosen by validation accuracy) → GRPO with the `tinyllava_r1` reward →
greedy held-out evaluation of every stage, as a table in the paper's shape. One module per stage:

- [`r1video.demo.settings`]: every knob, for the default run and `--fast`.
- [`r1video.demo.data`]: the data set and its splits (train, validation, test).
- [`r1video.demo.evaluate`]: greedy held-out accuracy in option or reason mode, per task, with format compliance.
- [`r1video.demo.base`], [`r1video.demo.coldstart`], [`r1video.demo.grpo`]: the three training stages.
- [`r1video.demo.pipeline`]: runs the stages in order and collects `results.json`.
- [`r1video.demo.report`]: the table; [`r1video.demo.plot`]: the curves of any run (`r1video plot RUN_DIR`).
"""
