"""One budgeted, cached client for an OpenAI-compatible chat endpoint.

Every call counts against the run's budgets (``llm.max_calls``, ``llm.max_tokens``, ``llm.max_seconds``).
Once the endpoint is down, slow, refusing or over budget, the client stays unavailable for the rest of
the run, so the caller falls back once instead of waiting on every remaining call. Validated JSON
answers are cached in the store by model, prompt version and request: a rerun of a day costs no call.
The API key is read from the environment variable ``llm.api_key_env`` names, and never logged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from digest.config import Config
from digest.errors import DigestError
from digest.prompts import VERSION as PROMPT_VERSION

if TYPE_CHECKING:
    from digest.store import Store

log = logging.getLogger(__name__)
CHARS_PER_TOKEN = 4  # for budgets when the server reports no usage; English BPE averages about 4
RETRY_WAIT = 5.0  # most seconds waited before the one retry of a 429 or 5xx
_CONTEXT_ERROR = re.compile(r"context|too long|maximum.*tokens|n_ctx", re.I)


class LlmUnavailable(DigestError):
    """The endpoint is down, slow or refusing, or the run's LLM budget is spent."""


class ContextTooLong(DigestError):
    """The request does not fit the model's context window."""


class MalformedAnswer(DigestError):
    """The model's answer is not JSON of the expected shape, even after one repair attempt."""


@dataclass
class Usage:
    """What a run has spent on the LLM."""

    calls: int = 0
    tokens: int = 0
    prompt_tokens: int = 0
    answer_tokens: int = 0
    cached: int = 0
    seconds: float = 0.0


class LlmClient:
    """Chat completions under the run's budgets; see the module docstring."""

    def __init__(self, config: Config, store: Store | None = None):
        self.config = config
        self.store = store
        self.url = config["llm.base_url"].rstrip("/")
        self.model = config["llm.model"]
        self.usage = Usage()
        self.down: str | None = None  # why the endpoint is unavailable for the rest of the run
        self._deadline = time.monotonic() + config["llm.max_seconds"]
        if not self.url or not self.model:
            self.down = "llm.base_url and llm.model must both be set"

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.config["llm.api_key_env"], "")
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _unavailable(self, reason: str) -> LlmUnavailable:
        self.down = reason
        return LlmUnavailable(reason)

    def chat(self, messages: list[dict[str, str]], *, schema: dict | None = None, max_tokens: int = 1024) -> str:
        """One completion's text. Raises :class:`LlmUnavailable` or :class:`ContextTooLong`."""
        if self.down:
            raise LlmUnavailable(self.down)
        c = self.config
        if self.usage.calls >= c["llm.max_calls"]:
            raise self._unavailable(f"call budget spent (llm.max_calls = {c['llm.max_calls']})")
        if self.usage.tokens >= c["llm.max_tokens"]:
            raise self._unavailable(f"token budget spent (llm.max_tokens = {c['llm.max_tokens']})")
        body: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": 0, "max_tokens": max_tokens}
        if schema is not None:
            body["response_format"] = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
        response = self._post(body)
        if _busy(response):
            wait = _retry_after(response.headers.get("Retry-After"))
            log.info("LLM answered %d; retrying once in %.1f s", response.status_code, wait)
            time.sleep(wait)
            response = self._post(body)
            if _busy(response):
                raise self._unavailable(f"HTTP {response.status_code} twice: {response.text[:200]}")
        if response.status_code == 400 and _CONTEXT_ERROR.search(response.text):
            raise ContextTooLong(response.text[:200])
        if response.status_code >= 400:
            raise self._unavailable(f"HTTP {response.status_code}: {response.text[:200]}")
        try:
            data = response.json()
            text = str(data["choices"][0]["message"]["content"] or "")
        except (ValueError, KeyError, IndexError, TypeError):
            raise self._unavailable(f"not an OpenAI chat completion: {response.text[:200]}") from None
        usage = data.get("usage") or {}
        asked, answered = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if not isinstance(asked, int) or not isinstance(answered, int):  # estimated when the server says nothing
            asked, answered = sum(len(m["content"]) for m in messages) // CHARS_PER_TOKEN, len(text) // CHARS_PER_TOKEN
        total = usage.get("total_tokens")
        self.usage.prompt_tokens += asked
        self.usage.answer_tokens += answered
        self.usage.tokens += total if isinstance(total, int) else asked + answered
        return text

    def _post(self, body: dict[str, Any]) -> httpx.Response:
        """One request within the time budget; the endpoint is unavailable if it cannot be reached in time."""
        c = self.config
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise self._unavailable(f"time budget spent (llm.max_seconds = {c['llm.max_seconds']:g})")
        self.usage.calls += 1
        started = time.monotonic()
        try:
            return httpx.post(
                self.url + "/chat/completions", json=body, headers=self._headers(), timeout=min(c["llm.timeout"], left)
            )
        except httpx.TimeoutException:
            raise self._unavailable(f"no answer within {min(c['llm.timeout'], left):.0f} s") from None
        except httpx.HTTPError as exc:
            raise self._unavailable(f"cannot reach {self.url}: {exc}") from None
        finally:
            self.usage.seconds += time.monotonic() - started

    def chat_json(self, messages: list[dict[str, str]], schema: dict, *, max_tokens: int = 1024) -> Any:
        """A JSON answer that matches ``schema``, from the cache or the model.

        A malformed answer gets one repair request that shows the model its error; a second
        malformed answer raises :class:`MalformedAnswer`.
        """
        key = hashlib.sha256(
            json.dumps([self.model, PROMPT_VERSION, messages, schema], sort_keys=True).encode()
        ).hexdigest()
        if self.store is not None and (cached := self.store.llm_answer(key)) is not None:
            self.usage.cached += 1
            return json.loads(cached)
        answer = self.chat(messages, schema=schema, max_tokens=max_tokens)
        value, error = parse_json(answer, schema)
        if error:
            log.info("LLM answer malformed (%s); asking once to repair it", error)
            repair = [
                *messages,
                {"role": "assistant", "content": answer},
                {"role": "user", "content": f"That answer is invalid: {error}. Reply again with only the JSON."},
            ]
            value, error = parse_json(self.chat(repair, schema=schema, max_tokens=max_tokens), schema)
            if error:
                raise MalformedAnswer(error)
        if self.store is not None:
            self.store.save_llm_answer(key, json.dumps(value))
        return value


