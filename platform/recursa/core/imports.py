"""Objects a user names in a config by import path, "package.module:attribute"."""

from __future__ import annotations

import importlib
from typing import Any


def import_object(path: str, what: str) -> Any:
    """The attribute an import path names; a ValueError naming `what` and the path otherwise.

    The module is imported in the calling process: on Ray it must be importable on every worker
    (installed, in the driver's working directory, or shipped with the job's runtime_env).
    """
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{what} {path!r} is not an import path 'package.module:attribute'")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"{what} {path!r} cannot be imported: {error}") from None
