"""Weight bundles <-> torchvision modules: layouts, flatten order, conv biases, epsilon.

Keras layouts in the bundle, torch layouts in the module: conv OIHW <-> HWIO, depthwise conv
``(C, 1, H, W)`` <-> ``(H, W, C, 1)``, linear
``(out, in)`` <-> ``(in, out)``, and for the first dense layer after a flatten the input
rows move between torch's CHW flatten order and Keras' HWC order. A conv bias the module
has no slot for (torchvision's ResNet convs have ``bias=False``) is folded into the
BatchNorm that follows it: ``BN(conv(x) + b)`` equals ``BN'(conv(x))`` with
``running_mean' = running_mean - b``, exact at the BN output and after. LayerNorm
(``LayerNorm2d`` too) takes gamma, beta and epsilon; ConvNeXt's LayerScale ``(C,)`` is
torchvision's ``CNBlock.layer_scale`` ``(C, 1, 1)``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from layerscope import catalog
from layerscope.backend import ModelHandle
from layerscope.catalog.names import load_names, split_call
from layerscope.errors import WeightsError
from layerscope.weights import Bundle, check_architecture, exported_layers

__all__ = ["from_bundle", "kernel", "tensor", "to_bundle"]

PACKAGE = "layerscope.default_plugins.torch"


def _module(modules: dict[str, Any], architecture: str, entry: catalog.Entry) -> Any:
    """The module of ``entry`` among ``modules`` (``dict(net.named_modules())``, made once per
    net: made per layer, DenseNet201's took 1.5 s a bundle)."""
    names = load_names(PACKAGE, architecture)
    name = names.weights_of(entry.name) if names else entry.name
    return modules[name]


def _np(t: Any) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)


def to_bundle(handle: ModelHandle, head: bool = True) -> Bundle:
    """The handle's weights as a bundle keyed by canonical layer names (headless when the
    model was loaded from a notop file: there is no head to export)."""
    entries, head = exported_layers(handle, head)
    tensors: dict[str, np.ndarray] = {}
    modules = dict(handle.model.named_modules())
    for entry in entries:
        mod = _module(modules, handle.architecture, entry)
        key = entry.name
        if entry.kind in ("Conv2D", "DepthwiseConv2D"):
            # OIHW -> HWIO; a depthwise conv's (C, 1, H, W) -> Keras' (H, W, C, 1)
            order = (2, 3, 1, 0) if entry.kind == "Conv2D" else (2, 3, 0, 1)
            tensors[f"{key}/kernel"] = _np(mod.weight.permute(*order))
            if mod.bias is not None:
                tensors[f"{key}/bias"] = _np(mod.bias)
        elif entry.kind == "Dense":
            # (in, out), in torch's flatten order; then whole rows move to Keras' order. Copies
            # that write in order: VGG16's fc1 (100M floats) in 1.0 s, 2.6-3.5 s as one permute
            kernel = mod.weight.detach().t().contiguous()
            if entry.flatten_from:
                h, w, c = entry.flatten_from
                kernel = kernel.reshape(c, h * w, -1).transpose(0, 1).contiguous().reshape(h * w * c, -1)
            tensors[f"{key}/kernel"] = _np(kernel)
            tensors[f"{key}/bias"] = _np(mod.bias)
        elif entry.kind == "LayerScale":  # torchvision's CNBlock.layer_scale, (C, 1, 1)
            tensors[f"{key}/gamma"] = _np(mod.layer_scale.reshape(-1))
        else:
            tensors[f"{key}/gamma"] = _np(mod.weight)
            tensors[f"{key}/beta"] = _np(mod.bias)
            if entry.kind == "BatchNormalization":
                tensors[f"{key}/moving_mean"] = _np(mod.running_mean)
                tensors[f"{key}/moving_variance"] = _np(mod.running_var)
            tensors[f"{key}/epsilon"] = np.array([mod.eps], dtype=np.float32)
    return Bundle.of(handle, tensors, "torch", head)


