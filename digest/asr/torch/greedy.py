"""Greedy Whisper decoding with timestamps over hundreds of windows at once.

``whisper.decode`` applies its timestamp rules in a Python loop over the batch and runs the
decoder through forward hooks, so at hundreds of windows per batch the loop, not the GPU,
sets the pace. ``GreedyDecoder`` follows the same rules, read from the ``DecodingTask`` that
openai-whisper builds for the options (suppressed tokens, blank suppression, timestamps in
pairs and never decreasing, the first timestamp within 1 s, a timestamp forced when
timestamps together outweigh any text token), but as tensor operations on the whole batch.
Each window's cross-attention keys and values are computed once, and every tensor a step
touches is preallocated, so that on a GPU the steps are captured once as a CUDA graph and
replayed: eight steps then cost one launch instead of well over a thousand, and the thread
that drives the GPU hardly needs the interpreter, whatever other threads are doing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import whisper
from whisper.decoding import ApplyTimestampRules, DecodingTask, SuppressTokens

log = logging.getLogger(__name__)

STRIDE = 8  # steps run (and captured in one CUDA graph) between checks whether every window has finished
ENCODE_SLICE = 128  # windows per encoder pass, which bounds the encoder's activations
SMALLEST_GRAPH = 8  # on a GPU, batches are padded to a power of two from here, so few graphs are captured


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


def _rules(model, language: str | None, sample_len: int | None) -> _Rules:
    options = whisper.DecodingOptions(
        language=language, without_timestamps=False, temperature=0.0, sample_len=sample_len
    )
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


def bucket(size: int) -> int:
    """The padded batch size a CUDA graph is captured for: the next power of two, at least ``SMALLEST_GRAPH``."""
    return max(SMALLEST_GRAPH, 1 << (size - 1).bit_length())


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
        graphs: Replay the steps as CUDA graphs (the default on CUDA devices).
        sample_len: Most tokens per window (openai-whisper's default: 224).
    """

    def __init__(
        self,
        model,
        language: str | None = "en",
        dtype: torch.dtype = torch.float32,
        graphs: bool | None = None,
        sample_len: int | None = None,
    ):
        self.model, self.rules, self.dtype = model, _rules(model, language, sample_len), dtype
        self.graphs = model.device.type == "cuda" if graphs is None else graphs
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
        self.steps = len(self.rules.initial) + self.rules.sample_len - 1  # positions a window's text can take
        device, begin = model.device, self.rules.timestamp_begin
        # index tensors live on the device: a list index would copy from the host, and wait for the GPU, every step
        self.suppress = torch.tensor(self.rules.suppress, device=device)
        self.blank = torch.tensor(self.rules.blank, device=device)
        self.stamps = torch.arange(begin, model.dims.n_vocab, device=device)
        self.positions = torch.arange(self.steps + 1, device=device)  # the last is scratch, see _choose
        self.batches: dict[int, _Batch] = {}

    @torch.inference_mode()
    def __call__(self, mel: torch.Tensor) -> list[Decoded]:
        """Decode ``mel`` (windows × n_mels × 3000 log-mel frames, on the model's device)."""
        r, size = self.rules, mel.shape[0]
        b = self._batch(size)
        for first in range(0, size, ENCODE_SLICE):
            features = self.model.encoder(mel[first : first + ENCODE_SLICE].to(self.dtype))
            self._cross_attention(features, b.cross[:, :, first : first + len(features)])
        b.reset(r)
        for position, token in enumerate(r.initial):
            b.position.fill_(position)
            b.token.fill_(token)
            logits = self._forward(b)
            if position == r.sot_index:
                b.no_speech.copy_(logits.softmax(dim=-1)[:, r.no_speech])
        self._choose(b, logits, first=True)
        for _ in range(1, r.sample_len, STRIDE):
            if b.graph is not None:
                b.graph.replay()
            else:
                self._stride(b)
            if bool(b.done[:size].all()):
                break
        out = b.out[:size, : r.sample_len]
        return self._results(out.tolist(), b.sum_logprob[:size].tolist(), b.no_speech[:size].tolist())

    def _batch(self, size: int) -> _Batch:
        """Preallocated tensors for ``size`` windows; on a GPU, cached per padded size with its captured steps."""
        if not self.graphs:
            return _Batch(self, size)
        padded = bucket(size)
        if padded not in self.batches:
            b = _Batch(self, padded)
            b.reset(self.rules)
            try:
                b.graph = self._capture(b)
            except RuntimeError as exc:  # decoding still works, one launch per operation
                log.warning("CUDA graph capture failed (%s); decoding step by step", exc)
                self.graphs = False
                return _Batch(self, size)
            self.batches[padded] = b
        return self.batches[padded]

    def _capture(self, b: _Batch) -> torch.cuda.CUDAGraph:
        """``STRIDE`` steps after the first, captured as one CUDA graph over ``b``'s tensors."""
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up before capture, as CUDA graphs require
            self._stride(b)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):  # the audio thread may allocate meanwhile
            self._stride(b)
        return graph

    def _cross_attention(self, features: torch.Tensor, out: torch.Tensor) -> None:
        """Write each decoder layer's keys and values over the encoded audio into ``out``.

        ``out`` is layers × 2 × windows × heads × frames × dim.
        """
        size, frames, _ = features.shape
        for n, block in enumerate(self.blocks):
            for kind, projected in enumerate((block.cross_attn.key(features), block.cross_attn.value(features))):
                out[n, kind] = projected.view(size, frames, self.heads, -1).transpose(1, 2)

    def _stride(self, b: _Batch) -> None:
        """``STRIDE`` decoding steps after the first: what a CUDA graph captures (no reads on the host, fixed
        shapes)."""
        for _ in range(STRIDE):
            self._choose(b, self._forward(b), first=False)

    def _forward(self, b: _Batch) -> torch.Tensor:
        """Float32 logits of the next token of each window, whose token at ``b.position`` is ``b.token``."""
        decoder, size = self.model.decoder, b.token.shape[0]
        x = (decoder.token_embedding(b.token) + decoder.positional_embedding.index_select(0, b.position)).to(self.dtype)
        seen = (self.positions <= b.position).view(1, 1, 1, -1)  # the cache up to this position
        for n, block in enumerate(self.blocks):
            q, k, v = F.linear(_norm(x, block.attn_ln), *self.qkv[n]).view(size, 3, self.heads, -1).unbind(1)
            b.cache[n, 0].index_copy_(2, b.position, k[:, :, None])
            b.cache[n, 1].index_copy_(2, b.position, v[:, :, None])
            attended = F.scaled_dot_product_attention(q[:, :, None], b.cache[n, 0], b.cache[n, 1], attn_mask=seen)
            x = x + block.attn.out(attended.reshape(size, -1))
            q = block.cross_attn.query(_norm(x, block.cross_attn_ln)).view(size, self.heads, 1, -1)
            attended = F.scaled_dot_product_attention(q, b.cross[n, 0], b.cross[n, 1])
            x = x + block.cross_attn.out(attended.reshape(size, -1))
            x = x + block.mlp(_norm(x, block.mlp_ln))
        x = _norm(x, decoder.ln)
        return (x @ self.vocabulary).float()

    def _choose(self, b: _Batch, logits: torch.Tensor, first: bool) -> None:
        """Apply the rules, take the most likely token, and record it; then move to the next position."""
        r = self.rules
        self._apply_rules(logits, first, b)
        token = logits.argmax(dim=-1)
        chosen = F.log_softmax(logits, dim=-1).gather(1, token[:, None])[:, 0]
        b.sum_logprob.add_(torch.where(b.done, 0.0, chosen))
        token = torch.where(b.done, r.eot, token)
        b.out.index_copy_(1, b.position - (len(r.initial) - 1), token[:, None])
        is_stamp = token >= r.timestamp_begin
        b.penultimate_is_stamp.copy_(b.last_is_stamp)
        b.last_is_stamp.copy_(is_stamp)
        b.last_stamp.copy_(torch.where(is_stamp, token, b.last_stamp))
        b.done.logical_or_(token == r.eot)
        b.token.copy_(token)
        # after a window's last token (sample_len of them), steps of a stride go to the scratch position
        b.position.add_(1).clamp_(max=self.steps)
        b.done.logical_or_(b.position == self.steps)

    def _apply_rules(self, logits: torch.Tensor, first: bool, b: _Batch) -> None:
        """Mask, in place, the tokens openai-whisper's rules forbid as the next sampled token."""
        r, inf = self.rules, float("-inf")
        begin = r.timestamp_begin
        logits.index_fill_(1, self.suppress, inf)
        if first:
            logits.index_fill_(1, self.blank, inf)
            logits[:, :begin] = inf  # a window starts with a timestamp ...
            logits[:, begin + r.max_initial_timestamp + 1 :] = inf  # ... within its first second
        else:
            closing = b.last_is_stamp & ~b.penultimate_is_stamp
            logits[:, begin:].masked_fill_((b.last_is_stamp & b.penultimate_is_stamp)[:, None], inf)
            logits[:, : r.eot].masked_fill_(closing[:, None], inf)  # a segment's end is followed by a start
            floor = torch.where(closing, b.last_stamp, b.last_stamp + 1)  # stamps never go back
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


