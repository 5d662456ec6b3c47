"""The browser's stored visit is read back only for the very site, browser and
tests it was made with (tests/page_visits.py)."""

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest

from learnjax.storage.cache import PAGE_VISITS, list_entries, prune
from page_visits import read_visit, store_visit, visit_key


@dataclass
class Report:
    page: str
    screenshot: Path
    problems: list[str]


@pytest.fixture
def made(tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNJAX_CACHE", str(tmp_path / "cache"))
    site = tmp_path / "site"
    (site / "guide").mkdir(parents=True)
    (site / "index.html").write_text("<h1>Home</h1>")
    (site / "guide" / "index.html").write_text("<h1>Guide</h1>")
    browser = tmp_path / "chromium"
    browser.write_text("#!/bin/sh\necho 'Chromium 120.0'\n")
    browser.chmod(browser.stat().st_mode | stat.S_IXUSR)
    test_file = tmp_path / "test_pages.py"
    test_file.write_text("def test_pages(): pass\n")
    shots = tmp_path / "shots"
    shots.mkdir()
    return site, browser, test_file, shots


def _key(made) -> str:
    site, browser, test_file, _ = made
    return visit_key(site, browser, [test_file])


def test_the_key_follows_every_byte_of_the_site_the_browser_and_the_tests(made):
    site, browser, test_file, _ = made
    first = _key(made)
    assert _key(made) == first  # the same inputs, the same key
    changes = [
        lambda: (site / "guide" / "index.html").write_text("<h1>Guide.</h1>"),
        lambda: (site / "search.json").write_text("{}"),  # a new file
        lambda: (site / "search.json").rename(site / "index.json"),  # a renamed one
        lambda: browser.write_text("#!/bin/sh\necho 'Chromium 121.0'\n"),
        lambda: test_file.write_text("def test_pages(): assert True\n"),
    ]
    seen = {first}
    for change in changes:
        change()
        key = _key(made)
        assert key not in seen
        seen.add(key)


def test_a_stored_visit_is_read_back_with_its_screenshots(made, tmp_path):
    *_, shots = made
    key = _key(made)
    assert read_visit(key, Report, shots) is None
    (tmp_path / "home.png").write_bytes(b"PNG home")
    store_visit(key, [Report("(home)", tmp_path / "home.png", ["a console error"])])
    (tmp_path / "home.png").unlink()
    assert read_visit(key, Report, shots) == [Report("(home)", shots / "home.png", ["a console error"])]
    assert (shots / "home.png").read_bytes() == b"PNG home"
    assert read_visit("another", Report, shots) is None


def test_a_new_visit_replaces_the_old_and_shows_in_the_cache_until_pruned(made, tmp_path):
    site, *_, shots = made
    (tmp_path / "home.png").write_bytes(b"PNG")
    old = _key(made)
    store_visit(old, [Report("(home)", tmp_path / "home.png", [])])
    (site / "index.html").write_text("<h1>Home, again</h1>")
    new = _key(made)
    store_visit(new, [Report("(home)", tmp_path / "home.png", [])])
    folder = Path(os.environ["LEARNJAX_CACHE"]) / PAGE_VISITS
    assert [p.name for p in folder.iterdir()] == [new]
    assert read_visit(old, Report, shots) is None
    assert [(e.name, e.kind) for e in list_entries()] == [(PAGE_VISITS, "page visits")]
    prune()
    assert read_visit(new, Report, shots) is not None  # a prune keeps it
    prune(everything=True)
    assert not folder.exists()


def test_a_visit_that_cannot_be_read_whole_is_visited_again(made, tmp_path):
    *_, shots = made
    key = _key(made)
    (tmp_path / "home.png").write_bytes(b"PNG")
    store_visit(key, [Report("(home)", tmp_path / "home.png", [])])
    (Path(os.environ["LEARNJAX_CACHE"]) / PAGE_VISITS / key / "home.png").unlink()
    assert read_visit(key, Report, shots) is None
