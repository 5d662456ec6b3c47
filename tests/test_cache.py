"""The cache key follows the code, not its documentation."""

from learnjax.cache import _code_only, cache_key


def test_documentation_does_not_change_the_key():
    plain = "def f(x):\n    return 2 * x\n\nSCALE = 2\n"
    documented = '"""Module."""\n\ndef f(x):\n    """Doubles."""\n    # twice\n    return 2 * x\n\nSCALE = 2\n"""The factor."""\n'
    assert _code_only(plain) == _code_only(documented)


def test_code_changes_the_key():
    assert _code_only("def f(x):\n    return 2 * x\n") != _code_only("def f(x):\n    return 3 * x\n")
    key = cache_key("k", {"a": 1}, "code")
    assert key != cache_key("k", {"a": 2}, "code")
    assert key != cache_key("k", {"a": 1}, "other code")


def test_a_body_of_documentation_only_stays_valid_code():
    tree = _code_only('class A:\n    """Only a docstring."""\n')
    assert "Pass" in tree
