"""Greedy Whisper decoding with timestamps over hundreds of windows at once.

``whisper.decode`` applies its timestamp rules in a Python loop over the batch and runs the
decoder through forward hooks, so at hundreds of windows per batch the loop, not the GPU,
sets the pace. ``GreedyDecoder`` follows the same rules, read from the ``DecodingTask`` that
openai-whisper builds for the options (suppressed tokens, blank suppression, timestamps in
pairs and never decreasing, the first timestamp within 1 s, a timestamp forced when
timestamps together outweigh any text token), but as tensor operations on the whole batch.
Each window's cross-attention keys and values are computed once, the self-attention cache
is one preallocated tensor, and windows that have finished are dropped from the batch as
it goes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

COMPACT_EVERY = 8  # steps between checks for finished windows (each check waits for the GPU)
ENCODE_SLICE = 64  # windows per encoder pass, which bounds the encoder's activations


@dataclass(frozen=True)
class Decoded:
    """One window's result: sampled tokens (no start or end-of-text token) and openai-whisper's scores."""

    tokens: list[int]
    avg_logprob: float
    no_speech_prob: float


@dataclass(frozen=True)
class _Rules:
    """The token rules of openai-whisper's greedy timestamped decoding, as token ids."""

    initial: tuple[int, ...]
    sot_index: int
    sample_len: int
    eot: int
    timestamp_begin: int
    no_speech: int
    suppress: list[int]
    blank: list[int]
    max_initial_timestamp: int


def _rules(model, language: str | None) -> _Rules:
    import whisper
    from whisper.decoding import ApplyTimestampRules, DecodingTask, SuppressTokens

    options = whisper.DecodingOptions(language=language, without_timestamps=False, temperature=0.0)
    task = DecodingTask(model, options)
    tokenizer = task.tokenizer
    suppress = next(f for f in task.logit_filters if isinstance(f, SuppressTokens)).suppress_tokens
    stamps = next(f for f in task.logit_filters if isinstance(f, ApplyTimestampRules))
    return _Rules(
        initial=tuple(task.initial_tokens),
        sot_index=task.sot_index,
        sample_len=task.sample_len,
        eot=tokenizer.eot,
        timestamp_begin=tokenizer.timestamp_begin,
        no_speech=tokenizer.no_speech,
        suppress=sorted(set(suppress) | {tokenizer.no_timestamps}),
        blank=tokenizer.encode(" ") + [tokenizer.eot],
        max_initial_timestamp=stamps.max_initial_timestamp_index,
    )


def _norm(x: torch.Tensor, ln) -> torch.Tensor:
    """openai-whisper's LayerNorm: computed in float32, returned in the input's dtype."""
    return F.layer_norm(x.float(), ln.normalized_shape, ln.weight.float(), ln.bias.float(), ln.eps).to(x.dtype)


