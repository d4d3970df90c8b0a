"""The catalogue: each architecture's canonical points, framework-neutral.

- :mod:`~layerscope.catalog.points`  ``Catalog``/``Entry``: names, kinds, weight shapes (data: ``<arch>.json``)
- :mod:`~layerscope.catalog.names`   ``NameMap``: one backend's native names for those points
- :mod:`~layerscope.catalog.postops` ``POST_OPS``: numpy operations from a native output to a point
"""

from __future__ import annotations

from layerscope.catalog.names import NameMap, load_names, split_call
from layerscope.catalog.points import WEIGHTED_KINDS, Catalog, Entry, architectures, get, require
from layerscope.catalog.postops import POST_OPS

__all__ = [
    "POST_OPS",
    "WEIGHTED_KINDS",
    "Catalog",
    "Entry",
    "NameMap",
    "architectures",
    "get",
    "load_names",
    "require",
    "split_call",
]
