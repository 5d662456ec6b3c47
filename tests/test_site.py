"""The strict site build passes and the built site is self-contained."""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import markdown
import markdown_exec

ROOT = Path(__file__).resolve().parents[1]

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


class _LinksAndIds(HTMLParser):
    """Every link target of a page (`href` and `src`), and every id a `#fragment` can reach."""

    def __init__(self):
        super().__init__()
        self.targets: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):  # the older spelling of an anchor
            self.ids.add(attrs["name"])
        if tag in ("a", "link") and attrs.get("href") and attrs.get("rel") not in ("canonical", "alternate"):
            self.targets.append(attrs["href"])
        if attrs.get("src"):
            self.targets.append(attrs["src"])


def _parse_links(page: Path) -> _LinksAndIds:
    parser = _LinksAndIds()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def _site_base(site: Path) -> str:
    """The path the site is published under (site_url's, e.g. /learnjax/): the
    404 page, which cannot know where it is served from, links absolutely."""
    sitemap = site / "sitemap.xml"
    loc = re.search(r"<loc>\s*([^<\s]+)", sitemap.read_text(encoding="utf-8")) if sitemap.exists() else None
    path = urlsplit(loc.group(1)).path if loc else "/"
    return path if path.endswith("/") else path + "/"


def _resolve(site: Path, base: str, page: Path, target: str) -> Path | None:
    """The file inside `site` (published under the path `base`) that `target`, a
    link on `page`, leads to; None for links that leave the site (another host,
    mailto:, data:, ...)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    page_url = base + page.relative_to(site).as_posix()
    path = unquote(urlsplit(urljoin(page_url, target)).path)
    if not path.startswith(base):
        return site / "outside-the-site" / path.lstrip("/")
    file = site / path[len(base):]
    return file / "index.html" if path.endswith("/") or file.is_dir() else file


def broken_links(site: Path) -> list[str]:
    """Every link between the built site's files, and every `#anchor`, that
    leads nowhere: `page: target (why)`."""
    base = _site_base(site)
    parsed = {page: _parse_links(page) for page in _pages(site)}
    problems = []
    for page, links in parsed.items():
        for target in links.targets:
            file = _resolve(site, base, page, target)
            if file is None:
                continue
            where = f"{page.relative_to(site).as_posix()}: {target}"
            if not file.is_file():
                problems.append(f"{where} (no such file)")
                continue
            fragment = unquote(urlsplit(target).fragment)
            if fragment and file.suffix == ".html" and fragment not in parsed[file].ids:
                problems.append(f"{where} (no id {fragment!r} in {file.relative_to(site).as_posix()})")
    return problems


def test_every_internal_link_and_anchor_resolves(built_site):
    problems = broken_links(built_site)
    assert not problems, f"{len(problems)} broken links:\n" + "\n".join(problems)


def test_the_link_check_finds_broken_links_and_anchors(tmp_path):
    (tmp_path / "page").mkdir()
    (tmp_path / "index.html").write_text(
        '<a href="page/">ok</a><a href="page/#here">ok</a><a href="#top" id="top">ok</a>'
        '<a href="https://example.org/x">external</a><a href="mailto:a@b.c">mail</a>'
        '<a href="page.md">unrewritten</a><a href="page/#gone">no anchor</a><a href="missing/">no page</a>',
        encoding="utf-8",
    )
    (tmp_path / "page" / "index.html").write_text('<h2 id="here">Here</h2><img src="../index.html" alt="x">', encoding="utf-8")
    assert broken_links(tmp_path) == [
        "index.html: page.md (no such file)",
        "index.html: page/#gone (no id 'gone' in page/index.html)",
        "index.html: missing/ (no such file)",
    ]


def _nav(mkdocs_yml: Path = ROOT / "mkdocs.yml") -> list:
    from mkdocs.config import load_config

    return load_config(str(mkdocs_yml))["nav"]


def test_navigation_is_in_diataxis_order():
    nav = _nav()
    assert [next(iter(entry)) for entry in nav] == ["Home", "Learn", "Under the hood", "Notebooks", "How-to", "Reference"]
    learn = next(entry["Learn"] for entry in nav if "Learn" in entry)
    assert [next(iter(page.values())) for page in learn] == [
        "supervised-learning.md", "self-supervised-learning.md", "pre-training.md", "fine-tuning.md",
        "fine-tuning-other-tasks.md", "preferences-and-rewards.md", "summary.md",
        "limitations.md",
    ]


def test_the_build_leaves_no_temporary_files(site_build):
    assert sorted(p.name for p in site_build.temp.iterdir()) == []


# ------------------------------------------------ docs/overrides/hooks/build_cache.py

BUILD_CACHE_HOOK = ROOT / "docs" / "overrides" / "hooks" / "build_cache.py"


def _build_cache_hook():
    spec = importlib.util.spec_from_file_location("build_cache", BUILD_CACHE_HOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _render(outputs, text: str) -> str:
    """`text` converted as the site converts a page, with the hook's store of block outputs."""
    fence = {"name": "python", "class": "python", "validator": markdown_exec.validator, "format": markdown_exec.formatter}
    md = markdown.Markdown(extensions=["pymdownx.superfences"], extension_configs={"pymdownx.superfences": {"custom_fences": [fence]}})
    outputs.start_page("page.md")
    try:
        return md.convert(text)
    finally:
        outputs.end_page()


