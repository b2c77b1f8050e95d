"""Prompt templates for the optional LLM step (shipped inside the package as ``digest.prompts``)."""
