"""The demo's data: the shipped BANKING77 sample and the demo workspace's settings (:mod:`appliance.demo.settings`).

The demo itself (`appliance demo`, `make demo`) runs from :mod:`appliance.cli.demo_run`.
"""
