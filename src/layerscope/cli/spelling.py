"""Library messages in command-line spelling: ``weights='random'`` becomes ``--weights random``,
``resume=True`` becomes ``--resume``."""

from __future__ import annotations

import re

__all__ = ["cli_spelling"]

_PY_ARGUMENT = re.compile(
    r"\b(weights|seed|input_size|batch_size|preprocess|resize|backend|variant|pool|workers|rtol|"
    r"pipeline|out|resume|overwrite|precision|device|max_maps)=(?:'([^']*)'|\"([^\"]*)\"|([\w.+/-]+))"
)

_SWITCHES = ("resume", "overwrite")
"""Keywords whose flag takes no value: ``resume=True`` is ``--resume``."""


def cli_spelling(message: str) -> str:
    """A library message in command-line spelling: ``weights='random'`` -> ``--weights random``."""

    def flag(m: re.Match[str]) -> str:
        value = next(v for v in m.groups()[1:] if v is not None)
        tail = ""
        if m.group(4) is not None and value.endswith("."):  # the sentence's full stop
            value, tail = value.rstrip("."), "."
        value = "none" if value == "None" else value or "''"  # an empty string stays visible
        if m.group(1) in _SWITCHES and value == "True":  # flags that take no value
            return f"--{m.group(1)}{tail}"
        return f"--{m.group(1).replace('_', '-')} {value}{tail}"

    return _PY_ARGUMENT.sub(flag, message)
