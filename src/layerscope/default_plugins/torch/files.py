"""A user's own state-dict file, read and fitted to the torchvision net it is for.

Files come as users save them: ``torch.save(net.state_dict(), path)`` (``.pth``, ``.pt``,
``.bin``) or a ``.safetensors`` state dict; a training checkpoint that keeps the state dict
under a key (the PyTorch tutorial's ``model_state_dict``, Lightning's ``state_dict``); keys
prefixed by a wrapper (``module.`` from ``nn.DataParallel`` / ``DistributedDataParallel``,
``_orig_mod.`` from ``torch.compile``, a Lightning module's ``model.``, or a model of the
user's with the net as its ``backbone`` beside a new head: the keys under a prefix that are
the net's are taken, the rest left out); with its own classifier head (``model.fc =
nn.Linear(2048, 5)``: another shape, or other layers in place of the head), loaded without
it; without the classifier (every key of a trailing module
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

__all__ = ["CHECKPOINT_KEYS", "TRAINING_ONLY", "Fitted", "load_file"]

CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model", "net", "weights")
"""Where training checkpoints keep the model's state dict, in the order they are tried."""
TRAINING_ONLY = ("AuxLogits", "aux1", "aux2")
"""The auxiliary classifiers torchvision's InceptionV3 (``AuxLogits``) and GoogLeNet (``aux1``,
``aux2``) run in training only: no output of the evaluated network depends on them."""

Fitted = tuple[dict[str, Any], list[str]]
"""What :func:`load_file` did: the absent head (empty when whole) and what it unwrapped or
dropped, in words for the weights label."""


def load_file(net: Any, path: Path) -> Fitted:
    """Load the state dict in ``path`` into ``net``, strictly, as the module docstring says."""
    state, notes = _read_state(path)
    state, inner = _inner_net(state, set(net.state_dict()))
    notes += inner
    if _drop_training_only(net, state):
        notes.append("no auxiliary classifier")
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    resized = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    unexpected = [k for k in state if k not in expected]
    head = _absent_head(net, missing + resized) if missing or resized else []
    own = [k for k in state if _under(k, head)]  # the file's own head: other classes, other layers
    absent: dict[str, Any] = {}
    if head and all(_under(k, head) for k in unexpected):
        shape = f" ({own[0]} {tuple(state[own[0]].shape)})" if own and own[0] in resized else ""
        state = {k: v for k, v in state.items() if not _under(k, head)}
        modules = dict(net.named_modules())
        natives = sorted(n for n in modules if _under(n, head))
        for h in head:
            parent, _, child = h.rpartition(".")
            setattr(modules[parent] if parent else net, child, torch.nn.Identity())
        absent = {"layers": natives, "head": head, "source": f"weights file {str(path)!r}"}
        notes.append(f"its own classifier head left out{shape}" if own else "no classifier head")
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        sizes = [f"{k} {tuple(state[k].shape)} here {tuple(expected[k].shape)}" for k in resized[:2]]
        raise WeightsError(
            f"Weights file {str(path)!r} does not fit {type(net).__name__}: "
            f"{len(missing)} missing keys (e.g. {missing[:3]}), {len(unexpected)} unexpected "
            f"keys (e.g. {unexpected[:3]}), {len(resized)} of another shape"
            f"{' (' + '; '.join(sizes) + ')' if sizes else ''}. Is it for another architecture?"
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


def _under(key: str, modules: list[str]) -> bool:
    """Whether ``key`` (a state-dict key or module path) lies in one of ``modules``."""
    return any(key == m or key.startswith(m + ".") for m in modules)


def _inner_net(state: dict[str, Any], expected: set[str]) -> tuple[dict[str, Any], list[str]]:
    """The part of ``state`` that is the net's, and what was done to find it, when none of its
    keys is one of the net's as they are: the keys under the dotted prefix (up to three levels:
    ``module.``, ``module._orig_mod.``, a Lightning module's ``model.``, a wrapper's
    ``backbone.``) that, without it, are the net's keys and at least half of them. Keys outside
    it (a wrapper's own new head) are left out. Two such parts of equal size (a student and a
    teacher, a model and its EMA copy) are refused: which one is meant cannot be told."""
    if not state or set(state) & expected:
        return state, []
    prefixes = {
        ".".join(k.split(".")[:depth]) + "." for k in state for depth in range(1, min(4, k.count(".") + 1))
    }
    fits: dict[str, dict[str, Any]] = {}
    for prefix in sorted(prefixes):
        inner = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if set(inner) <= expected and 2 * len(inner) >= len(expected):
            fits[prefix] = inner
    if not fits:
        return state, []
    most = max(len(inner) for inner in fits.values())
    best = [prefix for prefix, inner in fits.items() if len(inner) == most]
    if len(best) > 1:
        raise WeightsError(
            f"The state dict holds {len(best)} copies of the network, under {best} (a student and "
            "a teacher? a model and its EMA?), and which one to load cannot be told. Save the "
            "one you mean alone: torch.save(model.<part>.state_dict(), path)."
        )
    prefix = best[0]
    inner, others = fits[prefix], sorted(k for k in state if not k.startswith(prefix))
    if not others:
        return inner, [f"keys without {prefix!r}"]
    return inner, [f"the model under {prefix!r}; {len(others)} other keys left out (e.g. {others[0]!r})"]


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
