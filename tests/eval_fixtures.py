"""Tiny benchmark copies in each benchmark's published layout, with real video files written by PyAV.

Frame `i` of every clip is filled with grey level `8 * i` (mod 256), so a test can tell from a decoded frame which
index it is.
"""

import json
import os

import numpy as np
from PIL import Image

from r1video.data.video import write_video

MMVU_URL = "https://huggingface.co/datasets/yale-nlp/MMVU/resolve/main/"


def indexed_frames(count: int, size: int = 32) -> np.ndarray:
    """Frames whose grey level encodes their index: frame `i` is `8 * i % 256` everywhere."""
    return np.stack([np.full((size, size, 3), (8 * i) % 256, np.uint8) for i in range(count)])


def frame_index(frame: np.ndarray) -> int:
    """Inverse of [`indexed_frames`] (for clips shorter than 32 frames), robust to compression noise."""
    return int(round(float(frame.mean()) / 8))


def write_clip(path, count: int = 24, fps: int = 8, codec: str = "libx264") -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_video(path, indexed_frames(count), fps=fps, codec=codec, gop=4)
    return str(path)


def write_json(path, data) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f)


def make_mvbench(root) -> str:
    """MVBench with four tasks, one of each reader: plain video with a bound (ignored, as the original), plain video,
    `.webm` (segment-centre indices) and a 3 fps jpg frame folder with a bound."""
    root = str(root)
    video = os.path.join(root, "video")
    write_clip(os.path.join(video, "star/Charades_v1_480/AAA.mp4"))
    write_clip(os.path.join(video, "perception/videos/p1.mp4"))
    write_clip(os.path.join(video, "ssv2_video/77.webm"), codec="libvpx")
    frames = os.path.join(video, "tvqa/frames_fps3_hq/clip1")
    os.makedirs(frames)
    for i in range(1, 31):  # 10 s at 3 fps, 1-based names
        Image.fromarray(np.full((32, 32, 3), 8 * (i % 32), np.uint8)).save(os.path.join(frames, f"{i:05d}.jpg"))
    write_json(
        os.path.join(root, "json/action_sequence.json"),
        [
            {
                "video": "AAA.mp4",
                "question": "What did the person do first?",
                "candidates": ["Sat.", "Ran."],
                "answer": "Ran.",
                "start": 1.0,
                "end": 2.0,
            },
            {
                "video": "AAA.mp4",
                "question": "What did the person do last?",
                "candidates": ["Sat.", "Ran.", "Ate."],
                "answer": "Sat.",
                "start": 0.5,
                "end": 2.5,
            },
        ],
    )
    write_json(
        os.path.join(root, "json/object_shuffle.json"),
        [
            {
                "video": "p1.mp4",
                "question": "Where is the ball?",
                "candidates": ["left", "middle", "right"],
                "answer": "right",
            }
        ],
    )
    write_json(
        os.path.join(root, "json/action_antonym.json"),
        [
            {
                "video": "77.webm",
                "question": "What is happening?",
                "candidates": ["opening", "closing"],
                "answer": "closing",
            }
        ],
    )
    write_json(
        os.path.join(root, "json/episodic_reasoning.json"),
        [
            {
                "video": "clip1",
                "question": "Why did he leave?",
                "candidates": ["tired", "late", "bored"],
                "answer": "late",
                "start": 2.0,
                "end": 8.0,
            }
        ],
    )
    return root


MVBENCH_TASKS = ["Action Sequence", "Object Shuffle", "Action Antonym", "Episodic Reasoning"]


