"""Weight bundles: one framework-neutral file that every backend can load.

A bundle is a ``.safetensors`` file (read and written with ``safetensors.numpy``, so no
framework is needed to inspect one) whose tensors are named ``<canonical layer>/<param>``
in Keras layouts:

==================  ==========================================================
``<conv>/kernel``   conv kernel, HWIO ``(kh, kw, in, out)``
``<conv>/bias``     conv bias ``(out,)`` (absent when the source had none)
``<dense>/kernel``  dense kernel ``(in, out)``; after a flatten, ``in`` is in NHWC order
``<dense>/bias``    ``(out,)``
``<bn>/gamma``      BatchNorm scale; also ``beta``, ``moving_mean``, ``moving_variance``
``<bn>/epsilon``    BatchNorm epsilon, a float32 array of shape ``(1,)``
``<ln>/gamma``      LayerNorm scale; also ``beta`` and ``epsilon`` (ConvNeXt)
``<scale>/gamma``   ConvNeXt's LayerScale ``(channels,)``
==================  ==========================================================

The header metadata records ``format`` (``layerscope-bundle``), ``version``,
``architecture`` (catalogue key), ``variant``, ``source_backend``, ``weights`` (what the
source model held), ``head`` (whether classifier layers are included) and ``recipe`` (JSON:
the preprocessing the weights were trained with, i.e. the source model's native recipe, so
``preprocess="native"`` on any backend follows the weights: Keras' VGG16 weights on torch
get caffe BGR/mean and Keras' stretch-nearest resize). A bundle without ``recipe`` (older
files, :func:`random_bundle`) leaves each backend its own native recipe.

Every bundle is checked before any weight is copied (:func:`validate`): each weighted layer
of the catalogue must have exactly its tensors with the catalogue's shapes, an epsilon of
shape ``(1,)`` that is positive and finite, and nothing else; anything else is a
:class:`~layerscope.errors.WeightsError` naming the tensor, what was expected and what was
received.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from layerscope import catalog, random_cache
from layerscope.bundle_checks import (
    bundle_absent,
    bundle_variant,
    check_metadata,
    recipe_from_json,
    refuse_absent,
    validate,
)
from layerscope.catalog import Catalog, Entry
from layerscope.errors import WeightsError
from layerscope.preprocess import Recipe
from layerscope.weight_files import require_file, suffix

__all__ = [
    "FORMAT",
    "SEEDED_INIT_LOCK",
    "Bundle",
    "bundle_absent",
    "bundle_variant",
    "check_architecture",
    "exported_layers",
    "is_bundle",
    "load_bundle",
    "refuse_absent",
    "save_bundle",
    "validate",
]

FORMAT = "layerscope-bundle"
VERSION = "1"

SEEDED_INIT_LOCK = threading.RLock()
"""Held by the built-in backends while they build a model with seeded random weights.

