"""Every table's shape and its history: one module of recorded migrations per table family.

Migration keys (``0100_store_core``, ``0600_curate`` ...) are what a workspace's ``_migrations`` table
records, so a module may move but a key never changes; :func:`appliance.db.migrate` applies them in key
order. The audit chain's own table stays with it (:mod:`appliance.audit.schema`).
"""
