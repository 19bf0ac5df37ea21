"""Personal data inside free text: e-mail addresses and phone numbers quoted by a message.

A quarantine reason quotes the value it refused (``'jane@example.com' is not a date``,
``customer '+44 20 7946 0123' is not in customers``), so the report and the server's
quality answer would show the address or number in clear to everyone who sees the data
quality, although the customers' own columns are masked for them. :func:`mask_personal_text`
masks each such value in place, by the one rule of the masked columns
(:func:`segflow.exports._pii.mask_email`, :func:`~segflow.exports._pii.mask_phone`), and
leaves the rest of the message as it is: dates, amounts, row numbers and plain ids are
not personal (a phone number is told from them by the content check's rule,
:func:`segflow.exports._pii_content.is_phone_like`).
"""

from __future__ import annotations

import re

#: An e-mail address inside a text: no space, quote, bracket, comma or semicolon in it, and
#: no ``=`` before the ``@`` (the audit's examples quote ``customer_id=ann@example.com``).
_EMAIL_IN_TEXT = re.compile(r"""[^\s@'"`<>()\[\],;:=]+@[^\s@'"`<>()\[\],;:]+\.[^\s@'"`<>()\[\],;:.]+""")
#: A run that may be a phone number: an optional +, then digits, spaces, brackets and
#: dashes, from a digit to a digit, not part of a decimal number (``0123456.78``) or a
#: longer token (tested by ``is_phone_like``).
_PHONE_IN_TEXT = re.compile(r"(?<![0-9.,\w\-])\+?\(?[0-9][0-9 ()\-\ue000]{5,}[0-9](?![0-9]|[.,][0-9]|\w)")
#: How a quarantine reason shows a NUL byte inside an id (``'ann<NUL>@example.com'``:
#: :func:`segflow.sources._ids.nul_id_reason`). The mask reads it as one character of the
#: address or number (:data:`_NUL_STAND_IN`, which the e-mail pattern takes and the phone run
#: skips), so the rest of the value is not shown in clear.
NUL_MARK = "<NUL>"
_NUL_STAND_IN = "\ue000"


def mask_personal_text(text: str | None) -> str | None:
    """``text`` with every e-mail address and phone number in it masked as the exports'
    ``mask`` policy masks such a column (``J***@example.com``, ``***23``); None stays None.

    Examples: ``"'jane@example.com' is not a date"`` -> ``"'j***@example.com' is not a
    date"``; ``"'2024-13-01' is not a date"`` and ``"'1,234.5x' is not a number"`` are
    returned unchanged."""
    if not text:
        return text
    from segflow.exports._pii import mask_email, mask_phone

    marked = NUL_MARK in text
    out = text.replace(NUL_MARK, _NUL_STAND_IN) if marked else text
    out = _EMAIL_IN_TEXT.sub(lambda m: mask_email(m.group(0)), out)

    def phone(m: re.Match[str]) -> str:
        run = m.group(0).replace(_NUL_STAND_IN, "").strip()
        return mask_phone(run) if _is_phone_run(run) else m.group(0)

    out = _PHONE_IN_TEXT.sub(phone, out)
    return out.replace(_NUL_STAND_IN, NUL_MARK) if marked else out


def _is_phone_run(run: str) -> bool:
    """Whether a run found by :data:`_PHONE_IN_TEXT` is a phone number (a bracket around a
    plain number makes it none)."""
    from segflow.exports._pii_content import is_phone_like

    run = run.replace(_NUL_STAND_IN, "").strip()
    return is_phone_like(run) and is_phone_like(run.strip("()"))


def has_personal_text(text: str | None) -> bool:
    """Whether ``text`` holds an e-mail address or a phone number by :func:`mask_personal_text`'s
    rule (what it would mask): ``'"Ann" <ann@example.com>'`` and ``'tel:+447700900123'`` do,
    ``'C000123'``, ``'10002345'`` and ``'ORD-2024-000123'`` do not."""
    if not text:
        return False
    text = text.replace(NUL_MARK, _NUL_STAND_IN)
    if _EMAIL_IN_TEXT.search(text):
        return True
    return any(_is_phone_run(m.group(0)) for m in _PHONE_IN_TEXT.finditer(text))
