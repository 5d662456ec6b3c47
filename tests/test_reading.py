"""The reader's path: each Learn page shows a result before much code, in blocks
short enough to take in, and every page's code can be copied as it is shown.

`pytest -n 0 -s tests/test_reading.py -k table` prints the reading table."""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from reading import (
    MAX_BLOCK_LINES,
    MAX_CODE_BEFORE_RESULT,
    ROOT,
    WIDTH,
    blocks_and_prose,
    learn_pages,
    measure,
    names_in,
    page_text,
    private_names_of_the_library,
    table,
)

ALL_PAGES = sorted(p for p in (ROOT / "docs").rglob("*.md") if "overrides" not in p.parts)
LEARN_PAGES = learn_pages()


def page_id(page: Path) -> str:
    return page.relative_to(ROOT / "docs").as_posix()


def shown_blocks(page: Path):
    return [b for b in blocks_and_prose(page_text(page))[0] if b.is_visible]


def test_reading_table_of_the_learn_pages(capsys):
    readings = [measure(page) for page in LEARN_PAGES]
    with capsys.disabled():
        print("\n" + table(readings))
    assert [r.page for r in readings][:3] == ["supervised-learning.md", "self-supervised-learning.md", "pre-training.md"]
    assert all(r.prose_words > 100 for r in readings), readings


@pytest.mark.parametrize("page", LEARN_PAGES, ids=page_id)
def test_no_block_on_a_learn_page_is_longer_than_a_reader_takes_in(page):
    long = [(len(b.shown_lines), b.shown_lines[0]) for b in shown_blocks(page) if len(b.shown_lines) > MAX_BLOCK_LINES]
    assert not long, f"blocks over {MAX_BLOCK_LINES} lines (length, first line): {long}"


@pytest.mark.parametrize("page", LEARN_PAGES, ids=page_id)
def test_a_learn_page_shows_a_result_before_much_code(page):
    reading = measure(page)
    if reading.code_before_first_result is not None:
        assert reading.code_before_first_result <= MAX_CODE_BEFORE_RESULT, reading


@pytest.mark.parametrize("page", ALL_PAGES, ids=page_id)
def test_visible_code_fits_the_code_column(page):
    wide = [line for b in shown_blocks(page) for line in b.shown_lines if len(line) > WIDTH]
    assert not wide, f"{len(wide)} code lines wider than {WIDTH} characters, e.g. {wide[:3]}"


@pytest.mark.parametrize("page", ALL_PAGES, ids=page_id)
def test_visible_code_uses_only_public_names_of_the_library(page):
    private = private_names_of_the_library()
    used = sorted({name for b in shown_blocks(page) if b.language in ("python", "py", "python3", "pycon")
                   for name in names_in("\n".join(b.shown_lines)) & private})
    assert not used, f"private library names in code a reader copies: {used}"


@pytest.mark.parametrize("page", ALL_PAGES, ids=page_id)
def test_code_that_formats_figures_and_captions_is_hidden(page):
    shown = [b.shown_lines[0] for b in shown_blocks(page) if re.search(r"\bto_html\(|\bcaption=", "\n".join(b.shown_lines))]
    assert not shown, f"visible blocks that format a figure or caption (first lines): {shown}"


def test_the_private_name_check_sees_a_private_call():
    assert "_mask_tokens" in private_names_of_the_library()
    assert "_mask_tokens" in names_in("inputs = _mask_tokens(key, tokens, 0.15, 100)  # a _comment")
    assert "_comment" not in names_in("x = 1  # a _comment\ny = '_string'")


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.text: list[str] = []

    def handle_data(self, data):
        self.text.append(data)


def visible_text(html_page: Path) -> str:
    parser = _Text()
    parser.feed(html_page.read_text(encoding="utf-8"))
    return "".join(parser.text)


TEMPORARY_PATH = re.compile(r"(?<![\w.])/tmp/\S+|pytest-of-\w+|/var/folders/\S+")


def test_no_page_shows_a_temporary_folder(built_site):
    found = {}
    for page in sorted(built_site.rglob("*.html")):
        paths = TEMPORARY_PATH.findall(visible_text(page))
        if paths:
            found[page.relative_to(built_site).as_posix()] = paths[:3]
    assert not found, f"temporary paths in the built site: {found}"


class _Tables(HTMLParser):
    """Every table of a page: its rows, as lists of cell texts."""

    def __init__(self):
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.tables[-1][-1].append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def identical_sample_rows(html: str) -> list[tuple[str, str]]:
    """Pairs of sampling temperatures whose rows of the samples table
    ("temperature", "prompt", "three samples") are all the same."""
    parser = _Tables()
    parser.feed(html)
    by_temperature: dict[str, list[tuple[str, str]]] = {}
    for header, *rows in (t for t in parser.tables if t):
        if header == ["temperature", "prompt", "three samples"]:
            for temperature, prompt, samples in rows:
                by_temperature.setdefault(temperature, []).append((prompt, samples))
    sampled = [t for t in by_temperature if float(t) > 0]
    return [(a, b) for a, b in zip(sampled, sampled[1:]) if by_temperature[a] == by_temperature[b]]


SAME_RANDOM_NUMBERS = "Every temperature draws with the same random numbers"


def test_sampled_rows_alike_across_temperatures_are_explained(built_site):
    html = (built_site / "pre-training" / "index.html").read_text(encoding="utf-8")
    assert "three samples" in html
    if identical_sample_rows(html):
        text = re.sub(r"<[^>]+>", "", html)  # glossary tooltips wrap terms of the sentence in <abbr>
        assert SAME_RANDOM_NUMBERS in text, f"rows at {identical_sample_rows(html)} are the same, and the page does not say why"


def test_the_sample_check_finds_identical_rows():
    rows = "".join(f"<tr><td>{t}</td><td>p</td><td>{s}</td></tr>" for t, s in [("0", "a"), ("0.7", "b"), ("1", "b"), ("2", "c")])
    html = f"<table><tr><th>temperature</th><th>prompt</th><th>three samples</th></tr>{rows}</table>"
    assert identical_sample_rows(html) == [("0.7", "1")]
    assert identical_sample_rows(html.replace("<td>1</td><td>p</td><td>b", "<td>1</td><td>p</td><td>d")) == []
