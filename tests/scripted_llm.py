"""A scripted stand-in for an OpenAI-compatible model server, on loopback.

It speaks the real HTTP API (``POST /v1/chat/completions``, ``GET /v1/models``) but no model runs:
each request's task is read from its system prompt ("Task: map"), and that task's script answers.
The default scripts answer the labelled day ``tests/data/eval/day1.toml`` from the fixtures below;
tests replace a script to make the server misbehave.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

from conftest import serve_on_loopback

# Answer = the assistant's text, or (HTTP status, body) for an error.
Answer = str | tuple[int, str]
Script = Callable[[dict], Answer]

# The key points of day 1, by episode title: what a good model would find, quoting the transcripts.
KEY_POINTS: dict[str, list[dict]] = {
    "Grid 40: storage gets cheap": [
        {
            "claim": "Sodium-ion batteries now cost less than lithium batteries for storing power on the grid.",
            "quotes": [
                {
                    "text": "Sodium ion batteries now cost less than lithium batteries for storing power on the grid.",
                    "start": "0:20",
                },
                {"text": "so the cells are about forty percent cheaper", "start": "0:30"},
            ],
        },
        {
            "claim": "Getting up at the same hour every morning matters more for health than sleeping longer.",
            "quotes": [
                {"text": "Getting up at the same hour every morning does more for your health", "start": "0:40"}
            ],
        },
    ],
    "WIP 87: the office question": [
        {
            "claim": "Teams working from home two days a week ship as much code as teams in the office.",
            "quotes": [{"text": "Teams that work from home two days a week ship just as much code", "start": "0:20"}],
        },
        {
            "claim": "Battery makers are switching from lithium to sodium cells because sodium is cheaper to mine.",
            "quotes": [{"text": "Battery makers are switching from lithium to sodium cells", "start": 30}],
        },
    ],
    "Deep Rest 11: body clocks": [
        {
            "claim": "Waking at a fixed time every day steadies the body clock more than total sleep hours do.",
            "quotes": [{"text": "Waking up at a fixed time every day keeps your body clock steady", "start": "0:20"}],
        },
        {
            "claim": "Researchers found microplastic particles in nearly every bottle of drinking water tested.",
            "quotes": [{"text": "Researchers found microplastic particles in nearly every bottle", "start": "0:30"}],
        },
        {
            "claim": "Hybrid schedules do not hurt productivity: remote days produce as much as office days.",
            "quotes": [{"text": "Hybrid schedules do not hurt productivity", "start": "0:40"}],
        },
    ],
    "Field Notes 203: what is in the water": [
        {
            "claim": "A new study detected tiny plastic fragments in almost all bottled water brands sampled.",
            "quotes": [{"text": "Bottled water contains tiny plastic fragments", "start": "0:20"}],
        },
        {
            "claim": "Employees working partly from home get as much done as full-time office workers.",
            "quotes": [{"text": "employees working partly from home get as much done", "start": "0:30"}],
        },
    ],
}
THEMES = {
    "sodium": "sodium",
    "plastic": "plastic",
    "home": "hybrid",
    "hybrid": "hybrid",
    "fixed time": "sleep",
    "same hour": "sleep",
}
WRITTEN = {
    "sodium": "While lithium still dominates grid storage, sodium ion batteries now cost less because sodium is cheap.",
    "hybrid": "While offices call staff back, teams that work from home part of the week get as much done.",
    "plastic": "While bottled water looks clean, researchers found plastic fragments in nearly every bottle tested.",
    "sleep": "While most advice is about sleeping longer, waking at a fixed time every day matters more for health.",
}


def theme(text: str) -> str:
    return next((t for key, t in THEMES.items() if key in text.lower()), "")


def episode_of(request: dict) -> str:
    return re.search(r"^Episode: (.+)$", request["messages"][1]["content"], re.M)[1]


def map_from_fixtures(request: dict) -> Answer:
    return json.dumps({"key_points": KEY_POINTS.get(episode_of(request), [])})


def agree_by_theme(request: dict) -> Answer:
    user = request["messages"][1]["content"]
    given = theme(re.search(r"^The given point \(.+?\): (.+)$", user, re.M)[1])
    numbered = re.findall(r"^(\d+)\. \(.+?\) (.+)$", user, re.M)
    return json.dumps({"agree": [int(n) for n, claim in numbered if given and theme(claim) == given]})


def write_by_theme(request: dict) -> Answer:
    user = request["messages"][1]["content"]
    quotes = [int(n) for n in re.findall(r"^(\d+)\. \(", user, re.M)]
    return json.dumps({"headline": WRITTEN.get(theme(user), ""), "quotes": quotes})


def restate_from_transcript(request: dict) -> Answer:
    """The longest transcript line around the quotes, as a model might fall back to the speaker's words."""
    lines = re.findall(r"^\[[\d:]+\] (?:[^:\n]+: )?(.+)$", request["messages"][1]["content"], re.M)
    return json.dumps({"claim": max(lines, key=len, default="")})


def select_in_order(request: dict) -> Answer:
    ids = re.findall(r"^\[(\d+)\]", request["messages"][1]["content"], re.M)
    return json.dumps(
        {"picks": [{"id": int(i), "reason": f"Candidate {i} is news several shows agree on."} for i in ids[:5]]}
    )


class ScriptedOpenAIServer:
    """The server; ``scripts[task]`` answers each request of that task, ``delay`` slows every answer."""

    def __init__(self, model: str = "scripted-model", context: int | None = 8192) -> None:
        self.scripts: dict[str, Script] = {
            "map": map_from_fixtures,
            "agree": agree_by_theme,
            "write": write_by_theme,
            "select": select_in_order,
            "restate": restate_from_transcript,
            "check": lambda request: '{"ok": true}',
        }
        self.requests: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self.delay = 0.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                entry = {"id": model, "object": "model", **({"max_model_len": context} if context else {})}
                self._send(200, json.dumps({"object": "list", "data": [entry]}))

            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                server.requests.append(request)
                server.headers.append(dict(self.headers))
                time.sleep(server.delay)
                task = re.match(r"Task: (\w+)", request["messages"][0]["content"])[1]
                answer = server.scripts[task](request)
                if isinstance(answer, tuple):
                    return self._send(*answer)
                self._send(
                    200,
                    json.dumps(
                        {
                            "id": f"scripted-{len(server.requests)}",
                            "object": "chat.completion",
                            "model": model,
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {"role": "assistant", "content": answer},
                                    "finish_reason": "stop",
                                }
                            ],
                            "usage": {"total_tokens": 100},
                        }
                    ),
                )

            def _send(self, status: int, body: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = serve_on_loopback(Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def tasks(self) -> list[str]:
        """The task of each request so far, in order."""
        return [re.match(r"Task: (\w+)", r["messages"][0]["content"])[1] for r in self.requests]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
