"""The optional language-model steps, through any OpenAI-compatible endpoint (Ollama, vLLM, llama.cpp).

``llm.mode = rewrite`` rephrases each ranked pick (:mod:`digest.llm.rewrite`); ``llm.mode = select`` reads
every episode and picks the day's insights (:mod:`digest.llm.select`). Both go through one budgeted,
cached client (:mod:`digest.llm.client`), and nothing the model writes reaches a reader unless it is
grounded in the transcripts (:mod:`digest.llm.grounding`).
"""
