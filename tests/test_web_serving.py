"""Serving the status page: a `[web]` that cannot start on SIGHUP keeps the page that runs;
pages go out without waiting on the network."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest

from tests.support import Daemon, Sink, free_port, wait_for_port, write_config
from tests.test_cli import wait_for_log
from tests.test_web import WEB
from tests.webclient import Browser

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def test_a_reload_to_a_port_in_use_keeps_the_page_where_it_was(tmp_path: Path, sink: Sink):
    smtp, web = free_port(), free_port()
    config = write_config(
        tmp_path, smtp_port=smtp, relay_port=sink.port, extra=WEB.format(port=web)
    )
    with socket.socket() as taken, Daemon(config, smtp) as daemon:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        wait_for_port(web, daemon.proc)
        config.write_text(config.read_text().replace(f"port = {web}\n", f"port = {busy}\n"))
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for_log(daemon, "new status page failed")
        assert Browser(f"http://127.0.0.1:{web}").get("/signin").status == 200
        log = daemon.log.read_text()
        assert "serving as before" in log and "address already in use" in log.lower()
        alert = sink.wait_for(lambda m: "ops@helpdesk.test" in str(m["To"]))
        assert "status page could not start" in str(alert[0]["Subject"])
        # the next reload tries again: once the port is free the page moves
        taken.close()
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for_port(busy, daemon.proc)
        assert Browser(f"http://127.0.0.1:{busy}").get("/signin").status == 200
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", web), timeout=2).close()


def test_the_page_is_served_without_waiting_on_delayed_acknowledgements(tmp_path: Path):
    """A response goes out in two writes (head, body): unless TCP_NODELAY is on, the second
    waits for the client's delayed ACK, 40 ms on Linux, on every page. asyncio sets it only
    on sockets that say they are TCP."""
    import asyncio

    from helpdeskd.adapters import web
    from helpdeskd.config import load

    port = free_port()
    config = load(write_config(tmp_path, extra=f"\n[web]\nenabled = true\nport = {port}\n"))

    async def accepted_nodelay() -> int:
        found = asyncio.get_running_loop().create_future()

        def connected(reader, writer):
            found.set_result(
                writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            )
            writer.close()

        server = await asyncio.start_server(connected, sock=web.bind(config))
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return await asyncio.wait_for(found, 10)
        finally:
            writer.close()
            server.close()

    assert asyncio.run(accepted_nodelay()) == 1