class GreedyDecoder:
    """Decodes batches of log-mel windows with a ``whisper.Whisper`` model, greedily, with timestamps.

    Args:
        model: A loaded openai-whisper model.
        language: Spoken language, e.g. ``en``.
        dtype: Precision of the activations (``torch.float16`` on a GPU); like openai-whisper,
            the weights stay float32 and layer norms and logits are computed in float32.
    """

    def __init__(self, model, language: str | None = "en", dtype: torch.dtype = torch.float32):
        self.model, self.rules, self.dtype = model, _rules(model, language), dtype
        decoder = model.decoder
        self.heads = model.dims.n_text_head
        self.blocks = list(decoder.blocks)
        self.qkv = [
            (
                torch.cat([b.attn.query.weight, b.attn.key.weight, b.attn.value.weight]).to(dtype),
                torch.cat([b.attn.query.bias, torch.zeros_like(b.attn.query.bias), b.attn.value.bias]).to(dtype),
            )
            for b in self.blocks
        ]
        self.vocabulary = decoder.token_embedding.weight.to(dtype).T
        device, begin = model.device, self.rules.timestamp_begin
        # index tensors live on the device: a list index would copy from the host, and wait for the GPU, every step
        self.suppress = torch.tensor(self.rules.suppress, device=device)
        self.blank = torch.tensor(self.rules.blank, device=device)
        self.stamps = torch.arange(begin, model.dims.n_vocab, device=device)

    @torch.inference_mode()
    def __call__(self, mel: torch.Tensor) -> list[Decoded]:
        """Decode ``mel`` (windows × n_mels × 3000 log-mel frames, on the model's device)."""
        r = self.rules
        features = torch.cat([self.model.encoder(part.to(self.dtype)) for part in mel.split(ENCODE_SLICE)])
        size, device = features.shape[0], features.device
        cross = self._cross_attention(features)
        del features
        steps = len(r.initial) + r.sample_len - 1
        cache = torch.empty(
            (len(self.blocks), 2, size, self.heads, steps, self.model.dims.n_text_state // self.heads),
            dtype=self.dtype,
            device=device,
        )
        rows = torch.arange(size, device=device)  # each active window's place in the batch
        out = torch.full((size, r.sample_len), r.eot, dtype=torch.long, device=device)
        sum_logprob = torch.zeros(size, device=device)
        no_speech = torch.zeros(size, device=device)
        state = _Stamps.start(size, device)
        token = torch.full((size,), r.initial[0], dtype=torch.long, device=device)
        for position in range(steps):
            logits = self._step(token, position, cache, cross)
            if position == r.sot_index:
                no_speech[rows] = logits.softmax(dim=-1)[:, r.no_speech]
            sample = position - len(r.initial) + 1
            if sample < 0:
                token = torch.full_like(token, r.initial[position + 1])
                continue
            self._apply_rules(logits, sample, state)
            logprobs = F.log_softmax(logits, dim=-1)
            token = logits.argmax(dim=-1)
            chosen = logprobs.gather(1, token[:, None])[:, 0]
            sum_logprob.index_add_(0, rows, torch.where(state.done, 0.0, chosen))
            token = torch.where(state.done, r.eot, token)
            out[rows, sample] = token
            state.advance(token, r)
            if (sample + 1) % COMPACT_EVERY == 0:
                active = (~state.done).nonzero()[:, 0]
                if len(active) == 0:
                    break
                if len(active) <= len(rows) // 2:
                    rows, token, state = rows[active], token[active], state.select(active)
                    cache, cross = cache[:, :, active], cross[:, :, active]
        return self._results(out.tolist(), sum_logprob.tolist(), no_speech.tolist())

    def _cross_attention(self, features: torch.Tensor) -> torch.Tensor:
        """Each decoder layer's keys and values over the encoded audio: layers × 2 × windows × heads × frames × dim."""
        size, frames, width = features.shape
        shape = (len(self.blocks), 2, size, self.heads, frames, width // self.heads)
        cross = torch.empty(shape, dtype=self.dtype, device=features.device)
        for n, b in enumerate(self.blocks):
            for kind, projected in enumerate((b.cross_attn.key(features), b.cross_attn.value(features))):
                cross[n, kind] = projected.view(size, frames, self.heads, -1).transpose(1, 2)
        return cross

    def _step(self, token: torch.Tensor, position: int, cache: torch.Tensor, cross: torch.Tensor) -> torch.Tensor:
        """Float32 logits of the next token for each window, given its token at ``position``."""
        decoder, size = self.model.decoder, token.shape[0]
        x = (decoder.token_embedding(token) + decoder.positional_embedding[position]).to(cache.dtype)
        for n, block in enumerate(self.blocks):
            q, k, v = F.linear(_norm(x, block.attn_ln), *self.qkv[n]).view(size, 3, self.heads, -1).unbind(1)
            cache[n, 0, :, :, position], cache[n, 1, :, :, position] = k, v
            keys, values = cache[n, 0, :, :, : position + 1], cache[n, 1, :, :, : position + 1]
            x = x + block.attn.out(F.scaled_dot_product_attention(q[:, :, None], keys, values).reshape(size, -1))
            q = block.cross_attn.query(_norm(x, block.cross_attn_ln)).view(size, self.heads, 1, -1)
            attended = F.scaled_dot_product_attention(q, cross[n, 0], cross[n, 1])
            x = x + block.cross_attn.out(attended.reshape(size, -1))
            x = x + block.mlp(_norm(x, block.mlp_ln))
        x = _norm(x, decoder.ln)
        return (x @ self.vocabulary).float()

    def _apply_rules(self, logits: torch.Tensor, sample: int, state: _Stamps) -> None:
        """Mask, in place, the tokens openai-whisper's rules forbid as the ``sample``-th sampled token."""
        r, inf = self.rules, float("-inf")
        begin = r.timestamp_begin
        logits[:, self.suppress] = inf
        if sample == 0:
            logits[:, self.blank] = inf
            logits[:, :begin] = inf  # a window starts with a timestamp ...
            logits[:, begin + r.max_initial_timestamp + 1 :] = inf  # ... within its first second
        else:
            closing = state.last_is_stamp & ~state.penultimate_is_stamp
            logits[:, begin:].masked_fill_((state.last_is_stamp & state.penultimate_is_stamp)[:, None], inf)
            logits[:, : r.eot].masked_fill_(closing[:, None], inf)  # a segment's end is followed by a start
            floor = torch.where(closing, state.last_stamp, state.last_stamp + 1)  # stamps never go back
            logits[:, begin:].masked_fill_(self.stamps[None] < floor[:, None], inf)
        logprobs = F.log_softmax(logits, dim=-1)
        stamp_wins = logprobs[:, begin:].logsumexp(dim=-1) > logprobs[:, :begin].max(dim=-1).values
        logits[:, :begin].masked_fill_(stamp_wins[:, None], inf)

    def _results(self, out: list[list[int]], sum_logprob: list[float], no_speech: list[float]) -> list[Decoded]:
        eot, found = self.rules.eot, []
        for tokens, total, silence in zip(out, sum_logprob, no_speech):
            tokens = tokens[: tokens.index(eot)] if eot in tokens else tokens
            found.append(Decoded(tokens, total / (len(tokens) + 1), silence))
        return found


@dataclass
class _Stamps:
    """Per-window timestamp state: whether the last two sampled tokens were timestamps, and the last timestamp."""

    last_is_stamp: torch.Tensor
    penultimate_is_stamp: torch.Tensor
    last_stamp: torch.Tensor  # token id of the last timestamp; -1 before the first
    done: torch.Tensor

    @classmethod
    def start(cls, size: int, device) -> _Stamps:
        """Before the first sampled token, openai-whisper counts a missing penultimate token as a timestamp."""
        ones = torch.ones(size, dtype=torch.bool, device=device)
        return cls(ones, ones.clone(), torch.full((size,), -1, dtype=torch.long, device=device), ~ones)

    def advance(self, token: torch.Tensor, rules: _Rules) -> None:
        is_stamp = token >= rules.timestamp_begin
        self.penultimate_is_stamp, self.last_is_stamp = self.last_is_stamp, is_stamp
        self.last_stamp = torch.where(is_stamp, token, self.last_stamp)
        self.done = self.done | (token == rules.eot)

    def select(self, rows: torch.Tensor) -> _Stamps:
        return _Stamps(
            self.last_is_stamp[rows], self.penultimate_is_stamp[rows], self.last_stamp[rows], self.done[rows]
        )
