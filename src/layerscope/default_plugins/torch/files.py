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

import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from layerscope.default_plugins.torch.checks import check_entries, check_values
from layerscope.errors import WeightsError
from layerscope.weight_files import require_file, suffix

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
    expected = net.state_dict()
    state, notes = _read_state(path, set(expected))
    state, inner = _inner_net(state, set(expected), path)
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
    check_values(state, expected, f"Weights file {str(path)!r}")
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        if not (missing or unexpected or resized):  # every key fits: torch's own reason
            raise WeightsError(
                f"Weights file {str(path)!r} fits {type(net).__name__} key by key, but torch "
                f"cannot copy it: {str(exc).strip().splitlines()[-1][:300]}"
            ) from exc
        sizes = [f"{k} {tuple(state[k].shape)} here {tuple(expected[k].shape)}" for k in resized[:2]]
        raise WeightsError(
            f"Weights file {str(path)!r} does not fit {type(net).__name__}: "
            f"{len(missing)} missing keys (e.g. {missing[:3]}), {len(unexpected)} unexpected "
            f"keys (e.g. {unexpected[:3]}), {len(resized)} of another shape"
            f"{' (' + '; '.join(sizes) + ')' if sizes else ''}. Is it for another architecture?"
        ) from exc
    return absent, notes


def _read_state(path: Path, expected: set[str]) -> tuple[dict[str, Any], list[str]]:
    """The state dict in ``path`` (unwrapped from a checkpoint) and how it was found."""
    require_file(path)
    kind = suffix(path)
    try:
        if kind == ".safetensors":
            from safetensors.torch import load_file as st_load

            state: Any = st_load(str(path))
        elif kind in (".pth", ".pt", ".bin"):
            with warnings.catch_warnings():  # sparse tensors are refused below, with the key
                warnings.filterwarnings("ignore", message="Validating sparse tensor invariants")
                state = torch.load(str(path), map_location="cpu", weights_only=True)
        else:
            raise WeightsError(
                f"Cannot load weights from {str(path)!r} with the torch backend. Expected a "
                f".pth, .pt, .bin or .safetensors file. Received: a {path.suffix or 'suffix-less'} file."
            )
    except WeightsError:
        raise
    except Exception as exc:
        raise _unreadable(path, kind, exc) from exc
    state, notes = _unwrap_checkpoint(state, path, expected)
    check_entries(state, f"Weights file {str(path)!r}")
    return state, notes


def _unreadable(path: Path, kind: str, exc: Exception) -> WeightsError:
    """Why torch could not read ``path``: a pickle of Python objects it would not unpickle, or
    a file that is not a torch file at all (damaged, truncated, another format)."""
    text = str(exc)
    if kind != ".safetensors" and ("Unsupported global" in text or "GLOBAL" in text):
        return WeightsError(
            f"Weights file {str(path)!r} holds pickled Python objects, not only tensors "
            "(e.g. a whole model saved with torch.save(model)); layerscope does not unpickle "
            "them, as unpickling can run any code. If you trust the file, load it yourself, "
            "net = torch.load(path, weights_only=False), and pass the model: "
            "ls.load(net). Or save its weights: torch.save(net.state_dict(), path)."
        )
    with path.open("rb") as fh:
        head = fh.read(8)
    zipped = "a zip archive, as torch.save writes" + ("" if zipfile.is_zipfile(path) else ", without its end")
    what = {b"PK\x03\x04": zipped, b"\x89HDF": "an HDF5 (Keras) file"}
    looks = next((v for k, v in what.items() if head.startswith(k)), None)
    looks = looks or ("a pickle" if head[:1] == b"\x80" else f"bytes {head!r}")
    text = text.split("WeightsUnpickler error:", 1)[-1]  # torch's own words after its boilerplate
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(("Weights only load failed", "Check the documentation"))]
    reason = lines[0][:300] if lines else type(exc).__name__
    return WeightsError(
        f"Cannot read weights file {str(path)!r}: it is damaged, truncated or not a torch "
        f"{'safetensors ' if kind == '.safetensors' else ''}file (it starts as {looks}; torch says: "
        f"{reason}). Expected a file written by torch.save(model.state_dict(), path)"
        f"{' or safetensors.torch.save_file' if kind == '.safetensors' else ''}; save or download it again."
    )


def _is_state(obj: Any) -> bool:
    return isinstance(obj, dict) and any(isinstance(v, torch.Tensor) for v in obj.values())


