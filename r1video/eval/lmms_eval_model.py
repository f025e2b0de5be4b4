"""An r1video model (any registered family) for lmms-eval, through its published plugin interface.

lmms-eval (>= 0.7) finds plugin models through the entry-point group `lmms_eval.models`, whose entry points return
a `ModelManifest` naming the model class; the class subclasses `lmms_eval.api.model.lmms` and answers
`generate_until` requests `(context, gen_kwargs, doc_to_visual, doc_id, task, split)`. With r1video installed, the
entry point `r1video = r1video.eval.lmms_eval_model:lmms_eval_manifest` makes this model available as::

    lmms-eval --model r1video --model_args pretrained=runs/grpo,num_frames=16 --tasks mvbench

The task's own prompt (question, options, instruction) is wrapped in the model family's prompt format (the policy's
`question_prompt`: the `qwen2_base` conversation format for TinyLLaVA-Video) and the videos it names are read with
the training sampler (16 uniform frames, or `fps` + `max_frames`) and made into the family's clip with the source's
frame rate and the frame indices, as `r1video eval` makes them ([`r1video.eval.frames.load_video_clip`]: Qwen2.5-VL's
`second_per_grid_ts` and Qwen3-VL's timestamps follow the clip's real timing). Greedy unless the task asks for
`temperature > 0` or `do_sample`. With `answer_only=true` each reply is replaced by what r1video's answer reader
([`rewards.extract_answer`], as in training and `r1video eval`) finds in it: the option letter, or the answer text
when it names no option; the task's own scorer then sees r1video's reading. Only generation tasks are supported:
`loglikelihood` raises.

This module imports lmms-eval, which is not a dependency of r1video (it requires torchvision, which breaks the CPU
PyTorch build; see docs/evaluation.md#lmms-eval).
"""

from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from lmms_eval.models.registry_v2 import ModelManifest

from r1video.eval.frames import load_video_clip
from r1video.eval.runner import generate_batch
from rewards import extract_answer

MODEL_ID = "r1video"


def lmms_eval_manifest() -> ModelManifest:
    """The entry point's payload: where lmms-eval finds the model class."""
    return ModelManifest(model_id=MODEL_ID, simple_class_path=f"{__name__}.R1VideoLMM")


class R1VideoLMM(lmms):
    """lmms-eval model backed by [`r1video.policies.load_policy`].

    Args:
        pretrained (`str`): Checkpoint directory or Hub id.
        num_frames (`int`): Uniform frames per video (16).
        fps (`float`, *optional*): Sample frames per second instead, capped by `max_frames`.
        max_frames (`int`, *optional*): Cap in `fps` mode.
        batch_size (`int`): Requests per `generate` call.
        max_new_tokens (`int`): Used when the task gives no `max_new_tokens`.
        dtype (`str`): `float32` (as the original evaluation), `bfloat16`, `float16` or `auto`.
        device (`str`, *optional*): `cuda` when available, else `cpu`.
        answer_only (`bool`): Return what the answer reader finds instead of the whole reply.
    """

    def __init__(
        self,
        pretrained: str,
        num_frames: int = 16,
        fps: float | None = None,
        max_frames: int | None = None,
        batch_size: int = 1,
        max_new_tokens: int = 1024,
        dtype: str = "float32",
        device: str | None = None,
        answer_only: bool | str = False,
        **unused,
    ):
        super().__init__()
        import torch

        from r1video.policies import load_policy

        self.num_frames = int(num_frames)
        self.fps = float(fps) if fps not in (None, "", "None") else None
        self.max_frames = int(max_frames) if max_frames not in (None, "", "None") else None
        self.batch_size = int(batch_size)
        self.max_new_tokens = int(max_new_tokens)
        self.answer_only = str(answer_only).lower() in ("1", "true", "yes")
        weights = dtype if dtype == "auto" else getattr(torch, dtype)
        self.policy, self.model, self.processor = load_policy(str(pretrained), dtype=weights)
        self.model.to(device or ("cuda" if torch.cuda.is_available() else "cpu")).eval()

    def _clip(self, path: str):
        # As `r1video eval` reads a video: each frame preprocessed as it is decoded (a 4K clip is never held at full
        # size), the clip built with the source's fps and the frame indices (Qwen's timing of the frames).
        return load_video_clip(self.policy, self.processor, path, self.num_frames, self.fps, self.max_frames)

    def _gen_kwargs(self, task_kwargs: dict) -> dict:
        temperature = float(task_kwargs.get("temperature") or 0.0)
        do_sample = bool(task_kwargs.get("do_sample", False)) or temperature > 0
        kwargs = {
            "max_new_tokens": int(task_kwargs.get("max_new_tokens") or self.max_new_tokens),
            "do_sample": do_sample,
        }
        if do_sample:
            if temperature > 0:
                kwargs["temperature"] = temperature
            if task_kwargs.get("top_p") is not None:
                kwargs["top_p"] = float(task_kwargs["top_p"])
        return kwargs

    def generate_until(self, requests: list[Instance]) -> list[str]:
        """Answer generation requests in batches of `batch_size` (requests with the same generation settings)."""
        answers = []
        for start in range(0, len(requests), self.batch_size):
            batch = [request.args for request in requests[start : start + self.batch_size]]
            prompts, videos, settings = [], [], []
            for context, task_kwargs, doc_to_visual, doc_id, task, split in batch:
                paths = doc_to_visual(self.task_dict[task][split][doc_id])
                if len(paths) != 1 or not isinstance(paths[0], str):
                    raise ValueError(f"{task}: r1video models take exactly one video per question, got {paths!r}")
                prompts.append(self.policy.question_prompt(self.processor, context))
                videos.append(self._clip(paths[0]))
                settings.append(task_kwargs)
            answers += self._generate(prompts, videos, settings)
        return answers

    def _generate(self, prompts, videos, settings) -> list[str]:
        # Requests of one batch normally share the task's settings; generate per distinct setting otherwise.
        outputs: list[str | None] = [None] * len(prompts)
        keys = [repr(sorted(s.items())) for s in settings]
        for key in dict.fromkeys(keys):
            chosen = [i for i, k in enumerate(keys) if k == key]
            texts = generate_batch(
                self.model,
                self.processor,
                [prompts[i] for i in chosen],
                [videos[i] for i in chosen],
                self._gen_kwargs(settings[chosen[0]]),
                policy=self.policy,
            )
            for i, text in zip(chosen, texts, strict=True):
                text = _cut_at_stops(text, settings[i].get("until"))
                outputs[i] = read_answer(text) if self.answer_only else text
        return outputs

    def loglikelihood(self, requests):
        raise NotImplementedError("r1video's lmms-eval model supports generation tasks (generate_until) only")

    def generate_until_multi_round(self, requests):
        raise NotImplementedError("r1video's lmms-eval model supports single-round generation only")


def read_answer(text: str) -> str:
    """The option letter r1video's reader finds in a reply, else its answer text: `"<answer>**B**</answer>"` → `"B"`."""
    answer = extract_answer(text)
    return answer.letter or answer.text or ""


def _cut_at_stops(text: str, until) -> str:
    """Truncate at the first of the task's stop strings (lmms-eval's `until`)."""
    for stop in [until] if isinstance(until, str) else until or []:
        if stop:
            text = text.split(stop)[0]
    return text
