"""Trace-friendly wrappers around merged Hugging Face models, one per ONNX graph.

The serving graphs take and return the KV cache as plain tensors, so the runtime (onnxruntime
and numpy only) owns the cache. The wrappers reuse the model's own submodules (projections,
norms, feed-forward blocks, rotary embedding), so the weights and most of the maths are the
model's; only the wiring between them is written here, because transformers' cache objects do
not trace. ``tests/training_jobs/test_export.py`` checks every wrapper against the model's own
forward pass.

Cache layout everywhere: ``[1, kv_heads, positions, head_dim]`` per layer, keys then values.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

# The generation graphs serve one request per invocation, so their batch is fixed at 1. That lets
# every head split and merge be a Reshape to a constant shape: reading B and T from the tensor
# instead traces into Shape/Gather/Unsqueeze/Concat chains before each Reshape, and at one token
# per step those small ops cost as much as the int8 matrix products.
BATCH = 1


def _heads(x: torch.Tensor, heads: int, dim: int) -> torch.Tensor:
    """[1, T, heads*dim] -> [1, heads, T, dim]"""
    return x.reshape(BATCH, -1, heads, dim).transpose(1, 2)


def _merge(x: torch.Tensor, width: int) -> torch.Tensor:
    """[1, heads, T, dim] -> [1, T, width], width = heads*dim"""
    return x.transpose(1, 2).reshape(BATCH, -1, width)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor, scale: float) -> torch.Tensor:
    scores = torch.matmul(q, k.transpose(-1, -2)) * scale + bias
    return torch.matmul(torch.softmax(scores.float(), dim=-1).to(v.dtype), v)


def _padding_bias(mask: torch.Tensor) -> torch.Tensor:
    """[B, S] of 1/0 -> additive [B, 1, 1, S]."""
    return (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min


# --- T5 (seq2seq) -----------------------------------------------------------------------------


class T5Encoder(nn.Module):
    """input_ids, attention_mask -> encoder states and every decoder layer's cross-attention K/V.

    Cross-attention K/V depend only on the encoder output, so they are computed once here rather
    than at each decoding step.
    """

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model
        config = model.config
        self.heads, self.dim = config.num_heads, config.d_kv

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        encoder = self.model.encoder
        x = encoder.embed_tokens(input_ids)
        length = input_ids.shape[1]
        first = encoder.block[0].layer[0].SelfAttention
        bias = first.compute_bias(length, length) + _padding_bias(attention_mask)
        for block in encoder.block:
            attention = block.layer[0].SelfAttention
            h = block.layer[0].layer_norm(x)
            q, k, v = (_heads(p(h), self.heads, self.dim) for p in (attention.q, attention.k, attention.v))
            x = x + attention.o(_merge(_attend(q, k, v, bias, 1.0), self.heads * self.dim))
            x = x + block.layer[1].DenseReluDense(block.layer[1].layer_norm(x))
        states = encoder.final_layer_norm(x)
        cross: list[torch.Tensor] = []
        for block in self.model.decoder.block:
            attention = block.layer[1].EncDecAttention
            cross += [
                _heads(attention.k(states), self.heads, self.dim),
                _heads(attention.v(states), self.heads, self.dim),
            ]
        return (states, *cross)


class T5DecoderStep(nn.Module):
    """One greedy step with the self-attention cache: (token, mask, past, cross) -> logits, present."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model
        config = model.config
        self.heads, self.dim = config.num_heads, config.d_kv
        # transformers 5 names the rescaling of tied output embeddings; 4.x tied it to the flag.
        self.scale_logits = bool(getattr(config, "scale_decoder_outputs", config.tie_word_embeddings))
        self.d_model = config.d_model

    def forward(
        self, input_ids: torch.Tensor, encoder_attention_mask: torch.Tensor, *cache: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        decoder = self.model.decoder
        layers = len(decoder.block)
        past, cross = cache[: 2 * layers], cache[2 * layers :]
        x = decoder.embed_tokens(input_ids)
        past_length = past[0].shape[2]
        # Relative position of this query against every key so far (0..past_length).
        first = decoder.block[0].layer[0].SelfAttention
        context = torch.arange(past_length + 1, dtype=torch.long)[None, :]
        relative = context - past_length
        buckets = first._relative_position_bucket(
            relative,
            bidirectional=False,
            num_buckets=first.relative_attention_num_buckets,
            max_distance=first.relative_attention_max_distance,
        )
        self_bias = first.relative_attention_bias(buckets).permute(0, 2, 1)[:, :, None, :]  # [1, H, 1, K]
        cross_bias = _padding_bias(encoder_attention_mask)
        # One token per step: [1, 1, H*D] and [1, H, 1, D] hold the same values in the same order,
        # so heads split and merge by reshape alone, without a transpose (a copy) each time.
        one = (BATCH, self.heads, 1, self.dim)
        width = (BATCH, 1, self.heads * self.dim)
        present: list[torch.Tensor] = []
        for i, block in enumerate(decoder.block):
            attention = block.layer[0].SelfAttention
            h = block.layer[0].layer_norm(x)
            q = attention.q(h).reshape(one)
            k = torch.cat([past[2 * i], attention.k(h).reshape(one)], dim=2)
            v = torch.cat([past[2 * i + 1], attention.v(h).reshape(one)], dim=2)
            present += [k, v]
            x = x + attention.o(_attend(q, k, v, self_bias, 1.0).reshape(width))
            crossing = block.layer[1].EncDecAttention
            h = block.layer[1].layer_norm(x)
            q = crossing.q(h).reshape(one)
            attended = _attend(q, cross[2 * i], cross[2 * i + 1], cross_bias, 1.0)
            x = x + crossing.o(attended.reshape(width))
            x = x + block.layer[2].DenseReluDense(block.layer[2].layer_norm(x))
        x = decoder.final_layer_norm(x)
        if self.scale_logits:  # T5 scales tied output embeddings
            x = x * (self.d_model**-0.5)
        return (self.model.lm_head(x), *present)


# --- Llama family (causal) --------------------------------------------------------------------


class CausalStep(nn.Module):
    """Llama-family decoder step: (tokens, past) -> logits of the last token, present.

    One batch row without padding (one request per invocation), so the only mask is causal
    within the new tokens; the same graph runs the prompt (T tokens) and each step (1 token).
    """

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model
        config = model.config
        self.heads = config.num_attention_heads
        self.kv_heads = getattr(config, "num_key_value_heads", None) or self.heads
        self.dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.scale = 1.0 / math.sqrt(self.dim)

    def forward(self, input_ids: torch.Tensor, *past: torch.Tensor) -> tuple[torch.Tensor, ...]:
        from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

        body = self.model.model
        x = body.embed_tokens(input_ids)
        past_length, new = past[0].shape[2], input_ids.shape[1]
        positions = (torch.arange(new, dtype=torch.long) + past_length)[None, :]
        cos, sin = body.rotary_emb(x, positions)
        keys = torch.arange(past_length + new, dtype=torch.long)[None, :]
        causal = (keys <= positions[0][:, None]).float()
        bias = ((1.0 - causal) * torch.finfo(torch.float32).min)[None, None, :, :]
        groups = self.heads // self.kv_heads
        present: list[torch.Tensor] = []
        for i, layer in enumerate(body.layers):
            attention = layer.self_attn
            h = layer.input_layernorm(x)
            q = _heads(attention.q_proj(h), self.heads, self.dim)
            k = _heads(attention.k_proj(h), self.kv_heads, self.dim)
            v = _heads(attention.v_proj(h), self.kv_heads, self.dim)
            q, k = apply_rotary_pos_emb(q, k, cos, sin)
            k = torch.cat([past[2 * i], k], dim=2)
            v = torch.cat([past[2 * i + 1], v], dim=2)
            present += [k, v]
            if groups > 1:  # grouped-query attention: each K/V head serves `groups` query heads
                k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
            x = x + attention.o_proj(_merge(_attend(q, k, v, bias, self.scale), self.heads * self.dim))
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        logits = self.model.lm_head(body.norm(x[:, -1:, :]))
        return (logits, *present)


# --- Classifier -------------------------------------------------------------------------------


class Classifier(nn.Module):
    """input_ids, attention_mask -> class probabilities (softmax inside the graph)."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits
        return torch.softmax(logits, dim=-1)
