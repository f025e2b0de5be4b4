"""`TinyLlavaVideoProcessor`: tokenizer + frame preprocessing + placeholder expansion.

Frames are preprocessed like the original (SigLIP image processor: square bicubic resize to the tower's size, no crop,
rescale 1/255, mean = std = 0.5). Each video placeholder (`<image>`, the original's token for videos too) is expanded to
`num_queries` copies of the placeholder token before tokenising, so prompt lengths are the real lengths the LLM sees,
and left-padded batches line up for generation.
"""

import json

import numpy as np
import torch
from transformers import AutoTokenizer, BatchFeature, ProcessorMixin
from transformers.models.siglip import SiglipImageProcessorPil
from transformers.utils import cached_file

from r1video.model.templates import LITERAL_PLACEHOLDER, VIDEO_PLACEHOLDER, load_chat_template

SIGLIP_MEAN_STD = [0.5, 0.5, 0.5]


def make_frame_processor(image_size: int) -> SiglipImageProcessorPil:
    """SigLIP preprocessing at `image_size` px (PIL backend: no torchvision needed)."""
    return SiglipImageProcessorPil(
        size={"height": image_size, "width": image_size},
        resample=3,  # PIL.Image.BICUBIC
        image_mean=SIGLIP_MEAN_STD,
        image_std=SIGLIP_MEAN_STD,
    )


def preprocess_video_frames(image_processor, frames) -> torch.Tensor:
    """uint8 frames `[T, H, W, 3]` (array or list) -> `[T, 3, S, S]` with `image_processor` (see `preprocess_frames`)."""
    if isinstance(frames, np.ndarray) and frames.ndim == 4:
        frames = list(frames)
    return image_processor(images=frames, return_tensors="pt")["pixel_values"]


