"""The segment palette: the first twelve colours (an RFM scheme has 12 segments, all on one
forecast chart and one Sankey) are pairwise distinct: CIE76 colour difference of at least 25
(about the smallest difference inside Tableau 10, the palette's first ten), computed here
from the sRGB definition (IEC 61966-2-1) and CIE L*a*b* with the D65 white."""

from __future__ import annotations

import itertools
import math

import pytest

from segflow.viz._core import PALETTE


def _lab(hex_colour: str) -> tuple[float, float, float]:
    h = hex_colour.lstrip("#")
    srgb = [int(h[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in srgb)
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > (6 / 29) ** 3 else t / (3 * (6 / 29) ** 2) + 4 / 29

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def test_lab_of_known_colours():
    # published L*a*b* of sRGB white and red (4-digit matrix: 0.05 tolerance)
    assert _lab("#FFFFFF") == pytest.approx((100.0, 0.0, 0.0), abs=0.05)
    assert _lab("#FF0000") == pytest.approx((53.24, 80.09, 67.20), abs=0.05)


def test_the_first_twelve_colours_are_pairwise_distinct():
    first = PALETTE[:12]
    assert len(set(first)) == 12
    closest = min(math.dist(_lab(a), _lab(b)) for a, b in itertools.combinations(first, 2))
    assert closest >= 25, closest  # the earlier navy next to Tableau blue: 17.5
