"""The built site, served over HTTP and used in a real headless Chromium.

The static checks in test_site.py read the HTML; these load each page the way
a reader does, so they also catch what only a browser sees: scripts that throw,
assets that fail to load, a search index that does not answer, buttons that do
nothing. One browser serves the whole session; every page is visited once and
its findings are shared by the checks below.

Chromium comes from the system's packages (Debian: `apt-get install chromium`)
and is driven by Playwright's Python package; nothing here downloads a browser.
Without Chromium the checks are skipped, unless LEARNJAX_REQUIRE_BROWSER=1 (as
in CI), which makes a missing browser a failure; in CI (LEARNJAX_CI=1) any skip
here fails (`docs_harness.fail_skips_in_ci`).
"""

from __future__ import annotations

import ast
import http.server
import io
import json
import os
import re
import shutil
import tempfile
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from page_visits import read_visit, store_visit, visit_key

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REQUIRE_BROWSER = os.environ.get("LEARNJAX_REQUIRE_BROWSER") == "1"
INSTALL_HINT = (
    "install Chromium from your system's packages (Debian/Ubuntu: `sudo apt-get install chromium`, "
    "which provides /usr/bin/chromium) and Playwright with `pip install -e '.[test]'`; "
    "never `playwright install`"
)
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
NARROW_SHOTS = ("", "supervised-learning/")  # pages also shot at phone width
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
LOCAL_SCHEMES = {"data", "blob", "about"}  # never leave the browser
SECTIONS = {
    "Supervised Learning": "supervised-learning/",
    "Self-Supervised Learning": "self-supervised-learning/",
    "Pre-training": "pre-training/",
    "Fine-tuning": "fine-tuning/",
    "Summary": "summary/",
}
TIMEOUT_MS = 10_000
# Pages whose audits run at once: each audit keeps one core busy (axe's colour contrast, mostly),
# and on two cores a third in flight still shortened the visit (90 s one at a time, 72 s three).
AUDITS_AT_ONCE = 3
AUDIT_TIMEOUT_MS = 120_000  # two audits of the longest page take about 4 s alone; three at once, beside a busy worker, more


def _missing_browser(reason: str):
    message = f"browser checks need {reason}: {INSTALL_HINT}"
    if REQUIRE_BROWSER:
        pytest.fail(f"LEARNJAX_REQUIRE_BROWSER=1 and {message}", pytrace=False)
    pytest.skip(message)


def _is_external(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme not in LOCAL_SCHEMES and parts.hostname not in LOCAL_HOSTS


def _base_path(site: Path) -> str:
    """The path the site lives under (site_url's, e.g. /learnjax/), taken from the
    sitemap: Material's 404 page links its assets absolutely under it."""
    sitemap = site / "sitemap.xml"
    if sitemap.exists():
        locs = [el.text for el in ET.parse(sitemap).iter() if el.tag.endswith("loc") and el.text]
        if locs:
            path = urlsplit(locs[0].strip()).path
            return path if path.endswith("/") else path + "/"
    return "/"


def _site_pages(site: Path) -> list[str]:
    """Every page, as a path relative to the site's base ("" for home), from
    the sitemap and from the index.html files on disk."""
    base = _base_path(site)
    pages = {p.parent.relative_to(site).as_posix() + "/" for p in site.rglob("index.html")}
    sitemap = site / "sitemap.xml"
    if sitemap.exists():
        for el in ET.parse(sitemap).iter():
            if el.tag.endswith("loc") and el.text:
                path = urlsplit(el.text.strip()).path
                if path.startswith(base):
                    pages.add(path[len(base):])
    return sorted({"" if p in ("./", "/") else p for p in pages})


def _notebook_pages(site: Path, pages: list[str]) -> list[str]:
    """Pages built by mkdocs-jupyter: those whose source is a notebook under
    docs/notebooks/, and any page carrying its notebook markup."""
    found = {f"notebooks/{src.stem}/" for ext in ("py", "ipynb") for src in (ROOT / "docs" / "notebooks").glob(f"*.{ext}")}
    for page in pages:
        html = site / page / "index.html"
        if html.exists() and "jupyter-wrapper" in html.read_text(encoding="utf-8"):
            found.add(page)
    return sorted(found)


def _shot_name(page: str, suffix: str = "") -> str:
    return (page.strip("/").replace("/", "_") or "index") + suffix + ".png"


# ---------------------------------------------------------------- serving


class _SiteHandler(http.server.SimpleHTTPRequestHandler):
    """Serves site/ under its base path, as the published site is, and the
    site's own 404 page, with status 404, for anything that is not there."""

    site: Path
    base: str

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=str(self.site), **kwargs)

    def translate_path(self, path):
        path = urlsplit(path).path
        return super().translate_path("/" + path[len(self.base):]) if path.startswith(self.base) else ""

    def send_head(self):
        path = self.translate_path(self.path)
        if path and (os.path.isfile(path) or os.path.isfile(os.path.join(path, "index.html"))):
            return super().send_head()
        body = (self.site / "404.html").read_bytes()
        self.send_response(404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)

    def log_message(self, format, *args):  # keep test output clean
        pass


@pytest.fixture(scope="session")
def site_url(built_site):
    base = _base_path(built_site)
    handler = type("Handler", (_SiteHandler,), {"site": built_site, "base": base})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}{base}"
    server.shutdown()
    server.server_close()


# ---------------------------------------------------------------- browser


@dataclass
class Session:
    context: object = field(repr=False)
    requests: list[str] = field(default_factory=list, repr=False)  # every URL any page asked for
    blocked: list[str] = field(default_factory=list)


