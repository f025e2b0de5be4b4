"""Qwen3.5 behind the policy-family seam: how `Qwen3_5ForConditionalGeneration` takes a video.

Qwen3.5 takes video exactly as Qwen3-VL ([`Qwen3VLPolicy`], subclassed here): the same `Qwen3VLProcessor` and
`Qwen3VLVideoProcessor` (per-temporal-patch timestamps in the prompt from the clip's real fps and frame indices),
the same `get_video_features` / `get_rope_index` / `mm_encoder_outputs` and `mm_token_type_ids`. What differs:

- No deepstack: an encoding is `{"embeds"}` (connector frozen) or `{"hidden"}` (the patch merger trains).
- The LM is a Gated-DeltaNet / full-attention hybrid. On CPU transformers runs its linear-attention layers through
  the PyTorch fallback (no `flash-linear-attention` / `causal_conv1d` needed); left padding is masked out of the
  recurrent state by transformers.
- The chat template (Qwen3.5-2B's, thinking off by default) ends a generation prompt with an empty think block,
  `<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n`, and re-renders a past assistant turn by moving its
  `<think>...</think>` into that block. So the template's render of a reply is not what the model generates after
  the prompt, and SFT labels are built as generation sees them (see [`tokenize_conversation`]).
"""

from r1video.policies.qwen3_vl import Qwen3VLPolicy
from r1video.policies.registry import register


@register
class Qwen3_5Policy(Qwen3VLPolicy):
    """Qwen3.5 (`model_type` `qwen3_5`): stateless; the processor and model are passed to each method."""

    name = "qwen3_5"
    model_types = ("qwen3_5",)
    # The processor class is Qwen3-VL's (`Qwen3VLProcessor`): a processor alone finds Qwen3-VL, whose processor
    # methods are these; the trainers and the SFT collator get this policy from the model.
    processor_class_names = ()
    model_card_tags = ("qwen3_5",)
    vllm_route = "native"  # Qwen3-VL's request form (vLLM runs Qwen3.5 through Qwen3-VL's multimodal processor)
    model_class_name = "Qwen3_5ForConditionalGeneration"
    core_class_name = "Qwen3_5Model"
    model_card_title = "Qwen3.5"  # named without a link: no paper of its own is known to cite
    model_card_parts = "vision transformer, hybrid Gated DeltaNet and attention language model"
    checkpoint_keys = ("model.visual.*", "model.language_model.*")

    def _render_with_replies(self, processor, messages: list[dict]):
        """The conversation as generation sees it: the generation prompt of the turns before the reply, then the
        reply text verbatim, `<|im_end|>` and a newline; the spans cover the reply and its `<|im_end|>`.

        Raises:
            ValueError: the conversation does not end with its only assistant turn (the template rewrites earlier
                replies, so a multi-turn conversation has no render that generation would produce).
        """
        from r1video.policies.base import reply_texts

        roles = [message["role"] for message in messages]
        if roles.count("assistant") != 1 or roles[-1] != "assistant":
            raise ValueError(
                f"{self.name} SFT needs a conversation ending with its only assistant turn; got roles {roles}"
            )
        prompt = self.render_prompt(processor, messages[:-1], add_generation_prompt=True)
        reply = reply_texts(messages)[0] + processor.tokenizer.eos_token
        return prompt + reply + "\n", [(len(prompt), len(prompt) + len(reply))]