def _busy(response: httpx.Response) -> bool:
    """A 429 or 5xx: worth one retry."""
    return response.status_code == 429 or response.status_code >= 500


def _retry_after(header: str | None) -> float:
    try:
        return min(RETRY_WAIT, max(0.0, float(header))) if header else 1.0
    except ValueError:
        return 1.0


def parse_json(text: str, schema: dict) -> tuple[Any, str | None]:
    """The JSON value in ``text`` (a Markdown code fence around it is allowed) and the first schema violation."""
    bare = re.sub(r"^\s*```(?:json)?\s*|\s*```\s*$", "", text.strip())
    try:
        value = json.loads(bare)
    except ValueError as exc:
        return None, f"not JSON ({exc})"
    return value, violation(value, schema)


_TYPES: dict[str, type | tuple[type, ...]] = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
}


def violation(value: Any, schema: dict, where: str = "$") -> str | None:
    """The first place ``value`` breaks ``schema`` (the JSON Schema subset the prompts use), or ``None``."""
    kinds = schema.get("type")
    if kinds is not None:
        allowed = kinds if isinstance(kinds, list) else [kinds]
        ok = any(
            isinstance(value, _TYPES[k]) and not (k in {"integer", "number"} and isinstance(value, bool))
            for k in allowed
        )
        if not ok:
            return f"{where} should be {' or '.join(allowed)}"
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                return f"{where}.{name} is missing"
        for name, sub in schema.get("properties", {}).items():
            if name in value and (error := violation(value[name], sub, f"{where}.{name}")):
                return error
    if isinstance(value, list) and "items" in schema:
        for n, item in enumerate(value):
            if error := violation(item, schema["items"], f"{where}[{n}]"):
                return error
    return None


def check(config: Config) -> dict[str, Any]:
    """Call the endpoint once: the model it reports, its context size, the latency, and whether it returns
    valid JSON. Raises :class:`LlmUnavailable` when it cannot be reached."""
    from digest.llm.prompting import prompt, schema

    client = LlmClient(config)
    started = time.monotonic()
    try:
        answer = client.chat(prompt("check"), schema=schema("check"), max_tokens=32)
    except ContextTooLong as exc:
        raise LlmUnavailable(f"refused a tiny request: {exc}") from None
    latency = time.monotonic() - started
    _, error = parse_json(answer, schema("check"))
    return {
        "base_url": client.url,
        "model": client.model,
        "context_tokens": _context_size(client),
        "latency_s": round(latency, 3),
        "valid_json": error is None,
        "error": error,
    }


def _context_size(client: LlmClient) -> int | None:
    """The context window the server reports for the model in ``/models``, when it does (vLLM, llama.cpp)."""
    try:
        listing = httpx.get(client.url + "/models", headers=client._headers(), timeout=10).json()
    except (httpx.HTTPError, ValueError):
        return None
    for entry in listing.get("data", []) if isinstance(listing, dict) else []:
        if isinstance(entry, dict) and entry.get("id") in (client.model, None):
            meta = entry.get("meta") or {}
            for size in (entry.get("max_model_len"), entry.get("context_length"), meta.get("n_ctx_train")):
                if isinstance(size, int):
                    return size
    return None