@pytest.fixture(scope="session", autouse=True)
def _browser_installed():
    """Skips (or fails) before anything slow, such as the site build, starts."""
    if not CHROMIUM.exists():
        _missing_browser(f"Chromium at {CHROMIUM}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing_browser("the playwright Python package")
    try:
        import axe_playwright_python  # noqa: F401  (the axe-core engine, for the accessibility audit)
    except ImportError:
        _missing_browser("the axe-playwright-python package")


@pytest.fixture(scope="session")
def browser():
    """One Chromium for the whole session, with a fresh empty profile."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="learnjax-chromium-")
    playwright = sync_playwright().start()
    try:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport=DESKTOP,
            accept_downloads=True,
            color_scheme="light",
        )
    except Exception as error:
        playwright.stop()
        shutil.rmtree(profile, ignore_errors=True)
        _missing_browser(f"a Chromium that starts ({str(error).splitlines()[0]})")
    context.set_default_timeout(TIMEOUT_MS)
    context.grant_permissions(["clipboard-read", "clipboard-write"])  # to read back what a copy button copied
    session = Session(context)
    context.on("request", lambda request: session.requests.append(request.url))

    def block(route):
        # Nothing may leave the machine: a stray request fails here, fast and visibly.
        session.blocked.append(route.request.url)
        route.abort()

    context.route(_is_external, block)
    for page in context.pages:  # the persistent context opens with a blank tab
        page.close()
    yield session
    context.close()
    playwright.stop()
    shutil.rmtree(profile, ignore_errors=True)


@dataclass
class Visit:
    """What one page did while it loaded."""

    page: object
    status: int | None = None
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    @property
    def external_requests(self) -> list[str]:
        return [url for url in self.requests if _is_external(url)]


def _open(browser: Session, url: str, viewport: dict = DESKTOP, wait_until: str = "load") -> Visit:
    page = browser.context.new_page()
    page.set_viewport_size(viewport)
    visit = Visit(page)
    page.on("console", lambda msg: msg.type == "error" and visit.console_errors.append(f"{msg.text} ({msg.location.get('url', '')})"))
    page.on("pageerror", lambda error: visit.console_errors.append(f"uncaught: {error}"))
    page.on("request", lambda request: visit.requests.append(request.url))
    page.on("requestfailed", lambda request: visit.failed_requests.append(f"{request.url}: {request.failure}"))
    page.on("response", lambda response: response.status >= 400 and visit.failed_requests.append(f"{response.url}: HTTP {response.status}"))
    response = page.goto(url, wait_until=wait_until)
    visit.status = response.status if response else None
    return visit


def _short(url: str) -> str:
    return url if len(url) < 120 else url[:100] + "..."


# Runs in the page: makes lazy images load, then reports every image and figure.
_IMAGES_JS = """async () => {
  const images = Array.from(document.images);
  for (const img of images) img.loading = "eager";
  await Promise.all(images.map(img => img.decode().catch(() => null)));
  const report = images.map(img => ({
    src: img.currentSrc || img.src, alt: (img.getAttribute("alt") || "").trim(),
    width: img.naturalWidth, complete: img.complete,
  }));
  const figures = Array.from(document.querySelectorAll("figure")).map(fig => {
    const svg = fig.querySelector("svg");
    return {
      images: fig.querySelectorAll("img, picture").length,
      svgName: svg ? (svg.getAttribute("aria-label") || (svg.querySelector("title") || {}).textContent || "").trim() : null,
      html: fig.outerHTML.slice(0, 120),
    };
  });
  return {images: report, figures};
}"""

_HEADINGS_JS = """() => Array.from(document.querySelectorAll("h1, h2, h3, h4, h5, h6"))
  .map(h => ({level: Number(h.tagName[1]), text: h.textContent.trim().slice(0, 60)}))"""


@dataclass
class PageReport:
    page: str
    status: int | None
    console_errors: list[str]
    failed_requests: list[str]
    external_requests: list[str]
    headings: list[dict]
    images: dict
    screenshot: Path
    copy: list[dict]
    accessibility: list[dict]
    widgets: list[dict]  # each live widget on the page: its kind, and whether it was built and had computed when audited


# The code blocks on a page and the copy buttons that belong to them, with
# how to find, from a button, the code a reader sees. Markdown pages use
# Material's button (`md-code__button` from 9.7, `md-clipboard` before);
# notebook pages use mkdocs-jupyter's <clipboard-copy> in each input cell.
COPY_KINDS = {
    "code block": (
        "article pre:has(> code)",
        "article :is(button.md-code__button[data-md-type='copy'], button.md-clipboard)",
        "b => document.querySelector(b.getAttribute('data-clipboard-target')).innerText",
    ),
    "notebook cell": (
        "article .jp-CodeCell .jp-InputArea-editor",
        "article clipboard-copy",
        "b => b.closest('.jp-InputArea-editor').querySelector('pre').innerText",
    ),
}

# The copy may land a moment after the click: poll for up to two seconds.
_READ_CLIPBOARD_JS = """async () => {
  for (let i = 0; i < 40; i++) {
    const text = await navigator.clipboard.readText();
    if (text) return text;
    await new Promise(resolve => setTimeout(resolve, 50));
  }
  return "";
}"""


def _try_copy_buttons(page) -> list[dict]:
    """For each kind of code on the page: counts blocks and copy buttons, clicks
    the first button and reads the clipboard back."""
    results = []
    for kind, (blocks, buttons, shown_code) in COPY_KINDS.items():
        result = {"kind": kind, "blocks": page.locator(blocks).count(), "buttons": page.locator(buttons).count()}
        results.append(result)
        # Blocks folded away (a closed <details>, another tab) cannot be clicked by a reader.
        shown = page.locator(buttons).filter(visible=True)
        if not shown.count():
            continue
        button = shown.first
        result["expected"] = button.evaluate(shown_code)
        page.evaluate("navigator.clipboard.writeText('')")
        button.scroll_into_view_if_needed()
        button.hover()  # the button appears on hover
        button.click()
        result["copied"] = page.evaluate(_READ_CLIPBOARD_JS)
    return results


# The impacts that fail the audit: axe-core's "serious" and "critical" (WCAG 2.1 AA failures
# that block or seriously hinder a reader); "minor" and "moderate" ones are reported, not failed.
FAILING_IMPACTS = ("serious", "critical")


# Runs in the page, without blocking the test: axe-core's audit as loaded
# (light), then in the dark palette, then back to light. The palette's input is
# clicked from a script, not its label by the mouse: the label's tooltip, half
# faded in, would be measured too. The result lands in window.__learnjaxAudit.
_START_AUDIT_JS = """() => {
  const audit = window.__learnjaxAudit = {done: false, error: null, violations: []};
  (async () => {
    for (const [scheme, palette] of [["light", "default"], ["dark", "slate"], [null, "default"]]) {
      document.querySelector(`form[data-md-component='palette'] input[data-md-color-scheme='${palette}']`).click();
      while (document.body.getAttribute("data-md-color-scheme") !== palette) await new Promise(r => setTimeout(r, 10));
      if (scheme) for (const v of (await axe.run(document, {resultTypes: ["violations"]})).violations) audit.violations.push({...v, scheme});
    }
  })().catch(error => { audit.error = String(error); }).finally(() => { audit.done = true; });
}"""


def _start_audit(page) -> None:
    """Starts axe-core's violations audit of the page, one entry per rule and colour
    scheme (`_START_AUDIT_JS`); `_audit_result` waits for it. Started, the audit runs
    in the page's own renderer while the next page loads."""
    from axe_playwright_python.sync_playwright import Axe

    page.evaluate(Axe().axe_script)
    page.evaluate(_START_AUDIT_JS)


def _audit_result(page) -> list[dict]:
    # Polled by time, not by animation frame: a page behind the one loading may not paint.
    page.wait_for_function("() => window.__learnjaxAudit.done", polling=100, timeout=AUDIT_TIMEOUT_MS)
    audit = page.evaluate("window.__learnjaxAudit")
    assert audit["error"] is None, f"the accessibility audit failed in the page: {audit['error']}"
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"], "scheme": v["scheme"], "elements": len(v["nodes"]),
             "example": " ".join(map(str, v["nodes"][0]["target"])) if v["nodes"] else ""}
            for v in audit["violations"]]


# Runs in the page: each live widget computes once, as a reader's first click
# does, so that the audit also sees what it shows (results, notes, tables).
_RUN_WIDGETS_JS = """() => {
  for (const form of document.querySelectorAll(".learnjax-live form")) form.requestSubmit();
  return Array.from(document.querySelectorAll(".learnjax-live")).map(w => w.dataset.widget);
}"""
_WIDGETS_COMPUTED_JS = """() => Array.from(document.querySelectorAll(".learnjax-live")).every(
  w => w.querySelector(".learnjax-live__results")?.childElementCount > 0)"""
