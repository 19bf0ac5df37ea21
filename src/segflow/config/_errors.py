"""Where in ``segflow.toml`` a validation error is, in the words of the file.

pydantic locates an error by a path of keys and 0-based list indices
(``sources.1.table``), which a user has to translate: which ``[[sources]]`` is 1? This
module writes the path as the file reads. An entry of a list of tables (``[[sources]]``,
``[[schemes]]``, a scheme's ``rules``) is named by its name when it has one
(a rule by its segment), and always by its position from 1:

* ``sources.1.table`` -> ``source 'orders' (the 2nd [[sources]]): table``
* ``schemes.0.rules.2.when`` -> ``scheme 'vip' (the 1st [[schemes]]): rule 'Gold' (the
  3rd of its rules): when``
* an entry without a name: ``the 2nd [[sources]]: table``
* a value of a list of values (``tiers = [1, "x"]``): ``tiers (2nd value)``

Other keys are joined with dots, as before (``periods.granularity``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: The key that names an entry of a list of tables, where it is not ``name``.
_NAMED_BY = {"rules": "segment"}

#: What one entry of a list of tables is called, where it is not the list's name minus "s".
_ONE = {"sources": "source", "schemes": "scheme", "rules": "rule"}


def ordinal(n: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``4th``, ..., ``11th``, ``12th``, ``13th``, ``21st``."""
    if n % 100 in (11, 12, 13):
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def error_path(loc: Sequence[str | int], raw: Any) -> str:
    """The location ``loc`` of a pydantic error in the parsed TOML ``raw``, as the module
    notes write it (an empty text for an error of the whole file)."""
    parts: list[str] = []  # the labels of the tables passed, then the dotted rest
    dotted: list[str] = []
    keys: list[str] = []  # the keys passed, without indices: the TOML name of a table list
    node: Any = raw
    i = 0
    while i < len(loc):
        key, step = loc[i], loc[i + 1] if i + 1 < len(loc) else None
        value = node.get(key) if isinstance(node, Mapping) and isinstance(key, str) else None
        if isinstance(step, int) and isinstance(value, list) and 0 <= step < len(value):
            entry = value[step]
            if isinstance(entry, Mapping):  # an entry of a list of tables
                if dotted:
                    parts.append(".".join(dotted))
                    dotted = []
                parts.append(_entry_label(str(key), [*keys, str(key)], step, entry))
            else:  # a value of a list of values
                dotted.append(f"{key} ({ordinal(step + 1)} value)")
            keys.append(str(key))
            node = entry
            i += 2
            continue
        dotted.append(str(key))
        keys.append(str(key))
        node = value
        i += 1
    if dotted:
        parts.append(".".join(dotted))
    return ": ".join(parts)


def _entry_label(key: str, keys: list[str], index: int, entry: Mapping[str, Any]) -> str:
    """``source 'orders' (the 2nd [[sources]])``, or ``the 2nd [[sources]]`` without a name;
    in a table (a scheme's rules, written ``[[schemes.rules]]`` or ``rules = [{...}]``):
    ``rule 'Gold' (the 3rd of its rules)``."""
    where = f"the {ordinal(index + 1)} " + (f"[[{key}]]" if len(keys) == 1 else f"of its {key}")
    name = entry.get(_NAMED_BY.get(key, "name"))
    if not isinstance(name, str) or not name:
        return where
    return f"{_ONE.get(key, key.removesuffix('s'))} {name!r} ({where})"


#: The prefixes pydantic puts before the message of a validator's ValueError or
#: AssertionError ("Value error, two schemes are named 'vip'").
_PREFIXES = ("Value error, ", "Assertion failed, ")


def message(err: Mapping[str, Any]) -> str:
    """The message of one pydantic error without pydantic's ``Value error, `` prefix."""
    msg = str(err["msg"])
    for prefix in _PREFIXES:
        if msg.startswith(prefix):
            return msg[len(prefix):]
    return msg


def describe_errors(errors: Iterable[Mapping[str, Any]], raw: Any) -> str:
    """pydantic's ``errors()`` of validating ``raw`` as one line: each error's
    :func:`error_path` and message, separated by ``; ``."""
    lines = []
    for err in errors:
        where = error_path(err["loc"], raw)
        msg = message(err)
        lines.append(f"{where}: {msg}" if where else msg)
    return "; ".join(lines)
