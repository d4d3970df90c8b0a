"""Export, name mapping and running: the parts of the onnx backend that need the frameworks.

Names: ``torch.onnx.export`` names each node after the module scope it came from,
``/layer1/layer1.0/downsample/downsample.0/Conv``; a module called twice gets ``relu_1``.
:func:`scope` turns a torch native name (``layer1.0.relu:1``) into that prefix, and a
layer's value is the output of the last node inside its scope (for a container such as
``layer1.0``, the block's output).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from layerscope.backend import LayerInfo, ModelHandle
from layerscope.catalog.names import split_call
from layerscope.errors import InputError

__all__ = ["build", "describe", "run", "scope"]

OPSET = 17


def scope(native: str) -> str:
    """``"layer1.0.relu:1"`` -> ``"/layer1/layer1.0/relu_1/"``; nested indices extend the
    segment before them (``features.0.0`` -> ``"/features/features.0/features.0.0/"``)."""
    module, call = split_call(native)
    parts = module.split(".")
    segments: list[str] = []
    for i, p in enumerate(parts):  # an index extends its parent's segment: conv.0.0, layer1.0
        segments.append(f"{segments[-1]}.{p}" if p.isdigit() and i else p)
    if call:
        segments[-1] += f"_{call}"
    return "/" + "/".join(segments) + "/"


def build(model: str, weights: Any, seed: int | None, variant: str | None) -> ModelHandle:
    """Build the torchvision model with layerscope's torch backend, export it, open a session."""
    import onnx
    import torch

    import layerscope as ls

    torch_backend = ls.get_backend("torch")
    source = (
        torch_backend.load(model, weights, seed, variant)
        if variant
        else torch_backend.load(model, weights, seed)
    )
    net = source.model.eval()
    side = source.input_size or 224
    fixed = None
    try:
        data = _export(net, side, {0: "N", 2: "H", 3: "W"})
    except torch.onnx.errors.SymbolicValueError:  # VGG's adaptive pooling needs a fixed size
        data, fixed = _export(net, side, {0: "N"}), side
    proto = onnx.load_from_string(data)
    rows = torch_backend.list_layers(source, side)
    values = _map_values(proto, [r.native for r in rows])
    bundle = torch_backend.export_bundle(source)
    bundle.source_backend = "onnx"
    return ModelHandle(
        backend="onnx",
        architecture=source.architecture,
        model=_session(proto, list(values.values())),
        weights=source.weights,
        input_size=source.input_size,
        recipe=source.recipe,
        total_params=source.total_params,
        variant=source.variant,
        state={
            "values": values,
            "kinds": _kinds(proto, values),
            "bundle": bundle,
            "order": list(values),
            "fixed_size": fixed,
        },
    )


@contextlib.contextmanager
def _silent_export() -> Iterator[None]:
    """Keep ``torch.onnx.export`` from printing to stdout.

    Its TorchScript exporter logs whole graphs through C++ ``std::cout`` (thousands of lines
    for VGG16's "Torch IR graph at exception" when free spatial sizes fail): torch's
    ``setup_onnx_logging`` tests the function ``_jit_is_onnx_log_enabled`` instead of calling
    it, so the log is always on during an export. Python-level redirection cannot catch C++
    output, so file descriptor 1 points at the null device for the export (other threads'
    prints are lost for that moment).
    """
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _export(net: Any, side: int, axes: dict[int, str]) -> bytes:
    import io

    import torch

    buf = io.BytesIO()
    with torch.no_grad(), _silent_export():
        torch.onnx.export(
            net,
            (torch.zeros(1, 3, side, side),),
            buf,  # type: ignore[arg-type, unused-ignore]  # a file object works; torch types `f` as a path only
            dynamo=False,
            opset_version=OPSET,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": axes},
            training=torch.onnx.TrainingMode.PRESERVE,  # keep BatchNorm nodes: pre-BN points exist
            do_constant_folding=False,
        )
    return buf.getvalue()


def _map_values(proto: Any, natives: Sequence[str]) -> dict[str, str]:
    nodes = [(n.name, n.output[0]) for n in proto.graph.node if n.op_type not in ("Constant", "Identity")]
    values: dict[str, str] = {}
    for native in natives:
        prefix = scope(native)
        inside = [out for name, out in nodes if name.startswith(prefix)]
        if inside:
            values[native] = inside[-1]
    return values


def _kinds(proto: Any, values: dict[str, str]) -> dict[str, str]:
    op = {n.output[0]: n.op_type for n in proto.graph.node if n.output}
    return {native: op.get(value, "?") for native, value in values.items()}


def _session(proto: Any, outputs: list[str]) -> Any:
    import onnx
    import onnxruntime as ort

    existing = {o.name for o in proto.graph.output}
    for name in dict.fromkeys(outputs):
        if name not in existing:
            proto.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def run(handle: ModelHandle, batch: np.ndarray, layers: list[str]) -> dict[str, np.ndarray]:
    """Run NHWC ``batch``; return each native layer's output as an NHWC float32 copy."""
    values: dict[str, str] = handle.state["values"]
    missing = [n for n in layers if n not in values]
    if missing:
        raise InputError(f"The ONNX graph of {handle.architecture} has no value for {missing}.")
    fixed = handle.state.get("fixed_size")
    if fixed is not None and batch.shape[1:3] != (fixed, fixed):
        raise InputError(
            f"The ONNX graph of {handle.architecture} has a fixed {fixed}x{fixed} input (its adaptive "
            f"pooling does not export with free sizes). Received: {batch.shape[1]}x{batch.shape[2]}. "
            f"Pass input_size={fixed}."
        )
    x = np.ascontiguousarray(np.transpose(batch, (0, 3, 1, 2)), dtype=np.float32)
    fetch = list(dict.fromkeys(values[n] for n in layers))
    outs = dict(zip(fetch, handle.model.run(fetch, {"input": x}), strict=True))
    result = {}
    for name in layers:
        arr = outs[values[name]]
        if arr.ndim == 4:
            arr = np.transpose(arr, (0, 2, 3, 1))
        result[name] = np.array(arr, dtype=np.float32, order="C", copy=True)
    return result


def describe(handle: ModelHandle, input_size: int | tuple[int, int] | None) -> list[LayerInfo]:
    """Every mapped layer with its NHWC shape, by running zeros of that size once."""
    size = input_size if input_size is not None else (handle.input_size or 224)
    h, w = (size, size) if isinstance(size, int) else size
    order: list[str] = handle.state["order"]
    outs = run(handle, np.zeros((1, h, w, 3), np.float32), order)
    return [
        LayerInfo(
            index=i, native=n, kind=handle.state["kinds"][n], shape=(None, *outs[n].shape[1:]), params=0
        )
        for i, n in enumerate(order)
    ]
