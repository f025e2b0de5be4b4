"""Prompt lengths counted with each record's own clip: the frames training samples and their size, read from the
video's container (`probe_video`), turned into the family's exact expansion (`layout_clip`), so `data validate
--model` and the sft/grpo refusal give the ids the trainers build, not the family's upper bound without a clip."""

import json
from fractions import Fraction

import av
import pytest
from video_fixtures import moving_square_frames, write_clips_of_lengths

# FrameSampling, RecordClips and probe_video are imported inside the tests, so that the tests of behaviour (what fits
# is no longer refused) also run, and fail, on the code before them
from r1video.data.lengths import check_prompt_lengths, conversation_length, prompt_length
from r1video.data.loaders import load_grpo_dataset, load_sft_dataset
from r1video.data.video import load_video_frames
from r1video.policies import policy_named
from r1video.trainer import VideoGRPOConfig, VideoGRPOTrainer, VideoSFTCollator
from r1video.trainer.step_videos import row_video_keys

VARYING = ["qwen2_5_vl", "qwen3_vl", "qwen3_5", "smolvlm", "llava_onevision"]  # video tokens depend on the clip
TEMPLATE = "{Question} Think first."
# 25 fps clips of 0.8, 1.64, 2.4 and 0.12 s; sizes under, at and over the tiny Qwen processors' pixel budget
SPECS = ((20, 32, 32), (41, 48, 32), (60, 96, 160), (3, 32, 48))
SAMPLINGS = {"fps": dict(num_frames=None, fps=5.0, max_frames=10), "uniform": dict(num_frames=6)}


def write_rotated_clip(path, rotation=-90, count=12, height=32, width=64) -> str:
    """A phone clip: stored `width` wide, `height` high, with a display matrix turning it upright."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(25))
        stream.height, stream.width = height, width
        stream.pix_fmt = "yuv420p"
        stream.set_display_rotation(rotation)
        for frame in moving_square_frames(count, height, width):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return str(path)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("lengths")
    paths = write_clips_of_lengths(root, specs=SPECS)
    paths.append(write_rotated_clip(root / "phone.mp4"))
    names = [p.rsplit("/", 1)[-1] for p in paths]
    grpo = [{"id": f"g{i}", "problem": f"Clip {i}. What moves?\nA. left\nB. right", "solution": "<answer>A</answer>",
             "video_filename": name} for i, name in enumerate(names)]  # fmt: skip
    (root / "grpo.jsonl").write_text("".join(json.dumps(r) + "\n" for r in grpo))
    sft = [{"id": f"s{i}", "video": name, "conversations": [
        {"from": "human", "value": f"<image>\nClip {i}. What moves?"},
        {"from": "gpt", "value": f"<think>the square moves {'left' * (i + 1)}</think><answer>A</answer>"}]}
        for i, name in enumerate(names)]  # fmt: skip
    (root / "sft.json").write_text(json.dumps(sft))
    return root


@pytest.fixture(scope="module", params=VARYING)
def family(request):
    policy = policy_named(request.param)
    model, processor = policy.build_tiny()
    return policy, model, processor


def records(path):
    text = path.read_text()
    return json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines()]


# ---- the container's facts are the reader's ----------------------------------------------------------------------


@pytest.mark.parametrize("autorotate", [True, False])
@pytest.mark.parametrize("frames", [dict(num_frames=6), dict(num_frames=100), dict(fps=5.0, max_frames=10), {}])
def test_probe_names_the_frames_and_size_the_reader_returns(root, frames, autorotate):
    from r1video.data.video import probe_video

    for path in sorted(root.glob("*.mp4")):
        probe = probe_video(path, **frames, autorotate=autorotate)
        video = load_video_frames(path, **frames, autorotate=autorotate)
        assert probe.indices == video.indices
        facts = (probe.fps, probe.duration, probe.num_total_frames)
        assert facts == (video.fps, video.duration, video.num_total_frames)
        assert (probe.height, probe.width) == video.frames.shape[1:3]
    phone = probe_video(root / "phone.mp4", num_frames=2, autorotate=autorotate)
    assert (phone.height, phone.width) == ((64, 32) if autorotate else (32, 64))


@pytest.mark.parametrize("name", ["qwen3_vl", "smolvlm"])  # the families that write frame times into the prompt
def test_a_frame_folder_is_counted_with_its_clip(tmp_path, name):
    """A folder is timed at 2 fps as the reader times it, so it is counted with its own clip, exactly as the decoded
    clip's prompt (before: `counted without its clip: a frame folder has no frame rate`, at the bound)."""
    from PIL import Image

    from r1video.data.lengths import FrameSampling, RecordClips
    from r1video.data.video import probe_video

    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(moving_square_frames(7, 24, 40)):
        Image.fromarray(frame).save(folder / f"frame_{i}.png")
    probe, video = probe_video(folder, num_frames=4), load_video_frames(folder, num_frames=4)
    assert probe.indices == video.indices and (probe.height, probe.width) == video.frames.shape[1:3] == (24, 40)
    assert (probe.fps, probe.duration) == (video.fps, video.duration) == (2.0, 3.5)
    policy = policy_named(name)
    _, processor = policy.build_tiny()
    record = {"problem": "What moves?", "solution": "A", "video_filename": folder.name}
    clip, note = RecordClips(tmp_path, processor, FrameSampling(num_frames=4), policy).clip(record)
    assert clip is not None and note == ""
    decoded = policy.decode_clip(processor, str(folder), num_frames=4)
    exact = prompt_length(processor, record, TEMPLATE, policy, decoded)
    assert prompt_length(processor, record, TEMPLATE, policy, clip) == exact
    assert exact < prompt_length(processor, record, TEMPLATE, policy)  # the bound it was counted at before


