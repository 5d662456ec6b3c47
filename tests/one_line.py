"""What "errors print one line" means, for the tests of the command line."""


def is_one_line(text: str) -> bool:
    """Exactly one line, not blank, ended by a newline: no second line, however short."""
    return text.endswith("\n") and len(text.splitlines()) == 1 and bool(text.strip())
