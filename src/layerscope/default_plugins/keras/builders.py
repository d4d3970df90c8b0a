"""What every variant builder shares: ``keras.applications``' calling convention
(``include_top``, ``weights``, ``input_shape``, ``classes``), and the refusal of pretrained
weights for a graph no zoo publishes weights for (a bundle brings them instead)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

__all__ = ["Shape", "bundle_only"]

Shape = tuple[int | None, int | None, int] | None
"""``input_shape`` as keras.applications takes it: ``(H, W, 3)``, sides ``None`` for any size."""


def bundle_only(label: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a builder of a graph without pretrained weights (``label``, e.g.
    ``"mobilenet_v2 symmetric"``): it is called as keras.applications' builders are, and any
    ``weights`` but ``None`` raises ``ValueError`` naming the graph and the fix."""

    def wrap(build: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(build)
        def builder(*args: Any, weights: Any = None, **kwargs: Any) -> Any:
            if weights is not None:
                raise ValueError(f"{label} has no pretrained weights: load a bundle (weights=None here).")
            return build(*args, **kwargs)

        return builder

    return wrap