def test_executed_blocks_are_reused_until_their_code_changes(tmp_path, monkeypatch):
    outputs = _build_cache_hook().BlockOutputs(tmp_path / "cache")
    monkeypatch.setitem(markdown_exec.formatters, "python", outputs.format_python)
    runs = tmp_path / "runs.txt"
    session = f"reuse-{id(outputs)}"  # markdown-exec keeps sessions for the whole process

    def page(second: str) -> str:
        block = '```python exec="on" session="{}"\nopen({!r}, "a").write("{}")\n{}\n```\n'
        return block.format(session, str(runs), "a", "x = 6\nprint(x)") + "\n" + block.format(session, str(runs), "b", second)

    assert "42" in _render(outputs, page("print(x * 7)")) and runs.read_text() == "ab"
    assert "42" in _render(outputs, page("print(x * 7)")) and runs.read_text() == "ab"  # reused: nothing ran
    # The second block changed: the first runs again, quietly, for the name x.
    assert "42 changed" in _render(outputs, page("print(x * 7, 'changed')")) and runs.read_text() == "abab"
    # A failing block is never stored: it runs (and fails) every time.
    for attempt in (1, 2):
        assert "NameError" in _render(outputs, page("print(y)"))
    assert runs.read_text() == "ab" * 4  # each time: the first block again for x, then the failing one


# Builds the site's configuration with the hook, then runs a one-cell notebook as the build does.
NOTEBOOK_RUN = """
import importlib.util, sys
from mkdocs.config import load_config
from mkdocs_jupyter.convert import nb2html
hook, mkdocs_yml, notebook = sys.argv[1:]
spec = importlib.util.spec_from_file_location("build_cache", hook)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
config = load_config(mkdocs_yml)
module.on_config(config)
print(nb2html(notebook, execute=True, allow_errors=False))
module.on_post_build(config)
"""


def test_the_notebook_kernel_does_not_use_tcp(tmp_path):
    notebook = tmp_path / "tiny.py"
    notebook.write_text("# %%\nprint(6 * 7)\n", encoding="utf-8")
    env = {**os.environ, "LEARNJAX_CACHE": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-c", NOTEBOOK_RUN, str(BUILD_CACHE_HOOK), str(ROOT / "mkdocs.yml"), str(notebook)],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0 and "42" in result.stdout, result.stderr
    assert "without encryption" not in result.stderr
    used = json.loads((tmp_path / "cache" / "site" / "used.json").read_text(encoding="utf-8"))
    assert [name.split("/")[0] for name in used] == ["notebooks"], "the build's notebooks folder is kept by prune"
    assert (tmp_path / "cache" / "site" / used[0]).is_dir()


NUMBERED_ITEM = re.compile(r"^\d+\. (.*(?:\n {3,}\S.*)*)", re.MULTILINE)


def test_numbered_list_items_end_their_sentences():
    """An item that runs on into the next one reads as a broken list."""
    for page in sorted((ROOT / "docs").rglob("*.md")):
        text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)
        for item in NUMBERED_ITEM.findall(text):
            assert item.rstrip().endswith((".", ":", "?", "!")), f"{page.name}: {item!r}"


