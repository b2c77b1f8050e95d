"""``digest model export``: the bundled CTranslate2 tiny.en as an openai-whisper (PyTorch) checkpoint.

CTranslate2's CUDA build needs cuBLAS 12; on CUDA 13 machines Whisper must run through
PyTorch. This turns the same default model into a checkpoint that ``whisper.load_model``
reads, so the openai-whisper backend works offline with it on any torch device.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

from digest.errors import DigestError

_DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16, None)  # CTranslate2's DataType order; bfloat16 unused


def read_ct2(path: Path) -> tuple[str, dict[str, np.ndarray]]:
    """The spec name and named arrays of a CTranslate2 ``model.bin`` (binary version 6), aliases resolved."""

    def string(f: BinaryIO) -> str:
        (length,) = struct.unpack("<H", f.read(2))
        return f.read(length)[:-1].decode("utf-8")

    with path.open("rb") as f:
        (version,) = struct.unpack("<I", f.read(4))
        if version != 6:
            raise DigestError(f"{path}: expected CTranslate2 binary version 6, found {version}")
        spec = string(f)
        f.read(4)  # spec revision
        (count,) = struct.unpack("<I", f.read(4))
        arrays: dict[str, np.ndarray] = {}
        for _ in range(count):
            name = string(f)
            (rank,) = struct.unpack("<B", f.read(1))
            shape = struct.unpack(f"<{rank}I", f.read(4 * rank))
            (dtype_id,) = struct.unpack("<B", f.read(1))
            (size,) = struct.unpack("<I", f.read(4))
            dtype = _DTYPES[dtype_id]
            if dtype is None:
                raise DigestError(f"{path}: {name} is bfloat16, which this exporter does not read")
            arrays[name] = np.frombuffer(f.read(size), dtype=dtype).reshape(shape)
        (aliases,) = struct.unpack("<I", f.read(4))
        for _ in range(aliases):
            alias, target = string(f), string(f)
            arrays[alias] = arrays[target]
    return spec, arrays


def _attention(arrays: dict[str, np.ndarray], ct2: str, torch_prefix: str, fused: str, out: str) -> dict:
    """openai-whisper attention weights from a CTranslate2 attention block.

    ``fused`` names the CTranslate2 linear holding K and V (self-attention also puts Q
    first); openai-whisper's key projection has no bias.
    """
    state = {}
    weight, bias = arrays[f"{ct2}/{fused}/weight"], arrays[f"{ct2}/{fused}/bias"]
    names = ["query", "key", "value"] if weight.shape[0] == 3 * weight.shape[1] else ["key", "value"]
    if len(names) == 2:
        state[f"{torch_prefix}.query.weight"] = arrays[f"{ct2}/linear_0/weight"]
        state[f"{torch_prefix}.query.bias"] = arrays[f"{ct2}/linear_0/bias"]
    for name, w, b in zip(names, np.split(weight, len(names)), np.split(bias, len(names))):
        state[f"{torch_prefix}.{name}.weight"] = w
        if name != "key":
            state[f"{torch_prefix}.{name}.bias"] = b
    state[f"{torch_prefix}.out.weight"] = arrays[f"{ct2}/{out}/weight"]
    state[f"{torch_prefix}.out.bias"] = arrays[f"{ct2}/{out}/bias"]
    return state


def _norm(arrays: dict[str, np.ndarray], ct2: str, name: str) -> dict:
    return {f"{name}.weight": arrays[f"{ct2}/gamma"], f"{name}.bias": arrays[f"{ct2}/beta"]}


def whisper_checkpoint(arrays: dict[str, np.ndarray]) -> dict:
    """An openai-whisper checkpoint (``dims`` + ``model_state_dict``) holding the same weights."""
    import torch

    layers = {
        side: 1 + max(int(m[1]) for k in arrays if (m := re.match(rf"{side}/layer_(\d+)/", k)))
        for side in ("encoder", "decoder")
    }
    state: dict[str, np.ndarray] = {}
    for i in range(layers["encoder"]):
        ct2, pt = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        state |= _attention(arrays, f"{ct2}/self_attention", f"{pt}.attn", "linear_0", "linear_1")
        state |= _norm(arrays, f"{ct2}/self_attention/layer_norm", f"{pt}.attn_ln")
    for i in range(layers["decoder"]):
        ct2, pt = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        state |= _attention(arrays, f"{ct2}/self_attention", f"{pt}.attn", "linear_0", "linear_1")
        state |= _norm(arrays, f"{ct2}/self_attention/layer_norm", f"{pt}.attn_ln")
        state |= _attention(arrays, f"{ct2}/attention", f"{pt}.cross_attn", "linear_1", "linear_2")
        state |= _norm(arrays, f"{ct2}/attention/layer_norm", f"{pt}.cross_attn_ln")
    for side, count in layers.items():
        for i in range(count):
            ct2, pt = f"{side}/layer_{i}/ffn", f"{side}.blocks.{i}"
            state |= {
                f"{pt}.mlp.0.weight": arrays[f"{ct2}/linear_0/weight"],
                f"{pt}.mlp.0.bias": arrays[f"{ct2}/linear_0/bias"],
                f"{pt}.mlp.2.weight": arrays[f"{ct2}/linear_1/weight"],
                f"{pt}.mlp.2.bias": arrays[f"{ct2}/linear_1/bias"],
            }
            state |= _norm(arrays, f"{ct2}/layer_norm", f"{pt}.mlp_ln")
    for conv in ("conv1", "conv2"):
        state |= {
            f"encoder.{conv}.weight": arrays[f"encoder/{conv}/weight"],
            f"encoder.{conv}.bias": arrays[f"encoder/{conv}/bias"],
        }
    state["encoder.positional_embedding"] = arrays["encoder/position_encodings/encodings"]
    state |= _norm(arrays, "encoder/layer_norm", "encoder.ln_post")
    state["decoder.token_embedding.weight"] = arrays["decoder/embeddings/weight"]
    state["decoder.positional_embedding"] = arrays["decoder/position_encodings/encodings"]
    state |= _norm(arrays, "decoder/layer_norm", "decoder.ln")
    vocab, width = arrays["decoder/embeddings/weight"].shape
    dims = {
        "n_mels": int(arrays["encoder/conv1/weight"].shape[1]),
        "n_audio_ctx": int(arrays["encoder/position_encodings/encodings"].shape[0]),
        "n_audio_state": int(arrays["encoder/conv1/weight"].shape[0]),
        "n_audio_head": int(arrays["encoder/num_heads"]),
        "n_audio_layer": layers["encoder"],
        "n_vocab": int(vocab),
        "n_text_ctx": int(arrays["decoder/position_encodings/encodings"].shape[0]),
        "n_text_state": int(width),
        "n_text_head": int(arrays["decoder/num_heads"]),
        "n_text_layer": layers["decoder"],
    }
    tensors = {k: torch.from_numpy(np.array(v, dtype=np.float16)) for k, v in state.items()}
    return {"dims": dims, "model_state_dict": tensors}


INT8_MIN_ELEMENTS = 100_000


def quantize(checkpoint: dict) -> dict:
    """Store each matrix of at least 100k elements as per-row int8 with float16 scales (75 MB → 40 MB)."""
    import torch

    state, packed = {}, {}
    for name, tensor in checkpoint["model_state_dict"].items():
        if tensor.ndim == 2 and tensor.numel() >= INT8_MIN_ELEMENTS:
            scale = (tensor.float().abs().amax(dim=1, keepdim=True) / 127).clamp(min=1e-8)
            packed[name] = ((tensor.float() / scale).round().to(torch.int8), scale.half())
        else:
            state[name] = tensor
    return {"dims": checkpoint["dims"], "model_state_dict": state, "int8": packed}


def load_model(path: Path, device: str):
    """A ``whisper.Whisper`` from a checkpoint of ours (int8 or not) or any openai-whisper name or path."""
    import torch
    import whisper

    if not path.is_file():
        return whisper.load_model(str(path), device=device)
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if "int8" not in checkpoint:
        return whisper.load_model(str(path), device=device)
    state = dict(checkpoint["model_state_dict"])
    for name, (q, scale) in checkpoint["int8"].items():
        state[name] = (q.float() * scale.float()).half()
    model = whisper.model.Whisper(whisper.model.ModelDimensions(**checkpoint["dims"]))
    model.load_state_dict(state)
    return model.to(device)


def export(model_dir: Path, out: Path, int8: bool = False) -> Path:
    """Write ``out`` (.pt), an openai-whisper checkpoint of the CTranslate2 Whisper in ``model_dir``.

    Args:
        int8: Per-row int8 for the large matrices: about half the size, for machines a
            model must be copied to. Load such a file with :func:`load_model`.
    """
    import torch

    spec, arrays = read_ct2(model_dir / "model.bin")
    if spec != "WhisperSpec":
        raise DigestError(f"{model_dir}: expected a CTranslate2 WhisperSpec model, found {spec}")
    checkpoint = whisper_checkpoint(arrays)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    torch.save(quantize(checkpoint) if int8 else checkpoint, tmp)
    tmp.replace(out)
    return out
