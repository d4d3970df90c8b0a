"""Weight bundles <-> keras.applications models. Bundles use Keras layouts already.

Only what differs from Keras itself is handled here: a missing conv bias becomes zeros (a
conv built without one, as DenseNet's, takes the kernel alone), and each BatchNorm takes the bundle's epsilon (torchvision uses 1e-5, Keras ResNet50
1.001e-5), so the same weights give the same numbers; LayerNorm takes the bundle's too.
A weight-only layer nested in a Keras ``Sequential`` (ConvNeXt's stem and downsampling
convs) is found inside it. A BatchNorm built without a scale
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

__all__ = ["from_bundle", "kernel", "refuse_input_statistics", "to_bundle"]


_PER_CHANNEL = {
    "BatchNormalization": ("gamma", "beta", "moving_mean", "moving_variance"),
    "LayerNormalization": ("gamma", "beta"),
    "LayerScale": ("gamma",),
}
"""Per-channel layers: their weights in ``get_weights()`` order (the norms add an epsilon)."""


def _layers(net: Any) -> dict[str, Any]:
    """The layers of ``net`` by name, those inside a nested model too (ConvNeXt's stem conv is
    in the ``Sequential`` ``convnext_tiny_stem``): a top-level layer before a nested one of the
    same name, the first nested model before later ones. One pass: ``get_layer`` walks the
    model's layers on every call (DenseNet201's 600 layers: 2 s a bundle)."""
    found: dict[str, Any] = {}
    for outer in net.layers:
        for inner in getattr(outer, "layers", ()):
            found.setdefault(inner.name, inner)
    found.update((layer.name, layer) for layer in net.layers)
    return found


def _layer(net: Any, name: str, layers: dict[str, Any] | None = None) -> Any:
    """The layer ``name`` of ``net`` (``layers``: :func:`_layers` of it, when at hand);
    ``ValueError`` when it has none."""
    try:
        return (_layers(net) if layers is None else layers)[name]
    except KeyError:
        raise ValueError(f"{net.name} has no layer {name!r}, nested or not.") from None


def to_bundle(handle: ModelHandle, head: bool = True) -> Bundle:
    """The handle's weights as a bundle keyed by canonical layer names (headless when the
    model was loaded from a notop file: there is no head to export)."""
    entries, head = exported_layers(handle, head)
    refuse_input_statistics(handle)
    tensors: dict[str, np.ndarray] = {}
    layers = _layers(handle.model)
    for entry in entries:
        layer = _layer(handle.model, entry.name, layers)  # Keras names are the canonical ones
        values = [np.ascontiguousarray(np.asarray(w), dtype=np.float32) for w in layer.get_weights()]
        if entry.kind in _PER_CHANNEL:
            if entry.kind == "BatchNormalization" and not layer.scale:  # no gamma: the identity scale
                values.insert(0, np.ones_like(values[-1]))
            for name, value in zip(_PER_CHANNEL[entry.kind], values, strict=True):
                tensors[f"{entry.name}/{name}"] = value
            if entry.kind != "LayerScale":
                tensors[f"{entry.name}/epsilon"] = np.array([layer.epsilon], dtype=np.float32)
        else:
            tensors[f"{entry.name}/kernel"] = values[0]
            if len(values) > 1:
                tensors[f"{entry.name}/bias"] = values[1]
    return Bundle.of(handle, tensors, "keras", head)


def refuse_input_statistics(handle: ModelHandle) -> None:
    """Refuse to export a model that normalises its input with statistics inside the graph.

    Keras' EfficientNet starts with ``Rescaling(1/255)`` and a ``Normalization`` layer. Built
    with ``weights=None`` (random weights, every bundle) its mean is 0 and its variance 1, so
    the pair is ``x / 255``, which the ``asymmetric`` torch variant reproduces. ImageNet
    weights load the ImageNet mean and, as variance, the standard deviations (TensorFlow
    issue 49930), and Keras adds a second ``Rescaling(1/sqrt(std))`` to make it ``(x - mean)
    / std``. A bundle holds no input statistics, so such weights would give other numbers
    everywhere they are loaded."""
    kinds = [(type(layer).__name__, layer) for layer in handle.model.layers]
    # ConvNeXt's Normalization holds no weights (constants of the architecture, which the
    # torch 'prestem' variant rebuilds); EfficientNet's holds mean, variance and count
    stats = [layer.get_weights()[:2] for kind, layer in kinds if kind == "Normalization" and layer.weights]
    rescalings = sum(kind == "Rescaling" for kind, _ in kinds)
    plain = all(np.all(np.asarray(m) == 0) and np.all(np.asarray(v) == 1) for m, v in stats)
    if plain and rescalings <= 1:
        return
    mean, variance = (
        ([round(float(v), 4) for v in np.asarray(w).ravel()] for w in stats[0]) if stats else ([], [])
    )
    raise WeightsError(
        f"Cannot export {handle.architecture} ({handle.weights}) to a weight bundle: the model "
        f"normalises its input inside the graph (Normalization mean {mean}, variance {variance}; "
        f"{rescalings} Rescaling layers) and a bundle carries no input statistics. Expected a "
        "model whose Normalization has mean 0 and variance 1 (weights='random' or a bundle). "
        "Compare such weights on Keras alone, or load the other zoo's weights into Keras."
    )


def from_bundle(net: Any, architecture: str, bundle: Bundle) -> list[Any]:
    """Copy a bundle into ``net`` (a keras.applications model of ``architecture``); the layers
    it set."""
    cat = catalog.require(architecture)
    check_architecture(bundle, architecture)
    done = []
    layers = _layers(net)
    for entry in cat.weighted():
        params = bundle.layer(entry.name)
        if not params:
            if entry.head and not bundle.head:
                continue
            raise WeightsError(f"The weight bundle has no tensors for layer {entry.name!r}.")
        layer = _layer(net, entry.name, layers)
        if entry.kind in _PER_CHANNEL:
            values = [params[k] for k in _PER_CHANNEL[entry.kind]]
            if entry.kind == "BatchNormalization" and not layer.scale:
                _require_unit_gamma(entry.name, params["gamma"], architecture)
                values = values[1:]
            if entry.kind != "LayerScale":
                layer.epsilon = float(params["epsilon"][0])
        else:
            kernel = params["kernel"]
            values = [kernel, params.get("bias", np.zeros(kernel.shape[-1], np.float32))]
            if not getattr(layer, "use_bias", True):  # DenseNet's convs: the catalogue has no bias
                values = values[:1]
        expected = [tuple(w.shape) for w in layer.weights]  # get_weights() would copy every array
        if expected != [tuple(v.shape) for v in values]:
            raise WeightsError(
                f"Layer {entry.name!r}: the bundle holds shapes {[tuple(v.shape) for v in values]}, "
                f"the model expects {expected}. Is the bundle for another architecture or variant?"
            )
        layer.set_weights(values)
        done.append(layer)
    return done


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
    """The HWIO kernel of a conv layer (Keras holds HWIO already), also one nested in a
    ``Sequential`` (ConvNeXt's stem conv)."""
    try:
        layer = _layer(handle.model, native)
    except ValueError:
        return None
    k = getattr(layer, "kernel", None)
    if k is None or len(k.shape) != 4:
        return None
    return np.ascontiguousarray(np.asarray(k), dtype=np.float32)
