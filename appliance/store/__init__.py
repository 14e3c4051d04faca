"""The data layer: every query a stage needs, named for what it answers; stages never build SQL.

One module per table family, dict rows in and out (:mod:`appliance.store.rows` over sqlite-utils):
:mod:`~appliance.store.datasets` (datasets and records), :mod:`~appliance.store.prompts` (prompts and privacy
charges), :mod:`~appliance.store.batches` (batches and outputs), :mod:`~appliance.store.results` (curations,
evaluations, probes) and :mod:`~appliance.store.exports` (gate decisions, approvals, exports). Each stage
writes its own rows; :mod:`appliance.store.migrations` is where every table's shape is defined and recorded.
SQL lives here, in :mod:`appliance.audit` (the event chain) and in :mod:`appliance.db` (connection settings
and the migration runner) only; ``tests/test_store_layer.py`` holds the rest of the package to it.
"""