_WIDGETS_JS = """() => Array.from(document.querySelectorAll(".learnjax-live")).map(w => ({
  widget: w.dataset.widget, built: Boolean(w.querySelector("form")),
  computed: (w.querySelector(".learnjax-live__results")?.childElementCount ?? 0) > 0,
}))"""


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """An empty screenshot folder: shots of pages that no longer exist mislead."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    return SCREENSHOTS


@pytest.fixture(scope="session")
def page_reports(request, built_site, screenshots) -> Iterator[list[PageReport]]:
    """Every page's visit: what it logged and requested, its headings, images,
    audit and copy buttons, and a full-page screenshot. Read back when the site,
    the browser and these tests are byte for byte those of a stored visit whose
    session passed (tests/page_visits.py), else made and, if this session's
    tests all pass, stored."""
    key = visit_key(built_site, CHROMIUM, [Path(__file__), Path(__file__).with_name("page_visits.py")])
    reports = read_visit(key, PageReport, screenshots)
    if reports:
        yield reports
        return
    reports = _visit_every_page(built_site, request.getfixturevalue("site_url"), request.getfixturevalue("browser"), screenshots)
    yield reports
    if request.session.testsfailed == 0:
        store_visit(key, reports)


def _visit_every_page(built_site: Path, site_url: str, browser: Session, screenshots: Path) -> list[PageReport]:
    """Each page in turn; a page's accessibility audit runs in its renderer while
    the pages after it load, up to AUDITS_AT_ONCE pages being audited at a time."""
    reports, auditing = [], []
    for page_path in _site_pages(built_site):
        # Idle network, not just "load": the search index and late requests count too.
        visit = _open(browser, site_url + page_path, wait_until="networkidle")
        if visit.page.evaluate(_RUN_WIDGETS_JS):
            # The models run in the page; beside a test worker compiling on the other core, 10 s was too short.
            visit.page.wait_for_function(_WIDGETS_COMPUTED_JS, timeout=30_000)
        widgets = visit.page.evaluate(_WIDGETS_JS)
        images = visit.page.evaluate(_IMAGES_JS)
        shot = screenshots / _shot_name(page_path)
        visit.page.screenshot(path=str(shot), full_page=True)
        headings = visit.page.evaluate(_HEADINGS_JS)
        _start_audit(visit.page)
        auditing.append((page_path, visit, widgets, images, shot, headings))
        while len(auditing) >= AUDITS_AT_ONCE:
            reports.append(_finish_visit(*auditing.pop(0)))
    reports += [_finish_visit(*waiting) for waiting in auditing]
    assert reports, "the built site has no pages"
    return reports


def _finish_visit(page_path: str, visit: Visit, widgets: list[dict], images: dict, shot: Path, headings: list[dict]) -> PageReport:
    accessibility = _audit_result(visit.page)
    visit.page.bring_to_front()  # the clipboard answers the focused page only; a later page has the focus
    copy = _try_copy_buttons(visit.page)  # last: clicking changes the page
    visit.page.close()
    return PageReport(
        page_path or "(home)", visit.status, visit.console_errors, visit.failed_requests,
        visit.external_requests, headings, images, shot, copy, accessibility, widgets,
    )


# ---------------------------------------------------------------- checks


def test_every_page_loads_without_errors(page_reports):
    problems = []
    for r in page_reports:
        if r.status != 200:
            problems.append(f"{r.page}: HTTP {r.status}")
        problems += [f"{r.page}: console error: {e}" for e in r.console_errors]
        problems += [f"{r.page}: failed request: {_short(u)}" for u in r.failed_requests]
    assert not problems, "\n".join(problems)


def test_no_page_requests_another_host(page_reports):
    problems = [f"{r.page}: {_short(u)}" for r in page_reports for u in r.external_requests]
    assert not problems, "pages asked for other hosts:\n" + "\n".join(problems)


def test_headings_are_in_order(page_reports):
    problems = []
    for r in page_reports:
        levels = [h["level"] for h in r.headings]
        if levels.count(1) != 1:
            problems.append(f"{r.page}: {levels.count(1)} h1 headings, expected exactly one")
        if levels and levels[0] != 1:
            problems.append(f"{r.page}: first heading is h{levels[0]} {r.headings[0]['text']!r}, expected h1")
        for before, heading in zip(r.headings, r.headings[1:]):
            if heading["level"] > before["level"] + 1:
                problems.append(f"{r.page}: h{before['level']} {before['text']!r} is followed by h{heading['level']} {heading['text']!r}")
    assert not problems, "\n".join(problems)


def test_every_image_and_figure_loads_and_has_alt_text(page_reports):
    problems = []
    for r in page_reports:
        for img in r.images["images"]:
            if not img["complete"] or img["width"] == 0:
                problems.append(f"{r.page}: image did not load: {_short(img['src'])}")
            if not img["alt"]:
                problems.append(f"{r.page}: image without alt text: {_short(img['src'])}")
        for fig in r.images["figures"]:
            # A figure's images are checked above; an inline SVG needs its own name.
            if not fig["images"] and not fig["svgName"]:
                problems.append(f"{r.page}: figure with no image and no accessible name: {fig['html']}")
    assert not problems, "\n".join(problems)


def test_every_page_passes_the_accessibility_audit(page_reports):
    """axe-core, the engine of the common accessibility checkers, finds no
    serious or critical violation on any page (contrast, link styles, names,
    keyboard access...)."""
    problems = [f"{r.page} ({v['scheme']}): {v['id']} ({v['impact']}, {v['elements']} elements, e.g. {v['example']}): {v['help']}"
                for r in page_reports for v in r.accessibility if v["impact"] in FAILING_IMPACTS]
    assert page_reports and all(isinstance(r.accessibility, list) for r in page_reports)
    assert not problems, f"{len(problems)} failing rules:\n" + "\n".join(problems)


def test_the_audit_saw_every_live_widget_built_and_computed(page_reports):
    """The audit above runs on each widget's controls and on what it showed after computing once."""
    seen = {w["widget"] for r in page_reports for w in r.widgets}
    assert seen == {"fill-mask", "write", "attention", "classify", "ask"}, seen
    unbuilt = [(r.page, w) for r in page_reports for w in r.widgets if not (w["built"] and w["computed"])]
    assert not unbuilt, unbuilt


def test_each_page_has_a_screenshot(page_reports):
    missing = [r.page for r in page_reports if not (r.screenshot.exists() and r.screenshot.stat().st_size > 0)]
    assert not missing, f"no screenshot in {SCREENSHOTS} for {missing}"


