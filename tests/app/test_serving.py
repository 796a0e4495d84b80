"""The cap on the explorer's kernels (:mod:`amodal.app.serving`), with real kernels (a few seconds).

The server around it (the token, culling, the refusal page): tests/cli/test_explore_server.py.
"""
import asyncio

import pytest
from tornado import web

from amodal.app.serving import CappedKernelManager


def test_requests_at_once_start_no_more_kernels_than_the_cap(tmp_path):
    async def scenario():
        manager = CappedKernelManager(max_kernels=2, connection_dir=str(tmp_path), root_dir=str(tmp_path),
                                      cull_idle_timeout=90)
        try:
            # all three ask before any kernel is up: the ones still starting count too
            outcomes = await asyncio.gather(*(manager.start_kernel(kernel_name="python3") for _ in range(3)),
                                            return_exceptions=True)
            started = [o for o in outcomes if isinstance(o, str)]
            refused = [o for o in outcomes if isinstance(o, web.HTTPError)]
            assert len(started) == 2 and len(refused) == 1 and manager.running() == 2
            assert refused[0].status_code == 503
            reason = refused[0].reason
            assert "at most 2" in reason and "--max-kernels" in reason and "idle for 90 s" in reason
            assert reason.isascii() and "\n" not in reason  # an HTTP status line
            await manager.shutdown_kernel(started[0])
            assert manager.running() == 1
            assert isinstance(await manager.start_kernel(kernel_name="python3"), str)  # a freed place
            with pytest.raises(web.HTTPError):
                await manager.start_kernel(kernel_name="python3")
        finally:
            await manager.shutdown_all()

    asyncio.run(scenario())


def test_zero_means_no_limit(tmp_path):
    async def scenario():
        manager = CappedKernelManager(max_kernels=0, connection_dir=str(tmp_path), root_dir=str(tmp_path))
        try:
            started = await asyncio.gather(*(manager.start_kernel(kernel_name="python3") for _ in range(3)))
            assert len(set(started)) == 3 and manager.running() == 3
        finally:
            await manager.shutdown_all()

    asyncio.run(scenario())
    assert CappedKernelManager().max_kernels == 4  # the default, as --max-kernels says
