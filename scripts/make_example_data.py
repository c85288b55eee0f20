"""Write examples/own_data/: a small instruction dataset made by this script (arithmetic,
string and unit-conversion instructions with exact answers), in the shapes people keep
finetuning data in: alpaca JSON, chat JSONL and prompt/completion JSONL. Public domain (made
here, no source). Deterministic: ``python scripts/make_example_data.py``."""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "examples" / "own_data"
WORDS = [
    "river",
    "stone",
    "cloud",
    "garden",
    "lantern",
    "paper",
    "window",
    "mountain",
    "silver",
    "harbor",
]


def items(n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """(instruction, input, output) triples."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        kind = rng.randrange(5)
        a, b = rng.randrange(2, 99), rng.randrange(2, 99)
        w = rng.choice(WORDS)
        if kind == 0:
            out.append(("Add the two numbers.", f"{a} and {b}", str(a + b)))
        elif kind == 1:
            out.append((f"What is {a} times {b % 12 + 1}?", "", str(a * (b % 12 + 1))))
        elif kind == 2:
            out.append(("Write the word backwards.", w, w[::-1]))
        elif kind == 3:
            out.append(("Write the word in capital letters.", w, w.upper()))
        else:
            out.append((f"How many centimetres are {a} metres?", "", f"{a * 100} cm"))
    return out


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rows = items(600)
    alpaca = [{"instruction": i, "input": x, "output": o} for i, x, o in rows]
    (OUT / "alpaca.json").write_text(json.dumps(alpaca, indent=1) + "\n", encoding="utf-8")
    with (OUT / "chat.jsonl").open("w", encoding="utf-8") as fh:
        for i, x, o in rows:
            user = i + (f"\n{x}" if x else "")
            msgs = [{"role": "user", "content": user}, {"role": "assistant", "content": o}]
            fh.write(json.dumps({"messages": msgs}) + "\n")
    with (OUT / "prompt_completion.jsonl").open("w", encoding="utf-8") as fh:
        for i, x, o in rows:
            prompt = i + (f" {x}" if x else "") + "\nAnswer:"
            fh.write(json.dumps({"prompt": prompt, "completion": " " + o}) + "\n")


if __name__ == "__main__":
    main()
