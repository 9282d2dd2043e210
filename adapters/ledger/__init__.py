"""The delivery ledger in SQL: who received which resident's data, when, under which agreement.

:func:`create_ledger_table` makes ``spbe_ledger`` (append-only, guarded by triggers);
:class:`LedgerStore` appends entries (before the deliveries they record) and answers
``who_received``. The entries themselves are :class:`bus.ledger.LedgerEntry`.
"""

from __future__ import annotations

from adapters.ledger.store import LedgerStore
from adapters.ledger.table import DEFAULT_TABLE, create_ledger_table, ledger_table

__all__ = ["DEFAULT_TABLE", "LedgerStore", "create_ledger_table", "ledger_table"]
