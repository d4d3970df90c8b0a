"""What a figure is of: the map chosen from ``extract``'s result, its default title and the
line that states what the picture shows (how many channels, which scale)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from layerscope.errors import InputError
from layerscope.viz.figure import as_map, header

__all__ = ["Picked", "Title", "channel_text", "choose_channels", "pick", "source_title", "title_lines"]

Title = str | bool | None
"""``None``: the default title; a string: that title; ``False`` or ``""``: no title."""


@dataclass(frozen=True)
class Picked:
    """One image's HWC map, the layer's name and where the map came from (each may be unknown)."""

    map: np.ndarray
    layer: str | None
    source: Any


def pick(fmap: Any, layer: str | None, image: int) -> Picked:
    """The map to draw from an array or from ``extract``'s result (``Features``) and ``layer``."""
    if isinstance(fmap, Mapping):
        names = list(fmap)
        if layer is None:
            if len(names) != 1:
                raise InputError(
                    f"Which layer? The features hold {len(names)} layers: {names[:8]}"
                    f"{' ...' if len(names) > 8 else ''}. Received: layer=None. Pass layer=NAME."
                )
            layer = str(names[0])
        if layer not in fmap:
            raise InputError(
                f"Invalid `layer`. Expected one of the extracted layers {names[:8]}"
                f"{' ...' if len(names) > 8 else ''}. Received: layer={layer!r}. Extract it first."
            )
        return Picked(as_map(fmap[layer], image), layer, getattr(fmap, "source", None))
    return Picked(as_map(fmap, image), layer, None)


def source_title(layer: str | None, source: Any) -> str | None:
    """``"vgg16 block1_conv1 (keras, weights random (seed=0))"``: what is known of it, or None."""
    if source is None:
        return layer
    model = source.model
    if source.variant and source.variant != "standard":
        model = f"{model} {source.variant}"
    name = f"{model} {layer}" if layer else model
    return f"{name} ({source.backend}, weights {source.weights})"


def title_lines(title: Title, default: str | None, detail: str) -> list[tuple[str, float]]:
    """The header lines for ``title=``: ``None`` the default and the detail line, a string that
    string and the detail line, ``False`` / ``""`` nothing."""
    if title is False or title == "":
        return []
    if title is None or title is True:
        return header(default, detail)
    if not isinstance(title, str):
        raise InputError(
            f"Invalid `title`. Expected a string, None (the default title) or False (none). "
            f"Received: {type(title).__name__}."
        )
    return header(title, detail)


def choose_channels(total: int, channels: int | Sequence[int] | None, default: int) -> list[int]:
    """Channel indices: the first ``channels`` (int), the given indices, or the first ``default``."""
    if channels is None or isinstance(channels, int | np.integer):
        count = default if channels is None else int(channels)
        if count < 1:
            raise InputError(
                f"Invalid `channels`. Expected a count >= 1 or a list of indices. Received: {count}."
            )
        return list(range(min(count, total)))
    picked = [int(c) for c in channels]
    bad = [c for c in picked if not 0 <= c < total]
    if bad or not picked:
        raise InputError(
            f"Invalid `channels`. Expected indices in 0..{total - 1} (the layer has {total} channels). "
            f"Received: {list(channels)}."
        )
    return picked


def channel_text(picked: Sequence[int], total: int) -> str:
    """``"64 of 512 channels"``, ``"all 64 channels"`` or ``"channels 3, 7 of 512"``."""
    n = len(picked)
    if list(picked) == list(range(total)):
        return f"all {total} channels" if total > 1 else "1 channel"
    if list(picked) == list(range(n)):
        return f"{n} of {total} channels"
    shown = ", ".join(str(c) for c in picked[:6]) + (", ..." if n > 6 else "")
    return f"{n} of {total} channels ({shown})"
