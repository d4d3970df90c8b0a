"""Which layout a captured 4-D output is in: NCHW, as torch modules produce by default, or
NHWC already, inside the stretches of a network that run channels-last.

torchvision's ConvNeXt blocks (and Swin's stages) switch to channels-last with a
``Permute([0, 2, 3, 1])`` module, run LayerNorm and Linear layers on ``(N, H, W, C)`` maps,
and switch back with ``Permute([0, 3, 1, 2])``. A hook cannot tell ``(N, H, W, C)`` from
``(N, C, H, W)`` by the shape, so :func:`track` follows those modules as they run: every
output produced after a ``[0, 2, 3, 1]`` permute and before the next ``[0, 3, 1, 2]`` is
NHWC. A module whose ``forward`` contains a whole stretch (a ConvNeXt block) ends in NCHW.
Permutes written as ``tensor.permute`` calls in a ``forward`` are not seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["TO_NCHW", "TO_NHWC", "Layout", "track"]

TO_NHWC = (0, 2, 3, 1)
TO_NCHW = (0, 3, 1, 2)


@dataclass
class Layout:
    """The running forward pass's current layout of 4-D maps."""

    nhwc: bool = False


def track(model: Any) -> tuple[Layout, list[Any]]:
    """A :class:`Layout` kept current by forward hooks on ``model``'s layout-switching
    ``Permute`` modules, and the hook handles (remove them when done). Register these hooks
    before any capturing hook, so a captured permute's own output reads the new layout."""
    layout = Layout()
    handles = []
    for mod in model.modules():
        dims = tuple(getattr(mod, "dims", ()) or ())
        if type(mod).__name__ == "Permute" and dims in (TO_NHWC, TO_NCHW):

            def switch(_mod: Any, _inp: Any, _out: Any, nhwc: bool = dims == TO_NHWC) -> None:
                layout.nhwc = nhwc

            handles.append(mod.register_forward_hook(switch))
    return layout, handles
