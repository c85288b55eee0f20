"""The run store, as imported before the storage protocol: ``RunStore`` is the SQLite back end
(:mod:`ftscale.study.storage.sqlite`). New code opens a store by location with
:func:`ftscale.study.storage.open_store`."""

from __future__ import annotations

from ftscale.study.storage.base import FINISHED, STATUSES, RunStorage, StoredRun
from ftscale.study.storage.sqlite import SCHEMA_VERSION, SQLiteStore

RunStore = SQLiteStore

__all__ = ["FINISHED", "SCHEMA_VERSION", "STATUSES", "RunStorage", "RunStore", "StoredRun"]
