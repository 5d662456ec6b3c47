"""Prints pip constraints that pin every dependency of the test install to the
lowest version pyproject.toml claims to support (its `>=` bound):

    python .ci/lowest_constraints.py [pyproject.toml] > constraints-lowest.txt
    PIP_CONSTRAINT=$PWD/constraints-lowest.txt bash .ci/run    # or: pip install -c constraints-lowest.txt -e ".[test]"

Only the project's own requirements are pinned (the core dependencies and the
extras the test install pulls in); pip picks their dependencies as usual, so
this tests "the lowest versions we allow" the way a user with an older
environment meets them. A requirement without a lower bound is a defect of
pyproject.toml, and this script says so.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
REQUIREMENT = re.compile(r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[(?P<extras>[^\]]*)\])?\s*(?P<specifiers>[^;]*)")


def lowest_pins(pyproject: dict, extras: tuple[str, ...] = ("test",)) -> dict[str, str]:
    """{distribution: lowest version} for the core dependencies and `extras`,
    following the project's references to its own extras (`learnjax[docs]`)."""
    project = pyproject["project"]
    optional = project.get("optional-dependencies", {})
    pending, seen, pins = list(project.get("dependencies", [])), set(), {}
    pending += [requirement for extra in extras for requirement in optional[extra]]
    while pending:
        match = REQUIREMENT.match(pending.pop(0))
        name = match["name"].lower().replace("_", "-")
        if name == project["name"]:  # the project's own extras
            for extra in (e.strip() for e in (match["extras"] or "").split(",") if e.strip()):
                if extra not in seen:
                    seen.add(extra)
                    pending += optional[extra]
            continue
        bounds = [s.strip() for s in match["specifiers"].split(",") if s.strip()]
        lowest = [s[2:].strip() for s in bounds if s.startswith(">=") or s.startswith("==")]
        if not lowest:
            raise ValueError(f"{name} has no lower bound ({match['specifiers'].strip() or 'none'}); give it one")
        pins[name] = lowest[0]
    return pins


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else PYPROJECT
    try:
        pins = lowest_pins(tomllib.loads(path.read_text(encoding="utf-8")))
    except ValueError as error:
        print(f"{path}: {error}", file=sys.stderr)
        return 1
    sys.stdout.write("".join(f"{name}=={version}\n" for name, version in sorted(pins.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
