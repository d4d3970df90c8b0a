"""A user's own Keras weights file, loaded into the keras.applications model it is for.

``model.save_weights("x.weights.h5")``, a legacy ``.h5`` weights file as Keras' own cache holds
them, or a saved ``.keras`` model (:func:`load_file`). :func:`fit_file` tries the full model,
then the model built without its head (a notop file, saved from ``include_top=False``: the
handle lists the absent head layers, ``state["absent"]``), then each model nested in the
file's model: a fine-tuned model around a keras.applications base
(``Sequential([base, GlobalAveragePooling2D(), Dense(5)])``) saved as ``.weights.h5`` or
``.keras`` gives its base, its own new top left out (two nested models that both fit are
refused); so does a legacy ``.h5`` of such a model (``model.save("ft.h5")``), read by layer
name when every layer of the base is in it. What was taken is said in the weights label
(``"file ft.keras (nested model 'functional'; no classifier head)"``). A file that fits none
is refused with Keras' first line of why. The torch backend's mirror:
:mod:`layerscope.default_plugins.torch.files`.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from layerscope.default_plugins.keras.checks import check_dtypes, check_values
from layerscope.errors import WeightsError
from layerscope.weight_files import require_file, suffix

__all__ = ["check_file", "fit_file", "load_file", "nested_models"]


KERAS_SUFFIXES = (".weights.h5", ".keras", ".h5", ".hdf5")
"""The endings Keras' ``load_weights`` knows, which it compares in lower case only."""


def load_file(net: Any, path: Path, shown: Path | None = None) -> None:
    """Load a Keras weights file into ``net`` (``shown``: the path to name in messages, when
    ``path`` is a link to it)."""
    named = str(shown or path)
    try:
        with warnings.catch_warnings():  # keras 3.15 warns on its own files; outputs match
            warnings.filterwarnings("ignore", message="Skipping nested container")
            net.load_weights(str(path))
    except Exception as exc:
        # Keras' message goes on to print whole weight arrays: its first line, and its example
        # error when the first line only announces one, cut before the variable's values
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()] or [type(exc).__name__]
        first = lines[0][:300]
        if first.endswith(":") and len(lines) > 1:
            first = f"{first} {lines[1].split(' Target variable:')[0][:300]}"
        raise WeightsError(
            f"Weights file {named!r} does not fit {net.name}: {first} Is it for another "
            "architecture? (A notop file, saved with include_top=False, fits its model's base; for "
            "a model of your own built on it, load that model and pass it: ls.load(model).)"
        ) from exc


def fit_file(net: Any, headless: Callable[[], Any], path: Path) -> tuple[Any, dict[str, Any], list[str]]:
    """``(model, absent head, notes for the label)``: ``net`` or ``headless()`` (built only when
    needed) with the weights of ``path``, or of a model nested in it, loaded; the file's
    arrays checked before (:func:`~layerscope.default_plugins.keras.checks.check_dtypes`) and
    the loaded weights after (:func:`~layerscope.default_plugins.keras.checks.check_values`)."""
    check_file(path)  # again: the file may have changed since build.load_path checked it
    where = f"Weights file {str(path)!r}"
    with tempfile.TemporaryDirectory(prefix="layerscope-keras-") as folder:
        source = _keras_spelling(path, Path(folder))
        integers = sum(np.dtype(w.dtype).kind in "iu" for w in net.weights)
        check_dtypes(source, where, integers)
        model, absent, notes = _fit_any(net, headless, source, path)
    check_values(model, where)
    return model, absent, notes


def check_file(path: Path) -> None:
    """Refuse, before any model is built, a path that is no readable file (see
    :func:`layerscope.weight_files.require_file`), has a suffix Keras does not read, or is not
    what its suffix says (an HDF5 file, or a ``.keras`` zip archive): Keras' own message would
    call it a file "for another architecture"."""
    import h5py

    require_file(path)
    if suffix(path) not in (".h5", ".keras", ".hdf5"):
        raise WeightsError(
            f"Cannot load weights from {str(path)!r} with the keras backend. Expected a "
            f".weights.h5, .h5 or .keras file. Received: a {path.suffix or 'suffix-less'} file."
        )
    archive = path.name.lower().endswith(".keras")
    reason = "" if archive else "no HDF5 signature"
    try:
        if archive and zipfile.is_zipfile(path):
            return
        if not archive:
            with h5py.File(path, "r"):
                return
    except OSError as exc:  # a signature, then a file that ends too soon or is garbled
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    with path.open("rb") as fh:
        head = fh.read(8)
    what = "a .keras (zip) archive" if archive else "an HDF5 file"
    raise WeightsError(
        f"Weights file {str(path)!r} cannot be read as {what}: it is damaged, truncated or another format (it starts "
        f"as bytes {head!r}{'; ' + reason if reason else ''}). Expected a file written by "
        "model.save_weights or model.save; save or download it again."
    )


