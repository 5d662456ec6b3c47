"""A plain PyTorch counterpart of learnjax's encoder, objectives and steps.

It mirrors `learnjax.models.transformer` (pre-LayerNorm blocks, segment-aware attention,
positions restarting per packed text, tied output head with bias, logits only
at the selected positions), `learnjax.training.masking` (BERT 80/10/10 corruption, top-k
slot selection) and `learnjax.training.steps` (AdamW), so that a step does the same
arithmetic in both frameworks. It is written the way one would write it by
hand: no fused kernels, no scaled_dot_product_attention.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from learnjax.text.tokenizer import MASK_ID, PAD_ID, SPECIAL_TOKENS  # the same ids as the JAX side

N_SPECIAL = len(SPECIAL_TOKENS)
LN_EPS = 1e-6  # flax's LayerNorm default


class SelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x, allowed):
        B, T, D = x.shape
        H = self.n_heads
        q, k, v = self.qkv(x).view(B, T, 3, H, D // H).permute(2, 0, 3, 1, 4)  # 3 x (B, H, T, Dh)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(D // H)  # (B, H, T, T)
        scores = scores.masked_fill(~allowed[:, None], torch.finfo(scores.dtype).min)
        attended = scores.softmax(-1) @ v  # (B, H, T, Dh)
        return self.proj(attended.transpose(1, 2).reshape(B, T, D))


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_ff: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model, eps=LN_EPS)
        self.attn = SelfAttention(d_model, n_heads)
        self.ln2 = nn.LayerNorm(d_model, eps=LN_EPS)
        self.ff1 = nn.Linear(d_model, d_ff)
        self.ff2 = nn.Linear(d_ff, d_model)

    def forward(self, x, allowed):
        x = x + self.attn(self.ln1(x), allowed)
        return x + self.ff2(F.gelu(self.ff1(self.ln2(x)), approximate="tanh"))  # jax.nn.gelu is the tanh form


def positions_in_segment(segments):
    T = segments.shape[1]
    index = torch.arange(T, device=segments.device).expand_as(segments)
    previous = F.pad(segments[:, :-1], (1, 0), value=-1)
    starts = torch.where(segments != previous, index, torch.zeros_like(index))
    return index - torch.cummax(starts, dim=1).values


class Encoder(nn.Module):
    def __init__(self, vocab_size: int, max_len: int, d_model: int, n_layers: int, n_heads: int, d_ff: int):
        super().__init__()
        self.token_embed = nn.Embedding(vocab_size, d_model)
        self.position_embed = nn.Embedding(max_len, d_model)
        nn.init.normal_(self.token_embed.weight, std=0.02)
        nn.init.normal_(self.position_embed.weight, std=0.02)
        self.blocks = nn.ModuleList([Block(d_model, n_heads, d_ff) for _ in range(n_layers)])
        self.ln_final = nn.LayerNorm(d_model, eps=LN_EPS)

    def forward(self, tokens, segments=None):
        if segments is None:
            segments = (tokens != PAD_ID).long()
        allowed = (segments[:, :, None] == segments[:, None, :]) & (segments[:, None, :] > 0)  # (B, T, T)
        x = self.token_embed(tokens) + self.position_embed(positions_in_segment(segments))
        for block in self.blocks:
            x = block(x, allowed)
        return self.ln_final(x)


class MaskedLanguageModel(nn.Module):
    def __init__(self, vocab_size: int, max_len: int, d_model: int, n_layers: int, n_heads: int, d_ff: int):
        super().__init__()
        self.encoder = Encoder(vocab_size, max_len, d_model, n_layers, n_heads, d_ff)
        self.transform = nn.Linear(d_model, d_model)
        self.ln = nn.LayerNorm(d_model, eps=LN_EPS)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, tokens, segments, positions):
        h = self.encoder(tokens, segments)  # (B, T, D)
        h = torch.gather(h, 1, positions[..., None].expand(-1, -1, h.shape[-1]))  # (B, P, D)
        h = self.ln(F.gelu(self.transform(h), approximate="tanh"))
        return h @ self.encoder.token_embed.weight.T + self.bias  # tied weights, (B, P, V)


class EncoderClassifier(nn.Module):
    def __init__(self, encoder: Encoder, d_model: int, n_classes: int = 2):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(d_model, n_classes)

    def forward(self, tokens):
        return self.head(self.encoder(tokens)[:, 0])


def masked_batch(tokens, segments, vocab_size: int, rate: float, max_predictions: int):
    """`learnjax.training.masking.masked_batch`: corrupt, then keep the chosen slots.

    Draws from the global generator: an explicit `torch.Generator` argument
    breaks the graph under torch.compile."""
    maskable = tokens >= N_SPECIAL
    chosen = maskable & (torch.rand(tokens.shape) < rate)
    action = torch.rand(tokens.shape)
    random_words = torch.randint(N_SPECIAL, vocab_size, tokens.shape, dtype=tokens.dtype)
    inputs = torch.where(chosen & (action < 0.8), torch.full_like(tokens, MASK_ID), tokens)
    inputs = torch.where(chosen & (action >= 0.8) & (action < 0.9), random_words, inputs)
    targets = torch.where(chosen, tokens, torch.full_like(tokens, PAD_ID))
    weights = chosen.float()
    positions = torch.topk(weights, max_predictions, dim=1).indices
    return inputs, segments, positions, targets.gather(1, positions), weights.gather(1, positions)


def masked_prediction_loss(model, inputs, segments, positions, targets, weights):
    logits = model(inputs, segments, positions)  # (B, P, V)
    per_token = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none").view_as(weights)
    n_scored = weights.sum().clamp_min(1.0)
    loss = (per_token * weights).sum() / n_scored
    accuracy = ((logits.argmax(-1) == targets) * weights).sum() / n_scored
    return loss, accuracy


def classification_loss(model, tokens, labels):
    logits = model(tokens)
    loss = F.cross_entropy(logits, labels)
    return loss, (logits.argmax(-1) == labels).float().mean()


def warmup_cosine(learning_rate: float, steps: int, warmup_steps: int):
    """optax.warmup_cosine_decay_schedule(0, lr, warmup, steps, lr / 10) as a LambdaLR factor."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / warmup_steps
        progress = min(step - warmup_steps, steps - warmup_steps) / (steps - warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


class MaskedTrainer:
    """One masked-prediction step per call, as `learnjax.training.loops.train_masked_prediction` runs it."""

    def __init__(self, size, *, compile: bool, seed: int = 0):
        torch.manual_seed(seed)
        self.size = size
        self.model = MaskedLanguageModel(size.vocab_size, size.max_len, size.d_model, size.n_layers, size.n_heads, size.d_ff)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=size.learning_rate, weight_decay=0.01)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.optimizer, warmup_cosine(1.0, 1800, 100))
        self.loss_fn = torch.compile(masked_prediction_loss) if compile else masked_prediction_loss
        self.mask_fn = torch.compile(masked_batch) if compile else masked_batch

    def step(self, tokens, segments):
        batch = self.mask_fn(torch.from_numpy(tokens).long(), torch.from_numpy(segments).long(),
                             self.size.vocab_size, self.size.mask_rate, self.size.max_predictions)
        loss, accuracy = self.loss_fn(self.model, *batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.schedule.step()
        return loss.detach(), accuracy.detach()


class SupervisedTrainer:
    """One `learnjax.training.steps.supervised_step` per call: full fine-tuning of an encoder classifier."""

    def __init__(self, size, *, compile: bool, seed: int = 0):
        torch.manual_seed(seed)
        encoder = Encoder(size.vocab_size, size.max_len, size.d_model, size.n_layers, size.n_heads, size.d_ff)
        self.model = EncoderClassifier(encoder, size.d_model)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-3, weight_decay=0.01)
        self.loss_fn = torch.compile(classification_loss) if compile else classification_loss

    def step(self, tokens, labels):
        loss, accuracy = self.loss_fn(self.model, torch.from_numpy(tokens).long(), torch.from_numpy(labels).long())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach(), accuracy.detach()


