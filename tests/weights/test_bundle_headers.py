"""A bundle's header is checked field by field before it is used.

The stored preprocessing recipe decides the numbers as much as the weights: a negative,
zero or NaN ``std``, a ``mean`` of 1 or 5 values, a ``size`` of 0, -5 or 3.7, an unknown
normalisation and a ``head`` of ``"True"`` are each a ``WeightsError`` naming the field
(read with ``ls.load_bundle``, no framework needed), never another argument's error later
nor other numbers. A ``Bundle`` object's recipe is checked the same way when loaded.
"""

from __future__ import annotations

import json
import struct
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import layerscope as ls
from layerscope.preprocess import RECIPES
from layerscope.weights import recipe_to_json


@pytest.fixture(scope="module")
def bundle() -> ls.Bundle:
    """A small seeded bundle with the torch recipe recorded, as ``export_weights`` writes one."""
    made = ls.random_bundle("mobilenet_v2", seed=0)
    made.recipe = RECIPES["torch"]
    return made


def _with_header(tmp_path: Path, bundle: ls.Bundle, **changes: Any) -> Path:
    """``bundle`` saved, its header fields changed (``None``: removed), the recipe's as
    ``recipe_<field>``."""
    from safetensors.numpy import save_file

    meta = bundle.metadata()
    recipe = json.loads(meta["recipe"])
    for key, value in changes.items():
        if key.startswith("recipe_"):
            recipe[key[len("recipe_") :]] = value
        elif value is None:
            meta.pop(key)
        else:
            meta[key] = value
    meta["recipe"] = changes.get("recipe", json.dumps(recipe))
    path = tmp_path / "b.safetensors"
    save_file(bundle.tensors, str(path), metadata=meta)
    return path


RECIPE_FIELDS = {
    "a negative std": (
        {"recipe_std": [-0.229, 0.224, 0.225]},
        r"recipe field 'std' is \[-0\.229, 0\.224, 0\.225\]\. Expected 3 finite numbers \(R, G, B\) above 0",
    ),
    "a zero std": (
        {"recipe_std": [0, 0.224, 0.225]},
        r"recipe field 'std' is \[0\.0, 0\.224, 0\.225\]\. Expected 3 finite numbers",
    ),
    "a NaN std": (
        {"recipe_std": [float("nan"), 0.224, 0.225]},
        r"recipe field 'std' is \[nan, 0\.224, 0\.225\]",
    ),
    "a 1-long mean": (
        {"recipe_mean": [0.5]},
        r"recipe field 'mean' is \[0\.5\]\. Expected 3 finite numbers \(R, G, B\)\.",
    ),
    "a 5-long mean": (
        {"recipe_mean": [0.4] * 5},
        r"recipe field 'mean' is \[0\.4, 0\.4, 0\.4, 0\.4, 0\.4\]\. Expected 3",
    ),
    "a mean of strings": (
        {"recipe_mean": ["0.4", "0.4", "0.4"]},
        r"recipe field 'mean' is \['0\.4', '0\.4', '0\.4'\]\. Expected a list of 3 numbers",
    ),
    "size 0": ({"recipe_size": 0}, r"recipe field 'size' is 0\. Expected a whole number of pixels >= 1"),
    "size -5": ({"recipe_size": -5}, r"recipe field 'size' is -5\. Expected a whole number"),
    "size 3.7": ({"recipe_size": 3.7}, r"recipe field 'size' is 3\.7\. Expected a whole number"),
    "a crop larger than its resize": (
        {"recipe_resize_size": 100},
        r"recipe field 'resize_size' is 100\. Expected a whole number >= size \(224\) for policy 'crop'",
    ),
    "an unknown normalisation": (
        {"recipe_normalisation": "imagenet"},
        r"recipe field 'normalisation' is 'imagenet'\. Expected one of \['caffe', 'torch', 'tf', 'raw'\]",
    ),
    "an unknown interpolation": (
        {"recipe_interpolation": "cubic"},
        r"recipe field 'interpolation' is 'cubic'",
    ),
    "an unknown recipe field": (
        {"recipe_gamma": 2.2},
        r"header field 'recipe' holds \[.*'gamma'.*\]\. Expected a JSON object with exactly",
    ),
    "a recipe that is not JSON": ({"recipe": "{mean: 1"}, r"header field 'recipe' is not JSON"),
    "head 'True'": ({"head": "True"}, r"header field 'head' is 'True'\. Expected 'true' or 'false'"),
    "another version": ({"version": "2"}, r"header field 'version' is '2'\. Expected '1'"),
    "no architecture": ({"architecture": ""}, r"header field 'architecture' is missing or empty"),
}


