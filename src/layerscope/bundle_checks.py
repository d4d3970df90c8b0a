"""Checks on weights: a bundle against its catalogue, and layers a headless file lacks.

:func:`validate` runs before any weight is copied, so a tampered or damaged bundle is a
:class:`~layerscope.errors.WeightsError` naming the tensor, what was expected and what was
received (never a raw ``KeyError``/``IndexError``/``ValueError`` from deep in a port, nor a
tensor silently ignored). :func:`bundle_absent` and :func:`refuse_absent` make a head that a
notop file or a ``head=False`` bundle did not bring an error when asked for, instead of
random numbers. Framework-free (numpy only); :mod:`layerscope.weights` re-exports them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from layerscope.catalog.names import NameMap, split_call
from layerscope.errors import WeightsError

if TYPE_CHECKING:
    from layerscope.weights import Bundle

__all__ = ["bundle_absent", "refuse_absent", "validate"]


_NORMS = {
    "BatchNormalization": ("gamma", "beta", "moving_mean", "moving_variance"),
    "LayerNormalization": ("gamma", "beta"),
    "LayerScale": ("gamma",),
}
"""Per-channel layers and their tensors (each ``(channels,)``; the norms add ``epsilon``)."""


def _expected(
    kind: str, shape: tuple[int, ...] | None, bias: bool = True
) -> dict[str, tuple[int, ...] | None]:
    """Tensor name -> expected shape (``None``: any) of one catalogue layer (no ``bias`` for a
    layer the catalogue marks bias-free)."""
    if kind in _NORMS:
        (c,) = shape if shape is not None else (None,)
        names = _NORMS[kind]
        tensors: dict[str, tuple[int, ...] | None] = {n: (c,) if c is not None else None for n in names}
        return {**tensors, "epsilon": (1,)} if kind != "LayerScale" else tensors
    out = shape[-1] if shape is not None else None
    if not bias:
        return {"kernel": shape}
    return {"kernel": shape, "bias": (out,) if out is not None else None}


def validate(bundle: Bundle, architecture: str) -> None:
    """Check every tensor of ``bundle`` against the catalogue of ``architecture``.

    Each weighted layer (without the classifier's when ``bundle.head`` is false) must have
    its tensors (a conv ``bias`` may be absent: torchvision's ResNet convs have none) with
    the catalogue's shapes in Keras layouts, float values, finite, an epsilon of shape
    ``(1,)`` above zero; a tensor no layer expects is refused too, since silently dropping
    it would load something other than what the file says.
    """
    from layerscope import catalog

    cat = catalog.require(architecture)
    where = f"The weight bundle for {architecture} ({bundle.source_backend or '?'}: {bundle.weights or '?'})"
    known: set[str] = set()
    for entry in cat.weighted():
        expected = _expected(entry.kind, entry.shape, entry.bias)
        known.update(f"{entry.name}/{n}" for n in expected)
        if entry.head and not bundle.head:
            continue
        for param, shape in expected.items():
            key = f"{entry.name}/{param}"
            value = bundle.tensors.get(key)
            if value is None:
                if param == "bias" and entry.kind == "Conv2D":
                    continue
                raise WeightsError(
                    f"{where} has no tensor {key!r}. Expected {entry.kind} layer {entry.name!r} to "
                    f"have {', '.join(sorted(expected))}. Received: "
                    f"{sorted(bundle.layer(entry.name)) or 'no tensors for that layer'}. "
                    "Export the bundle again with layerscope.export_weights."
                )
            _check_tensor(where, key, np.asarray(value), shape)
    unknown = sorted(set(bundle.tensors) - known)
    if unknown:
        raise WeightsError(
            f"{where} holds {len(unknown)} tensors no {architecture} layer has: {unknown[:5]}. "
            f"Expected only '<canonical layer>/<param>' names of {architecture}'s catalogue. "
            "Was the file edited, or made for another architecture?"
        )


def _check_tensor(where: str, key: str, value: np.ndarray, shape: tuple[int, ...] | None) -> None:
    if value.dtype.kind != "f":
        raise WeightsError(f"{where}: tensor {key!r} holds {value.dtype}. Expected float32 values.")
    if shape is not None and tuple(value.shape) != shape:
        raise WeightsError(
            f"{where}: tensor {key!r} has shape {tuple(value.shape)}. Expected {shape} "
            "(Keras layout: conv HWIO, dense (in, out)). Export the bundle again."
        )
    if shape is None and (value.ndim == 0 or value.size == 0):
        raise WeightsError(
            f"{where}: tensor {key!r} has shape {tuple(value.shape)}. Expected a non-empty array."
        )
    # a float64 sum is finite exactly when every value is (one pass, no 100 MB temporary)
    if not np.isfinite(np.add.reduce(value, axis=None, dtype=np.float64)) and not np.isfinite(value).all():
        raise WeightsError(f"{where}: tensor {key!r} holds NaN or infinite values. Expected finite weights.")
    if key.endswith("/epsilon") and not float(value[0]) > 0:
        raise WeightsError(f"{where}: tensor {key!r} is {float(value[0])}. Expected a BatchNorm epsilon > 0.")


def refuse_absent(handle: Any, natives: list[str], names: NameMap | None = None) -> None:
    """Raise if any requested native layer is part of a head the weights file did not have.

    A headless (notop) file builds the model without its classifier; the backend records
    the absent layers in ``handle.state["absent"]`` (``layers``, ``head``, ``source``).
    """
    absent = handle.state.get("absent") if isinstance(getattr(handle, "state", None), dict) else None
    if not absent:
        return
    gone = set(absent["layers"])
    asked = [n for n in natives if split_call(n)[0] in gone]
    if not asked:
        return
    from layerscope import catalog

    cat = catalog.get(handle.architecture)
    canonical = cat.names() if cat else []
    shown = [(names.canonical_of(n, canonical) if names else None) or n for n in asked]
    include_top = "include_top=True" if handle.backend == "keras" else "the classifier in its state_dict()"
    raise WeightsError(
        f"Layers {shown} belong to {handle.architecture}'s classifier head "
        f"({', '.join(absent['head'])}), which the {absent['source']} does not hold: it is a "
        f"headless (notop) file, so those layers have no trained weights here. Expected layers "
        f"of the convolutional base (list_layers() shows what exists). To get the head, load a "
        f"weights file saved from the full model ({include_top})."
    )


def bundle_absent(bundle: Bundle, names: NameMap) -> dict[str, Any]:
    """What a headless bundle leaves without weights: its weighted head layers' native names.

    The model is built whole, so the head's modules exist with their initial values; they
    are marked absent so asking for them is an error rather than random numbers.
    """
    from layerscope import catalog

    cat = catalog.get(bundle.architecture)
    if bundle.head or cat is None:
        return {}
    heads = [e for e in cat.weighted() if e.head]
    natives = {n for e in heads for n in (names.native_of(e.name), names.weights_of(e.name))}
    return {
        "layers": sorted(n for n in natives if n),
        "head": [e.name for e in heads],
        "source": f"weight bundle ({bundle.source_backend or '?'}: {bundle.weights or '?'}, exported with head=False)",
    }
