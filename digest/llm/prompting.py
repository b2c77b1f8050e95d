"""The prompts in ``prompts/``: a system and a user template per task, and the JSON schema its answer follows."""

from __future__ import annotations

import functools
import json
from typing import Any

import jinja2

from digest.prompts import VERSION


@functools.cache
def _templates() -> jinja2.Environment:
    loader = jinja2.PackageLoader("digest.prompts", ".")
    return jinja2.Environment(loader=loader, autoescape=False, undefined=jinja2.StrictUndefined)


@functools.cache
def schema(task: str) -> dict:
    """The JSON schema of a task's answer (``prompts/<task>.schema.json``)."""
    source = _templates().loader.get_source(_templates(), f"{task}.schema.json")[0]  # type: ignore[union-attr]
    return dict(json.loads(source))


def prompt(task: str, **values: Any) -> list[dict[str, str]]:
    """The chat messages of a task, from ``prompts/<task>_system.md.j2`` and ``prompts/<task>_user.md.j2``."""
    env = _templates()
    system = env.get_template(f"{task}_system.md.j2")
    user = env.get_template(f"{task}_user.md.j2")
    extra: dict[str, Any] = {"version": VERSION}
    try:
        extra["schema"] = json.dumps(schema(task))
    except jinja2.TemplateNotFound:  # a task answered in plain text (rewrite)
        pass
    return [
        {"role": "system", "content": system.render(**extra, **values).strip()},
        {"role": "user", "content": user.render(**extra, **values).strip()},
    ]
