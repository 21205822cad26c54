"""An aiohttp app on 127.0.0.1, on a thread and event loop of its own: the base of the fakes
whose websockets need one (DingTalk's stream gateway, Feishu's long-connection gateway)."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web


class LoopServer:
    name = "fake"

    def __init__(self) -> None:
        self.port = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._sockets: list[web.WebSocketResponse] = []  # closed when the server stops
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def on_loop(self) -> None:
        """Set up what lives on the loop (asyncio events), before the first request."""

    def start(self):  # noqa: ANN201 - the subclass, for chaining
        self._thread = threading.Thread(target=self._run, daemon=True, name=self.name)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError(f"{self.name} did not start")
        return self

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self._serve())
        self.loop.close()

    async def _serve(self) -> None:
        app = web.Application()
        self.routes(app)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = runner.addresses[0][1]
        self._stop = asyncio.Event()
        self.on_loop()
        self._started.set()
        await self._stop.wait()
        for socket in list(self._sockets):
            await socket.close()
        await runner.cleanup()
