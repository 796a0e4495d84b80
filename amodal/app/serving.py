"""The explorer's kernels on a server: at most ``max_kernels`` at once (``python -m amodal explore``).

Voila starts one kernel for every request of its page, and each kernel holds the app's data
and models (about 0.6 GB for the defaults) until it is stopped. jupyter_server can stop idle
kernels (``cull_idle_timeout``) but has no limit on how many run at once, so a few reloads, a
crawler or a script could fill the machine's memory before the first idle one is culled.
:class:`CappedKernelManager` is jupyter_server's kernel manager with that limit: a request
beyond it gets a ``503`` page saying why, and no kernel. Voila takes it by its class name
(``--VoilaConfiguration.multi_kernel_manager_class``), so this module imports nothing but
jupyter_server and tornado: it runs inside the server process, which needs no torch.
"""
from __future__ import annotations

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado import web
from traitlets import Integer


class CappedKernelManager(AsyncMappingKernelManager):
    """jupyter_server's kernel manager, refusing to start a kernel while ``max_kernels`` run or start."""

    max_kernels = Integer(4, config=True, help="The most kernels (open pages) at once; 0 for no limit.")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._starting = 0  # started, not yet in list_kernel_ids(): they count against the limit too

    def running(self) -> int:
        """Kernels running or starting."""
        return len(self.list_kernel_ids()) + self._starting

    async def start_kernel(self, **kwargs) -> str:
        """A new kernel, or ``HTTPError(503)`` where ``max_kernels`` already run (the page shows its reason)."""
        # the check and the count happen with no await between them, so concurrent requests cannot both pass
        if self.max_kernels and kwargs.get("kernel_id") not in self and self.running() >= self.max_kernels:
            self.log.warning("refused a kernel: %d of at most %d are running", self.running(), self.max_kernels)
            raise web.HTTPError(503, reason=self.refusal())
        self._starting += 1
        try:
            return await super().start_kernel(**kwargs)
        finally:
            self._starting -= 1

    def refusal(self) -> str:
        """The page's one line (an HTTP reason phrase: ASCII, no line break)."""
        # a closed tab does not stop its kernel: only the idle timeout (or a restart) frees its place
        freed = (f"a page idle for {self.cull_idle_timeout} s is stopped and frees its place (--idle-timeout): "
                 "close the tabs you do not use and reload in a while" if self.cull_idle_timeout > 0
                 else "restart the explorer to free them")
        return f"Too many open pages: the explorer runs at most {self.max_kernels} at once (--max-kernels); {freed}"