def from_bundle(net: Any, architecture: str, bundle: Bundle) -> list[Any]:
    """Copy a bundle into ``net`` (a torchvision model of ``architecture``), in place; the
    modules it set."""
    cat = catalog.require(architecture)
    check_architecture(bundle, architecture)
    pending_bias: dict[str, np.ndarray] = {}
    filled: list[Any] = []
    modules = dict(net.named_modules())
    with torch.no_grad():
        for entry in cat.weighted():
            params = bundle.layer(entry.name)
            if not params:
                if entry.head and not bundle.head:
                    continue  # a headless bundle: the classifier keeps its initial weights
                raise WeightsError(f"The weight bundle has no tensors for layer {entry.name!r}.")
            mod = _module(modules, architecture, entry)
            filled.append(mod)
            if entry.kind in ("Conv2D", "DepthwiseConv2D"):
                order = (3, 2, 0, 1) if entry.kind == "Conv2D" else (2, 3, 0, 1)
                _copy(mod.weight, np.transpose(params["kernel"], order), entry.name)
                bias = params.get("bias")
                if mod.bias is not None:
                    _copy(
                        mod.bias,
                        bias if bias is not None else np.zeros(mod.out_channels, np.float32),
                        entry.name,
                    )
                elif bias is not None and np.any(bias != 0):
                    pending_bias[_bn_after(entry.name)] = bias
            elif entry.kind == "Dense":
                kernel = params["kernel"]
                if entry.flatten_from:
                    h, w, c = entry.flatten_from
                    kernel = kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)
                _copy(mod.weight, kernel.T, entry.name)
                _copy(mod.bias, params["bias"], entry.name)
            elif entry.kind == "LayerScale":
                _copy(mod.layer_scale, params["gamma"].reshape(-1, 1, 1), entry.name)
            else:
                _copy_norm(mod, entry, params, pending_bias.pop(entry.name, 0.0))
    if pending_bias:
        raise WeightsError(f"Conv biases of {sorted(pending_bias)} have no BatchNorm to fold into.")
    return filled


def _copy_norm(mod: Any, entry: catalog.Entry, params: dict[str, np.ndarray], folded: Any) -> None:
    """A BatchNorm's or LayerNorm's tensors and epsilon; ``folded``: a conv bias to take off
    the BatchNorm's moving mean (0.0 when none)."""
    _copy(mod.weight, params["gamma"], entry.name)
    _copy(mod.bias, params["beta"], entry.name)
    if entry.kind == "BatchNormalization":
        _copy(mod.running_mean, params["moving_mean"] - folded, entry.name)
        _copy(mod.running_var, params["moving_variance"], entry.name)
    mod.eps = float(params["epsilon"][0])


def _bn_after(conv_name: str) -> str:
    return conv_name[: -len("_conv")] + "_bn" if conv_name.endswith("_conv") else conv_name


def tensor(src: np.ndarray) -> Any:
    """``src`` as a torch tensor sharing its memory, to be copied from, not written: a
    transposed view stays one (torch's ``copy_`` reorders VGG16's fc1 kernel, 100M floats, in
    0.5 s, numpy's ``ascontiguousarray`` first in 2-4 s), and a read-only array (a mapped
    file) is taken without torch's warning about writing to it."""
    strided = all(s >= 0 for s in src.strides) and src.flags.aligned
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The given NumPy array is not writable")
        return torch.from_numpy(src if strided else np.ascontiguousarray(src))


def _copy(dst: Any, src: np.ndarray, layer: str) -> None:
    value = tensor(np.asarray(src, dtype=np.float32))
    if tuple(dst.shape) != tuple(value.shape):
        raise WeightsError(
            f"Layer {layer!r}: the bundle holds shape {tuple(value.shape)} (torch layout), the "
            f"model expects {tuple(dst.shape)}. Is the bundle for another architecture or variant?"
        )
    dst.copy_(value)


def kernel(handle: ModelHandle, native: str) -> np.ndarray | None:
    """The HWIO kernel of a Conv2d module (torch holds OIHW)."""
    module = dict(handle.model.named_modules()).get(split_call(native)[0])
    if not isinstance(module, torch.nn.Conv2d):
        return None
    return _np(module.weight.permute(2, 3, 1, 0))