# ---- the checked count is the trainers' ---------------------------------------------------------------------------


@pytest.mark.parametrize("sampling", list(SAMPLINGS), ids=list(SAMPLINGS))
def test_checked_counts_are_the_lengths_the_trainers_build(root, family, sampling, tmp_path):
    """GRPO: the prompt ids of the trainer's own `_tokenize_prompts` on its decoded clips; SFT: the SFT collator's
    rows. Clips of different lengths and sizes (one with a display rotation) give different counts."""
    from r1video.data.lengths import FrameSampling, RecordClips

    policy, model, processor = family
    frames = FrameSampling(**SAMPLINGS[sampling])
    clips = RecordClips(root, processor, frames, policy)

    data = load_grpo_dataset(root / "grpo.jsonl", root, question_template=TEMPLATE)
    args = VideoGRPOConfig(output_dir=str(tmp_path), use_cpu=True, per_device_train_batch_size=len(data),
                           num_generations=len(data), num_frames=frames.num_frames, fps=frames.fps,
                           max_frames=frames.max_frames, beta=0.0, report_to="none")  # fmt: skip
    trainer = VideoGRPOTrainer(model=model, reward_funcs=[lambda completions, **_: [0.0] * len(completions)],
                               args=args, train_dataset=data, processing_class=processor)  # fmt: skip
    rows = list(data)
    with trainer._scoring(row_video_keys(trainer._load_videos(rows))):
        prompt_ids, _, _ = trainer._tokenize_prompts([row["prompt"] for row in rows])
    built = [len(ids) for ids in prompt_ids]
    checked = [prompt_length(processor, r, TEMPLATE, policy, clips.clip(r)[0]) for r in records(root / "grpo.jsonl")]
    assert checked == built
    if sampling == "fps" or policy.name.startswith("qwen"):  # frame counts, or frame sizes, differ between clips
        assert len(set(built)) > 2

    collator = VideoSFTCollator(processor, policy=policy, num_frames=frames.num_frames, fps=frames.fps,
                                max_frames=frames.max_frames)  # fmt: skip
    sft = list(load_sft_dataset(root / "sft.json", root))
    built = [int(collator([row])["attention_mask"].sum()) for row in sft]  # a row per batch (LLaVA-OneVision's
    # pixel input takes one frame count per batch)
    checked = [conversation_length(processor, r, policy, clips.clip(r)[0]) for r in records(root / "sft.json")]
    assert checked == built


def test_the_per_frame_pixel_cap_is_counted_as_the_processor_applies_it(root):
    """Qwen2.5-VL's `get_num_of_video_patches` leaves `cap_pixels_per_frame` out; the count applies it as `resize`."""
    from r1video.data.video import probe_video

    policy = policy_named("qwen2_5_vl")
    _, processor = policy.build_tiny()
    processor.video_processor.cap_pixels_per_frame = True
    processor.video_processor.max_video_tokens = 10  # a budget the frames of these clips reach
    text = policy.question_prompt(processor, "what moves?")
    for path in sorted(root.glob("*.mp4")):
        for frames in (dict(num_frames=16), dict(num_frames=3), dict(fps=5.0)):
            clip = policy.decode_clip(processor, path, **frames)
            layout = policy.layout_clip(processor, probe_video(path, **frames))
            assert policy.tokenize_prompts(processor, [text], [layout]) == policy.tokenize_prompts(
                processor, [text], [clip]
            )