@pytest.mark.parametrize("case", sorted(RECIPE_FIELDS))
def test_each_header_field_is_checked_by_name(case: str, bundle: ls.Bundle, tmp_path: Path) -> None:
    changes, message = RECIPE_FIELDS[case]
    path = _with_header(tmp_path, bundle, **changes)
    with pytest.raises(ls.WeightsError, match=rf"The weight bundle '.*b\.safetensors': {message}"):
        ls.load_bundle(path)


def test_a_header_field_that_is_not_a_string_is_named(bundle: ls.Bundle, tmp_path: Path) -> None:
    """safetensors writes string metadata only; a file edited by hand may hold anything."""
    tensors = {"Conv1/kernel": bundle.tensors["Conv1/kernel"]}
    header = {"__metadata__": {"format": "layerscope-bundle", "architecture": "mobilenet_v2", "head": True}}
    data = tensors["Conv1/kernel"].tobytes()
    header["Conv1/kernel"] = {"dtype": "F32", "shape": [3, 3, 3, 32], "data_offsets": [0, len(data)]}
    text = json.dumps(header).encode()
    path = tmp_path / "hand.safetensors"
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    with pytest.raises(ls.WeightsError, match=r"header field 'head' is a bool \(True\)\. Expected a string"):
        ls.load_bundle(path)


def test_the_written_recipe_reads_back(bundle: ls.Bundle, tmp_path: Path) -> None:
    path = _with_header(tmp_path, bundle)
    assert ls.load_bundle(path).recipe == bundle.recipe
    assert json.loads(recipe_to_json(bundle.recipe))["size"] == 224


@pytest.mark.torch
def test_a_bundle_objects_recipe_and_head_are_checked(bundle: ls.Bundle) -> None:
    recipe = replace(bundle.recipe, std=(0.229, 0.0, 0.225))
    tampered = ls.Bundle(bundle.tensors, "mobilenet_v2", bundle.variant, recipe=recipe)
    with pytest.raises(ls.WeightsError, match=r"recipe field 'std' is \[0\.229, 0\.0, 0\.225\]"):
        ls.load("mobilenet_v2", backend="torch", weights=tampered)
    headed = ls.Bundle(bundle.tensors, "mobilenet_v2", bundle.variant, head="True")  # type: ignore[arg-type]
    with pytest.raises(ls.WeightsError, match=r"`head` is 'True'\. Expected True or False"):
        ls.load("mobilenet_v2", backend="torch", weights=headed)
    negative = dict(bundle.tensors)
    negative["bn_Conv1/moving_variance"] = -np.abs(negative["bn_Conv1/moving_variance"])
    with pytest.raises(
        ls.WeightsError,
        match=r"tensor 'bn_Conv1/moving_variance' holds 32 negative values .* Expected BatchNorm variances >= 0",
    ):
        ls.load("mobilenet_v2", backend="torch", weights=ls.Bundle(negative, "mobilenet_v2", bundle.variant))


def test_a_damaged_header_says_what_is_wrong(tmp_path: Path) -> None:
    huge = tmp_path / "huge.safetensors"
    huge.write_bytes(struct.pack("<Q", 2**60) + b"{}")
    with pytest.raises(
        ls.WeightsError, match=r"its header claims 1152921504606846976 bytes, beyond the 2 bytes of the file"
    ):
        ls.load_bundle(huge)
    listed = tmp_path / "list.safetensors"
    listed.write_bytes(struct.pack("<Q", 5) + b"[1,2]")
    with pytest.raises(ls.WeightsError, match=r"its header is a JSON list, not an object"):
        ls.load_bundle(listed)


@pytest.mark.torch
def test_a_bundle_variant_the_backend_does_not_build_is_named(bundle: ls.Bundle) -> None:
    """Never replaced by the backend's default: the caller picks one with variant=."""
    other = ls.Bundle(bundle.tensors, "mobilenet_v2", "v9")
    with pytest.raises(
        ls.WeightsError, match=r"records variant 'v9' of mobilenet_v2, which the torch backend does not build"
    ):
        ls.load("mobilenet_v2", backend="torch", weights=other)
    unnamed = ls.Bundle(bundle.tensors, "mobilenet_v2")
    with pytest.raises(
        ls.WeightsError,
        match=r"records no architecture variant, and the torch backend builds \['symmetric', 'asymmetric'\]\. "
        r"Pass the one the weights were made with: variant='symmetric'",
    ):
        ls.load("mobilenet_v2", backend="torch", weights=unnamed)
    assert (
        ls.load("mobilenet_v2", backend="torch", weights=unnamed, variant="asymmetric").variant
        == "asymmetric"
    )
