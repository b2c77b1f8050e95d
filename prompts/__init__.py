"""Prompt templates of the optional LLM steps (shipped inside the package as ``digest.prompts``).

Each task has ``<task>_system.md.j2`` and ``<task>_user.md.j2``, and ``<task>.schema.json`` when it
answers in JSON. Bump :data:`VERSION` whenever a template or schema changes: cached answers are keyed
by it, so a changed prompt is asked afresh.
"""

VERSION = 5
