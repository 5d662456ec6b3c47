# Read by the executor of the site's notebook (nbconvert) during the build, which
# build_cache.py points at this folder (JUPYTER_CONFIG_PATH): the kernel talks to
# the build over Unix sockets instead of unencrypted TCP on the loopback.
c = get_config()  # noqa: F821 (defined by Jupyter's config loader)
c.KernelManager.transport = "ipc"
