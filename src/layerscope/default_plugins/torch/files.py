"""A user's own state-dict file, read and fitted to the torchvision net it is for.

Files come as users save them: ``torch.save(net.state_dict(), path)`` (``.pth``, ``.pt``,
``.bin``) or a ``.safetensors`` state dict; a training checkpoint that keeps the state dict
under a key (the PyTorch tutorial's ``model_state_dict``, Lightning's ``state_dict``); keys
prefixed by a wrapper (``module.`` from ``nn.DataParallel`` / ``DistributedDataParallel``,
``_orig_mod.`` from ``torch.compile``, or any prefix all keys share whose removal leaves exactly
the net's keys, such as a Lightning module's ``model.``); without the classifier (every key of a trailing module
such as ``fc`` or ``classifier`` missing, nothing else: that module becomes ``nn.Identity`` and
the handle lists the absent layers, ``state["absent"]``, so that asking for one raises an error
naming the missing head, :func:`layerscope.weights.refuse_absent`); or without InceptionV3's
training-only auxiliary classifier (``aux_logits=False``). Whatever was unwrapped or dropped
is said in the weights label (``"file ddp.pth (keys without 'module.')"``). Anything else that
does not fit is refused, naming missing and unexpected keys. Files are read with
``torch.load(weights_only=True)``: a pickled model object is refused with how to pass it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from layerscope.errors import WeightsError

__all__ = ["CHECKPOINT_KEYS", "TRAINING_ONLY", "WRAPPER_PREFIXES", "Fitted", "load_file"]

CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model", "net", "weights")
"""Where training checkpoints keep the model's state dict, in the order they are tried."""
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
"""Key prefixes of torch's wrappers: ``nn.DataParallel`` / ``DistributedDataParallel`` and
``torch.compile``; removed (also nested) when every key has one."""
TRAINING_ONLY = ("AuxLogits", "aux1", "aux2")
"""The auxiliary classifiers torchvision's InceptionV3 (``AuxLogits``) and GoogLeNet (``aux1``,
``aux2``) run in training only: no output of the evaluated network depends on them."""

Fitted = tuple[dict[str, Any], list[str]]
"""What :func:`load_file` did: the absent head (empty when whole) and what it unwrapped or
dropped, in words for the weights label."""


def load_file(net: Any, path: Path) -> Fitted:
    """Load the state dict in ``path`` into ``net``, strictly, as the module docstring says."""
    state, notes = _read_state(path)
    state, prefix = _without_wrapper_prefix(state, set(net.state_dict()))
    if prefix:
        notes.append(f"keys without {prefix!r}")
    if _drop_training_only(net, state):
        notes.append("no auxiliary classifier")
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    head = _absent_head(net, missing) if missing and not unexpected else []
    absent: dict[str, Any] = {}
    if head:
        modules = dict(net.named_modules())
        natives = sorted(n for n in modules if any(n == h or n.startswith(h + ".") for h in head))
        for h in head:
            parent, _, child = h.rpartition(".")
            setattr(modules[parent] if parent else net, child, torch.nn.Identity())
        absent = {"layers": natives, "head": head, "source": f"weights file {str(path)!r}"}
        notes.append("no classifier head")
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsError(
            f"Weights file {str(path)!r} does not fit {type(net).__name__}: "
            f"{len(missing)} missing keys (e.g. {missing[:3]}), {len(unexpected)} unexpected "
            f"keys (e.g. {unexpected[:3]}). Is it for another architecture?"
        ) from exc
    return absent, notes


