"""A pytest plugin (named in the root conftest's `PLUGINS`): every test process,
whichever folders it collects (`pytest docs/pre-training.md` alone too), keeps
XLA's compiled programs in the learnjax cache, as the command line and the site
build do, so that a second run reads the programs the first compiled."""


def pytest_configure(config):
    from learnjax.storage.cache import use_compilation_cache

    use_compilation_cache()