@pytest.mark.parametrize("page_path", NARROW_SHOTS, ids=lambda p: p or "home")
def test_phone_width_screenshot(built_site, site_url, browser, screenshots, page_path):
    assert (built_site / page_path / "index.html").exists(), f"{page_path} is not in the built site"
    visit = _open(browser, site_url + page_path, viewport=PHONE)
    try:
        assert visit.status == 200
        assert visit.page.evaluate("document.documentElement.clientWidth") == PHONE["width"]
        # The sidebar folds into the drawer at phone width: the header's menu button shows.
        assert visit.page.locator("label.md-header__button[for='__drawer']").is_visible()
        shot = screenshots / _shot_name(page_path, f"-{PHONE['width']}px")
        visit.page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 0
        assert not visit.console_errors and not visit.failed_requests, visit.console_errors + visit.failed_requests
    finally:
        visit.page.close()


@pytest.fixture(scope="session")
def nav_links(site_url, browser) -> dict[str, str]:
    """The primary navigation of the home page: link target -> label."""
    visit = _open(browser, site_url)
    try:
        links = visit.page.eval_on_selector_all(
            "nav.md-nav--primary a.md-nav__link[href]", "els => els.map(a => [a.href, a.textContent.trim()])"
        )
    finally:
        visit.page.close()
    nav = {}
    for href, label in links:  # the current page's table of contents follows its entry
        nav.setdefault(href.split("#")[0], label)
    return nav


@pytest.mark.parametrize("title, page_path", SECTIONS.items(), ids=list(SECTIONS.values()))
def test_navigation_reaches_section(built_site, site_url, browser, nav_links, title, page_path):
    assert (built_site / page_path / "index.html").exists(), f"the {title} page ({page_path}) is not in the built site"
    url = site_url + page_path
    assert url in nav_links, f"{title} ({page_path}) is built but not linked from the navigation; nav has {sorted(nav_links)}"
    visit = _open(browser, site_url)
    try:
        links = visit.page.locator("nav.md-nav--primary a.md-nav__link[href]")
        hrefs = links.evaluate_all("els => els.map(a => a.href.split('#')[0])")
        link = links.nth(hrefs.index(url))
        if link.is_visible():
            link.click()  # as a reader does; a link folded away in a section is followed by URL
            visit.page.wait_for_url(url)
        else:
            visit.page.goto(url)
        assert visit.page.url == url
        assert visit.page.locator("article h1").count() == 1
    finally:
        visit.page.close()


def test_search_finds_pre_training_for_coffee(built_site, site_url, browser):
    assert (built_site / "pre-training" / "index.html").exists(), "the Pre-training page (pre-training/) is not in the built site"
    visit = _open(browser, site_url)
    try:
        page = visit.page
        query = page.locator("input.md-search__input")
        if not query.is_visible():  # narrow screens open search from a header button
            page.locator("label.md-header__button[for='__search']").click()
        query.click()
        query.press_sequentially("coffee", delay=20)  # typed, so the search reacts as to a reader
        wanted = site_url + "pre-training/"
        try:
            page.wait_for_function(
                "url => Array.from(document.querySelectorAll('.md-search-result__item a'))"
                ".some(a => a.href.split(/[?#]/)[0] === url)",
                arg=wanted,
            )
        except Exception:
            found = page.locator(".md-search-result__item a").evaluate_all("els => els.map(a => a.href)")
            pytest.fail(f"searching 'coffee' does not find {wanted}; results: {found}")
        assert not visit.console_errors and not visit.failed_requests, visit.console_errors + visit.failed_requests
    finally:
        visit.page.close()


def test_copy_buttons_copy_the_code(page_reports):
    """Every code block has a copy button, and on each page the first one,
    clicked, puts exactly that block's code on the clipboard (trailing blank
    lines aside, which Material trims)."""
    problems, clicked = [], 0
    for r in page_reports:
        for copy in r.copy:
            if copy["buttons"] != copy["blocks"]:
                problems.append(f"{r.page}: {copy['blocks']} {copy['kind']}s but {copy['buttons']} copy buttons")
            if "copied" not in copy:
                continue
            clicked += 1
            expected, copied = copy["expected"].rstrip(), copy["copied"].rstrip()
            if not expected or copied != expected:
                problems.append(f"{r.page}: a {copy['kind']}'s copy button put {copied[:80]!r} on the clipboard, expected {expected[:80]!r}")
    assert not problems, "\n".join(problems)
    assert clicked, "no copy button was clicked: no page has a code block"


def test_palette_toggle_switches_light_and_dark(site_url, browser):
    visit = _open(browser, site_url)
    page = visit.page
    try:
        body = page.locator("body")
        first = body.get_attribute("data-md-color-scheme")
        page.locator("form[data-md-component='palette'] label:visible").click()
        page.wait_for_function(f"document.body.getAttribute('data-md-color-scheme') !== {json.dumps(first)}")
        second = body.get_attribute("data-md-color-scheme")
        assert {first, second} == {"default", "slate"}
        page.locator("form[data-md-component='palette'] label:visible").click()
        page.wait_for_function(f"document.body.getAttribute('data-md-color-scheme') === {json.dumps(first)}")
        assert not visit.console_errors, visit.console_errors
    finally:
        page.close()


def test_notebook_pages_offer_their_download(built_site, site_url, browser):
    notebooks = _notebook_pages(built_site, _site_pages(built_site))
    assert notebooks, "no notebook pages in the built site (docs/notebooks/*.py)"
    problems = []
    for page_path in notebooks:
        if not (built_site / page_path / "index.html").exists():
            problems.append(f"{page_path}: the notebook's page is not in the built site")
            continue
        visit = _open(browser, site_url + page_path)
        page = visit.page
        try:
            link = page.locator("article a[download]").first
            if not link.count():
                problems.append(f"{page_path}: no download link")
                continue
            href = link.evaluate("a => a.href")
            name = urlsplit(href).path.rsplit("/", 1)[-1]
            response = page.request.get(href)
            body = response.body()
            if response.status != 200 or not body:
                problems.append(f"{page_path}: download {href} gave HTTP {response.status}, {len(body)} bytes")
                continue
            try:
                if name.endswith(".ipynb"):
                    assert "cells" in json.loads(body)
                elif name.endswith(".py"):
                    ast.parse(body.decode("utf-8"))
                else:
                    raise AssertionError(f"{name} is neither .py nor .ipynb")
            except (AssertionError, ValueError, SyntaxError) as error:
                problems.append(f"{page_path}: download {name} is not a notebook: {error}")
                continue
            with page.expect_download() as download_info:
                link.click()  # the browser saves it, not just the server serving it
            download = download_info.value
            if download.suggested_filename != name or Path(download.path()).read_bytes() != body:
                problems.append(f"{page_path}: clicking the link saved {download.suggested_filename}, not {name}")
        finally:
            page.close()
    assert not problems, "\n".join(problems)


def test_missing_page_shows_the_404_page(site_url, browser, screenshots):
    missing = site_url + "no-such-page/"
    visit = _open(browser, missing)
    page = visit.page
    try:
        assert visit.status == 404
        assert "404" in page.locator("article h1").inner_text()
        # Styled like every page: the theme's header and stylesheets are there.
        assert page.locator("header.md-header").is_visible()
        assert page.evaluate("document.styleSheets.length") > 0
        # The missing page itself is the one failure the browser may report.
        others = [f for f in visit.failed_requests if not f.startswith(missing + ":")]
        assert not others, others
        errors = [e for e in visit.console_errors if not e.endswith(f"({missing})")]
        assert not errors, errors
        page.screenshot(path=str(screenshots / "404.png"), full_page=True)
    finally:
        page.close()