class _Batch:
    """Every tensor one decoding step reads or writes, for ``size`` windows, at fixed addresses.

    The timestamp state follows openai-whisper: whether the last two sampled tokens were
    timestamps (a missing penultimate token counts as one) and the last timestamp (-1 before
    the first).
    """

    def __init__(self, decoder: GreedyDecoder, size: int):
        dims, device, dtype = decoder.model.dims, decoder.model.device, decoder.dtype
        layers, heads, width = len(decoder.blocks), decoder.heads, dims.n_text_state // decoder.heads
        zeros = dict(dtype=dtype, device=device)
        self.cross = torch.zeros((layers, 2, size, heads, dims.n_audio_ctx, width), **zeros)
        self.cache = torch.zeros((layers, 2, size, heads, decoder.steps + 1, width), **zeros)
        self.token = torch.zeros(size, dtype=torch.long, device=device)
        self.position = torch.zeros(1, dtype=torch.long, device=device)
        self.out = torch.zeros((size, decoder.rules.sample_len + 1), dtype=torch.long, device=device)
        self.sum_logprob = torch.zeros(size, device=device)
        self.no_speech = torch.zeros(size, device=device)
        self.last_is_stamp = torch.zeros(size, dtype=torch.bool, device=device)
        self.penultimate_is_stamp = torch.zeros(size, dtype=torch.bool, device=device)
        self.last_stamp = torch.zeros(size, dtype=torch.long, device=device)
        self.done = torch.zeros(size, dtype=torch.bool, device=device)
        self.graph: torch.cuda.CUDAGraph | None = None

    def reset(self, rules: _Rules) -> None:
        """Ready for a new batch: nothing sampled yet."""
        self.out.fill_(rules.eot)
        self.sum_logprob.zero_()
        self.no_speech.zero_()
        self.last_is_stamp.fill_(True)
        self.penultimate_is_stamp.fill_(True)
        self.last_stamp.fill_(-1)
        self.done.zero_()