class TinyLlavaVideoProcessor(ProcessorMixin):
    """Turns prompts with `<image>` placeholders and videos (uint8 `[T, H, W, 3]` frames) into model inputs.

    Args:
        image_processor: SigLIP image processor applied frame by frame.
        tokenizer: the LLM tokenizer; `video_token` is added to it as a special token if it is missing.
        num_queries (`int`): embeddings per video, i.e. placeholder tokens per video (the model's `num_queries`).
        video_token (`str`): the placeholder string in prompts.
        chat_template (`str`, *optional*): defaults to the `qwen2_base` template.
    """

    def __init__(
        self, image_processor=None, tokenizer=None, num_queries=512, video_token=VIDEO_PLACEHOLDER, chat_template=None
    ):
        if video_token not in tokenizer.get_vocab():
            tokenizer.add_tokens([video_token], special_tokens=True)
        self.num_queries = num_queries
        self.video_token = video_token
        self.video_token_id = tokenizer.convert_tokens_to_ids(video_token)
        super().__init__(image_processor, tokenizer, chat_template=chat_template or load_chat_template())

    # The model config calls the placeholder id `image_token_id` (TRL reads that name to suppress it in sampling).
    @property
    def image_token_id(self) -> int:
        return self.video_token_id

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """Load a saved processor, or build one from a released checkpoint that ships only tokenizer files.

        Released TinyLLaVA-Video directories hold config.json + tokenizer files but no processor config; there the
        frame size and `num_queries` come from config.json and the preprocessing is SigLIP's.
        """
        path = str(pretrained_model_name_or_path)
        hub_kwargs = {k: kwargs[k] for k in ("revision", "token", "cache_dir", "local_files_only") if k in kwargs}
        processor_config = cached_file(
            path, "processor_config.json", _raise_exceptions_for_missing_entries=False, **hub_kwargs
        )
        if processor_config is not None:
            return super().from_pretrained(path, **kwargs)
        config_file = cached_file(path, "config.json", **hub_kwargs)
        with open(config_file) as f:
            config = json.load(f)
        image_size = (config.get("vision_config") or {}).get("image_size", 384)
        tokenizer = AutoTokenizer.from_pretrained(path, **hub_kwargs)
        if kwargs.get("padding_side"):
            tokenizer.padding_side = kwargs["padding_side"]
        return cls(make_frame_processor(image_size), tokenizer, num_queries=config.get("num_queries", 512))

    def preprocess_frames(self, frames) -> torch.Tensor:
        """uint8 frames `[T, H, W, 3]` (array or list of arrays / PIL images) -> `[T, 3, S, S]` float tensor.

        Frames are processed one by one (square resize, rescale, normalise), so a clip may be preprocessed a frame
        at a time as it is decoded (`load_video_frames(..., frame_transform=processor.preprocess_frames)`): the
        concatenated results are identical to preprocessing the whole clip at once.
        """
        return preprocess_video_frames(self.image_processor, frames)

    def expand_placeholders(self, text: str) -> str:
        return text.replace(self.video_token, self.video_token * self.num_queries)

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of a text rendered by the chat template.

        Each `video_token` becomes `num_queries` placeholder ids; an `"<image>"` that the template wrote as text
        ([`LITERAL_PLACEHOLDER`], a question that mentions the tag) becomes the ordinary tokens of `"<image>"`, never
        the placeholder. Without such text this is the tokenizer's own result on the expanded string.
        """
        if LITERAL_PLACEHOLDER not in text:
            return self.tokenizer(self.expand_placeholders(text), add_special_tokens=add_special_tokens)["input_ids"]
        # Added tokens split the text before the tokenizer's model runs, so the pieces between placeholders tokenise
        # as they would in one call; in a piece with literal text, special-token strings are read as plain text.
        ids = list(self.tokenizer("", add_special_tokens=add_special_tokens)["input_ids"])
        for i, piece in enumerate(text.split(self.video_token)):
            if i:
                ids += [self.video_token_id] * self.num_queries
            if piece:
                piece = piece.replace(LITERAL_PLACEHOLDER, self.video_token)
                ids += self.tokenizer(piece, add_special_tokens=False, split_special_tokens=True)["input_ids"]
        return ids

    def tokenize_prompts(self, texts: list[str]) -> list[list[int]]:
        """Token ids of prompts, placeholders expanded, unpadded (the videos are passed to the model separately)."""
        return [self.encode(text) for text in texts]

    def __call__(self, text=None, videos=None, padding=True, return_tensors="pt", **tokenizer_kwargs) -> BatchFeature:
        """Tokenise prompts and preprocess their videos.

        Args:
            text (`str` or `list[str]`): prompts; each `video_token` in them stands for the next video in `videos`.
            videos (`list`, *optional*): one entry per placeholder, in order: uint8 frames `[T, H, W, 3]`, or an
                already preprocessed `[T, 3, S, S]` float tensor.
            padding, return_tensors, **tokenizer_kwargs: passed to the tokenizer (e.g. `padding_side="left"`).

        Returns:
            `BatchFeature` with `input_ids`, `attention_mask` and, with videos, `pixel_values_videos`:
            a `[num_videos, T, 3, S, S]` tensor when all videos have T frames, else a list of `[T_i, 3, S, S]`.
        """
        texts = [text] if isinstance(text, str) else list(text)
        videos = [] if videos is None else list(videos)
        num_placeholders = sum(t.count(self.video_token) for t in texts)
        if num_placeholders != len(videos):
            raise ValueError(
                f"The prompts hold {num_placeholders} '{self.video_token}' placeholder(s) but {len(videos)} video(s) "
                "were given: pass one video per placeholder."
            )
        if tokenizer_kwargs.get("truncation"):
            raise ValueError("Truncating prompts could cut video placeholders; truncate the question text instead.")
        if any(LITERAL_PLACEHOLDER in t for t in texts):  # a question mentions "<image>": tokenised as text
            add_special_tokens = tokenizer_kwargs.pop("add_special_tokens", True)
            encoded = [self.encode(t, add_special_tokens) for t in texts]
            data = dict(
                self.tokenizer.pad(
                    {"input_ids": encoded}, padding=padding, return_tensors=return_tensors, **tokenizer_kwargs
                )
            )
        else:
            data = dict(
                self.tokenizer(
                    [self.expand_placeholders(t) for t in texts],
                    padding=padding,
                    return_tensors=return_tensors,
                    **tokenizer_kwargs,
                )
            )
        if videos:
            pixels = [v if isinstance(v, torch.Tensor) else self.preprocess_frames(v) for v in videos]
            same_shape = len({tuple(p.shape) for p in pixels}) == 1
            data["pixel_values_videos"] = torch.stack(pixels) if same_shape else pixels
        return BatchFeature(data=data)

    @property
    def model_input_names(self):
        return ["input_ids", "attention_mask", "pixel_values_videos"]
