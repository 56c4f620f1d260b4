"""Feature names from the customer's event and property names: readable, unique, in the customer's own script.

A customer may name events and properties anything: ``Task Created`` and ``task_created``, ``Plan`` and ``plan``,
``खरीदारी``, ``price "net"``. Feature names are built from them (``n_<slug>_28d``, ``prop_<slug>``), so:

- :func:`name_slug` keeps letters, marks and digits of any script, lowercased, and turns every other run of
  characters into one ``_``; on plain ASCII names it gives the names features always had
  (``"Task Created" -> "task_created"``);
- :func:`unique_slugs` gives every distinct name its own slug: when two names share one (``Task Created`` and
  ``task_created``), the name already spelled like the slug keeps it (else the first in code point order) and
  the others get a short hash of their own spelling (``task_created_1a2b``), never one merged feature. The
  result depends only on the set of names, not on their order.
- :func:`distinct_labels` gives the words reasons use (``feature -> "tasks created"``), falling back to the
  customer's own spelling where two names would read the same.

A property's value is read in SQL through :func:`json_pointer`, bound as a variable (``properties ->>
getvariable('revenue_path')``), never spliced into a ``$."..."`` path: such paths break on a double quote or a
backslash in the name and read ``"*"`` as a wildcard; a JSON pointer (RFC 6901) addresses every key, the
empty one included.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable, Collection, Iterable

FALLBACK_SLUG = "x"  # for a name with no letter or digit at all (its hash tells such names apart)


def json_pointer(name: str) -> str:
    """The JSON pointer of top-level key ``name`` (``"a/b" -> "/a~1b"``), for DuckDB's ``->`` / ``->>``."""
    return "/" + name.replace("~", "~0").replace("/", "~1")


def name_slug(name: str) -> str:
    """``"Task Created" -> "task_created"``, ``"खरीदारी" -> "खरीदारी"``, ``"price \\"net\\"" -> "price_net"``:
    lowercased (NFC), letters, combining marks and digits of any script kept, any other run of characters one
    ``_``, no ``_`` at either end; ``"x"`` when nothing is left."""
    out: list[str] = []
    gap = False
    for ch in unicodedata.normalize("NFC", name.lower()):
        if unicodedata.category(ch)[0] in "LMN":
            if gap and out:
                out.append("_")
            out.append(ch)
            gap = False
        else:
            gap = True
    return "".join(out) or FALLBACK_SLUG


def _digest(name: str) -> str:
    return hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()


def unique_slugs(names: Iterable[str], reserved: Collection[str] = ()) -> dict[str, str]:
    """Each distinct name -> its own slug (see the module's docstring); no slug is in ``reserved`` (slugs taken
    by fixed features, e.g. ``"events"`` for ``trend_events_7v21``). Slugs are compared case-insensitively, as
    DuckDB compares column names."""
    distinct = sorted(set(names))
    groups: dict[str, list[str]] = {}
    for n in distinct:
        groups.setdefault(name_slug(n).casefold(), []).append(n)
    taken = {r.casefold() for r in reserved}
    out: dict[str, str] = {}
    rest: list[str] = []
    for members in groups.values():
        base = name_slug(members[0])
        if base.casefold() in taken:
            rest += members
            continue
        keeper = next((n for n in members if n == base), members[0])
        out[keeper] = base
        taken.add(base.casefold())
        rest += [n for n in members if n != keeper]
    for n in sorted(rest):
        base, digest, size = name_slug(n), _digest(n), 4
        while f"{base}_{digest[:size]}".casefold() in taken:
            size += 2
        out[n] = f"{base}_{digest[:size]}"
        taken.add(out[n].casefold())
    return out


def distinct_labels(names: Iterable[str], words: Callable[[str], str], own: Callable[[str], str]) -> dict[str, str]:
    """Each distinct name -> ``words(name)`` (``"Task Created" -> "tasks created"``), or ``own(name)`` (the
    customer's own spelling, e.g. ``"Task Created events"``) for the names whose words another name shares."""
    distinct = sorted(set(names))
    counts: dict[str, int] = {}
    for n in distinct:
        counts[words(n)] = counts.get(words(n), 0) + 1
    return {n: words(n) if counts[words(n)] == 1 else own(n) for n in distinct}