def _keras_spelling(path: Path, folder: Path) -> Path:
    """``path``, or a link to it in ``folder`` named as Keras needs: Keras tells its formats
    apart by a case-sensitive ending, so ``x.WEIGHTS.H5`` becomes ``x.weights.h5``, and an
    HDF5 file is named by its contents (Keras 3's ``layers``/``vars`` groups: ``.weights.h5``;
    else the legacy layout: ``.h5``), so a ``.weights.h5`` file renamed ``.h5`` still loads."""
    name = path.name
    ending = next((s for s in KERAS_SUFFIXES if name.lower().endswith(s)), "")
    wanted = name[: len(name) - len(ending)] + (".keras" if ending == ".keras" else _hdf5_kind(path))
    if wanted == name:
        return path
    link = folder / wanted
    try:
        link.symlink_to(path.resolve())
    except OSError:  # no symbolic links here (Windows without the privilege): a copy
        shutil.copyfile(path, link)
    return link


def _hdf5_kind(path: Path) -> str:
    """``.weights.h5`` for Keras 3's layout (top-level ``layers`` or ``vars`` groups), else ``.h5``."""
    import h5py

    with h5py.File(path, "r") as store:
        return (
            ".weights.h5"
            if ("layers" in store or "vars" in store) and "layer_names" not in store.attrs
            else ".h5"
        )


def _fit_any(
    net: Any, headless: Callable[[], Any], path: Path, shown: Path
) -> tuple[Any, dict[str, Any], list[str]]:
    """:func:`fit_file` on a file Keras can read by its name (``shown``: the user's path)."""
    try:
        load_file(net, path, shown)
        return net, {}, []
    except WeightsError as full_error:
        first = full_error
    try:
        body = headless()
    except (TypeError, ValueError):  # an application without include_top=False
        raise first from None
    try:
        load_file(body, path, shown)
        return body, _absent(net, body, shown), ["no classifier head"]
    except WeightsError:
        pass
    with tempfile.TemporaryDirectory(prefix="layerscope-nested-") as folder:
        sources = nested_models(path, Path(folder))
        fits = [
            (name, source, model)
            for name, source in sources
            if (model := _fit(net, body, source)) is not None
        ]
        if len(fits) > 1:
            raise WeightsError(
                f"Weights file {str(shown)!r} holds {len(fits)} models that fit {net.name}, nested as "
                f"{[name for name, _, _ in fits]}, and which one to load cannot be told. Load your "
                "model and pass the one you mean: ls.load(model.layers[i])."
            )
        if fits:
            name, source, model = fits[0]
            if len(sources) > 1:  # again: trying the others loaded into the same models
                load_file(model, source)
            if model is net:
                return net, {}, [f"nested model {name!r}"]
            return body, _absent(net, body, shown), [f"nested model {name!r}", "no classifier head"]
    if _by_name(body, path):
        return body, _absent(net, body, shown), ["layers by name", "no classifier head"]
    raise first from None


def _by_name(model: Any, path: Path) -> bool:
    """Load a legacy ``.h5`` file (``model.save("x.h5")`` of a model built on the base, with its
    own top) into ``model`` by layer name, when every layer of ``model`` that has weights is in
    the file, so that none keeps its random initial values; whether it did."""
    import h5py

    if path.suffix.lower() not in (".h5", ".hdf5"):
        return False
    try:
        with h5py.File(path, "r") as store:
            group = store.get("model_weights", store)
            saved = {
                n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs.get("layer_names", [])
            }
        if not saved or not {layer.name for layer in model.layers if layer.weights} <= saved:
            return False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.load_weights(str(path), by_name=True)  # a layer of another shape raises
        return True
    except (OSError, ValueError, KeyError):
        return False


def _fit(net: Any, body: Any, source: Path) -> Any:
    """``net`` or ``body``, whichever the weights file ``source`` loads into (``None``: neither)."""
    for model in (net, body):
        try:
            load_file(model, source)
        except WeightsError:
            continue
        return model
    return None


def _absent(net: Any, body: Any, path: Path) -> dict[str, Any]:
    """The head layers of ``net`` that the headless ``body`` lacks."""
    import keras

    kept = {layer.name for layer in body.layers}
    gone = [
        layer.name
        for layer in net.layers
        if layer.name not in kept and not isinstance(layer, keras.layers.InputLayer)
    ]
    return {"layers": gone, "head": gone, "source": f"weights file {str(path)!r}"}


def nested_models(path: Path, folder: Path) -> list[tuple[str, Path]]:
    """The models nested in the model whose weights ``path`` holds (``.weights.h5`` or
    ``.keras``, Keras 3's layout): each as ``(its group's name, a weights file of its own)``,
    written in ``folder``. Empty for other files."""
    import h5py

    lowered = path.name.lower()
    try:
        if lowered.endswith(".keras") and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                if "model.weights.h5" not in archive.namelist():
                    return []
                source = folder / "model.weights.h5"
                source.write_bytes(archive.read("model.weights.h5"))
        elif lowered.endswith(".weights.h5"):
            source = path
        else:
            return []
        found: list[tuple[str, Path]] = []
        with h5py.File(source, "r") as store:
            layers = store.get("layers")
            for name, group in layers.items() if isinstance(layers, h5py.Group) else ():
                if isinstance(group, h5py.Group) and isinstance(group.get("layers"), h5py.Group):
                    target = folder / f"nested-{len(found)}.weights.h5"
                    with h5py.File(target, "w") as own:
                        for key in group:
                            store.copy(group[key], own, name=key)
                    found.append((str(name), target))
        return found
    except (OSError, zipfile.BadZipFile):
        return []
