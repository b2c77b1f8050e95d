"""Two digests of each day as "Digest A" and "Digest B", plain text, for a reader who judges them blind.

    python bench/blind_pair.py MODEL_DIGESTS OFFLINE_DIGESTS OUT

Both folders hold ``DAY.json`` files as ``bench/eval_real.py --save`` writes them. OUT gets ``days/DAY.txt``
(headline, "said on N shows" and quotes of each item; nothing says which method made which) and
``blind-key.json``, which side is which, for after the reading. The model's digest alternates sides by day.
The reader's brief is in ``bench/data/llm-runs/README.md``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def as_text(digest: dict) -> str:
    """A digest as a reader sees it: each item's headline, the shows that said it, and its quotes."""
    lines = []
    for i in digest["insights"]:
        shows = i["support"]["shows"]
        lines += [
            f"{i['rank']}. {i['text']}",
            f"   (said on {shows} show{'s' if shows != 1 else ''}: {', '.join(i['support']['show_names'])})",
        ]
        lines += [f'   - {q["show"]}: "{q["text"]}"' for q in i["quotes"]]
        lines.append("")
    return "\n".join(lines) or "(no insights)"


def main() -> None:
    model, offline, out = (Path(a) for a in sys.argv[1:4])
    (out / "days").mkdir(parents=True, exist_ok=True)
    key: dict[str, dict[str, str]] = {}
    for n, path in enumerate(sorted(model.glob("*.json"))):
        pair = [("model", json.loads(path.read_text())), ("offline", json.loads((offline / path.name).read_text()))]
        if n % 2:
            pair.reverse()
        key[path.stem] = {"A": pair[0][0], "B": pair[1][0]}
        text = (
            f"Day {path.stem}\n\n=== Digest A ===\n{as_text(pair[0][1])}\n\n=== Digest B ===\n{as_text(pair[1][1])}\n"
        )
        (out / "days" / f"{path.stem}.txt").write_text(text)
    (out / "blind-key.json").write_text(json.dumps(key, indent=1) + "\n")


if __name__ == "__main__":
    main()
