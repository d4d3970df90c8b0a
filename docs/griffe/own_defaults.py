"""A griffe extension for the API reference (mkdocs.yml): every parameter of a shared
numpy-docstring entry shows its own default and type.

A docstring entry may name several parameters (``cmap, colorbar``, no type given); griffe gives
each the first name's default and annotation, so the reference would say ``colorbar`` is a
``str`` defaulting to ``'magma'``. This sets each documented parameter's default from the
signature (``None``, shown as "required", when it has none), and the type of each name of a
shared entry from its annotation. ``tests/docs/test_api_reference.py`` checks every public function
with it.
"""

from __future__ import annotations

from typing import Any

import griffe


class OwnDefaults(griffe.Extension):
    """Each documented parameter's default (and a shared entry's types), read from the
    function's own signature."""

    def on_function(self, *, func: griffe.Function, **kwargs: Any) -> None:
        if func.docstring is None:
            return
        for section in func.docstring.parsed:
            if section.kind is not griffe.DocstringSectionKind.parameters:
                continue
            params = section.value
            for k, param in enumerate(params):
                if param.name not in func.parameters:
                    continue
                own = func.parameters[param.name]
                param.value = own.default
                shared = any(
                    0 <= j < len(params) and params[j].description == param.description
                    for j in (k - 1, k + 1)
                )
                if shared and own.annotation is not None:
                    param.annotation = own.annotation
