"""Where a torch model runs and in what arithmetic: devices, autocast and native bfloat16.

:func:`place` moves the model (``Module.to``, which keeps the channels_last memory format)
and records the device and precision on the handle; :func:`autocast` is the context
:mod:`~layerscope.default_plugins.torch.capture` runs the forward pass in. Reduced
precision is torch's automatic mixed precision (``torch.autocast(device_type, dtype)``):
weights stay float32, and convolutions and matrix products run in bfloat16 or float16. On
the CPU, bfloat16 goes through oneDNN, fast where the CPU has AMX-BF16 or AVX512-BF16
instructions (about 4x float32 for VGG16) and slower than float32 where it has neither
(core warns then: :func:`layerscope.requests.place`); float16 is a GPU precision and is
refused on the CPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from layerscope.backend import ModelHandle
from layerscope.errors import BackendUnavailableError, InputError

__all__ = ["DTYPES", "autocast", "available", "best", "place", "resolve"]

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}
"""The torch dtype autocast computes in, per reduced precision name."""


def available() -> list[str]:
    """The devices torch can run on here: ``cpu``, then ``cuda:0``... and ``mps``."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


def best() -> str:
    """torch's best available device: the current CUDA device, else ``mps``, else ``cpu``."""
    if torch.cuda.is_available():
        return f"cuda:{torch.cuda.current_device()}"
    return "mps" if "mps" in available() else "cpu"


def resolve(device: str) -> str:
    """``device`` as torch names it here (``"cuda"`` -> ``"cuda:0"``), or
    :class:`~layerscope.BackendUnavailableError` naming the devices that exist."""
    here = ", ".join(available())
    try:
        parsed = torch.device(device.strip().lower())
    except (RuntimeError, ValueError) as exc:
        raise BackendUnavailableError(
            f"Device {device!r} requested; available: {here}. torch knows no such device type "
            f"({str(exc).splitlines()[0][:160]}). Pass one of those, or device=None for the best "
            "available."
        ) from exc
    if parsed.type == "cuda" and parsed.index is None and torch.cuda.is_available():
        parsed = torch.device("cuda", torch.cuda.current_device())
    name = parsed.type if parsed.index is None or parsed.type in ("cpu", "mps") else str(parsed)
    if name not in available():
        raise BackendUnavailableError(
            f"Device {device!r} requested; available: {here}. Pass one of those, or device=None "
            "for the best available (a CUDA build of torch and a GPU are needed for 'cuda')."
        )
    return name


def _check_precision(device: str, precision: str) -> None:
    kind = device.split(":")[0]
    if precision == "float16" and kind == "cpu":
        raise InputError(
            "precision='float16' on device 'cpu': float16 is a GPU precision (torch's CPU "
            "autocast has no fast float16 kernels). Pass precision='bfloat16' on the CPU, or "
            "device='cuda' for float16."
        )
    if precision == "bfloat16" and kind == "cuda" and not torch.cuda.is_bf16_supported():
        raise InputError(
            f"precision='bfloat16' on {device}: this GPU has no bfloat16 support "
            f"({torch.cuda.get_device_name(device)}). Pass precision='float16' on this GPU."
        )


def place(handle: ModelHandle, device: str | None, precision: str) -> ModelHandle:
    """Move ``handle``'s model to ``device`` (``None``: the best available; a user's module
    stays where its parameters are) and record ``precision`` for :func:`autocast`."""
    model = handle.model
    if device is None and handle.weights == "user model":
        first = next(iter(model.parameters()), None)
        name = resolve(str(first.device)) if first is not None else "cpu"
    else:
        name = best() if device is None else resolve(device)
    _check_precision(name, precision)
    if name != "cpu" or any(p.device.type != "cpu" for p in model.parameters()):
        model.to(name)
    handle.device, handle.precision = name, precision
    return handle


@contextlib.contextmanager
def autocast(handle: ModelHandle) -> Iterator[None]:
    """The forward pass's arithmetic: nothing for float32 (the numbers stay bit-identical),
    ``torch.autocast`` on the handle's device type for bfloat16 and float16."""
    if handle.precision == "float32":
        yield
        return
    with torch.autocast(device_type=handle.device.split(":")[0], dtype=DTYPES[handle.precision]):
        yield
