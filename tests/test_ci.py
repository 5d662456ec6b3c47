"""CI tests what the project claims: the lowest-versions run pins every
requirement of the test install at the lower bound pyproject.toml states."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / ".ci" / "lowest_constraints.py"


def constraints(*args: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True)


def test_every_requirement_of_the_test_install_is_pinned_at_its_lower_bound():
    pins = dict(line.split("==") for line in constraints().stdout.splitlines())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    stated = project["dependencies"] + extras["test"] + extras["docs"]  # test pulls in learnjax[docs]
    for requirement in (r for r in stated if not r.startswith(project["name"] + "[")):
        name, lower = re.match(r"([A-Za-z0-9._-]+)(?:\[[^\]]*\])?\s*>=\s*([^,;\s]+)", requirement).groups()
        assert pins.pop(name.lower()) == lower, requirement
    assert not pins, f"pinned but not required: {pins}"


def test_a_requirement_without_a_lower_bound_is_reported(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\ndependencies = ["numpy<3"]\n[project.optional-dependencies]\ntest = []\n')
    done = constraints(pyproject)
    assert done.returncode == 1 and done.stderr.strip() == f"{pyproject}: numpy has no lower bound (<3); give it one"