torchvision's and Keras' initialisers draw from their framework's *global* generators (no
model constructor takes a private one), so a seeded build reseeds the global generator,
builds, and restores it; this process-wide lock keeps two such builds from interleaving,
so eight threads loading ``weights="random", seed=0`` get bit-identical weights. Code that
draws from the global generators in other threads *during* a seeded build still shifts it:
seed inside one thread, or build models before starting threads that use torch.rand.
"""


@dataclass
class Bundle:
    """Weights by canonical layer, in Keras layouts, plus where they came from."""

    tensors: dict[str, np.ndarray]
    architecture: str
    variant: str = ""
    source_backend: str = ""
    weights: str = ""
    head: bool = True
    extra: dict[str, str] = field(default_factory=dict)
    recipe: Recipe | None = None
    """The preprocessing the weights expect (the source model's native recipe), if known."""

    def layer(self, name: str) -> dict[str, np.ndarray]:
        """The tensors of one canonical layer, keyed by parameter name."""
        prefix = name + "/"
        return {k[len(prefix) :]: v for k, v in self.tensors.items() if k.startswith(prefix)}

    def layers(self) -> list[str]:
        """Canonical layer names that have tensors, in file order."""
        return list(dict.fromkeys(k.rsplit("/", 1)[0] for k in self.tensors))

    def metadata(self) -> dict[str, str]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "architecture": self.architecture,
            "variant": self.variant,
            "source_backend": self.source_backend,
            "weights": self.weights,
            "head": "true" if self.head else "false",
            **self.extra,
            **({"recipe": recipe_to_json(self.recipe)} if self.recipe is not None else {}),
        }

    @classmethod
    def of(cls, handle: Any, tensors: dict[str, np.ndarray], source: str, head: bool) -> Bundle:
        """A bundle of ``tensors`` taken from a loaded model's handle, with its native recipe."""
        recipe = getattr(handle, "recipe", None)
        return cls(
            tensors, handle.architecture, handle.variant or "", source, handle.weights, head, recipe=recipe
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the bundle to ``path`` (``.safetensors``)."""
        return save_bundle(self, path)

    def __repr__(self) -> str:
        n = sum(int(v.size) for v in self.tensors.values())
        return (
            f"<Bundle {self.architecture} {self.variant or ''} from {self.source_backend or '?'}: "
            f"{len(self.layers())} layers, {n:,} values>"
        )


def exported_layers(handle: Any, head: bool) -> tuple[list[Entry], bool]:
    """The catalogue entries an export of ``handle`` holds, and whether it holds the head:
    every weighted layer, without the classifier's when ``head`` is false or the model was
    loaded from a headless (notop) file, which has no head to export."""
    head = head and not handle.state.get("absent")
    return catalog.require(handle.architecture).weighted(head), head


def _safetensors() -> Any:
    try:
        import safetensors.numpy as st
    except ImportError as exc:
        raise WeightsError(
            "Weight bundles need the safetensors package. Install it with pip install 'layerscope[bundles]'."
        ) from exc
    return st


def save_bundle(bundle: Bundle, path: str | os.PathLike[str]) -> Path:
    """Write ``bundle`` as a ``.safetensors`` file with layerscope metadata."""
    path = Path(path)
    if suffix(path) != ".safetensors":
        raise WeightsError(f"Invalid bundle path {str(path)!r}. Expected a file name ending in .safetensors.")
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: np.ascontiguousarray(v) for k, v in bundle.tensors.items()}
    _safetensors().save_file(tensors, str(path), metadata=bundle.metadata())
    return path


def _header(path: Path) -> dict[str, Any] | str:
    """The ``__metadata__`` of a safetensors file's header, or why it cannot be read. The
    header is 8 bytes of length then that much JSON; a length beyond the file or over 100 MB
    is refused before anything is read."""
    import struct

    try:
        with path.open("rb") as fh:
            prefix = fh.read(8)
            if len(prefix) < 8:
                return f"the file is {len(prefix)} bytes, shorter than a safetensors header"
            (size,) = struct.unpack("<Q", prefix)
            room = path.stat().st_size - 8
            if size > min(room, 100_000_000):
                return f"its header claims {size} bytes, beyond the {room} bytes of the file (or 100 MB)"
            header = json.loads(fh.read(size))
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    except ValueError as exc:
        return f"its header is not JSON ({exc})"
    if not isinstance(header, dict):
        return f"its header is a JSON {type(header).__name__}, not an object"
    meta = header.get("__metadata__")
    return meta if isinstance(meta, dict) else {}


def is_bundle(path: Any) -> bool:
    """Whether ``path`` is a layerscope weight bundle (reads only the file header)."""
    if isinstance(path, Bundle):
        return True
    if not isinstance(path, (str, os.PathLike)):
        return False
    p = Path(path)
    if suffix(p) != ".safetensors" or not p.is_file():
        return False
    meta = _header(p)
    return isinstance(meta, dict) and meta.get("format") == FORMAT


def load_bundle(path: str | os.PathLike[str] | Bundle) -> Bundle:
    """Read a bundle file (or return a :class:`Bundle` unchanged)."""
    if isinstance(path, Bundle):
        return path
    p = Path(path)
    require_file(p)
    meta = _header(p)
    if isinstance(meta, str):
        raise WeightsError(
            f"Cannot read the weight bundle {str(p)!r}: {meta}. Expected a .safetensors file as "
            "layerscope.export_weights writes it; is it truncated or damaged? Export it again."
        )
    if meta.get("format") != FORMAT:
        raise WeightsError(
            f"{str(p)!r} is not a layerscope weight bundle (its safetensors header has no "
            f"format={FORMAT!r}). Create one with layerscope.export_weights(model, path)."
        )
    where = f"The weight bundle {str(p)!r}"
    check_metadata(meta, where, VERSION)
    recipe = recipe_from_json(meta["recipe"], where) if "recipe" in meta else None
    try:
        tensors = dict(_safetensors().load_file(str(p)))
    except WeightsError:
        raise
    except Exception as exc:  # safetensors' SafetensorError, or an OSError mid-read
        raise WeightsError(
            f"Cannot read the weight bundle {str(p)!r}: the file is truncated or damaged "
            f"({type(exc).__name__}: {exc}). Expected a complete .safetensors file as "
            "layerscope.export_weights writes it; export it again."
        ) from exc
    known = {"format", "version", "architecture", "variant", "source_backend", "weights", "head", "recipe"}
    bundle = Bundle(
        tensors=tensors,
        architecture=meta.get("architecture", ""),
        variant=meta.get("variant", ""),
        source_backend=meta.get("source_backend", ""),
        weights=meta.get("weights", ""),
        head=meta.get("head", "true") == "true",
        extra={k: v for k, v in meta.items() if k not in known},
        recipe=recipe,
    )
    from layerscope import catalog

    if catalog.get(bundle.architecture) is not None:
        validate(bundle, bundle.architecture)
    return bundle


def check_architecture(bundle: Bundle, architecture: str) -> None:
    """Refuse a bundle made for another architecture, naming both, or a tampered one."""
    if bundle.architecture != architecture:
        raise WeightsError(
            f"The weight bundle is for {bundle.architecture!r}, not {architecture!r}. Load it "
            f"into a {bundle.architecture} model."
        )
    validate(bundle, architecture)


def recipe_to_json(recipe: Recipe) -> str:
    """A recipe as the JSON a bundle's header stores."""
    g = recipe.geometry
    return json.dumps(
        {
            "name": recipe.name,
            "normalisation": recipe.normalisation,
            "policy": g.policy,
            "size": g.size,
            "resize_size": g.resize_size,
            "interpolation": g.interpolation,
            "mean": list(recipe.mean),
            "std": list(recipe.std),
        }
    )


def random_bundle(architecture: str, seed: int = 0, variant: str | None = None) -> Bundle:
    """Seeded random weights for a catalogued architecture, made with numpy alone.

    The same ``(architecture, seed)`` gives the same bytes on every machine and in every
    virtualenv, with or without a framework installed: this is the fixed bundle the nox
    cross-check feeds to each backend. Scales keep activations in a sane range through the
    whole network: He-normal kernels, small biases, BatchNorm statistics near identity.
    """
    cat = catalog.require(architecture, "Random bundles")
    chosen = variant or cat.reference_variant
    # drawing takes seconds (VGG16's 138M numbers: 4 s); runs that set the cache draw once,
    # into one entry for every variant (the numbers do not depend on it)
    cached = random_cache.location("numpy", f"numpy {np.__version__}", architecture, None, seed)
    saved = random_cache.read(cached)
    if saved is not None:  # copied: a bundle's arrays are the caller's to change
        tensors = {k: np.array(v) for k, v in saved.items()}
    else:
        tensors = _random_tensors(cat, architecture, seed)
        random_cache.write(cached, tensors)
    return Bundle(tensors, architecture, chosen, "numpy", f"random_bundle(seed={seed})")


def _random_tensors(cat: Catalog, architecture: str, seed: int) -> dict[str, np.ndarray]:
    """The arrays of :func:`random_bundle`, drawn."""
    rng = np.random.Generator(np.random.PCG64(seed))
    eps = 1.001e-5 if architecture.startswith("resnet") else 1e-3
    tensors: dict[str, np.ndarray] = {}
    for entry in cat.weighted():
        if entry.shape is None:
            raise WeightsError(f"The {architecture} catalogue has no weight shape for {entry.name!r}.")
        shape = entry.shape
        if entry.kind in ("BatchNormalization", "LayerNormalization", "LayerScale"):
            tensors.update(_per_channel(entry, rng, eps))
            continue
        # a depthwise kernel (H, W, C, 1) sums H*W inputs per output, not H*W*C
        fan_in = int(np.prod(shape[:2] if entry.kind == "DepthwiseConv2D" else shape[:-1]))
        gain = 1.0 if entry.name == cat.entries[-1].name else 2.0  # the classifier's output
        tensors[f"{entry.name}/kernel"] = rng.normal(0.0, np.sqrt(gain / fan_in), shape).astype(np.float32)
        if entry.bias:
            tensors[f"{entry.name}/bias"] = rng.normal(0.0, 0.01, shape[-1]).astype(np.float32)
    return tensors


def _per_channel(entry: Entry, rng: np.random.Generator, eps: float) -> dict[str, np.ndarray]:
    """Seeded tensors of one BatchNorm, LayerNorm or LayerScale layer of ``random_bundle``."""
    assert entry.shape is not None
    (c,) = entry.shape
    # residual branches end small (as zero-init-residual training recipes do), so
    # activations do not grow block after block (ResNet's _3_bn/_0_bn, MobileNetV2's
    # _project_BN, EfficientNet's _project_bn: without, MobileNetV2's ReLU6 inputs reach 40
    # and float32 rounding 1e-4 of 6; ConvNeXt's LayerScale, which Keras and torchvision
    # start at 1e-6)
    ends = ("_3_bn", "_0_bn", "_project_BN", "_project_bn")
    small = entry.kind == "LayerScale" or entry.name.endswith(ends)
    low, high = (0.1, 0.3) if small else (0.8, 1.2)
    gamma = rng.uniform(low, high, c).astype(np.float32)
    # a BatchNorm without a scale (Keras' InceptionV3) can only take gamma 1
    out = {f"{entry.name}/gamma": gamma if entry.scale else np.ones(c, np.float32)}
    if entry.kind == "LayerScale":
        return out
    out[f"{entry.name}/beta"] = rng.normal(0.0, 0.05, c).astype(np.float32)
    if entry.kind == "LayerNormalization":  # ConvNeXt's, 1e-6 in both zoos
        return {**out, f"{entry.name}/epsilon": np.array([1e-6], dtype=np.float32)}
    out[f"{entry.name}/moving_mean"] = rng.normal(0.0, 0.1, c).astype(np.float32)
    out[f"{entry.name}/moving_variance"] = rng.uniform(0.5, 1.5, c).astype(np.float32)
    out[f"{entry.name}/epsilon"] = np.array([eps], dtype=np.float32)
    return out