# ---------------------------------------------------------------- live models
#
# The build exports the cached foundation models into the site (docs/overrides/
# hooks/live_models.py) and the widgets run them with docs/javascripts/
# learnjax-model.js. Through the pages: the scores equal JAX's within 1e-4,
# greedy writing gives exactly the library's tokens, the café sentence's top
# word is the library's, what the reader types is shown as text, and the models
# come from the site itself. Their size, load time and milliseconds per written
# token are printed (run with -s to see them).

CAFE_MASK = "Today I went to the café and drank [MASK]."
CAFE_PROMPT = "Today I went to the café and drank"
MASKED_TEXTS = [
    CAFE_MASK,
    "The sky is [MASK].",
    "Every day the baker drives to the [MASK].",
    "Zoë's naïve flatmate, from Zürich, [mask] tea!",  # unknown words, accents, a lower-case mask
    " ".join(["the nurse works at the hospital ."] * 6) + " [MASK]",  # longer than the context: cut
]
PROMPTS = [CAFE_PROMPT, "Every day the pilot drives to the", "After friday comes", "My friends", "Last night Tom"]
MAX_NEW_TOKENS = 12
TOLERANCE = 1e-4
MODELS_BUDGET = 3_000_000  # bytes: every widget's model together
XSS = '<img src=x onerror="window.__learnjaxXss = 1">'

# Runs in the page: loads the module and a model from the site, then scores each text.
_LOGITS_JS = """async ({module, manifest, texts, masks}) => {
  const {loadModel} = await import(module);
  const started = performance.now();
  const model = await loadModel(manifest);
  const loadMs = performance.now() - started;
  const rows = texts.map(text => {
    const {ids} = model.read(text, {masks});
    return {ids, logits: model.logits(ids).map(row => Array.from(row))};
  });
  return {loadMs, rows};
}"""

_WRITE_JS = """async ({module, manifest, prompts, maxNewTokens}) => {
  const {loadModel} = await import(module);
  const model = await loadModel(manifest);
  return prompts.map(prompt => model.write(prompt, {maxNewTokens}));
}"""


@pytest.fixture(scope="module")
def masked():
    from learnjax.training.pretraining import foundation_model

    return foundation_model(progress=False)


@pytest.fixture(scope="module")
def writer():
    from learnjax.training.pretraining import foundation_model
    from learnjax.training.recipe import NEXT_WORD_RECIPE

    return foundation_model(NEXT_WORD_RECIPE, progress=False)


@pytest.fixture
def visit(browser, site_url):
    """A page with a widget, opened as a reader opens it; closed after the test, its requests checked."""
    opened = []

    def open_page(path: str):
        opened.append(_open(browser, site_url + path))
        return opened[-1]

    yield open_page
    for page_visit in opened:
        page_visit.page.close()
        assert not page_visit.external_requests, page_visit.external_requests
        assert not page_visit.console_errors, page_visit.console_errors
        assert not page_visit.failed_requests, page_visit.failed_requests


def _urls(site_url: str, name: str) -> dict:
    return {"module": site_url + "javascripts/learnjax-model.js", "manifest": site_url + f"models/{name}.json"}


def _jax_logits(foundation, ids: list[int]):
    """The library's scores for one text's ids ([CLS] first), padded to the model's rows as the library pads."""
    import jax.numpy as jnp
    import numpy as np

    row = np.zeros((1, foundation.model.config.max_len), np.int32)
    row[0, : len(ids)] = ids
    return np.asarray(foundation.model(jnp.asarray(row)))[0, : len(ids)]


@pytest.mark.parametrize("name, texts, masks", [("masked", MASKED_TEXTS, True), ("writer", PROMPTS, False)])
def test_the_browser_s_scores_equal_jax_s(visit, site_url, masked, writer, name, texts, masks):
    import numpy as np

    from learnjax.text.tokenizer import CLS_ID

    foundation = {"masked": masked, "writer": writer}[name]
    page = visit("self-supervised-learning/" if name == "masked" else "pre-training/").page
    result = page.evaluate(_LOGITS_JS, {**_urls(site_url, name), "texts": texts, "masks": masks})
    worst = 0.0
    for text, row in zip(texts, result["rows"]):
        expected_ids = foundation.tokenizer.encode_batch([text], foundation.model.config.max_len, masks=masks)[0]
        expected_ids = [int(i) for i in expected_ids if i] if masks else [CLS_ID, *foundation.tokenizer.encode(text)]
        assert row["ids"] == expected_ids, text
        difference = np.abs(np.asarray(row["logits"]) - _jax_logits(foundation, row["ids"])).max()
        worst = max(worst, float(difference))
    print(f"\n{name}: {len(texts)} texts, largest difference from JAX's logits {worst:.2e}; loaded in {result['loadMs']:.0f} ms")
    assert worst < TOLERANCE


def test_greedy_writing_gives_the_library_s_tokens(visit, site_url, writer):
    from learnjax.training.writing import generate_text

    page = visit("pre-training/").page
    written = page.evaluate(_WRITE_JS, {**_urls(site_url, "writer"), "prompts": PROMPTS, "maxNewTokens": MAX_NEW_TOKENS})
    expected = generate_text(writer, PROMPTS, max_new_tokens=MAX_NEW_TOKENS)
    assert [w["tokens"] for w in written] == [g.tokens for g in expected]
    assert [w["text"] for w in written] == [g.text for g in expected]
    per_token = sum(w["milliseconds"] for w in written) / sum(len(w["tokens"]) for w in written)
    print(f"\nwriter: {sum(len(w['tokens']) for w in written)} tokens written greedily, as the library's; "
          f"{per_token:.2f} ms per token, prompt reading included")
    assert per_token < 100


def test_the_fill_mask_widget_finds_the_library_s_word_for_the_café_sentence(visit, masked):
    from learnjax.training.foundation import fill_mask

    page = visit("self-supervised-learning/").page
    field = page.get_by_label("A sentence with [MASK] where a word is hidden")
    assert field.input_value() == CAFE_MASK
    field.focus()
    page.keyboard.press("Enter")  # the keyboard alone runs it
    predictions = page.locator(".learnjax-live__predictions li")
    predictions.first.wait_for()
    shown = [re.fullmatch(r"(.+): ([\d.]+)%", text).groups() for text in predictions.all_inner_texts()]
    expected = fill_mask(masked, CAFE_MASK, top_k=5)
    assert [word for word, _ in shown] == [p.word for p in expected]
    assert all(abs(float(percent) - 100 * p.probability) < 0.051 for (_, percent), p in zip(shown, expected))
    assert shown[0][0] == "coffee"  # what the Pre-training page's café test says
    print(f"\ncafé sentence in the browser: {', '.join(f'{w} {p}%' for w, p in shown)}")


