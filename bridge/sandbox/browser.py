"""Opening the console in the person's browser when the sandbox starts (unless
`--no-browser`). Quietly nothing when there is no browser to open: a server, CI, a
container; the banner's first lines give the console's URL anyway."""

from __future__ import annotations

import threading
import webbrowser
from pathlib import PurePath

# Browsers that run in the terminal they are started from: they would take over the
# sandbox's own output (and wait there until closed).
TERMINAL_BROWSERS = frozenset({"www-browser", "links", "elinks", "lynx", "w3m"})


def open_console(url: str) -> None:
    """Open `url` in the background: a browser may take a while to start (or, told
    through $BROWSER, until it is closed), and the sandbox goes on meanwhile."""
    threading.Thread(target=open_in_browser, args=(url,), name="open-console", daemon=True).start()


def open_in_browser(url: str) -> bool:
    """Open `url` in a new tab of the default browser; False when there is none to open."""
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return False
    if in_terminal(browser):
        return False
    try:
        return browser.open(url, new=2)
    except OSError:  # it would not start: the banner has the URL
        return False


def in_terminal(browser: webbrowser.BaseBrowser) -> bool:
    if isinstance(browser, webbrowser.Elinks):
        return True
    # A BackgroundBrowser (xdg-open, x-www-browser, ...) is a GenericBrowser too.
    if isinstance(browser, webbrowser.BackgroundBrowser):
        return False
    named = PurePath(browser.name).name in TERMINAL_BROWSERS
    return isinstance(browser, webbrowser.GenericBrowser) and named