MEASURED = {"value": 1}


def _measured():
    return dict(MEASURED)


def test_the_notebooks_run_again_when_an_entry_they_read_holds_something_else(tmp_path, monkeypatch):
    from learnjax.storage import cache

    monkeypatch.setenv("LEARNJAX_CACHE", str(tmp_path))
    hook = _build_cache_hook()
    folder = hook.notebooks_folder("key")
    monkeypatch.setenv(cache.READS_LOG, str(folder / hook.READS))  # as a notebook's kernel finds it
    cache.cached_json("measured", {}, _measured)
    monkeypatch.delenv(cache.READS_LOG)
    (folder / "run").mkdir()
    cache.cached_json("unread", {}, _measured)  # an entry the notebooks never read
    assert (hook.notebooks_folder("key") / "run").exists()
    for path in tmp_path.glob("measured-*"):  # measured again, with another result
        path.unlink()
    monkeypatch.setitem(MEASURED, "value", 2)
    cache.cached_json("measured", {}, _measured)
    assert not (hook.notebooks_folder("key") / "run").exists()
    (hook.notebooks_folder("other-code") / "run").mkdir(parents=True)
    assert (hook.notebooks_folder("other-code") / "run").exists(), "a folder of another key stays, for a build of that code"


def _block_page(runs: Path, code: str) -> str:
    return f'```python exec="on" session="s-{id(code)}-{runs.stat().st_mtime_ns if runs.exists() else 0}"\nopen({str(runs)!r}, "a").write("r")\n{code}\n```\n'


def test_a_block_runs_again_only_when_code_it_imports_changes_and_a_reverted_edit_costs_nothing(tmp_path, monkeypatch):
    from learnjax.storage import cache

    monkeypatch.setenv("LEARNJAX_CACHE", str(tmp_path / "cache"))
    package = tmp_path / "learnjax"
    shutil.copytree(Path(cache.PACKAGE), package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache, "PACKAGE", package)
    hook = _build_cache_hook()
    outputs = hook.BlockOutputs(tmp_path / "cache" / "site" / "blocks")
    monkeypatch.setitem(markdown_exec.formatters, "python", outputs.format_python)
    runs = tmp_path / "runs.txt"
    block = '```python exec="on"\nopen({!r}, "a").write("r")\nfrom learnjax.models import lora\nprint(6 * 7)\n```\n'.format(str(runs))
    lora, cli = package / "models" / "lora.py", package / "cli" / "__init__.py"

    def render() -> int:
        assert "42" in _render(outputs, block)
        return len(runs.read_text()) if runs.exists() else 0

    assert render() == 1
    cli.write_text(cli.read_text(encoding="utf-8") + "\n_PLANTED = 1\n", encoding="utf-8")
    assert render() == 1, "a change to a module the block never imports: reused"
    original = lora.read_text(encoding="utf-8")
    lora.write_text(original + "\n_PLANTED = 1\n", encoding="utf-8")
    assert render() == 2, "a change to the module it imports: run again"
    lora.write_text(original, encoding="utf-8")
    assert render() == 2, "the edit reverted: the earlier output, still stored, is used"


def test_a_build_reads_the_package_s_layout_once_from_its_start_to_its_end(tmp_path, monkeypatch):
    from learnjax.storage import cache

    package = tmp_path / "learnjax"
    shutil.copytree(Path(cache.PACKAGE), package, ignore=shutil.ignore_patterns("__pycache__"))
    hook = _build_cache_hook()
    hook.on_pre_build(None)
    try:
        assert "learnjax.planted" not in hook.import_graph(package).files
        (package / "planted.py").write_text("", encoding="utf-8")
        assert "learnjax.planted" not in hook.import_graph(package).files, "held for the build"
    finally:
        hook.on_build_error(None)  # a build that failed lets go too
    assert "learnjax.planted" in hook.import_graph(package).files


WRITER = "def write(x):\n    return x * int(open({factor!r}).read())\n"