def _fits(state: dict[str, Any], expected: set[str]) -> bool:
    """Whether ``state`` is ``expected``'s network: at least half its keys, as they are or under
    one prefix."""
    if 2 * len(set(state) & expected) >= len(expected):
        return True
    return bool(_prefixed(state, expected))


def _unwrap_checkpoint(state: Any, path: Path, expected: set[str]) -> tuple[dict[str, Any], list[str]]:
    """A state dict as it is, or the one a checkpoint keeps: its only state dict, else the only
    one that is the net's (those under :data:`CHECKPOINT_KEYS` first when none is). Two that are
    both the net's (``state_dict`` and ``model_state_dict``; timm's ``state_dict_ema``) are
    refused: which one is meant cannot be told."""
    if not isinstance(state, dict):
        raise WeightsError(
            f"Weights file {str(path)!r} holds a {type(state).__name__}, not a state dict. "
            "Save weights with torch.save(model.state_dict(), path)."
        )
    if any(isinstance(v, torch.Tensor) for v in state.values()):
        return state, []
    found = [k for k in CHECKPOINT_KEYS if _is_state(state.get(k))]
    found += [k for k, v in state.items() if k not in found and _is_state(v)]
    fitting = [k for k in found if _fits(state[k], expected)] if len(found) > 1 else found
    if not fitting and found and found[0] in CHECKPOINT_KEYS:
        fitting = found[:1]  # none is the net's: loading it says which keys do not fit
    if len(fitting) == 1:
        others = [k for k in found if k != fitting[0]]
        return state[fitting[0]], [
            f"checkpoint[{fitting[0]!r}]" + (f", other state dicts left out ({others})" if others else "")
        ]
    keys = sorted(map(str, state))
    several = fitting or found
    raise WeightsError(
        f"Weights file {str(path)!r} holds a dict without tensors (keys {keys[:8]}"
        f"{' ...' if len(keys) > 8 else ''}) and "
        + (
            f"several state dicts ({several}): which one is the model's? Save the one you mean "
            f"alone, e.g. torch.save(torch.load(path)[{several[0]!r}], 'model.pth'), and pass that file. "
            if several
            else "no state dict in it. "
        )
        + f"Expected a state dict, or a checkpoint with one under {list(CHECKPOINT_KEYS)}. Save "
        "the model's alone: torch.save(model.state_dict(), path)."
    )


def _under(key: str, modules: list[str]) -> bool:
    """Whether ``key`` (a state-dict key or module path) lies in one of ``modules``."""
    return any(key == m or key.startswith(m + ".") for m in modules)


def _prefixed(state: dict[str, Any], expected: set[str]) -> dict[str, dict[str, Any]]:
    """``{prefix: the keys under it without it}`` for each dotted prefix (up to three levels:
    ``module.``, ``module._orig_mod.``, a Lightning module's ``model.``, a wrapper's
    ``backbone.``) of the keys that are not the net's, under which the keys are the net's and at
    least half of them."""
    prefixes = {
        ".".join(k.split(".")[:depth]) + "."
        for k in state
        if k not in expected
        for depth in range(1, min(4, k.count(".") + 1))
    }
    fits: dict[str, dict[str, Any]] = {}
    for prefix in sorted(prefixes):
        inner = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if set(inner) <= expected and 2 * len(inner) >= len(expected):
            fits[prefix] = inner
    return fits


def _inner_net(state: dict[str, Any], expected: set[str], path: Path) -> tuple[dict[str, Any], list[str]]:
    """The part of ``state`` that is the net's, and what was done to find it: its keys as they
    are, or the keys under one prefix (:func:`_prefixed`), keys outside it (a wrapper's own new
    head) left out. Two copies of the net (a student and a teacher, a model and its EMA copy,
    whatever their sizes; the keys as they are and a prefixed copy) are refused: which one is
    meant cannot be told."""
    fits = _prefixed(state, expected)
    if 2 * len(set(state) & expected) >= len(expected):
        fits = {"": state, **fits}
    if not fits:
        return state, []
    if len(fits) > 1:
        named = [p or "(no prefix)" for p in fits]
        pick = next(p for p in fits if p)
        raise WeightsError(
            f"Weights file {str(path)!r} holds {len(fits)} copies of the network, under {named} (a "
            "student and a teacher? a model and its EMA?), and which one to load cannot be told. "
            f"Save the one you mean alone and pass that file, e.g. sd = torch.load(path); "
            f"torch.save({{k.removeprefix({pick!r}): v for k, v in sd.items() if k.startswith({pick!r})}}, "
            f"'{pick.rstrip('.')}.pth')."
        )
    prefix = next(iter(fits))
    if not prefix:
        return state, []
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
