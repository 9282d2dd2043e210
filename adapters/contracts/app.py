"""The contract service as ``spbe-bus run`` runs it: built from its config at start.

:class:`ContractServiceAdapter` opens the ledger (``ledger_url``), checks that its table
exists, builds the :class:`~adapters.contracts.service.ContractService` from the
catalogue's subscriptions and starts it; :meth:`~ContractServiceAdapter.stop` stops the
service and closes the ledger. The ledger table is not created here: the service's
database user has only ``SELECT`` and ``INSERT`` on it, and the append-only triggers are
the owner's (``create_ledger_table``, docs/contracts.md), as the outbox relay leaves its
table to the application's migrations and refuses to start without it.

At start it also sets ``spbe_subscription_expires_timestamp_seconds`` of every subscription
of its catalogue (:func:`bus.ops.metrics.export_subscription_expiry`): the service is the
one process that holds the catalogue's contracts, so ``spbe-bus run --metrics-port`` shows
them where Prometheus scrapes it (deploy/monitoring/alerts.yaml warns 30 days ahead).
"""

from __future__ import annotations

from adapters.contracts.config import ContractServiceConfig
from adapters.contracts.service import ContractService
from adapters.db import run_sync
from adapters.ledger import LedgerStore
from bus.errors import LifecycleError
from bus.lifecycle import Lifecycle
from bus.ops.metrics import export_subscription_expiry

__all__ = ["ContractServiceAdapter"]


class ContractServiceAdapter(Lifecycle):
    """A contract service and its ledger, from one :class:`ContractServiceConfig`."""

    def __init__(self, config: ContractServiceConfig) -> None:
        self.config = config
        self._ledger: LedgerStore | None = None
        self._service: ContractService | None = None

    @property
    def service(self) -> ContractService:
        """The running service (after :meth:`start`)."""
        if self._service is None:
            raise LifecycleError(
                "the contract service is not started",
                fix="use 'async with ContractServiceAdapter(config)' or await start() first",
            )
        return self._service

    async def start(self) -> None:
        if self._service is not None:
            return
        config = self.config
        ledger = LedgerStore.from_url(
            config.ledger_url.get_secret_value(), config.ledger_subject_secret.get_secret_value()
        )
        try:
            await run_sync(ledger.check_table)
            service = ContractService(
                config.subscriptions,
                pairwise_secret=config.pairwise_key_secret,
                ledger=ledger,
                ledger_secret=config.ledger_subject_secret,
                kafka=config.connection,
                group_id=config.group_id,
                registry_topic=config.registry_topic,
                max_poll_records=config.max_poll_records,
            )
            await service.start()
        except BaseException:
            ledger.close()
            raise
        self._ledger, self._service = ledger, service
        export_subscription_expiry(config.subscriptions)

    async def stop(self) -> None:
        service, self._service = self._service, None
        ledger, self._ledger = self._ledger, None
        try:
            if service is not None:
                await service.stop()
        finally:
            if ledger is not None:
                ledger.close()

    async def run(self) -> None:
        """Deliver until :meth:`request_stop` (``ContractService.run``)."""
        await self.service.run()

    def request_stop(self) -> None:
        """Ask :meth:`run` to return after the batch in hand."""
        if self._service is not None:
            self._service.request_stop()

    def __repr__(self) -> str:
        return f"ContractServiceAdapter(group_id={self.config.group_id!r}, secrets=**********)"
