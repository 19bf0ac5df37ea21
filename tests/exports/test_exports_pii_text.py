"""E-mail addresses and phone numbers quoted inside free text (quarantine reasons) are
masked as the exports' ``mask`` policy masks such columns; the rest of the text is kept."""

from __future__ import annotations

import pytest

from segflow.exports import mask_email, mask_phone
from segflow.exports._pii_text import mask_personal_text


@pytest.mark.parametrize(("text", "want"), [
    ("'jane.doe@example.com' is not a date", "'j***@example.com' is not a date"),
    ("customer '+44 20 7946 0123' is not in customers", "customer '***23' is not in customers"),
    ("'07700900123' and 'a@b.org'", "'***23' and 'a***@b.org'"),
    # not personal: dates, timestamps, amounts, plain ids, row lists, codes
    ("'2024-13-01' is not a date", None),
    ("'2024-06-01 23:30:00Z' does not match %Y-%m-%d", None),
    ("amount 1234567.89 or '0123456.78' is too large", None),
    ("customer id 'C003' (10002345) is unknown; rows 2, 4, 12", None),
    ("sku v2024-0101-0123", None),
    # a NUL inside an id is shown as <NUL> (invalid_id): the value around it is still masked
    ("identifier 'ann<NUL>@example.com' holds a NUL byte inside it (character 4)",
     "identifier 'a***@example.com' holds a NUL byte inside it (character 4)"),
    ("identifier '+44 7700<NUL>900123' holds", "identifier '***23' holds"),
    ("identifier 'C0<NUL>00' holds a NUL byte", None),
    ("", None),
])
def test_addresses_and_numbers_in_text_are_masked_and_nothing_else(text, want):
    assert mask_personal_text(text) == (text if want is None else want)


def test_the_text_masks_are_the_columns_masks():
    assert mask_personal_text("x jane.doe@example.com y") == f"x {mask_email('jane.doe@example.com')} y"
    assert mask_personal_text("x 020-7946-0123 y") == f"x {mask_phone('020-7946-0123')} y"
    assert mask_personal_text(None) is None
