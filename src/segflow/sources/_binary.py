"""Text or binary: what the first bytes of a file given as delimited text say it is.

One rule for ``ingest``, ``segflow sources check`` and the file commands (``clv fit -t``,
``segment cluster --input``, ...), so a file one of them reads is not refused by another:

- **UTF-16 without a byte-order mark** (a spreadsheet's "Unicode text" saved without one):
  ASCII characters are one byte and one NUL, so the NULs fill the odd positions
  (little-endian) or the even ones (big-endian);
- **a known binary format** by its first bytes (gzip, zip or ``.xlsx``, Parquet, old
  ``.xls``, PDF, SQLite, PNG);
- **other binary data**: control bytes (NUL and the C0 controls other than tab, line feed,
  vertical tab, form feed, carriage return and escape) make more than 1% of the bytes
  looked at, and more than 4 of them (a binary file of any kind is full of them);
- otherwise **text**, also with a few stray NUL bytes (a value ``C03<NUL>`` from a
  fixed-width export or a database dump): they are read as characters, and trimmed from
  the ends of values as the other control characters are (docs/data.md, *Trimming*).
"""

from __future__ import annotations

#: The first bytes of binary files given as text, and what they are.
MAGIC = {b"\x1f\x8b": "a gzip archive", b"PK\x03\x04": "a zip archive (an .xlsx workbook?)",
         b"PAR1": "a Parquet file", b"\xd0\xcf\x11\xe0": "an old Excel (.xls) workbook",
         b"%PDF": "a PDF document", b"SQLite format 3": "an SQLite database",
         b"\x89PNG": "a PNG image"}

#: Control bytes that plain text does not hold (tab, LF, VT, FF, CR and ESC excepted).
_CONTROL = bytes([*range(0, 9), *range(14, 27), *range(28, 32)])
#: Bytes looked at.
SNIFF_BYTES = 65536


def utf16_order(head: bytes) -> str | None:
    """``'utf-16-le'`` or ``'utf-16-be'`` when ``head`` (a file's first bytes, without a
    byte-order mark) is UTF-16 text by its NUL bytes: most of one position's bytes (odd for
    little-endian ASCII, even for big-endian) are NUL and few of the other's; else None."""
    head = head[:SNIFF_BYTES]
    half = len(head) // 2
    if half < 2:
        return None
    odd, even = head[1::2].count(0), head[0::2].count(0)
    if odd > 0.4 * half and even < 0.1 * half:
        return "utf-16-le"
    if even > 0.4 * half and odd < 0.1 * half:
        return "utf-16-be"
    return None


def binary_kind(head: bytes) -> str | None:
    """What the binary file starting with ``head`` is (``'a Parquet file'``, ``'binary
    data'``, ...), or None when it is text (stray NUL bytes included; see the module).
    UTF-16 is judged apart (:func:`utf16_order`)."""
    kind = next((what for magic, what in MAGIC.items() if head.startswith(magic)), None)
    if kind is not None:
        return kind
    head = head[:SNIFF_BYTES]
    control = sum(head.count(b) for b in _CONTROL)
    return "binary data" if control > 4 and control * 100 > len(head) else None
