"""Names and keys: what the store's validators accept, and that a trailing newline is not."""

from __future__ import annotations

import pytest

from triptych.errors import InvalidInput
from triptych.store import base


@pytest.mark.parametrize("bad", ["abc\n", "abc\r\n", "\nabc", ""])
def test_a_name_with_a_newline_is_refused_everywhere(bad: str) -> None:
    with pytest.raises(InvalidInput):
        base.validate_key("metric", bad)
    with pytest.raises(InvalidInput):
        base.validate_dataset_name(bad)
    with pytest.raises(InvalidInput):
        base.validate_alias(bad)


def test_ordinary_names_are_accepted() -> None:
    assert base.validate_key("metric", "val loss/epoch:1") == "val loss/epoch:1"
    base.validate_dataset_name("diabetes.v2-raw")
    base.validate_alias("champion")