def make_videomme(root) -> str:
    """Video-MME with two short questions, one medium and one long."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = str(root)
    rows = []
    for n, (duration, answer) in enumerate([("short", "A"), ("short", "C"), ("medium", "B"), ("long", "D")]):
        video_id = f"vid{n}"
        write_clip(os.path.join(root, "data", f"{video_id}.mp4"))
        rows.append(
            {
                "video_id": f"{n:03d}",
                "duration": duration,
                "domain": "Knowledge",
                "sub_category": "Humanity & History",
                "url": f"https://www.youtube.com/watch?v={video_id}",
                "videoID": video_id,
                "question_id": f"{n:03d}-1",
                "task_type": "Counting Problem",
                "question": f"How many people appear in clip {n}?" + " Count them all." * n,  # lengths differ
                "options": ["A. One.", "B. Two.", "C. Three.", "D. Four."],
                "answer": answer,
            }
        )
    os.makedirs(os.path.join(root, "videomme"))
    pq.write_table(pa.Table.from_pylist(rows), os.path.join(root, "videomme/test-00000-of-00001.parquet"))
    return root


MLVU_STEMS = ["1_plotQA", "2_needle", "3_ego", "4_count", "5_order", "6_anomaly_reco", "7_topic_reasoning"]


def make_mlvu(root, per_task: int = 1) -> str:
    """MLVU dev with the 7 multiple-choice task files; `plotQA` gets 3 questions, the others `per_task`."""
    root = str(root)
    for stem in MLVU_STEMS:
        count = 3 if stem == "1_plotQA" else per_task
        records = []
        for i in range(count):
            write_clip(os.path.join(root, "video", stem, f"{stem}_{i}.mp4"))
            records.append(
                {
                    "video": f"{stem}_{i}.mp4",
                    "duration": 3.0,
                    "question": f"Question {i} about {stem}?",
                    "candidates": ["red", "green", "blue", "black"],
                    "answer": "green",
                    "question_type": stem[2:],
                }
            )
        write_json(os.path.join(root, "json", f"{stem}.json"), records)
    return root


def make_mmvu(root) -> str:
    """MMVU validation with two multiple-choice questions and one open-ended one (skipped)."""
    root = str(root)
    write_clip(os.path.join(root, "videos/Chemistry/0.mp4"))
    write_clip(os.path.join(root, "videos/Art/1.mp4"))
    records = [
        {
            "id": "mc-0",
            "video": MMVU_URL + "videos/Chemistry/0.mp4",
            "youtube_url": "",
            "question_type": "multiple-choice",
            "metadata": {"subject": "Chemistry"},
            "question": "Which gas forms?",
            "choices": {"A": "Oxygen", "B": "Hydrogen", "C": "Helium", "D": "Neon", "E": "Argon"},
            "answer": "B",
        },
        {
            "id": "open-0",
            "video": MMVU_URL + "videos/Art/1.mp4",
            "youtube_url": "",
            "question_type": "open-ended",
            "metadata": {"subject": "Art"},
            "question": "Name the technique.",
            "choices": {},
            "answer": "fresco",
        },
        {
            "id": "mc-1",
            "video": MMVU_URL + "videos/Art/1.mp4",
            "youtube_url": "",
            "question_type": "multiple-choice",
            "metadata": {"subject": "Art"},
            "question": "Which period?",
            "choices": {"A": "Baroque", "B": "Gothic"},
            "answer": "A",
        },
    ]
    write_json(os.path.join(root, "validation.json"), records)
    return root


def make_longvideobench(root) -> str:
    """LongVideoBench val with two videos (3 s and 2.5 s at 8 fps) and three questions in two duration groups; the
    subtitles use both of the published formats (`start`/`end`/`line` and `timestamp`/`text`)."""
    root = str(root)
    write_clip(os.path.join(root, "videos", "vidA.mp4"), count=24, fps=8)
    write_clip(os.path.join(root, "videos", "vidB.mp4"), count=20, fps=8)
    write_json(
        os.path.join(root, "subtitles", "vidA_en.json"),
        [
            {"start": "00:00:10.200", "end": "00:00:10.600", "line": "Hello there."},
            {"start": "00:00:11.000", "end": "00:00:12.800", "line": "Look at this."},
            {"start": "00:00:20.000", "end": "00:00:21.000", "line": "Never shown."},
        ],
    )
    write_json(
        os.path.join(root, "subtitles", "vidB_en.json"),
        [{"timestamp": [0.0, 1.5], "text": "First words."}, {"timestamp": [1.5, None], "text": "Last words."}],
    )

    def record(n, video, group, duration, start, correct, candidates):
        return {
            "video_id": video,
            "question": f"What happens in clip {video}?" + " Think." * n,
            "question_wo_referring_query": "What happens?",
            "candidates": candidates,
            "correct_choice": correct,
            "position": [0, 10],
            "topic_category": "NP-News-Programs",
            "question_category": "S2E",
            "level": "L1-Perception",
            "id": f"{video}_{n}",
            "video_path": f"{video}.mp4",
            "subtitle_path": f"{video}_en.json",
            "duration_group": group,
            "starting_timestamp_for_subtitles": start,
            "duration": duration,
            "view_count": 100,
        }

    write_json(
        os.path.join(root, "lvb_val.json"),
        [
            record(0, "vidA", 15, 3.0, 10.0, 1, ["A dog runs.", "A cat sleeps.", "Rain falls.", "Nothing."]),
            record(1, "vidA", 15, 3.0, 10.0, 3, ["Red", "Green", "Blue", "Black", "White"]),
            record(2, "vidB", 60, 2.5, 0.0, 0, ["Yes", "No"]),
        ],
    )
    return root


MAKERS = {
    "mvbench": make_mvbench,
    "videomme": make_videomme,
    "mlvu": make_mlvu,
    "mmvu": make_mmvu,
    "longvideobench": make_longvideobench,
}


def write_4k_clip(path, count: int = 4) -> str:
    """A real 3840x2160 H.264 clip of `count` flat grey frames (level `8 * i`): a few KiB, one frame is 24.9 MB RGB."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    frames = np.stack([np.full((2160, 3840, 3), (8 * i) % 256, np.uint8) for i in range(count)])
    write_video(path, frames, fps=8, options={"preset": "ultrafast"})
    return str(path)