_ATTENTION_JS = """async ({module, manifest, texts}) => {
  const {loadModel} = await import(module);
  const model = await loadModel(manifest);
  return texts.map(text => {
    const {ids} = model.read(text, {masks: true});
    return {ids, layers: model.attention(ids)};
  });
}"""
ATTENTION_TEXTS = [CAFE_MASK, "Every day the baker drives to the [MASK].", "My friends like the blue sky."]


def test_the_browser_s_attention_weights_equal_the_library_s(visit, site_url, masked):
    import numpy as np

    from learnjax.site.model_figures import attention_of

    page = visit("pre-training/").page
    rows = page.evaluate(_ATTENTION_JS, {**_urls(site_url, "masked"), "texts": ATTENTION_TEXTS})
    worst = 0.0
    for text, row in zip(ATTENTION_TEXTS, rows):
        words, layers = attention_of(masked, text)
        assert [masked.tokenizer.vocab[i] for i in row["ids"]] == words, text
        got = np.asarray(row["layers"])  # (layers, heads, tokens, tokens)
        assert got.shape == np.shape(layers)
        worst = max(worst, float(np.abs(got - np.asarray(layers)).max()))
    print(f"\nattention: {len(ATTENTION_TEXTS)} sentences, largest difference from the library's weights {worst:.2e}")
    assert worst < TOLERANCE


def test_the_attention_widget_draws_the_chosen_layer_and_head_from_the_keyboard(visit, masked):
    import numpy as np

    from learnjax.site.model_figures import attention_of

    page = visit("pre-training/").page
    widget = page.locator('.learnjax-live[data-widget="attention"]')
    layer, head = widget.get_by_label("Layer"), widget.get_by_label("Head")
    layer.focus()
    page.keyboard.press("ArrowDown")  # the keyboard alone picks layer 2, then head 2
    head.focus()
    page.keyboard.press("ArrowDown")
    caption = widget.locator("caption")
    assert caption.inner_text().startswith("Layer 2, head 2:")
    words, layers = attention_of(masked, CAFE_MASK)
    assert widget.locator("thead th").all_inner_texts() == words
    cells = widget.locator("tbody td")
    shown = np.array([float(w) for w in cells.evaluate_all("cells => cells.map(c => c.dataset.weight)")]).reshape(len(words), -1)
    assert np.abs(shown - layers[1][1]).max() < TOLERANCE
    assert cells.all_inner_texts() == [f"{100 * w:.0f}" for w in shown.ravel()]


SPAM_PRESET = "Quick question about the payout and the jackpot. thanks."
SPAM_MESSAGES = [
    SPAM_PRESET,
    "Good news about the sleepover! the laundry is sorted too. see you soon.",
    "Zoë's naïve flatmate, from Zürich, won the lottery!",  # unknown words
    " ".join(["claim the giveaway now ."] * 12),  # longer than the context: its first window
]
_CLASSIFY_JS = """async ({module, manifest, texts}) => {
  const {loadModel} = await import(module);
  const model = await loadModel(manifest);
  return texts.map(text => model.classify(text).labels.map(l => l.probability));
}"""


def _spam_filter(built_site, masked, mode: str):
    """The library's classifier of the site's exported spam filter `mode`: the same weights, run by JAX."""
    from learnjax.storage.export import model_from_export, read_export
    from learnjax.training.finetuning import TextClassifier
    from learnjax.training.loops import History

    manifest, arrays = read_export(built_site / "models" / f"spam-{mode}.json")
    assert manifest["tokenizer"]["vocab"] == masked.tokenizer.vocab  # the foundation's tokenizer
    return TextClassifier(model_from_export(manifest, arrays), masked.tokenizer, tuple(manifest["labels"]), mode, History())


@pytest.mark.parametrize("mode", ["full", "scratch"])
def test_the_browser_s_spam_probabilities_equal_the_library_s(visit, site_url, built_site, masked, mode):
    import numpy as np

    classifier = _spam_filter(built_site, masked, mode)
    page = visit("fine-tuning/").page
    got = np.asarray(page.evaluate(_CLASSIFY_JS, {**_urls(site_url, f"spam-{mode}"), "texts": SPAM_MESSAGES}))
    expected = classifier.predict_proba(SPAM_MESSAGES)
    worst = float(np.abs(got - expected).max())
    print(f"\nspam-{mode}: {len(SPAM_MESSAGES)} messages, largest difference from the library's probabilities {worst:.2e}")
    assert worst < TOLERANCE


def test_the_spam_widget_shows_both_filters_side_by_side(visit, built_site, masked):
    import numpy as np

    page = visit("fine-tuning/").page
    widget = page.locator('.learnjax-live[data-widget="classify"]')
    field = widget.get_by_label("A message to classify")
    assert field.input_value() == SPAM_PRESET
    field.press("Enter")  # the keyboard alone runs it
    rows = widget.locator("tbody tr")
    rows.first.wait_for()
    assert widget.locator("thead th").all_inner_texts() == ["model", "probability of not spam", "probability of spam"]
    shown = {row.locator("th").inner_text(): [float(t.rstrip("%")) for t in row.locator("td").all_inner_texts()] for row in rows.all()}
    assert list(shown) == ["fine-tuned", "from scratch"]
    for name, mode in (("fine-tuned", "full"), ("from scratch", "scratch")):
        expected = _spam_filter(built_site, masked, mode).predict_proba([SPAM_PRESET])[0]
        assert np.abs(np.asarray(shown[name]) - 100 * expected).max() < 0.051, (name, shown[name], expected)
    print(f"\nspam widget, preset message: {shown}")


# ---------------------------------------------------------------- the assistant

ASK_MAX_NEW_TOKENS = 10  # as `Assistant.answer`, which `learnjax ask` runs
_ASK_JS = """async ({module, manifest, questions}) => {
  const {loadModel} = await import(module);
  const started = performance.now();
  const model = await loadModel(manifest);
  const loadMs = performance.now() - started;
  return {loadMs, answers: questions.map(question => ({ids: model.chat(question, 10).ids, ...model.ask(question)}))};
}"""


@pytest.fixture(scope="module")
def assistant(built_site):
    """The library's assistant of the site's exported one: the same weights, answering as `learnjax ask` does."""
    from learnjax.storage.export import model_from_export, read_export
    from learnjax.storage.progress import History
    from learnjax.text.tokenizer import Tokenizer
    from learnjax.training.instruction_tuning import Assistant

    manifest, arrays = read_export(built_site / "models" / "assistant.json")
    assert manifest["kind"] == "assistant"
    return Assistant(model_from_export(manifest, arrays), Tokenizer(manifest["tokenizer"]["vocab"]), "lora", History())


def _ask_questions() -> list[str]:
    """The Fine-tuning page's transcript questions, held-out questions about things the world states no such
    fact of, and two a reader might type."""
    from learnjax import experiments
    from learnjax.data.unknowns import unknown_questions

    transcripts = experiments.instruction_tuning()["transcripts"]
    return [*(t["question"] for t in transcripts), *(q.prompt for q in unknown_questions("held_out")[::5]),
            "Zoë's naïve flatmate asks: what colour is the banana?", "WHERE does a nurse work"]


