"""Tests for the type code tables and code/label normalisation."""

from __future__ import annotations

import pytest

from service.meeting_import.types import (
    AA_TYPES,
    DHARMA_TYPES,
    FELLOWSHIP_TABLES,
    NA_TYPES,
    labels_for,
    normalize_codes,
    normalize_fellowship,
)


def test_aa_labels() -> None:
    assert labels_for(["O", "C", "BE", "12X12", "11", "TC", "ONL", "S"], "aa") == (
        "Open",
        "Closed",
        "Newcomer",
        "12 Steps & 12 Traditions",
        "11th Step Meditation",
        "Location Temporarily Closed",
        "Online Meeting",
        "Spanish",
    )


def test_na_labels_differ_from_aa() -> None:
    assert labels_for(["BT", "JFT", "IW", "LC", "BEG", "SPK", "WC"], "na") == (
        "Basic Text",
        "Just for Today",
        "It Works: How and Why",
        "Living Clean",
        "Beginner/Newcomer",
        "Speaker",
        "Wheelchair Accessible",
    )
    assert labels_for(["SP"], "aa") == ("Speaker",)
    assert labels_for(["SP"], "na") == ("SP",)  # not an NA code


def test_dharma_labels() -> None:
    assert labels_for(["MED", "INQ", "BOOK"], "rd") == ("Meditation", "Inquiry", "Book Study")
    assert labels_for(["INQ"], "refuge recovery") == ("Inquiry",)


def test_unknown_codes_label_as_themselves() -> None:
    assert labels_for(["ZZZ", "O"], "aa") == ("ZZZ", "Open")


def test_labels_for_is_case_insensitive_on_codes() -> None:
    assert labels_for(["12x12", "o"], "aa") == ("12 Steps & 12 Traditions", "Open")


def test_tables_are_uppercase_and_non_empty() -> None:
    for table in (AA_TYPES, NA_TYPES, DHARMA_TYPES):
        assert table
        assert all(code == code.upper() and label for code, label in table.items())
    assert set(FELLOWSHIP_TABLES) == {"aa", "na", "rd"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["O", "D"], ("O", "D")),
        ("O, D ,SP", ("O", "D", "SP")),
        ([11, "12x12"], ("11", "12X12")),
        (11, ("11",)),
        (11.0, ("11",)),
        (["open", "Big Book", "wheelchair accessible"], ("O", "B", "X")),
        (["O", "o", "Open"], ("O",)),
        ([True, None, {"x": 1}, ["O"], 1.5, float("nan")], ()),
        ("", ()),
        (None, ()),
        (["x" * 65], ()),
        (["new\u202ecode"], ("NEWCODE",)),
    ],
)
def test_normalize_codes(raw: object, expected: tuple[str, ...]) -> None:
    assert normalize_codes(raw, "aa") == expected


def test_normalize_codes_uses_the_fellowship_label_index() -> None:
    assert normalize_codes("Basic Text, Just for Today", "na") == ("BT", "JFT")
    assert normalize_codes("Basic Text", "aa") == ("BASIC TEXT",)


def test_normalize_codes_caps_the_count() -> None:
    assert len(normalize_codes([f"C{i}" for i in range(500)], "aa")) == 100


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("aa", "aa"),
        ("AA", "aa"),
        ("na", "na"),
        ("Recovery Dharma", "rd"),
        ("refuge-recovery", "rd"),
    ],
)
def test_fellowship_aliases(name: str, expected: str) -> None:
    assert normalize_fellowship(name) == expected


def test_unknown_fellowship_raises() -> None:
    with pytest.raises(ValueError, match="unknown fellowship 'ca'"):
        labels_for(["O"], "ca")
