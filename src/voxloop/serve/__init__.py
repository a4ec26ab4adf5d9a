"""Serving: the HTTP and Wyoming APIs, micro-batching, the model registry, auth, metrics.

Importing the package is cheap; the Starlette app lives in `voxloop.serve.app` and the
``voxloop serve`` command in `voxloop.serve.command`.
"""

from voxloop.serve.command import add_arguments, run

__all__ = ["add_arguments", "run"]