def test_the_browser_s_assistant_answers_as_the_library_s_ask(visit, site_url, assistant):
    from learnjax import experiments
    from learnjax.data.questions import chat_ids
    from learnjax.models.generation import continue_ids

    questions = _ask_questions()
    page = visit("fine-tuning/").page
    result = page.evaluate(_ASK_JS, {**_urls(site_url, "assistant"), "questions": questions})
    got = result["answers"]
    prompts = [chat_ids(assistant.tokenizer, q) for q in questions]
    assert [a["ids"] for a in got] == prompts  # the chat template, token for token
    expected = continue_ids(assistant.model, prompts, max_new_tokens=ASK_MAX_NEW_TOKENS)
    assert [a["tokens"] for a in got] == [[assistant.tokenizer.vocab[i] for i in ids] for ids in expected]
    assert [a["text"] for a in got] == assistant.answer(questions)
    # The exported assistant is the page's: it answers the page's transcript as the page shows.
    transcripts = experiments.instruction_tuning()["transcripts"]
    assert [a["text"] for a in got[: len(transcripts)]] == [t["mixed, LoRA"] for t in transcripts]
    per_token = sum(a["milliseconds"] for a in got) / sum(len(a["tokens"]) for a in got)
    print(f"\nassistant: {len(questions)} questions answered as `learnjax ask` answers, "
          f"{sum(len(a['tokens']) for a in got)} tokens; {per_token:.2f} ms per token, question reading included; "
          f"loaded in {result['loadMs']:.0f} ms")


def _wait_for_question(page, widget, question: str) -> None:
    """Until the assistant widget shows `question` asked (its answer beside it)."""
    page.wait_for_function("([node, question]) => node.textContent === question",
                           arg=[widget.locator(".learnjax-live__question").element_handle(), question])


def test_the_assistant_widget_asks_its_presets_from_the_keyboard(visit, assistant):
    from learnjax import experiments
    from learnjax.data.unknowns import ABSTENTION, unknown_questions

    page = visit("fine-tuning/").page
    widget = page.locator('.learnjax-live[data-widget="ask"]')
    field = widget.get_by_label("A question for the assistant")
    transcripts = experiments.instruction_tuning()["transcripts"]
    known = next(t for t in transcripts if t["mixed, LoRA"] == t["expected"])
    assert field.input_value() == known["question"]
    answer = widget.locator(".learnjax-live__answer")
    for preset, question in (("A question it learned about", known["question"]),
                             ("A question about something it never read about", unknown_questions("held_out")[0].prompt)):
        widget.get_by_role("button", name=preset).focus()
        page.keyboard.press("Enter")  # the keyboard alone asks it
        _wait_for_question(page, widget, question)
        assert field.input_value() == question
        assert answer.inner_text() == assistant.answer([question])[0]
        print(f"\nassistant widget: {question!r} -> {answer.inner_text()!r}")
    assert answer.inner_text() != ABSTENTION  # about what it never read, it makes a fact up
    field.fill("   ")  # no words: the library refuses it too
    field.press("Enter")
    page.wait_for_function("node => node.textContent.startsWith('Type a question first')", arg=widget.locator("[role=status]").element_handle())


def test_the_assistant_shows_the_question_and_the_answer_as_text(visit, site_url, assistant):
    from learnjax import experiments

    known = next(t for t in experiments.instruction_tuning()["transcripts"] if t["mixed, LoRA"] == t["expected"])
    page = visit("fine-tuning/").page
    # An export whose vocabulary holds markup where the answer's last word was: the model writes it.
    manifest = json.loads(page.request.get(site_url + "models/assistant.json").text())
    written = known["expected"].rstrip(".").split()[-1]
    manifest["tokenizer"]["vocab"][manifest["tokenizer"]["vocab"].index(written)] = XSS
    page.route(site_url + "models/assistant.json", lambda route: route.fulfill(json=manifest))
    widget = page.locator('.learnjax-live[data-widget="ask"]')
    field = widget.get_by_label("A question for the assistant")
    for question, answer in ((XSS, None), (known["question"], known["expected"].replace(written, XSS))):
        field.fill(question)
        field.press("Enter")
        _wait_for_question(page, widget, question)
        if answer:
            assert widget.locator(".learnjax-live__answer").inner_text() == answer
        else:
            assert "[UNK]" in widget.locator(".learnjax-live__tokens").inner_text()  # `img`, `onerror`: words it never read
        assert widget.locator("img").count() == 0
    assert page.evaluate("window.__learnjaxXss") is None


# ---------------------------------------------------------------- the chart's temperatures


def test_the_writer_writes_the_prompt_at_the_chart_s_temperatures(visit, writer):
    from learnjax import experiments
    from learnjax.training.writing import generate_text

    temperatures = list(experiments.generation()["facts"]["shares"])  # the chart's, as the build computed them
    page = visit("pre-training/").page
    widget = page.locator('.learnjax-live[data-widget="write"]')
    assert widget.get_attribute("data-temperatures") == ",".join(temperatures)
    button = widget.get_by_role("button", name="The same prompt at the chart's temperatures")
    lines = widget.locator(".learnjax-live__temperatures li")
    button.focus()
    page.keyboard.press("Enter")  # the keyboard alone runs it
    lines.first.wait_for()
    assert [float(t) for t in lines.evaluate_all("items => items.map(i => i.dataset.temperature)")] == [float(t) for t in temperatures]
    greedy = generate_text(writer, [CAFE_PROMPT], max_new_tokens=16)[0].text
    assert lines.first.locator("strong").inner_text() == greedy
    assert all(line.locator(".learnjax-live__prompt").inner_text() == CAFE_PROMPT for line in lines.all())
    print(f"\nthe café prompt at the chart's temperatures: {lines.all_inner_texts()}")
    # The temperatures are read from the page when clicked, never typed into the script.
    widget.evaluate("root => { root.dataset.temperatures = '0.3,1.7'; }")
    button.click()
    page.wait_for_function("root => root.querySelectorAll('.learnjax-live__temperatures li').length === 2", arg=widget.element_handle())
    assert lines.evaluate_all("items => items.map(i => i.dataset.temperature)") == ["0.3", "1.7"]


# ---------------------------------------------------------------- a model of the reader's own data

OWN_TEXTS = ["Our clinic's night shift starts at eight.", "The pharmacist hands out the prescriptions!",
             "Refill requests: call before noon, please.", "Naïve questions are welcome at the front desk."]


