"""The lmms-eval model plugin on a tiny local task (skipped where lmms-eval is not installed).

lmms-eval is not a dependency: its wheel requires torchvision, which replaces or breaks the CPU PyTorch build these
machines use. To run this test, install lmms-eval without its dependencies next to r1video (see docs/evaluation.md#lmms-eval).
"""

import json
import textwrap

import pytest

lmms_eval = pytest.importorskip("lmms_eval")

from eval_fixtures import write_clip  # noqa: E402
from lmms_eval import evaluator  # noqa: E402
from lmms_eval.models import MODEL_REGISTRY_V2  # noqa: E402
from lmms_eval.tasks import TaskManager  # noqa: E402

from r1video.eval.lmms_eval_model import MODEL_ID, lmms_eval_manifest  # noqa: E402
from r1video.eval.runner import generate_batch  # noqa: E402
from r1video.model import build_tiny_model, load_pretrained  # noqa: E402
from r1video.model.templates import qwen2_base_prompt  # noqa: E402

TASK_YAML = """\
task: r1video_tiny_videoqa
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_visual: !function tiny_utils.doc_to_visual
doc_to_text: !function tiny_utils.doc_to_text
doc_to_target: answer
generation_kwargs:
  max_new_tokens: 5
  temperature: 0
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
"""

UTILS = """\
def doc_to_visual(doc):
    return [doc["video"]]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    return doc["question"] + "\\nAnswer with the option's letter from the given choices directly."
"""


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("lmms_task")
    rows = [
        {
            "video": write_clip(str(root / f"clip{i}.mp4"), count=12 + i),
            "question": f"Where is it {i}?\n(A) up\n(B) down",
            "answer": "AB"[i % 2],
        }
        for i in range(3)
    ]
    (root / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "tiny_task.yaml").write_text(TASK_YAML.format(data=root / "data.jsonl"))
    (root / "tiny_utils.py").write_text(textwrap.dedent(UTILS))
    return root, rows


def test_manifest_resolves_to_the_model_class():
    MODEL_REGISTRY_V2.register_manifest(lmms_eval_manifest(), overwrite=True)  # what the entry point does
    assert MODEL_REGISTRY_V2.get_model_class(MODEL_ID).__name__ == "R1VideoLMM"


def test_simple_evaluate_runs_a_local_video_task(task_dir, tmp_path):
    root, rows = task_dir
    model_dir = tmp_path / "tiny"
    build_tiny_model(model_dir, seed=0)
    MODEL_REGISTRY_V2.register_manifest(lmms_eval_manifest(), overwrite=True)
    results = evaluator.simple_evaluate(
        model=MODEL_ID,
        model_args=f"pretrained={model_dir},num_frames=4,batch_size=2",
        tasks=["r1video_tiny_videoqa"],
        task_manager=TaskManager(include_path=str(root)),
        log_samples=True,
    )
    assert "exact_match,none" in results["results"]["r1video_tiny_videoqa"]
    samples = results["samples"]["r1video_tiny_videoqa"]
    assert len(samples) == 3

    # The answers are the model's greedy answers to the task's prompt, with the task's frames.
    from r1video.data.video import load_video_frames

    model, processor = load_pretrained(str(model_dir))
    question = rows[0]["question"] + "\nAnswer with the option's letter from the given choices directly."
    frames = load_video_frames(rows[0]["video"], num_frames=4).frames
    expected = generate_batch(
        model, processor, [qwen2_base_prompt(question)], [frames], {"max_new_tokens": 5, "do_sample": False}
    )
    first = next(s for s in samples if s["doc_id"] == 0)
    assert first["resps"][0][0] == expected[0]
