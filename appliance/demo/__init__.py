"""The end-to-end demo (`appliance demo`, `make demo`) on the shipped BANKING77 sample."""

from appliance.demo.run import FULL, QUICK, DemoResult, DemoSettings, run_demo

__all__ = ["FULL", "QUICK", "DemoResult", "DemoSettings", "run_demo"]