def test_a_block_runs_again_when_an_entry_it_read_holds_something_else(tmp_path, monkeypatch):
    from learnjax.storage.cache import list_entries

    monkeypatch.setenv("LEARNJAX_CACHE", str(tmp_path / "cache"))
    factor, writer = tmp_path / "factor.txt", tmp_path / "writer.py"
    factor.write_text("2", encoding="utf-8")
    writer.write_text(WRITER.format(factor=str(factor)), encoding="utf-8")
    hook = _build_cache_hook()
    outputs = hook.BlockOutputs(tmp_path / "cache" / "site" / "blocks")
    monkeypatch.setitem(markdown_exec.formatters, "python", outputs.format_python)
    runs = tmp_path / "runs.txt"
    block = ('```python exec="on"\nopen({runs!r}, "a").write("r")\nimport importlib.util\nfrom learnjax.storage.cache import cached_json\n'
             'spec = importlib.util.spec_from_file_location("writer", {writer!r})\nwriter = importlib.util.module_from_spec(spec)\n'
             'spec.loader.exec_module(writer)\nprint("value", cached_json("writer", {{"x": 7}}, writer.write))\n```\n').format(runs=str(runs), writer=str(writer))
    assert "value 14" in _render(outputs, block) and runs.read_text() == "r"
    assert "value 14" in _render(outputs, block) and runs.read_text() == "r", "reused"
    measurement = next(p for e in list_entries() if e.kind == "writer" for p in e.paths if p.suffix == ".json" and "record" not in p.name)
    measurement.unlink()  # deleted, to be measured again
    assert "value 14" in _render(outputs, block) and runs.read_text() == "r", "measured again, the same: the output holds"
    measurement.unlink()
    factor.write_text("3", encoding="utf-8")
    assert "value 21" in _render(outputs, block) and runs.read_text() == "rr", "measured again, differently: run again"