class NextWordModel(nn.Module):
    """`learnjax.models.transformer.NextWordModel` by hand: the same blocks read causally, the
    token embeddings as the output layer, and a KV cache written the usual way."""

    def __init__(self, vocab_size: int, max_len: int, d_model: int, n_layers: int, n_heads: int, d_ff: int):
        super().__init__()
        self.decoder = Encoder(vocab_size, max_len, d_model, n_layers, n_heads, d_ff)
        self.n_heads, self.max_len = n_heads, max_len

    def forward(self, tokens):
        """Scores (B, T, V) of the next token at every position (one text per row)."""
        T = tokens.shape[1]
        causal = torch.tril(torch.ones(T, T, dtype=torch.bool, device=tokens.device))
        allowed = causal[None] & (tokens != PAD_ID)[:, None, :]
        d = self.decoder
        x = d.token_embed(tokens) + d.position_embed(torch.arange(T, device=tokens.device))[None]
        for block in d.blocks:
            x = block(x, allowed)
        return d.ln_final(x) @ d.token_embed.weight.T

    def _attend_cached(self, block, x, position, cache):
        """One block on the new tokens x (B, T, D) at positions [position, position + T),
        reading and extending this layer's cache (k, v: (B, H, L, Dh))."""
        B, T, D = x.shape
        H = self.n_heads
        attn = block.attn
        q, k, v = attn.qkv(block.ln1(x)).view(B, T, 3, H, D // H).permute(2, 0, 3, 1, 4)  # 3 x (B, H, T, Dh)
        keys, values = cache
        keys[:, :, position : position + T] = k
        values[:, :, position : position + T] = v
        end = position + T
        scores = (q @ keys[:, :, :end].transpose(-1, -2)) / math.sqrt(D // H)  # (B, H, T, end)
        causal = torch.arange(end, device=x.device)[None, :] <= (position + torch.arange(T, device=x.device))[:, None]
        scores = scores.masked_fill(~causal[None, None], torch.finfo(scores.dtype).min)
        attended = scores.softmax(-1) @ values[:, :, :end]
        x = x + attn.proj(attended.transpose(1, 2).reshape(B, T, D))
        return x + block.ff2(F.gelu(block.ff1(block.ln2(x)), approximate="tanh"))

    @torch.inference_mode()
    def generate(self, prompts, max_new_tokens: int, temperature: float = 0.0, generator=None):
        """Greedy (temperature 0) or sampled continuation of equal-length prompts (B, P):
        the prompt read once, then one token per step against the cache."""
        B, P = prompts.shape
        d = self.decoder
        D = d.token_embed.weight.shape[1]
        shape = (B, self.n_heads, self.max_len, D // self.n_heads)
        caches = [(torch.zeros(shape), torch.zeros(shape)) for _ in d.blocks]
        tokens, position = prompts, 0
        new = []
        for _ in range(max_new_tokens):
            T = tokens.shape[1]
            x = d.token_embed(tokens) + d.position_embed(torch.arange(position, position + T))[None]
            for block, cache in zip(d.blocks, caches):
                x = self._attend_cached(block, x, position, cache)
            scores = d.ln_final(x[:, -1]) @ d.token_embed.weight.T  # (B, V)
            scores[:, :N_SPECIAL] = float("-inf")
            if temperature > 0:
                token = torch.multinomial((scores / temperature).softmax(-1), 1, generator=generator)[:, 0]
            else:
                token = scores.argmax(-1)
            new.append(token)
            position += T
            tokens = token[:, None]
        return torch.stack(new, 1)
