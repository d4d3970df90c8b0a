"""layerscope: the inside of image CNNs, the same numbers in every framework.

>>> import layerscope as ls
>>> feats = ls.extract("cat.jpg", "vgg16", layers=["block1_conv1", "block5_pool"])
>>> feats["block1_conv1"].shape
(1, 224, 224, 64)

``import layerscope`` imports no framework: torch or keras load inside their backend the
first time a model is built.
"""

from __future__ import annotations

from layerscope.api import (
    BackendInfo,
    backends,
    clear_cache,
    export_weights,
    extract,
    get_backend,
    list_layers,
    load,
)
from layerscope.backend import Backend, LayerInfo, ModelHandle
from layerscope.compare import Report, compare, sensitivity
from layerscope.data import sample
from layerscope.dataset import DatasetResult, extract_dataset
from layerscope.display import Features
from layerscope.errors import (
    BackendUnavailableError,
    ImageError,
    InputError,
    InputScaleWarning,
    LayerscopeError,
    LayerscopeWarning,
    MissingDependencyError,
    OutputError,
    OutputLockedError,
    PluginError,
    UnknownBackendError,
    UnknownLayerError,
    UnknownModelError,
    WeightsError,
    WeightsUnavailableError,
)
from layerscope.hookspecs import hookimpl
from layerscope.layers import LayerTable
from layerscope.model import LoadedModel
from layerscope.preprocess import RECIPES, Recipe
from layerscope.weights import Bundle, load_bundle, random_bundle

__version__ = "0.1.0"

__all__ = [
    "RECIPES",
    "Backend",
    "BackendInfo",
    "BackendUnavailableError",
    "Bundle",
    "DatasetResult",
    "Features",
    "ImageError",
    "InputError",
    "InputScaleWarning",
    "LayerInfo",
    "LayerTable",
    "LayerscopeError",
    "LayerscopeWarning",
    "LoadedModel",
    "MissingDependencyError",
    "ModelHandle",
    "OutputError",
    "OutputLockedError",
    "PluginError",
    "Recipe",
    "Report",
    "UnknownBackendError",
    "UnknownLayerError",
    "UnknownModelError",
    "WeightsError",
    "WeightsUnavailableError",
    "__version__",
    "backends",
    "clear_cache",
    "compare",
    "export_weights",
    "extract",
    "extract_dataset",
    "get_backend",
    "hookimpl",
    "list_layers",
    "load",
    "load_bundle",
    "random_bundle",
    "sample",
    "sensitivity",
]
