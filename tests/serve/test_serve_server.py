"""Server internals users feel as latency: Nagle off on every connection, torch threads where they belong."""

import asyncio
import socket
import sys

import pytest
import torch

from dogclf.extras import MissingExtraError
from dogclf.serve.config import ServeConfig
from dogclf.serve.guards import guarded_protocol
from dogclf.serve.server import bind_socket, create_app, event_loop, http_stack


def test_accepted_connections_have_nagle_off():
    """With Nagle on, a keep-alive client waits a delayed ACK (~40 ms) for the body of every response."""

    async def scenario():
        accepted = asyncio.get_running_loop().create_future()

        def on_connect(reader, writer):
            sock = writer.get_extra_info("socket")
            accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(on_connect, sock=bind_socket("127.0.0.1", 0))
        port = server.sockets[0].getsockname()[1]
        async with server:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            nodelay = await asyncio.wait_for(accepted, 10)
            writer.close()
        return nodelay

    assert asyncio.run(scenario()) != 0


@pytest.mark.parametrize(
    ("cfg", "device", "cpus", "plan"),
    [
        (ServeConfig(), "cpu", 2, (2, 1)),
        (ServeConfig(), "cpu", 16, (4, 4)),
        (ServeConfig(), "cpu", 1, (1, 1)),
        (ServeConfig(), "cuda", 8, (1, 8)),
        (ServeConfig(workers=1), "cpu", 8, (1, 8)),
        (ServeConfig(workers=3, threads=5), "cpu", 8, (3, 5)),
    ],
)
def test_thread_plan_shares_the_cores_and_explicit_settings_win(cfg, device, cpus, plan):
    assert cfg.thread_plan(device, cpus) == plan


@pytest.mark.parametrize(
    ("cfg", "engine", "plan"),
    [
        (ServeConfig(), "openvino", (1, 8)),  # its own thread pool: one feeder thread, all cores
        (ServeConfig(), "onnx", (4, 2)),
        (ServeConfig(), "compile", (4, 2)),
        (ServeConfig(workers=2), "openvino", (2, 4)),
    ],
)
def test_thread_plan_gives_openvino_one_model_thread_with_every_core(cfg, engine, plan):
    assert cfg.thread_plan("cpu", 8, engine) == plan


def test_model_threads_get_their_torch_threads_and_decode_threads_one(tiny_run):
    """OpenMP thread counts are per calling thread: the server must set them on the threads that run torch."""
    app = create_app(tiny_run, ServeConfig(precision="fp32", workers=2, threads=3, decode_threads=2))
    state = app.state.endpoint

    async def scenario():
        async with app.router.lifespan_context(app):
            while not state.api.ready:
                await asyncio.sleep(0.05)
            model = await asyncio.gather(*(state.batcher.run_on_model_thread(torch.get_num_threads) for _ in range(4)))
            loop = asyncio.get_running_loop()
            decode = await asyncio.gather(
                *(loop.run_in_executor(state.decode_pool, torch.get_num_threads) for _ in range(4))
            )
            return model, decode

    model, decode = asyncio.run(scenario())
    assert (state.workers, state.threads, state.decode_threads) == (2, 3, 2)
    assert set(model) == {3} and set(decode) == {1}


@pytest.mark.parametrize(("module", "choose", "fast", "fallback"), [
    ("httptools", http_stack, "httptools", "h11"),
    ("uvloop", event_loop, "uvloop", "asyncio"),
])  # fmt: skip
def test_auto_picks_the_c_stack_when_installed_and_falls_back_without_it(monkeypatch, module, choose, fast, fallback):
    assert choose("auto") == fast and choose(fallback) == fallback  # both are installed with dogclf[serve]
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed: importing it raises ImportError
    assert choose("auto") == fallback
    with pytest.raises(MissingExtraError, match=rf"--\w+ {fast} needs {fast}.*pip install 'dogclf\[serve\]'"):
        choose(fast)


def test_guarded_protocols_subclass_uvicorns_and_carry_the_limits():
    from uvicorn.protocols.http.h11_impl import H11Protocol
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    for stack, base in (("httptools", HttpToolsProtocol), ("h11", H11Protocol)):
        protocol = guarded_protocol(stack, 2.5, 4096)
        assert issubclass(protocol, base) and (protocol.head_timeout_s, protocol.max_head_bytes) == (2.5, 4096)
