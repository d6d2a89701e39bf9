"""The function catalogue: 37 domains of function templates, written in `dsl`.

Each module holds a group of related domains; DOMAINS joins them in a fixed order. The order is
part of the generator's output: it picks functions by their position in DOMAINS, so moving a
domain or a function changes every generated example after it.
"""

from __future__ import annotations

from recursa.fc.data.catalogue import (
    admin,
    errands,
    everyday,
    learning,
    leisure,
    local,
    online,
    pastimes,
    personal,
    science,
)
from recursa.fc.data.dsl import Fn

DOMAINS: dict[str, tuple[Fn, ...]] = {
    **everyday.DOMAINS,
    **science.DOMAINS,
    **leisure.DOMAINS,
    **errands.DOMAINS,
    **personal.DOMAINS,
    **learning.DOMAINS,
    **pastimes.DOMAINS,
    **admin.DOMAINS,
    **local.DOMAINS,
    **online.DOMAINS,
}
