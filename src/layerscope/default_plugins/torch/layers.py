"""Describing a torch model's layers by tracing one forward pass on zeros.

Every module that runs is listed, in the order its forward pass finishes (a container
after its children), with the NHWC shape of its output for the given input size. A module
that runs k > 1 times per pass is listed once per call as ``name:0`` ... ``name:k-1``.
``params`` counts the parameters a module holds *itself*, once (its first call; a
parameter shared by several modules on the first row that holds it), plus those of
sub-modules that never run as modules (``MultiheadAttention.out_proj``), so the column
sums to the model's total. Only parameters no running module holds are on no row
(GoogLeNet's and Inception's auxiliary classifiers, idle in eval mode; ViT's class token,
held by the model itself). A module with children is marked ``kind="<Class> (container)"``
and never repeats its children's counts. torch counts parameters only, not BatchNorm
running statistics (Keras counts those too).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from layerscope.backend import LayerInfo, ModelHandle, Shape
from layerscope.catalog.names import split_call
from layerscope.default_plugins.torch.layout import track

__all__ = ["describe", "inplace_after"]


def describe(handle: ModelHandle, input_size: int | tuple[int, int] | None) -> list[LayerInfo]:
    """Trace ``handle.model`` on a zero batch of one image and list what ran."""
    model = handle.model
    size = input_size if input_size is not None else (handle.input_size or 224)
    h, w = (size, size) if isinstance(size, int) else size
    calls: list[tuple[str, Any, Shape]] = []
    counts: dict[str, int] = {}

    def make_hook(name: str) -> Any:
        def hook(mod: Any, _inp: Any, out: Any) -> None:
            counts[name] = counts.get(name, 0) + 1
            calls.append((name, mod, _shape(out, layout.nhwc)))

        return hook

    layout, handles = track(model)  # first: a permute's own output reads its new layout
    handles += [m.register_forward_hook(make_hook(n)) for n, m in model.named_modules() if n]
    was_training = model.training
    try:
        model.eval()
        with torch.inference_mode():
            model(torch.zeros(1, 3, h, w))
    finally:
        for hd in handles:
            hd.remove()
        model.train(was_training)

    rows: list[LayerInfo] = []
    seen: dict[str, int] = {}
    counted: set[int] = set()
    for name, mod, shape in calls:
        k = seen.get(name, 0)
        seen[name] = k + 1
        container = next(mod.children(), None) is not None
        rows.append(
            LayerInfo(
                index=len(rows),
                native=f"{name}:{k}" if counts[name] > 1 else name,
                kind=type(mod).__name__ + (" (container)" if container else ""),
                shape=shape,
                params=_own_params(mod, counted),
                kernel=_kernel(mod),
            )
        )
    return _adopt_unrun(model, rows, counted)


def _adopt_unrun(model: Any, rows: list[LayerInfo], counted: set[int]) -> list[LayerInfo]:
    """Count the parameters of modules that never run as modules on their closest listed
    ancestor: ``MultiheadAttention`` uses its ``out_proj``'s weights without calling it."""
    first: dict[str, int] = {}
    for i, r in enumerate(rows):  # a module's first call: "name" or "name:0"
        first.setdefault(split_call(r.native)[0], i)
    for name, mod in model.named_modules():
        owner = name
        while owner and owner not in first:
            owner = owner.rpartition(".")[0]
        if not owner or owner == name:
            continue
        extra = _own_params(mod, counted)
        if extra:
            i = first[owner]
            rows[i] = replace(rows[i], params=rows[i].params + extra)
    return rows


def _own_params(mod: Any, counted: set[int]) -> int:
    """Parameters ``mod`` holds directly (not through children) and no earlier row counted."""
    fresh = [p for p in mod.parameters(recurse=False) if id(p) not in counted]
    counted.update(id(p) for p in fresh)
    return sum(p.numel() for p in fresh)


def _shape(out: Any, nhwc: bool = False) -> Shape:
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        out = out[0]
    if not isinstance(out, torch.Tensor):
        return ()
    dims = list(out.shape)
    if len(dims) == 4 and not nhwc:  # NCHW, unless a channels-last stretch (torch/layout.py)
        dims = [dims[0], dims[2], dims[3], dims[1]]
    return (None, *dims[1:])


def _kernel(mod: Any) -> tuple[int, ...] | None:
    if isinstance(mod, torch.nn.Conv2d):
        o, i, kh, kw = mod.weight.shape
        return (int(kh), int(kw), int(i), int(o))
    return None


def inplace_after(handle: ModelHandle, native: str) -> str | None:
    """The module that runs right after ``native`` if it overwrites its input in place
    (``ReLU(inplace=True)`` in torchvision): a capture that keeps a reference to ``native``'s
    output instead of copying it sees that module's result."""
    rows = [r.native for r in describe(handle, handle.input_size)]
    if native not in rows or rows.index(native) + 1 >= len(rows):
        return None
    after = rows[rows.index(native) + 1]
    module = dict(handle.model.named_modules()).get(split_call(after)[0])
    return after if getattr(module, "inplace", False) else None