# ---- what fits is no longer refused -------------------------------------------------------------------------------


def saved_with_limit(policy, tmp_path, limit: int) -> str:
    """A tiny model of `policy` saved with its tokenizer's `model_max_length` set to `limit`."""
    model, processor = policy.build_tiny()
    processor.tokenizer.model_max_length = limit
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    return str(tmp_path)


def test_a_prompt_under_the_limit_passes_data_validate(root, family, tmp_path, capsys):
    """The limit lies between the prompts' real lengths and the family's count without a clip (what was checked
    before): `data validate --model` reports nothing, where it reported every record `prompt_too_long`."""
    from r1video.data.cli import main
    from r1video.data.lengths import FrameSampling, RecordClips
    from r1video.policies import load_processor

    policy = family[0]
    model_dir = saved_with_limit(policy, tmp_path, 8192)
    _, processor = load_processor(model_dir)  # counted as the command will (a reloaded tiny tokenizer may split
    path = root / "grpo.jsonl"  # digits otherwise)
    clips = RecordClips(root, processor, FrameSampling(num_frames=8), policy)
    exact = [prompt_length(processor, r, TEMPLATE, policy, clips.clip(r)[0]) for r in records(path)]
    bound = [prompt_length(processor, r, TEMPLATE, policy) for r in records(path)]
    limit = max(exact)
    assert min(bound) > limit
    processor.tokenizer.model_max_length = limit
    processor.save_pretrained(model_dir)
    argv = ["validate", str(path), "--video-root", str(root), "--model", model_dir, "--question-template", TEMPLATE]
    argv += ["--num-frames", "8"]
    assert main([*argv, "--json"]) == 0, capsys.readouterr().out
    capsys.readouterr()
    check_prompt_lengths(path, processor, TEMPLATE, policy=policy, clips=clips)
    with pytest.raises(ValueError, match=rf"grpo\.jsonl:\d \(id 'g\d'\): {limit}(\n|$)"):
        check_prompt_lengths(path, processor, TEMPLATE, max_length=limit - 1, policy=policy, clips=clips)


@pytest.mark.parametrize("name", ["llava_onevision", "smolvlm"])
def test_more_frames_than_the_bound_assumed_are_counted(root, name):
    """The count without a clip assumes 16 frames: with the recipe's 32 a prompt over the limit passed the check
    before (and met the limit only in training); now it is refused before step 1."""
    from r1video.data.lengths import FrameSampling, RecordClips

    policy = policy_named(name)
    _, processor = policy.build_tiny()
    path = root / "grpo.jsonl"
    limit = max(prompt_length(processor, r, TEMPLATE, policy) for r in records(path))
    check_prompt_lengths(path, processor, TEMPLATE, max_length=limit, policy=policy)  # the old count lets it pass
    clips = RecordClips(root, processor, FrameSampling(num_frames=32), policy)
    with pytest.raises(ValueError, match=rf"^5 prompts are longer than the model's maximum of {limit} tokens"):
        check_prompt_lengths(path, processor, TEMPLATE, max_length=limit, policy=policy, clips=clips)


def test_sft_trains_a_conversation_that_fits_its_max_length(root, tmp_path):
    """`r1video sft` on Qwen2.5-VL with `max_length` at the longest row the SFT collator builds: it trains (before, the
    count without a clip, 16 frames at the processor's largest size, refused every record before step 1)."""
    from r1video import sft

    policy = policy_named("qwen2_5_vl")
    model_dir = saved_with_limit(policy, tmp_path / "model", 8192)
    _, processor = policy.build_tiny()
    collator = VideoSFTCollator(processor, policy=policy, num_frames=4)
    limit = max(int(collator([row])["attention_mask"].sum()) for row in load_sft_dataset(root / "sft.json", root))
    assert min(conversation_length(processor, r, policy) for r in records(root / "sft.json")) > limit  # the bound
    argv = ["--model_name_or_path", model_dir, "--train_file", str(root / "sft.json"), "--video_root", str(root),
            "--output_dir", str(tmp_path / "out"), "--use_cpu", "true", "--report_to", "none", "--num_frames", "4",
            "--max_steps", "1", "--save_strategy", "no", "--per_device_train_batch_size", "2",
            "--max_length", str(limit)]  # fmt: skip
    assert sft.main(argv) == 0
    assert json.loads((tmp_path / "out" / "trainer_state.json").read_text())["global_step"] == 1
    with pytest.raises(ValueError, match=rf"sft\.json:\d+ \(id 's\d'\): {limit}(\n|$)"):
        sft.main([*argv[:-1], str(limit - 1), "--output_dir", str(tmp_path / "refused")])


