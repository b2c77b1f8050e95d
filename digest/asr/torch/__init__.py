"""Whisper through PyTorch: the openai-whisper backend, its batched GPU decoder, and the checkpoint export.

These are the only modules of digest that import torch.
"""