def test_a_block_that_does_not_parse_fails_as_markdown_exec_reports_it(tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNJAX_CACHE", str(tmp_path / "cache"))
    outputs = _build_cache_hook().BlockOutputs(tmp_path / "cache" / "site" / "blocks")
    monkeypatch.setitem(markdown_exec.formatters, "python", outputs.format_python)
    for attempt in (1, 2):
        assert "SyntaxError" in _render(outputs, '```python exec="on"\nprint(6 *\n```\n')
    assert not (tmp_path / "cache" / "site" / "blocks").exists(), "never stored"


def test_a_block_that_shows_what_the_cache_says_runs_again_when_the_cache_s_code_changes(tmp_path, monkeypatch):
    from learnjax.storage import cache

    package = tmp_path / "learnjax"
    shutil.copytree(Path(cache.PACKAGE), package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache, "PACKAGE", package)
    hook = _build_cache_hook()
    source = ["from learnjax.storage.cache import entry_graph\nprint(entry_graph())"]
    before = hook.code_key(source)
    cache_file = next(f for m, f in hook.import_graph(package).files.items() if m in cache.MACHINERY)
    cache_file.write_text(cache_file.read_text(encoding="utf-8") + "\n_PLANTED = 1\n", encoding="utf-8")
    assert hook.code_key(source) != before


# ------------------------------------------------ the glossary's tooltips

GLOSSARY = ROOT / "docs" / "includes" / "glossary.md"
GLOSSARY_ENTRY = re.compile(r"^\*\[(?P<term>[^\]]+)\]:\s*(?P<definition>.+)$", re.MULTILINE)


def glossary() -> dict[str, str]:
    """The glossary's terms and their one-sentence definitions."""
    return {m["term"]: m["definition"].strip() for m in GLOSSARY_ENTRY.finditer(GLOSSARY.read_text(encoding="utf-8"))}


class _Abbreviations(HTMLParser):
    """Every `<abbr title=...>term</abbr>` of a page, as {term: title}."""

    def __init__(self):
        super().__init__()
        self.found: dict[str, str] = {}
        self._title: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "abbr":
            self._title = dict(attrs).get("title")

    def handle_data(self, data):
        if self._title is not None:
            self.found[data] = self._title
            self._title = None


def _abbreviations(page: Path) -> dict[str, str]:
    parser = _Abbreviations()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.found


def test_the_glossary_defines_each_term_in_one_sentence():
    terms = glossary()
    assert {"Transformer", "attention", "encoder", "decoder", "perplexity", "XLA", "jit", "logits", "LoRA"} <= set(terms)
    for term, definition in terms.items():
        assert definition.endswith(".") and definition.count(". ") == 0, f"{term}: {definition!r} is not one sentence"


def test_every_learn_page_shows_the_glossary_as_tooltips(built_site):
    terms = glossary()
    for section in ("supervised-learning", "self-supervised-learning", "pre-training", "fine-tuning", "summary", "limitations"):
        found = _abbreviations(built_site / section / "index.html")
        assert found, f"{section}: no glossary tooltip"
        wrong = {term: title for term, title in found.items() if terms.get(term) != title}
        assert not wrong, f"{section}: tooltips that are not the glossary's: {wrong}"
    assert _abbreviations(built_site / "pre-training" / "index.html").get("perplexity") == terms["perplexity"]
    assert not (built_site / "includes").exists(), "the glossary was built as a page of its own"


# ------------------------------------------------ what a reader sees

TEMPORARY_PATH = re.compile(r"/tmp/|\\Temp\\|/var/folders/|\btmp[a-z0-9_]{6,}\b")


def test_no_page_shows_a_temporary_folder(built_site):
    """A scratch folder of the build (a model saved in a TemporaryDirectory)
    means nothing to a reader, and changes on every build."""
    for page in _pages(built_site):
        text = re.sub(r'src="data:[^"]*"', "", page.read_text(encoding="utf-8"))  # the figures' bytes
        found = TEMPORARY_PATH.findall(text)
        assert not found, f"{page.relative_to(built_site)} shows temporary paths: {found[:3]}"


def test_a_mean_and_its_spread_never_wrap_apart(built_site):
    """In a table, "79.5% ± 8.4%" is one value: no-break spaces hold it together."""
    for page in _pages(built_site):
        cells = re.findall(r"<td>([^<]*±[^<]*)</td>", page.read_text(encoding="utf-8"))
        breaking = [cell for cell in cells if " ±" in cell or "± " in cell]  # an ordinary space beside it
        assert not breaking, f"{page.relative_to(built_site)}: {breaking[:3]}"


def test_home_names_the_article_the_repository_and_the_versions(built_site):
    from importlib.metadata import version

    from mkdocs.config import load_config

    config = load_config(str(ROOT / "mkdocs.yml"))
    html = " ".join((built_site / "index.html").read_text(encoding="utf-8").split())  # prose wraps anywhere
    seed_title = "How Does Generative AI Learn? A Simple Guide to Training, Pre-training, and Fine-tuning"
    assert seed_title in html and "by Mana" in html
    assert f'href="{config["repo_url"]}"' in html
    # GitHub Pages publishes https://github.com/OWNER/NAME at https://OWNER.github.io/NAME/
    owner, name = urlsplit(config["repo_url"]).path.strip("/").split("/")
    assert config["site_url"] == f"https://{owner}.github.io/{name}/"
    for package, label in (("jax", "JAX"), ("flax", "Flax"), ("optax", "Optax")):
        assert f"{label} {version(package)}" in html, f"the home page does not state the installed {label}"


def test_each_limitation_is_measured_linked_and_answered(built_site):
    """Every section of the limitations page but the last two names what a
    user can do, links the page that measures it and states its figures."""
    html = " ".join((built_site / "limitations" / "index.html").read_text(encoding="utf-8").split())
    article = html[html.index("<article"):html.index("</article>")]
    sections = re.split(r"<h2 ", article)[1:]
    assert len(sections) >= 6, "expected six limitations and a summary"
    learn = ("supervised-learning/", "self-supervised-learning/", "pre-training/", "fine-tuning/",
             "preferences-and-rewards/")
    for section in sections[:-1]:
        heading = re.sub(r"<[^>]+>", "", section[: section.index("</h2>")])
        assert "What to do." in section, f"{heading}: no advice"
        if "never read" in heading:  # not measured here yet: said so, with no figure
            assert "does not measure" in section and not re.search(r"\d+%", section), heading
            continue
        assert any(f'href="../{page}' in section for page in learn), f"{heading}: no link to its experiment"
        assert len(re.findall(r"\d+%", section)) >= 2, f"{heading}: no measured figures"