def test_grpo_trains_prompts_that_fit_the_models_maximum(root, tmp_path):
    """`r1video grpo` on Qwen2.5-VL whose tokenizer's `model_max_length` is the longest prompt the trainer builds
    (its clip decoded, placeholder expanded): it trains (before, every prompt was refused before step 1)."""
    from r1video import grpo
    from r1video.policies import load_processor

    policy = policy_named("qwen2_5_vl")
    model_dir = saved_with_limit(policy, tmp_path / "model", 8192)
    _, processor = load_processor(model_dir)
    built = []
    for row in load_grpo_dataset(root / "grpo.jsonl", root, question_template=TEMPLATE):
        clip = policy.decode_clip(processor, row["video"], num_frames=4)
        built += policy.tokenize_prompts(processor, [policy.render_prompt(processor, row["prompt"])], [clip])
    limit = max(map(len, built))
    processor.tokenizer.model_max_length = limit
    processor.save_pretrained(model_dir)
    argv = ["--model_name_or_path", model_dir, "--train_file", str(root / "grpo.jsonl"), "--video_root", str(root),
            "--question_template", TEMPLATE, "--output_dir", str(tmp_path / "out"), "--use_cpu", "true",
            "--report_to", "none", "--num_frames", "4", "--max_steps", "1", "--save_strategy", "no",
            "--per_device_train_batch_size", "2", "--reward_funcs", "format", "--num_generations", "2",
            "--max_completion_length", "2"]  # fmt: skip
    assert grpo.main(argv) == 0
    assert json.loads((tmp_path / "out" / "trainer_state.json").read_text())["global_step"] == 1


# ---- without a readable video, and families whose count is fixed --------------------------------------------------


def test_a_record_whose_video_cannot_be_read_keeps_the_bound_and_says_so(root, tmp_path):
    from r1video.data.validate import validate_file

    policy = policy_named("qwen2_5_vl")
    _, processor = policy.build_tiny()
    path = tmp_path / "missing.jsonl"
    record = {"id": "gone", "problem": "What moves?", "solution": "left", "video_filename": "gone.mp4"}
    path.write_text(json.dumps(record) + "\n")
    bound = prompt_length(processor, record, TEMPLATE, policy)
    processor.tokenizer.model_max_length = bound - 1
    report = validate_file(path, root, processor=processor, question_template=TEMPLATE, policy=policy)
    issues = {issue.code: issue.message for issue in report.issues}
    assert set(issues) == {"prompt_too_long", "video_missing"}
    assert issues["prompt_too_long"].startswith(
        f"prompt is {bound} tokens (counted without its clip: the video cannot be read ("
    )


def test_tinyllava_video_counts_as_before_and_probes_nothing(root, monkeypatch):
    import r1video.data.lengths as lengths
    from r1video.data.lengths import FrameSampling, RecordClips

    policy = policy_named("tinyllava_video")
    _, processor = policy.build_tiny()
    monkeypatch.setattr(lengths, "probe_video", lambda *a, **k: pytest.fail("TinyLLaVA-Video's count needs no probe"))
    clips = RecordClips(root, processor, FrameSampling(), policy)
    path = root / "grpo.jsonl"
    counts = [prompt_length(processor, r, TEMPLATE, policy) for r in records(path)]
    assert [clips.clip(r) for r in records(path)] == [(None, "")] * len(counts)
    for with_clips in (None, clips):
        with pytest.raises(ValueError) as caught:
            check_prompt_lengths(
                path, processor, TEMPLATE, max_length=min(counts) - 1, policy=policy, clips=with_clips
            )
        assert f"grpo.jsonl:1 (id 'g0'): {counts[0]}\n" in str(caught.value)


def test_data_validate_refuses_two_frame_rules(root, capsys):
    from r1video.data.cli import main

    argv = ["validate", str(root / "grpo.jsonl"), "--video-root", str(root), "--num-frames", "8", "--fps", "1"]
    assert main(argv) == 2
    assert "--num-frames/--fps/--max-frames" in capsys.readouterr().err


def test_frame_sampling_of_a_trainer_config(tmp_path):
    from r1video.data.lengths import FrameSampling

    args = VideoGRPOConfig(output_dir=str(tmp_path), use_cpu=True, num_frames=None, fps=2.0, max_frames=8,
                           autorotate=False, report_to="none")  # fmt: skip
    assert FrameSampling.of(args) == FrameSampling(None, 2.0, 8, False)
