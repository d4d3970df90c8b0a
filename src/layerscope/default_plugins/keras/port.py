"""Weight bundles <-> keras.applications models. Bundles use Keras layouts already.

Only what differs from Keras itself is handled here: a missing conv bias becomes zeros (a
conv built without one, as DenseNet's, takes the kernel alone), and each BatchNorm takes the bundle's epsilon (torchvision uses 1e-5, Keras ResNet50
1.001e-5), so the same weights give the same numbers. A BatchNorm built without a scale
(Keras' InceptionV3, ``scale=False``) exports a gamma of ones and takes only a bundle whose
gamma is all ones (exactly: it has nowhere to put another).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from layerscope import catalog
from layerscope.backend import ModelHandle
from layerscope.errors import WeightsError
from layerscope.weights import Bundle, check_architecture, exported_layers

__all__ = ["from_bundle", "kernel", "to_bundle"]


def to_bundle(handle: ModelHandle, head: bool = True) -> Bundle:
    """The handle's weights as a bundle keyed by canonical layer names (headless when the
    model was loaded from a notop file: there is no head to export)."""
    entries, head = exported_layers(handle, head)
    tensors: dict[str, np.ndarray] = {}
    for entry in entries:
        layer = handle.model.get_layer(entry.name)  # Keras names are the canonical ones
        values = [np.ascontiguousarray(np.asarray(w), dtype=np.float32) for w in layer.get_weights()]
        if entry.kind == "BatchNormalization":
            if not layer.scale:  # no gamma in the layer: the identity scale
                values.insert(0, np.ones_like(values[-1]))
            for name, value in zip(("gamma", "beta", "moving_mean", "moving_variance"), values, strict=True):
                tensors[f"{entry.name}/{name}"] = value
            tensors[f"{entry.name}/epsilon"] = np.array([layer.epsilon], dtype=np.float32)
        else:
            tensors[f"{entry.name}/kernel"] = values[0]
            if len(values) > 1:
                tensors[f"{entry.name}/bias"] = values[1]
    return Bundle.of(handle, tensors, "keras", head)


def from_bundle(net: Any, architecture: str, bundle: Bundle) -> None:
    """Copy a bundle into ``net`` (a keras.applications model of ``architecture``)."""
    cat = catalog.require(architecture)
    check_architecture(bundle, architecture)
    for entry in cat.weighted():
        params = bundle.layer(entry.name)
        if not params:
            if entry.head and not bundle.head:
                continue
            raise WeightsError(f"The weight bundle has no tensors for layer {entry.name!r}.")
        layer = net.get_layer(entry.name)
        if entry.kind == "BatchNormalization":
            values = [params[k] for k in ("gamma", "beta", "moving_mean", "moving_variance")]
            if not layer.scale:
                _require_unit_gamma(entry.name, params["gamma"], architecture)
                values = values[1:]
            layer.epsilon = float(params["epsilon"][0])
        else:
            kernel = params["kernel"]
            values = [kernel, params.get("bias", np.zeros(kernel.shape[-1], np.float32))]
            if not getattr(layer, "use_bias", True):  # DenseNet's convs: the catalogue has no bias
                values = values[:1]
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if expected != [tuple(v.shape) for v in values]:
            raise WeightsError(
                f"Layer {entry.name!r}: the bundle holds shapes {[tuple(v.shape) for v in values]}, "
                f"the model expects {expected}. Is the bundle for another architecture or variant?"
            )
        layer.set_weights(values)


def _require_unit_gamma(layer: str, gamma: np.ndarray, architecture: str) -> None:
    """Refuse a ``gamma`` other than all ones for a BatchNorm without a scale."""
    if np.all(gamma == 1.0):
        return
    worst = float(np.abs(gamma.astype(np.float64) - 1.0).max())
    raise WeightsError(
        f"Layer {layer!r} of this Keras {architecture} has no BatchNorm scale (built with "
        f"scale=False), so it needs a bundle gamma of ones; the bundle's differs from 1 by up "
        f"to {worst:.3g}. Load it into a variant whose BatchNorm has a scale (InceptionV3: "
        "variant='pad-counted', torchvision's arithmetic)."
    )


def kernel(handle: ModelHandle, native: str) -> np.ndarray | None:
    """The HWIO kernel of a conv layer (Keras holds HWIO already)."""
    try:
        layer = handle.model.get_layer(native)
    except ValueError:
        return None
    k = getattr(layer, "kernel", None)
    if k is None or len(k.shape) != 4:
        return None
    return np.ascontiguousarray(np.asarray(k), dtype=np.float32)
