"""``make bench``: the bus side by side with the raw Kafka clients, measured in one run.

Run ``python -m bench`` (or ``make bench``); ``python -m bench --help`` lists the sizes.
Modules: ``stats`` (pure figures), ``workload`` (events and records), ``environment``
(broker, PostgreSQL, machine), one module per measurement (``publish``, ``consume``,
``endtoend``, ``replay``, ``codec``, ``profiles``), and ``report``/``chart`` for output.
"""
