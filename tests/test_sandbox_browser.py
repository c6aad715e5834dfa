"""The sandbox opens its console in a browser when there is one to open, never one
that would take over the terminal, and quietly nothing when there is none."""

from __future__ import annotations

import threading
import webbrowser

import pytest

from bridge.sandbox import browser

URL = "http://127.0.0.1:8000/ui"


class Recording(webbrowser.BaseBrowser):
    """A graphical browser that remembers what it was asked to open."""

    def __init__(self, name: str = "recording") -> None:
        super().__init__(name)
        self.opened: list[tuple[str, int]] = []
        self.done = threading.Event()

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        self.opened.append((url, new))
        self.done.set()
        return True


class TerminalBrowser(webbrowser.GenericBrowser):
    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        raise AssertionError(f"{self.name} would take over the sandbox's terminal")


class WontStart(webbrowser.BackgroundBrowser):
    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        raise FileNotFoundError(self.name)


def test_a_browser_opens_the_console_in_a_new_tab(monkeypatch: pytest.MonkeyPatch) -> None:
    found = Recording()
    monkeypatch.setattr(webbrowser, "get", lambda using=None: found)
    assert browser.open_in_browser(URL) is True
    assert found.opened == [(URL, 2)]


def test_open_console_does_not_wait_for_the_browser(monkeypatch: pytest.MonkeyPatch) -> None:
    found = Recording()
    monkeypatch.setattr(webbrowser, "get", lambda using=None: found)
    browser.open_console(URL)
    assert found.done.wait(5)
    assert found.opened == [(URL, 2)]


def _no_browser(using: str | None = None) -> webbrowser.BaseBrowser:
    raise webbrowser.Error("could not locate runnable browser")


@pytest.mark.parametrize(
    "found",
    [
        pytest.param(None, id="none: headless"),
        pytest.param(TerminalBrowser("lynx"), id="lynx"),
        pytest.param(TerminalBrowser("/usr/bin/w3m"), id="w3m"),
        pytest.param(TerminalBrowser("www-browser"), id="www-browser"),
        pytest.param(webbrowser.Elinks("elinks"), id="elinks"),
        pytest.param(WontStart("xdg-open"), id="fails to start"),
    ],
)
def test_nothing_opens_without_a_graphical_browser(
    found: webbrowser.BaseBrowser | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        webbrowser, "get", _no_browser if found is None else lambda using=None: found
    )
    if isinstance(found, webbrowser.Elinks):
        monkeypatch.setattr(found, "open", TerminalBrowser("elinks").open)
    assert browser.open_in_browser(URL) is False


@pytest.mark.parametrize(
    ("found", "in_terminal"),
    [
        (webbrowser.BackgroundBrowser("xdg-open"), False),
        (webbrowser.BackgroundBrowser("x-www-browser"), False),
        (webbrowser.Mozilla("firefox"), False),
        (webbrowser.Chrome("google-chrome"), False),
        (webbrowser.GenericBrowser("wslview"), False),  # $BROWSER, say on WSL
        (webbrowser.GenericBrowser("links"), True),
        (webbrowser.Elinks("elinks"), True),
    ],
)
def test_which_browsers_run_in_the_terminal(
    found: webbrowser.BaseBrowser, in_terminal: bool
) -> None:
    assert browser.in_terminal(found) is in_terminal
