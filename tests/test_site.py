"""The strict site build passes and the built site is self-contained."""

import re
from html.parser import HTMLParser
from pathlib import Path

# `built_site` (one strict build per session) lives in tests/conftest.py.


class _Assets(HTMLParser):
    """Every URL the browser would fetch: scripts, styles, icons, images, frames."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.images: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "audio", "video") and attrs.get("src"):
            self.urls.append(attrs["src"])
        if tag == "link" and attrs.get("href") and attrs.get("rel") not in ("canonical", "alternate"):
            self.urls.append(attrs["href"])
        if tag == "img":
            self.images.append(attrs)


def _pages(site: Path):
    return sorted(site.rglob("*.html"))


def _assets(page: Path) -> _Assets:
    parser = _Assets()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def test_strict_build_passes(built_site):
    assert (built_site / "index.html").exists()
    assert (built_site / "supervised-learning" / "index.html").exists()


def test_no_page_loads_anything_from_another_host(built_site):
    for page in _pages(built_site):
        external = [u for u in _assets(page).urls if re.match(r"^(https?:)?//", u)]
        assert not external, f"{page.relative_to(built_site)} loads {external}"


def test_no_google_fonts_and_no_mermaid(built_site):
    for page in _pages(built_site):
        text = page.read_text(encoding="utf-8")
        assert "fonts.googleapis" not in text and "fonts.gstatic" not in text, page
        assert 'class="mermaid"' not in text, f"{page}: mermaid loads its script from a CDN"


def test_every_image_has_alt_text(built_site):
    for page in _pages(built_site):
        for image in _assets(page).images:
            assert image.get("alt"), f"{page.relative_to(built_site)}: image without alt text"


def test_build_shows_computed_results(built_site):
    html = (built_site / "supervised-learning" / "index.html").read_text(encoding="utf-8")
    assert "accuracy on held-out messages:" in html  # the snippet's output, from the build's run
    assert "data:image/svg+xml;base64," in html  # the learning-curve figure
