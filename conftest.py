"""Sybil over every documentation page: each Python block runs, top to bottom,
in one namespace per page, with snippet includes expanded as the site shows them."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "tests"))

from docs_harness import PythonFenceParser, SnippetDocument  # noqa: E402
from sybil import Sybil  # noqa: E402

pytest_plugins = ["pytester"]

pytest_collect_file = Sybil(
    parsers=[PythonFenceParser()],
    patterns=["*.md"],
    path="docs",
    document_types={".md": SnippetDocument},
).pytest()
