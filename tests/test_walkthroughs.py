"""The README's and the pages' walk-throughs of the `learnjax` command pre-train once:
each later command uses the model the walk-through made."""

import re
import shlex

import pytest

from docs_harness import ROOT

WALKTHROUGHS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def shell_walkthrough(text: str) -> list[list[str]]:
    """The `learnjax` commands of the shell blocks of a README or page, in order, as argument lists."""
    blocks = re.findall(r"^```(?:bash|sh|console|shell)\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    lines = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]  # continuations joined
    commands = [shlex.split(line, comments=True) for line in lines]
    return [words for words in commands if words[:1] == ["learnjax"]]


def pretrains_twice(commands: list[list[str]]) -> list[str]:
    """The commands that, after the walk-through pre-trained a model of its own,
    use the default model instead (which pre-trains the same recipe again)."""
    pretrained, twice = False, []
    for words in commands:
        if words[1:2] == ["pretrain"]:
            pretrained = True
        elif pretrained and words[1:2] in (["fill-mask"], ["finetune"]) and "--model" not in words:
            twice.append(" ".join(words))
    return twice


@pytest.mark.parametrize("path", WALKTHROUGHS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_walkthrough_uses_the_model_it_pretrained(path):
    assert pretrains_twice(shell_walkthrough(path.read_text(encoding="utf-8"))) == []


def test_readme_has_a_walkthrough():
    commands = shell_walkthrough((ROOT / "README.md").read_text(encoding="utf-8"))
    assert [w[1] for w in commands][:3] == ["pretrain", "pretrain", "fill-mask"]
    continued = "```bash\nlearnjax pretrain \\\n  --out f/  # a comment\n```\n"
    assert shell_walkthrough(continued) == [["learnjax", "pretrain", "--out", "f/"]]
    assert pretrains_twice([["learnjax", "pretrain", "--out", "f/"], ["learnjax", "fill-mask", "a [MASK]."]]) == ["learnjax fill-mask a [MASK]."]
