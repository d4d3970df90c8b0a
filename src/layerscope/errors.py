"""The exceptions layerscope raises.

Every error is a :class:`LayerscopeError` and also the builtin a caller would naturally
catch (``KeyError`` for an unknown name, ``ValueError`` for a bad value, ``ImportError``
for a missing framework), so ``except ValueError`` keeps working in code that does not know
layerscope. Messages say what was wrong, what was expected, what was received and how to
fix it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "BackendUnavailableError",
    "ImageError",
    "InputError",
    "InputScaleWarning",
    "LayerscopeError",
    "LayerscopeWarning",
    "MissingDependencyError",
    "OutputError",
    "OutputLockedError",
    "PluginError",
    "UnknownBackendError",
    "UnknownLayerError",
    "UnknownModelError",
    "WeightsError",
    "WeightsUnavailableError",
    "closest",
]


class LayerscopeError(Exception):
    """Base class of every error layerscope raises on purpose."""

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return str(self.args[0]) if self.args else ""


class PluginError(LayerscopeError, RuntimeError):
    """A plugin could not be loaded or registered a backend badly (e.g. a duplicate name),
    or a backend's method raised something that is not a LayerscopeError or returned the
    wrong type (the message names the backend, the method, what it raised or returned, and
    the plugin and package; the original exception is chained).

    Fix: the message names both plugins of a duplicate; uninstall one, or skip one with
    ``LAYERSCOPE_DISABLE_PLUGINS=name``. A class missing a required member of
    :class:`layerscope.backend.Backend` is named with the members it lacks. A registration
    refused is that plugin's error in ``ls.backends()``, not raised: the others load.
    """


class UnknownBackendError(LayerscopeError, KeyError):
    """No registered backend has the requested name (``backend="trch"``).

    Fix: use a name ``ls.backends()`` lists; the message suggests the closest ones and says
    when ``LAYERSCOPE_PLUGINS`` / ``LAYERSCOPE_DISABLE_PLUGINS`` hides a backend.
    """


class BackendUnavailableError(LayerscopeError, ImportError):
    """The backend is registered but its framework is not installed.

    Fix: the ``pip install 'layerscope[torch]'`` (or ``[keras]``) line in the message.
    """


class MissingDependencyError(LayerscopeError, ImportError):
    """An optional feature needs a package that is not installed (the message names the extra).

    Fix: ``pip install 'layerscope[viz]'`` (matplotlib), ``[bundles]`` (safetensors),
    ``[dataset]`` (h5py), ``[ray]``, as the message says.
    """


class UnknownModelError(LayerscopeError, KeyError):
    """The backend does not know a model of that name.

    Fix: pick one of the closest names the message lists, or pass the framework model object
    itself (a ``torch.nn.Module`` or ``keras.Model``).
    """


class UnknownLayerError(LayerscopeError, KeyError):
    """A requested layer name or index does not exist in the model.

    Fix: use a name from ``ls.list_layers(model)``; the message lists the closest ones.
    """


class InputError(LayerscopeError, ValueError):
    """An argument has a value layerscope cannot use (array rank, dtype, size, batch size...).

    Also: an image too small for the layers asked for, a classifier layer at a non-native
    size, ``seed`` with weights other than ``"random"``. The message gives the fix (e.g.
    ``x.transpose(0, 2, 3, 1)`` for a channels-first batch).
    """


class ImageError(InputError):
    """An image could not be read or decoded (missing, truncated, not an image, a FIFO).

    The message names the file; :func:`layerscope.extract_dataset` skips and lists such
    files instead of stopping.
    """


class OutputError(LayerscopeError, OSError):
    """An output file or folder cannot be written or read back (unwritable, disk full, corrupt)."""


class OutputLockedError(OutputError):
    """Another process (named by PID and host in the message) is writing the same output."""


class WeightsError(LayerscopeError, ValueError):
    """Weights could not be loaded: wrong file, wrong architecture, wrong layout.

    Also: a layer of the classifier head asked of a headless (notop) weights file. The
    message names the tensor or layer that did not fit and what was expected.
    """


class WeightsUnavailableError(WeightsError):
    """Pretrained weights are neither in the framework's cache nor downloadable.

    Fix: the message names the exact file and the cache folder (``$TORCH_HOME/hub/checkpoints``
    or ``$KERAS_HOME/models``) to place it in; or use ``weights="random"``.
    """


class LayerscopeWarning(UserWarning):
    """Base class of the warnings layerscope issues (filter them all with this class)."""


class InputScaleWarning(LayerscopeWarning):
    """Float images look like they are on the 0-1 scale where the recipe expects 0-255.

    Silence it with ``warnings.filterwarnings("ignore", category=layerscope.InputScaleWarning)``
    when dark 0-255 images are really meant.
    """


def closest(name: str, choices: Iterable[str], n: int = 5) -> list[str]:
    """Return up to ``n`` of ``choices`` that look most like ``name`` (for error messages).

    Parameters
    ----------
    name : str
        The name that was not found.
    choices : iterable of str
        The valid names (duplicates are ignored).
    n : int
        At most this many suggestions.

    Returns
    -------
    list of str
        Close matches (difflib, cutoff 0.5), else names containing ``name`` ignoring case.

    Examples
    --------
    >>> closest("blok1_conv1", ["block1_conv1", "block1_conv2", "fc1"])
    ['block1_conv1', 'block1_conv2']
    """
    pool = list(dict.fromkeys(choices))
    found = difflib.get_close_matches(name, pool, n=n, cutoff=0.5)
    if not found:
        lowered = name.lower()
        found = [c for c in pool if lowered in c.lower()][:n]
    return found


def suggest(name: str, choices: Iterable[str], n: int = 5) -> str:
    """A ``Did you mean ...?`` phrase, or a sample of valid names when nothing is close."""
    pool = list(dict.fromkeys(choices))
    near = closest(name, pool, n)
    if near:
        return "Did you mean " + ", ".join(repr(c) for c in near) + "?"
    sample = ", ".join(repr(c) for c in pool[:n])
    return f"Valid names include {sample}." if pool else "There are no valid names."
