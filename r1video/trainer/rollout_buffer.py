"""GRPO's buffered rollouts, saved with each checkpoint so a resumed run goes on exactly where it stopped.

TRL's `GRPOTrainer` generates once every `steps_per_generation × num_iterations` micro-steps (its counter `_step`),
keeps the scored rollouts in `_buffered_inputs` (`steps_per_generation` slices) and trains on them until the next
generation. A checkpoint saved inside that cycle must carry the buffer: a run resumed without it samples fresh
rollouts where the uninterrupted run makes another pass over the buffered ones (the class of trl#3148).

The file is safetensors (nothing is unpickled on load): every tensor of the buffer once, under a number, and in the
metadata the counter, the cycle it was saved under, and a JSON layout that rebuilds each slice's keys from those
numbers. A buffer's values are tensors, `None`, or lists of tensors, [`Clip`]s, dicts of tensors and `None` (the
per-row video keys of `VideoGRPOTrainer`: `video_clip`, `video_encoding`); the rows of one clip hold the same objects,
which are stored once and shared again on load.
"""

import json

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from r1video.policies.base import Clip


def rollout_buffer_file(process_index: int, world_size: int) -> str:
    """The checkpoint file of one process's buffer (one per process, named like transformers' RNG states)."""
    return "rollout_buffer.safetensors" if world_size <= 1 else f"rollout_buffer_{process_index}.safetensors"


def save_rollout_buffer(path: str, step: int, cycle: list[int], buffer: list[dict] | None) -> None:
    """Write TRL's rollout counter and buffer to `path`.

    Args:
        step: TRL's `_step`, the micro-steps trained so far.
        cycle: `[steps_per_generation, num_iterations]` the buffer was made under.
        buffer: TRL's `_buffered_inputs` (a list of `steps_per_generation` dicts), or `None`; pass `None` at a
            generation boundary, where it is not used again.

    Raises:
        TypeError: a buffer value is not a tensor, `None` or a list of tensors, clips, dicts of tensors and `None`
            (names the key).
    """
    tensors: dict[str, torch.Tensor] = {}
    numbers: dict[int, str] = {}  # id(tensor) -> its number, so a tensor shared by rows is stored once
    objects: dict[int, int] = {}  # id(clip or dict) -> its number in `shared`, so rows share it again on load
    shared: list[dict] = []

    def number(tensor: torch.Tensor) -> str:
        if id(tensor) not in numbers:
            numbers[id(tensor)] = str(len(numbers))
            # a copy of its own: slices of one batch share storage, which safetensors refuses to write
            tensors[numbers[id(tensor)]] = tensor.detach().to("cpu", copy=True).contiguous()
        return numbers[id(tensor)]

    def tensor_dict(key: str, value: dict) -> dict:
        if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items()):
            raise TypeError(f"cannot save the rollout buffer: key {key!r} holds a dict of other than tensors")
        return {k: number(v) for k, v in value.items()}

    def item(key: str, value):
        """A list entry: `None`, a tensor, a clip or a dict of tensors."""
        if value is None:
            return None
        if isinstance(value, torch.Tensor):
            return number(value)
        if isinstance(value, Clip | dict):
            if id(value) not in objects:
                if isinstance(value, Clip):
                    stored = {
                        "clip": tensor_dict(key, value.inputs),
                        "num_frames": value.num_frames,
                        "frame_indices": [int(i) for i in value.frame_indices],
                    }
                else:
                    stored = {"dict": tensor_dict(key, value)}
                objects[id(value)] = len(shared)
                shared.append(stored)
            return {"object": objects[id(value)]}
        raise TypeError(f"cannot save the rollout buffer: key {key!r} holds a list of {type(value).__name__}")

    def entry(key: str, value):
        if value is None:
            return None
        if isinstance(value, torch.Tensor):
            return {"tensor": number(value)}
        if isinstance(value, list):
            return {"list": [item(key, v) for v in value]}
        raise TypeError(f"cannot save the rollout buffer: key {key!r} holds a {type(value).__name__}")

    layout = None if buffer is None else [{key: entry(key, value) for key, value in b.items()} for b in buffer]
    metadata = {
        "step": str(step),
        "cycle": json.dumps(cycle),
        "layout": json.dumps(layout),
        "objects": json.dumps(shared),
    }
    save_file(tensors, path, metadata=metadata)


def load_rollout_buffer(path: str, device: torch.device | str = "cpu") -> tuple[int, list[int], list[dict] | None]:
    """Read what [`save_rollout_buffer`] wrote: `(step, cycle, buffer)`, the buffer's tensors on `device`, rows that
    shared a tensor sharing it again."""
    with safe_open(path, framework="pt", device="cpu") as f:
        metadata = f.metadata()
        tensors = {name: f.get_tensor(name).to(device) for name in f.keys()}

    def rebuild(stored: dict):
        if "clip" in stored:
            inputs = {k: tensors[name] for k, name in stored["clip"].items()}
            return Clip(inputs, stored["num_frames"], list(stored["frame_indices"]))
        return {k: tensors[name] for k, name in stored["dict"].items()}

    objects = [rebuild(stored) for stored in json.loads(metadata.get("objects", "[]"))]

    def item(stored):
        if stored is None:
            return None
        if isinstance(stored, str):
            return tensors[stored]
        return objects[stored["object"]]

    def value(stored):
        if stored is None:
            return None
        if "tensor" in stored:
            return tensors[stored["tensor"]]
        return [item(entry) for entry in stored["list"]]

    layout = json.loads(metadata["layout"])
    buffer = None if layout is None else [{key: value(v) for key, v in b.items()} for b in layout]
    return int(metadata["step"]), json.loads(metadata["cycle"]), buffer
