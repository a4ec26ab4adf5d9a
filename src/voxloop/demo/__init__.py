"""The whole loop in one command (``voxloop demo``): train, serve, experiment, measure,
decide — on the embedded corpus, with simulated users talking to a real server."""

from voxloop.demo.loop import DemoResult, DemoSettings, run_demo

__all__ = ["DemoResult", "DemoSettings", "run_demo"]
