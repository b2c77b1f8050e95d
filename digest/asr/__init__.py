"""Speech recognition: audio decoding, Whisper backends, and executors that map transcription over episodes.

- :mod:`digest.asr.base`: the :class:`Transcriber` interface, :class:`AsrSettings` and the backend registry.
- :mod:`digest.asr.audio`: PyAV decoding in bounded chunks cut at quiet moments.
- :mod:`digest.asr.faster_whisper`: the default backend (CTranslate2).
- :mod:`digest.asr.torch`: the PyTorch backend, its batched GPU decoder and the checkpoint export;
  the only modules that import torch.
- :mod:`digest.asr.executors`: in this process, or on a Ray cluster.
"""
