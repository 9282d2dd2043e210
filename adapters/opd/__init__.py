"""Reference OPD adapters: small stand-ins for the OPD applications and their bus configs.

- ``disdukcapil.siak``: a SIAK-like ``penduduk`` table; moving house and registering a
  death write ``PendudukUpdated`` / ``KematianDicatat`` to the outbox in the same
  transaction (relay: ``deploy/adapters/disdukcapil-outbox-relay.yaml``).
- ``dpmptsp.sicantik``: issuing a permit writes ``IzinDiterbitkan`` to the outbox; the
  resident replica is kept by ``deploy/adapters/dpmptsp-penduduk-sink.yaml``.
- ``bapenda.sipd``: recording a tax payment writes ``PajakDaerahDibayar``; new permits land
  in ``wajib_pajak_potensial`` through ``deploy/adapters/bapenda-izin-sink.yaml``.

They show the one thing an OPD application changes: its write and the event commit in
one transaction.
"""