def _read_state(path: Path) -> tuple[dict[str, Any], list[str]]:
    """The state dict in ``path`` (unwrapped from a checkpoint) and how it was found."""
    if not path.is_file():
        raise WeightsError(f"Cannot load weights from {str(path)!r}: no such file.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load_file as st_load

            state: Any = st_load(str(path))
        elif suffix in (".pth", ".pt", ".bin"):
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        else:
            raise WeightsError(
                f"Cannot load weights from {str(path)!r} with the torch backend. Expected a "
                f".pth, .pt or .safetensors file. Received: a {suffix or 'suffix-less'} file."
            )
    except WeightsError:
        raise
    except Exception as exc:
        if "weights_only" in str(exc) or "Weights only load failed" in str(exc):
            raise WeightsError(
                f"Weights file {str(path)!r} holds pickled Python objects, not only tensors "
                "(e.g. a whole model saved with torch.save(model)); layerscope does not unpickle "
                "them, as unpickling can run any code. If you trust the file, load it yourself, "
                "net = torch.load(path, weights_only=False), and pass the model: "
                "ls.load(net). Or save its weights: torch.save(net.state_dict(), path)."
            ) from exc
        raise WeightsError(f"Cannot read weights file {str(path)!r}: {exc}") from exc
    return _unwrap_checkpoint(state, path)


def _is_state(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _unwrap_checkpoint(state: Any, path: Path) -> tuple[dict[str, Any], list[str]]:
    """A state dict as it is, or the one a checkpoint keeps under one of :data:`CHECKPOINT_KEYS`
    (else its only value that is a state dict)."""
    if not isinstance(state, dict):
        raise WeightsError(
            f"Weights file {str(path)!r} holds a {type(state).__name__}, not a state dict. "
            "Save weights with torch.save(model.state_dict(), path)."
        )
    if any(isinstance(v, torch.Tensor) for v in state.values()):
        return state, []
    found = [k for k in CHECKPOINT_KEYS if _is_state(state.get(k))]
    found = found or [k for k, v in state.items() if _is_state(v)]
    if len(found) == 1 or (found and found[0] in CHECKPOINT_KEYS):
        return state[found[0]], [f"checkpoint[{found[0]!r}]"]
    keys = sorted(map(str, state))
    raise WeightsError(
        f"Weights file {str(path)!r} holds a dict without tensors (keys {keys[:8]}"
        f"{' ...' if len(keys) > 8 else ''}) and "
        + (f"several state dicts ({found}): which one is the model's? " if found else "no state dict in it. ")
        + f"Expected a state dict, or a checkpoint with one under {list(CHECKPOINT_KEYS)}. Save "
        "the model's alone: torch.save(model.state_dict(), path)."
    )


def _without_wrapper_prefix(state: dict[str, Any], expected: set[str]) -> tuple[dict[str, Any], str]:
    """``state`` without the prefix every key carries, and that prefix, when none of its keys is
    already one of the net's: :data:`WRAPPER_PREFIXES` (``module._orig_mod.`` too), else the
    shortest shared dotted prefix (a Lightning module's ``model.``) whose removal leaves only
    the net's keys."""
    prefix = ""
    while not set(state) & expected:
        strip = next((p for p in WRAPPER_PREFIXES if all(k.startswith(p) for k in state)), None)
        if strip is None:
            break
        state = {k[len(strip) :]: v for k, v in state.items()}
        prefix += strip
    if state and not set(state) & expected:
        parts = next(iter(state)).split(".")
        for depth in range(1, len(parts)):
            shared = ".".join(parts[:depth]) + "."
            if not all(k.startswith(shared) for k in state):
                break
            stripped = {k[len(shared) :]: v for k, v in state.items()}
            if set(stripped) <= expected:
                return stripped, prefix + shared
    return state, prefix


def _drop_training_only(net: Any, state: dict[str, Any]) -> bool:
    """Drop each :data:`TRAINING_ONLY` module of ``net`` of which ``state`` has no key, as
    torchvision does for ``aux_logits=False`` (the module ``None``, ``net.aux_logits`` False);
    whether any was dropped."""
    gone = [
        name
        for name in TRAINING_ONLY
        if isinstance(getattr(net, name, None), torch.nn.Module)
        and not any(k.startswith(name + ".") for k in state)
    ]
    for name in gone:
        setattr(net, name, None)
    if gone and hasattr(net, "aux_logits"):
        net.aux_logits = False
    return bool(gone)


def _absent_head(net: Any, missing: list[str]) -> list[str]:
    """The trailing modules whose every key is missing, if they explain all ``missing`` keys.

    Judged on the file's contents (not its name): each missing key must lie in a module all
    of whose keys are missing and that is the last child of its parent, all the way up
    (``fc`` of a ResNet, ``classifier`` of a VGG, ``classifier.6`` after ``[:-1]``).
    Anything else (a missing backbone layer) is not a headless file: returns ``[]``.
    """
    keys = list(net.state_dict())
    gone = set(missing)
    heads: list[str] = []
    for key in missing:
        parts = key.split(".")[:-1]
        top = None
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if all(k in gone for k in keys if k.startswith(prefix + ".")):
                top = prefix
                break
        if top is None or not _is_tail(net, top):
            return []
        if top not in heads:
            heads.append(top)
    return heads


def _is_tail(net: Any, name: str) -> bool:
    module = net
    for part in name.split("."):
        children = list(module.named_children())
        if not children or children[-1][0] != part:
            return False
        module = children[-1][1]
    return True
