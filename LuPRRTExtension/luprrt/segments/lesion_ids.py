"""Persistent lesion tracking ids: how a new lesion gets an id that no other lesion has had.

A lesion keeps its tracking id (the ``lesion_id`` tag) across cycles and follow-ups. New
lesions, from a SPECT candidate, an untagged segment or an unmatched follow-up lesion,
continue the numbering of the ids already taken, so a lesion that disappeared never lends
its number to a new one. One rule serves every place that hands out ids:

* the scheme is the one most ids already follow: the prefix shared by most numbered ids
  (``L`` in ``L01, L03``; ties go to the prefix of the largest number), with the zero padding
  of its largest id;
* numbers continue after the largest number with that prefix;
* with no numbered id yet, LuPRRT's own scheme: ``L01``, ``L02``, ...
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable, Iterator

_NUMBERED = re.compile(r"(.*?)(\d+)")


def new_lesion_ids(taken: Iterable[str | None], prefix: str = "L", width: int = 2) -> Iterator[str]:
    """Endless fresh lesion ids after ``taken`` (None entries ignored).

    Parameters
    ----------
    taken : iterable of str or None
        Ids already in use (every visit's, so that numbers are never reused).
    prefix, width : str, int
        Scheme when no taken id carries a number: ``prefix`` plus the number zero-padded to ``width``.

    Examples
    --------
    >>> list(itertools.islice(new_lesion_ids(["L01", "L03", None, "X7"]), 2))
    ['L04', 'L05']
    >>> next(new_lesion_ids(["007", "012"]))
    '013'
    """
    numbered = [(m.group(1), int(m.group(2)), len(m.group(2)))
                for m in (_NUMBERED.fullmatch(t) for t in taken if t) if m]
    if numbered:
        counts = Counter(p for p, _, _ in numbered)
        prefix = max(counts, key=lambda p: (counts[p], max(n for q, n, _ in numbered if q == p)))
        start, width = max((n, w) for q, n, w in numbered if q == prefix)
    else:
        start = 0
    return (f"{prefix}{n:0{width}d}" for n in itertools.count(start + 1))


def next_lesion_ids(taken: Iterable[str | None], count: int, prefix: str = "L", width: int = 2) -> list[str]:
    """The next ``count`` fresh lesion ids after ``taken`` (see :func:`new_lesion_ids`)."""
    return list(itertools.islice(new_lesion_ids(taken, prefix, width), count))
