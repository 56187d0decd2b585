"""maas-rs from Python: the Rust core of maas-rs, in-process.

The package is ``maas_rs`` so it never clashes with python-libmaas's ``maas``.
"""

from maas_rs._native import __version__, node_statuses

__all__ = ["__version__", "node_statuses"]
