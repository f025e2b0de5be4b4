"""Perceiver-resampler connectors of TinyLLaVA-Video (seed-facts §1.2).

Both map a video's vision tokens `[B, N, vision_hidden]` (N = frames × tokens per frame) to `[B, num_queries, D]`
with D the LLM hidden size. The module and parameter names follow the released checkpoints
(`connector._connector.{latents, linear, layers.{i}.0.*, layers.{i}.1.*, norm}`).

- `groupresampler`: the token axis is split into `group` near-equal chunks (the first `N % group` one token longer);
  every chunk is resampled by the same layers and the same `num_queries // group` latents; the outputs are
  concatenated and a sinusoidal position encoding is added over the `num_queries` outputs.
- `naiveresampler`: the position encoding is added over the N inputs, then `num_queries` latents read the whole video.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from r1video.model.configuration import TinyLlavaVideoConfig


def sinusoidal_position_encoding(length: int, dim: int, device, dtype) -> torch.Tensor:
    """Standard sin/cos position encoding `[1, length, dim]` (base 10000).

    The original builds this table in float16 and casts it to the input dtype; rounding through float16 here keeps
    the exact values the released weights were trained with, on any device.
    """
    position = torch.arange(length, dtype=torch.float32, device=device).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, dtype=torch.float32, device=device)
    table[:, 0::2] = torch.sin(position * div_term)
    table[:, 1::2] = torch.cos(position * div_term[: dim // 2])
    return table.to(torch.float16).to(dtype).unsqueeze(0)


class PerceiverAttention(nn.Module):
    """Latents attend to `concat(media, latents)`; no mask (every chunk is a full sequence)."""

    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        self.heads = heads
        self.dim_head = dim_head
        inner = heads * dim_head
        self.norm_media = nn.LayerNorm(dim)
        self.norm_latents = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, media: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        # media [B, N, D], latents [B, Q, D] -> [B, Q, D]
        media = self.norm_media(media)
        latents = self.norm_latents(latents)
        q = self.to_q(latents)
        k, v = self.to_kv(torch.cat([media, latents], dim=1)).chunk(2, dim=-1)

        def split_heads(t):  # [B, L, H*Dh] -> [B, H, L, Dh]
            return t.unflatten(-1, (self.heads, self.dim_head)).transpose(1, 2)

        out = F.scaled_dot_product_attention(split_heads(q), split_heads(k), split_heads(v))
        return self.to_out(out.transpose(1, 2).flatten(2))


def feed_forward(dim: int, mult: int = 4) -> nn.Sequential:
    # Indices 0, 1, 3 carry weights: the released keys are `layers.{i}.1.{0,1,3}.*`.
    return nn.Sequential(
        nn.LayerNorm(dim), nn.Linear(dim, dim * mult, bias=False), nn.GELU(), nn.Linear(dim * mult, dim, bias=False)
    )


class PerceiverResampler(nn.Module):
    """`linear` projection to the LLM width, `depth` × (attention, feed-forward) with residuals, final `norm`."""

    def __init__(self, config: TinyLlavaVideoConfig, num_latents: int):
        super().__init__()
        dim = config.text_config.hidden_size
        self.latents = nn.Parameter(torch.randn(num_latents, dim))
        self.linear = nn.Linear(config.vision_config.hidden_size, dim)
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [PerceiverAttention(dim, config.resampler_heads, config.resampler_dim_head), feed_forward(dim)]
            )
            for _ in range(config.num_resampler_layers)
        )
        self.norm = nn.LayerNorm(dim)

    def resample(self, media: torch.Tensor) -> torch.Tensor:
        """`[B, N, D]` projected media -> `[B, num_latents, D]`."""
        latents = self.latents.unsqueeze(0).expand(media.shape[0], -1, -1)
        for attention, ff in self.layers:
            latents = attention(media, latents) + latents
            latents = ff(latents) + latents
        return self.norm(latents)


class GroupResampler(PerceiverResampler):
    """The video-level group resampler (`groupresampler`, class `ResamplerConnectorWithPE` in the original)."""

    def __init__(self, config: TinyLlavaVideoConfig):
        super().__init__(config, num_latents=config.num_queries // config.group)
        self.group = config.group

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        # features [B, N, Dv] -> [B, num_queries, D]
        x = self.linear(features)
        batch, num_tokens, dim = x.shape
        if num_tokens < self.group:
            raise ValueError(f"groupresampler needs at least group={self.group} vision tokens, got {num_tokens}")
        # Chunk sizes as torch.tensor_split: the first `num_tokens % group` chunks hold one extra token. Chunks of
        # equal size are resampled in one batched call: [B, n_chunks * size, D] -> [B * n_chunks, size, D].
        size, n_long = divmod(num_tokens, self.group)
        long_part, short_part = x[:, : n_long * (size + 1)], x[:, n_long * (size + 1) :]
        outputs = []
        for part, chunk_size, n_chunks in ((long_part, size + 1, n_long), (short_part, size, self.group - n_long)):
            if n_chunks:
                chunks = part.reshape(batch * n_chunks, chunk_size, dim)
                outputs.append(self.resample(chunks).reshape(batch, -1, dim))
        out = torch.cat(outputs, dim=1)
        return out + sinusoidal_position_encoding(out.shape[1], dim, out.device, out.dtype)


class NaiveResampler(PerceiverResampler):
    """The naive resampler (`naiveresampler`): position encoding on the inputs, one set of latents for the video."""

    def __init__(self, config: TinyLlavaVideoConfig):
        super().__init__(config, num_latents=config.num_queries)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        # features [B, N, Dv] -> [B, num_queries, D]
        x = self.linear(features)
        x = x + sinusoidal_position_encoding(x.shape[1], x.shape[2], x.device, x.dtype)
        return self.resample(x)


CONNECTORS = {"groupresampler": GroupResampler, "naiveresampler": NaiveResampler}


class Connector(nn.Module):
    """Holds the resampler as `_connector`, the attribute name under which the released weights are stored."""

    def __init__(self, config: TinyLlavaVideoConfig):
        super().__init__()
        if config.connector_type not in CONNECTORS:
            raise ValueError(f"Unknown connector_type {config.connector_type!r}; choose one of {sorted(CONNECTORS)}")
        self._connector = CONNECTORS[config.connector_type](config)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self._connector(features)
