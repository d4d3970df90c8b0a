"""Running a batch through a torch module and capturing named layers with forward hooks.

Hooks copy each captured output at once (torchvision's in-place ReLU would otherwise
overwrite a conv's output after its hook ran), convert NCHW to NHWC, and stop the forward
pass as soon as the last requested layer has been seen, so ``block1_conv1`` costs a few
layers, not the whole network. Hooks are removed in ``finally``; the module's train/eval
mode is restored; no autograd graph is built. The batch goes to the handle's device and
runs under its precision (:mod:`~layerscope.default_plugins.torch.place`); every capture
comes back as a float32 numpy copy.

A native name ``module:k`` captures the k-th call of a module that runs more than once per
forward pass (torchvision's ResNet blocks reuse one ReLU three times); a plain name
captures the first call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from layerscope.backend import ModelHandle
from layerscope.catalog.names import split_call
from layerscope.default_plugins.torch.layout import track
from layerscope.default_plugins.torch.place import autocast
from layerscope.errors import InputError

__all__ = ["parse", "run", "to_numpy"]


class _Stop(Exception):
    """Raised from a hook once every requested layer is captured, to end the forward pass."""


def parse(native: str) -> tuple[str, int]:
    """``"layer1.0.relu:2"`` -> ``("layer1.0.relu", 2)``; a plain name is call 0
    (:func:`~layerscope.catalog.split_call` reads the convention)."""
    module, call = split_call(native)
    return module, call or 0


def to_numpy(t: Any, name: str, nhwc: bool = False) -> np.ndarray:
    """A float32 C-contiguous NHWC copy of a captured output (NCHW -> NHWC for 4-D, unless
    ``nhwc``: the map is channels-last already, :mod:`~layerscope.default_plugins.torch.layout`)."""
    if isinstance(t, (tuple, list)) and t and isinstance(t[0], torch.Tensor):
        t = t[0]  # e.g. LSTM-style (output, state): the output is what users mean
    if not isinstance(t, torch.Tensor):
        raise InputError(
            f"Layer {name!r} returns a {type(t).__name__}, not a tensor, so it has no feature "
            "map to extract. Pick one of its sub-modules instead (see list_layers)."
        )
    t = t.detach()
    if t.dim() == 4 and not nhwc:
        t = t.permute(0, 2, 3, 1)
    out = torch.empty(tuple(t.shape), dtype=torch.float32)
    out.copy_(t)
    arr: np.ndarray = out.numpy()
    return arr


def _channels_last(model: Any) -> bool:
    for p in model.parameters():
        if p.dim() == 4:
            return bool(p.is_contiguous(memory_format=torch.channels_last))
    return False


def run(handle: ModelHandle, batch: np.ndarray, layers: Sequence[str]) -> dict[str, np.ndarray]:
    """Run NHWC ``batch`` through the model; return each native layer's output as NHWC numpy."""
    model = handle.model
    modules = dict(model.named_modules())
    wanted: dict[str, dict[int, str]] = {}
    for native in layers:
        module, call = parse(native)
        if module not in modules or module == "":
            raise InputError(f"{type(model).__name__} has no module {module!r}.")
        wanted.setdefault(module, {})[call] = native
    captured: dict[str, np.ndarray] = {}
    total = len(set(layers))

    def make_hook(module_name: str) -> Any:
        calls = wanted[module_name]
        seen = [0]

        def hook(_mod: Any, _inp: Any, out: Any) -> None:
            k = seen[0]
            seen[0] += 1
            if k in calls:
                captured[calls[k]] = to_numpy(out, calls[k], layout.nhwc)
                if len(captured) == total:
                    raise _Stop

        return hook

    # NHWC memory viewed as NCHW is exactly torch's channels_last layout: no copy needed
    x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).permute(0, 3, 1, 2)
    if handle.device != "cpu":
        x = x.to(handle.device)  # keeps the channels_last strides
    was_training = model.training
    layout, handles = track(model)  # first: a captured permute's own output reads its new layout
    handles += [modules[m].register_forward_hook(make_hook(m)) for m in wanted]
    try:
        model.eval()
        with torch.inference_mode(), autocast(handle):
            model(x if _channels_last(model) else x.contiguous())
    except _Stop:
        pass
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    missing = [n for n in layers if n not in captured]
    if missing:
        raise InputError(
            f"Layers {missing} did not run in this forward pass of {type(model).__name__} "
            "(a module that exists but is not called, or called fewer times than asked)."
        )
    return {n: captured[n] for n in layers}
