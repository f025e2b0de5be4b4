"""MVBench (OpenGVLab/MVBench): 20 tasks, one JSON file each, videos and frame folders under `video/`.

Layout read (as published, and as TinyLLaVA-Video-R1's `eval_mvbench.py` reads it)::

    DIR/json/action_sequence.json ...            [{"video", "question", "candidates", "answer", ["start", "end"]}]
    DIR/video/star/Charades_v1_480/*.mp4 ...     one folder per source data set (see `TASKS`)
    DIR/video/tvqa/frames_fps3_hq/<clip>/00001.jpg ...

`answer` is the text of the right candidate. Scoring: micro accuracy over all questions, plus one row per task.

Frames, as the original: plain video tasks take 16 uniform frames of the whole clip and **ignore** the task's
`start`/`end` bound (the original read them with pytorchvideo); `.avi`/`.webm` tasks and the frame-folder task use
MVBench's segment-centre indices, the frame folder inside its bound at 3 fps. `respect_bounds=True` deviates from
the original: the bounded video tasks then take segment-centre indices inside their bound, as MVBench's own
evaluation does.
"""

import os

from r1video.eval.benchmarks._common import (
    answer_letter_from_text,
    check_choices,
    field,
    read_json_list,
    select,
    video_path,
)
from r1video.eval.samples import FRAME_DIR, SEGMENTS, UNIFORM, EvalSample

# task name -> (json file, video folder under the video root, reader, whether records carry start/end)
TASKS = {
    "Action Sequence": ("action_sequence.json", "star/Charades_v1_480", UNIFORM, True),
    "Action Prediction": ("action_prediction.json", "star/Charades_v1_480", UNIFORM, True),
    "Action Antonym": ("action_antonym.json", "ssv2_video", SEGMENTS, False),
    "Fine-grained Action": ("fine_grained_action.json", "Moments_in_Time_Raw/videos", UNIFORM, False),
    "Unexpected Action": ("unexpected_action.json", "FunQA_test/test", UNIFORM, False),
    "Object Existence": ("object_existence.json", "clevrer/video_validation", UNIFORM, False),
    "Object Interaction": ("object_interaction.json", "star/Charades_v1_480", UNIFORM, True),
    "Object Shuffle": ("object_shuffle.json", "perception/videos", UNIFORM, False),
    "Moving Direction": ("moving_direction.json", "clevrer/video_validation", UNIFORM, False),
    "Action Localization": ("action_localization.json", "sta/sta_video", UNIFORM, True),
    "Scene Transition": ("scene_transition.json", "scene_qa/video", UNIFORM, False),
    "Action Count": ("action_count.json", "perception/videos", UNIFORM, False),
    "Moving Count": ("moving_count.json", "clevrer/video_validation", UNIFORM, False),
    "Moving Attribute": ("moving_attribute.json", "clevrer/video_validation", UNIFORM, False),
    "State Change": ("state_change.json", "perception/videos", UNIFORM, False),
    "Fine-grained Pose": ("fine_grained_pose.json", "nturgbd", SEGMENTS, False),
    "Character Order": ("character_order.json", "perception/videos", UNIFORM, False),
    "Egocentric Navigation": ("egocentric_navigation.json", "vlnqa", UNIFORM, False),
    "Episodic Reasoning": ("episodic_reasoning.json", "tvqa/frames_fps3_hq", FRAME_DIR, True),
    "Counterfactual Inference": ("counterfactual_inference.json", "clevrer/video_validation", UNIFORM, False),
}
ALIASES = {spec[0].removesuffix(".json"): name for name, spec in TASKS.items()}


def load(
    data_dir: str | os.PathLike,
    tasks: list[str] | None = None,
    video_dir: str | os.PathLike | None = None,
    respect_bounds: bool = False,
) -> list[EvalSample]:
    """Read MVBench questions.

    Args:
        data_dir: The MVBench copy (holding `json/` and `video/`).
        tasks: Task names (`"Action Sequence"` or `action_sequence`) to keep; all 20 by default.
        video_dir: The video root, if not `data_dir/video`.
        respect_bounds: Sample bounded video tasks inside their `start`/`end` (not the original's behaviour).

    Raises:
        BenchmarkDataError: A task file is missing or a record is malformed, or its video path leaves the task's
            video folder (the message names file and record).
    """
    video_root = os.fspath(video_dir) if video_dir else os.path.join(data_dir, "video")
    samples = []
    for task in select(list(TASKS), tasks, ALIASES, "MVBench"):
        filename, folder, reader, has_bound = TASKS[task]
        path = os.path.join(data_dir, "json", filename)
        for i, record in enumerate(read_json_list(path, f"MVBench task file for {task}")):
            where = f"{path}: record {i}"
            choices = check_choices(field(record, "candidates", list, where), where)
            answer = answer_letter_from_text(field(record, "answer", str, where), list(choices), where)
            bound = None
            if has_bound and (reader != UNIFORM or respect_bounds):
                bound = (
                    float(field(record, "start", (int, float), where)),
                    float(field(record, "end", (int, float), where)),
                )
            samples.append(
                EvalSample(
                    id=f"{filename.removesuffix('.json')}/{i}",
                    group=task,
                    question=field(record, "question", str, where),
                    choices=choices,
                    answer=answer,
                    video=video_path(os.path.join(video_root, folder), field(record, "video", str, where), where),
                    reader=SEGMENTS if bound is not None and reader == UNIFORM else reader,
                    bound=bound,
                    source=path,
                )
            )
    return samples