def test_a_subword_classifier_classifies_in_the_browser_as_the_library(visit, site_url, tmp_path):
    """A model trained with --corpus reads with the subword tokenizer: its export runs in the browser too."""
    import numpy as np
    from flax import nnx

    from learnjax.models.transformer import EncoderClassifier, Transformer, TransformerConfig
    from learnjax.storage import checkpoints
    from learnjax.storage.export import export_directory, model_from_export, read_export
    from learnjax.text.subword import SubwordTokenizer
    from learnjax.text.tokenizer import CLS_ID
    from learnjax.training.finetuning import TextClassifier
    from learnjax.training.loops import History

    tokenizer = SubwordTokenizer.train(OWN_TEXTS * 20, vocab_size=150)
    config = TransformerConfig(vocab_size=len(tokenizer), max_len=16, d_model=16, n_layers=2, n_heads=2, d_ff=32)
    model = EncoderClassifier(Transformer(config, rngs=nnx.Rngs(5)), 3, rngs=nnx.Rngs(6))
    saved = checkpoints.save(tmp_path / "own", model, tokenizer, "classifier", {"labels": ["billing", "clinic", "other"]})
    exported = export_directory(saved, tmp_path / "web", name="own")
    manifest, arrays = read_export(exported)
    assert manifest["tokenizer"]["kind"] == "subword"
    classifier = TextClassifier(model_from_export(manifest, arrays), tokenizer, tuple(manifest["labels"]), "full", History())
    texts = [*OWN_TEXTS, "Unheard-of words: zyzzyva, Zürich's café.", " ".join(OWN_TEXTS)]  # unknown pieces; longer than the context
    page = visit("fine-tuning/").page
    page.route(site_url + "own-data/*", lambda route: route.fulfill(path=tmp_path / "web" / route.request.url.rsplit("/", 1)[1]))
    got = page.evaluate("""async ({module, manifest, texts}) => {
      const {loadModel} = await import(module);
      const model = await loadModel(manifest);
      return texts.map(text => ({ids: model.read(text).ids, probabilities: model.classify(text).labels.map(l => l.probability)}));
    }""", {"module": site_url + "javascripts/learnjax-model.js", "manifest": site_url + "own-data/own.json", "texts": texts})
    assert [g["ids"] for g in got] == [[CLS_ID, *tokenizer.encode(t)][: config.max_len] for t in texts]
    expected = classifier.predict_proba(texts)
    worst = float(np.abs(np.asarray([g["probabilities"] for g in got]) - expected).max())
    print(f"\nsubword classifier: {len(texts)} texts, each one's likeliest label at {np.round(expected.max(axis=1), 3).tolist()}; "
          f"largest difference from the library's probabilities {worst:.2e}")
    assert expected.max() - expected.min() > 0.3 and expected.min() > 1e-3  # neither uniform nor saturated: a wrong piece or weight shows
    assert worst < TOLERANCE


# ---------------------------------------------------------------- from `mkdocs serve`

SERVE_TIMEOUT_S = 900  # mkdocs serve builds the whole site before it serves


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_widgets_work_from_mkdocs_serve(browser, tmp_path):
    """As a writer previews the site: `mkdocs serve` on a free port, a widget computes once, the server stops."""
    import subprocess
    import sys
    import time

    process = subprocess.Popen(
        [sys.executable, "-m", "mkdocs", "serve", "--dev-addr", f"127.0.0.1:{_free_port()}"], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "TMPDIR": str(tmp_path)},
    )
    said: list[str] = []
    threading.Thread(target=lambda: said.extend(process.stdout), daemon=True).start()
    started = time.monotonic()
    try:
        while not (serving := [m.group(1) for line in said if (m := re.search(r"Serving on (http://\S+)", line))]):
            assert process.poll() is None, "mkdocs serve stopped:\n" + "".join(said)
            assert time.monotonic() - started < SERVE_TIMEOUT_S, "mkdocs serve did not start:\n" + "".join(said)
            time.sleep(0.5)
        url = serving[0]
        visit = _open(browser, url + "self-supervised-learning/")
        try:
            visit.page.get_by_role("button", name="Fill in the [MASK]").click()
            predictions = visit.page.locator(".learnjax-live__predictions li")
            predictions.first.wait_for()
            first = predictions.first.inner_text()
            assert first.startswith("coffee:")
            fetched = [u for u in visit.requests if "/models/" in u]
            assert fetched and all(u.startswith(url) for u in fetched), fetched
            assert not visit.external_requests and not visit.console_errors, visit.external_requests + visit.console_errors
            assert not [f for f in visit.failed_requests if "/livereload/" not in f], visit.failed_requests
        finally:
            visit.page.close()
        print(f"\nmkdocs serve: served in {time.monotonic() - started:.0f} s; the café sentence's first word: {first}")
    finally:
        process.terminate()
        process.wait(timeout=60)


def test_what_the_reader_types_is_shown_as_text_and_runs_nothing(visit):
    page = visit("pre-training/").page
    field = page.get_by_label("A prompt for the model to continue")
    field.fill(XSS)
    field.press("Enter")
    widget = page.locator('.learnjax-live[data-widget="write"]')
    page.locator(".learnjax-live__written").wait_for()
    assert XSS in widget.locator(".learnjax-live__prompt").inner_text()
    assert widget.locator("img").count() == 0
    assert page.evaluate("window.__learnjaxXss") is None
    assert "[UNK]" in widget.locator(".learnjax-live__tokens").inner_text()  # `img`, `onerror`: words it never read


def test_long_input_is_cut_with_a_visible_note_and_the_sliders_work_from_the_keyboard(visit, writer):
    page = visit("pre-training/").page
    temperature = page.get_by_label("Temperature")
    temperature.focus()
    page.keyboard.press("ArrowRight")
    assert temperature.input_value() == "0.1" and temperature.get_attribute("aria-valuetext") == "0.1"
    page.get_by_label("Top-k").focus()
    page.keyboard.press("ArrowRight")
    assert page.get_by_label("Top-k").get_attribute("aria-valuetext") == "the 1 likeliest"
    words = ["the", "sky", "is", "blue"] * writer.model.config.max_len
    field = page.get_by_label("A prompt for the model to continue")
    field.fill(" ".join(words))
    page.get_by_role("button", name="Write").click()
    note = page.locator(".learnjax-live__note")
    note.wait_for()
    assert note.is_visible() and f"Your text has {len(words)} tokens" in note.inner_text()
    assert page.locator(".learnjax-live__written strong").inner_text()  # it still writes, within the context


def test_the_models_are_small_and_come_from_the_site_itself(built_site, visit, site_url):
    files = sorted((built_site / "models").iterdir())
    manifests = [f for f in files if f.suffix == ".json"]
    assert {f.stem for f in manifests} == {"masked", "writer", "spam-full", "spam-scratch", "assistant"}
    for manifest in manifests:
        assert (built_site / "models" / json.loads(manifest.read_text(encoding="utf-8"))["weights"]["file"]).is_file()
    total = sum(f.stat().st_size for f in files)
    print(f"\nmodel files: {len(files)}, {total:,} bytes in all")
    assert total <= MODELS_BUDGET
    page_visit = visit("self-supervised-learning/")
    page_visit.page.get_by_role("button", name="Fill in the [MASK]").click()
    page_visit.page.locator(".learnjax-live__predictions li").first.wait_for()
    fetched = [url for url in page_visit.requests if "/models/" in url]
    assert fetched and all(url.startswith(site_url) for url in fetched)
    assert not [url for url in page_visit.requests if _is_external(url)]


def test_no_request_of_the_session_left_the_machine(browser, page_reports):
    """Every request every page made during these checks (search, copy,
    palette, downloads included) went to this machine. Runs last."""
    external = sorted({_short(u) for u in browser.requests + browser.blocked if _is_external(u)})
    assert browser.requests, "no request was recorded"
    assert not external, "requests to other hosts:\n" + "\n".join(external)
