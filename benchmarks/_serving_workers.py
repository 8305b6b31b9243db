"""What the serving benchmark runs in its worker processes, some under other interpreters
(MLflow's, the ceiling's): the model and the payloads, the floor and ceiling servers, model
setup for triptych and MLflow, and the clients. The driver (``serving.py``) copies this file
outside any git checkout and runs it as ``python COPY --worker KIND ARG``; it imports nothing
from triptych's benchmarks folder.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

RESULT_MARKER = "BENCHMARK-RESULT "
MODEL_NAME = "diabetes"


class BenchmarkError(RuntimeError):
    """A server answered wrongly."""


# -- the model and the payloads (also run by the workers, in other interpreters) ------------------
def fit_model(*, frame: bool) -> tuple[Any, Any, Any]:
    """``Ridge(alpha=0.5)`` on the whole diabetes data; fitted on the DataFrame (as users do)
    or on a numpy array (the ceiling, which predicts on arrays without column names)."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = Ridge(alpha=0.5).fit(X if frame else X.to_numpy(), y)
    return model, X, y


def payloads(kind: str, X: Any) -> list[bytes]:
    """One single-row request body per row of ``X`` in the format ``kind`` serves."""
    columns = [str(c) for c in X.columns]
    rows = X.to_numpy().tolist()
    bodies: list[Any]
    if kind == "triptych":
        bodies = [{"records": [dict(zip(columns, r, strict=True))]} for r in rows]
    elif kind == "mlflow":
        bodies = [{"dataframe_split": {"columns": columns, "data": [r]}} for r in rows]
    else:
        bodies = [{"data": [r]} for r in rows]
    return [json.dumps(b).encode() for b in bodies]


def first_prediction(body: bytes) -> float:
    """The one prediction in an answer: ``{"predictions": [x]}`` (or ``[{...: x}]``, ``[[x]]``)."""
    value: Any = json.loads(body)
    if isinstance(value, dict):
        value = value.get("predictions", value.get("outputs"))
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, dict) and len(value) == 1:
        value = next(iter(value.values()))
    return float(value)


# -- workers --------------------------------------------------------------------------------------
def worker_floor(port: int) -> None:
    """A server that answers every request with a canned body: the client's own cost."""
    import asyncio

    answer = b'{"predictions": [0.0]}'
    response = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        + b"content-length: %d\r\n\r\n" % len(answer)
        + answer
    )

    class Canned(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport, self.buffer = transport, b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
                length = 0
                for line in self.buffer[:end].split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if len(self.buffer) < end + 4 + length:
                    return
                self.buffer = self.buffer[end + 4 + length :]
                self.transport.write(response)

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(Canned, "127.0.0.1", port)
        await server.serve_forever()

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


def worker_ceiling(port: int) -> None:
    """The bare ASGI app: orjson in, ``predict`` on a numpy array, orjson out."""
    import numpy as np
    import orjson
    import uvicorn

    model, _, _ = fit_model(frame=False)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        rows = np.asarray(orjson.loads(body)["data"], dtype=np.float64)
        answer = orjson.dumps({"predictions": model.predict(rows).tolist()})
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
    )


def worker_setup_triptych(workdir: Path) -> dict[str, Any]:
    """Log the model with triptych and register it as ``diabetes@champion``."""
    import triptych
    from triptych.models import registry

    model, X, _ = fit_model(frame=True)
    with triptych.start_run(experiment="benchmark"):
        logged = triptych.log_model(model, "model", input_example=X.head(5))
    version = registry.register(logged.uri, MODEL_NAME)
    registry.set_alias(MODEL_NAME, "champion", version.version, reason="benchmark")
    return {"uri": logged.uri, "version": version.version}


def worker_setup_mlflow(workdir: Path) -> dict[str, Any]:
    """Save the same model with ``mlflow.sklearn.save_model`` (run by MLflow's interpreter)."""
    import mlflow
    import sklearn

    model, X, _ = fit_model(frame=True)
    target = workdir / "mlflow-model"
    mlflow.sklearn.save_model(model, str(target), input_example=X.head(5))
    return {"path": str(target), "mlflow": mlflow.__version__, "sklearn": sklearn.__version__}


def worker_client(spec: dict[str, Any]) -> dict[str, Any]:
    """Send requests and check every answer; sequential (``count``) or timed (``until``)."""
    data = json.loads(Path(spec["payloads"]).read_text())
    bodies = [b.encode() for b in data["bodies"]]
    expected: list[float] | None = data["expected"]
    headers = {"Content-Type": "application/json"}
    port, path = spec["port"], spec["path"]
    results: list[dict[str, Any]] = []
    timed_ns: list[int] = []  # wall time of the sequential loop

    def one(conn: http.client.HTTPConnection, i: int) -> str | None:
        k = i % len(bodies)
        conn.request("POST", path, body=bodies[k], headers=headers)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            return f"HTTP {response.status}: {body[:300]!r}"
        got = first_prediction(body)  # parsed for the floor too: part of the client's cost
        if expected is not None and abs(got - expected[k]) > 1e-6 * max(1.0, abs(expected[k])):
            return f"prediction {got} for row {k}, expected {expected[k]}"
        return None

    def loop(offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        latencies: list[int] = []
        bad, first_bad, i = 0, None, offset
        for _ in range(spec.get("warmup", 0)):
            if (err := one(conn, i)) is not None:
                bad, first_bad = bad + 1, first_bad or err
            i += 1
        if "until" in spec:
            while time.time() < spec["start_at"]:
                time.sleep(0.0005)
            clock = time.perf_counter_ns
            end = spec["until"]
            while time.time() < end:
                t0 = clock()
                err = one(conn, i)
                latencies.append(clock() - t0)
                if err is not None:
                    bad, first_bad = bad + 1, first_bad or err
                i += 1
        else:
            clock = time.perf_counter_ns
            began = clock()
            for _ in range(spec["count"]):
                t0 = clock()
                err = one(conn, i)
                latencies.append(clock() - t0)
                if err is not None:
                    bad, first_bad = bad + 1, first_bad or err
                i += 1
            timed_ns.append(clock() - began)
        conn.close()
        results.append({"latencies_ns": latencies, "bad": bad, "first_bad": first_bad})

    threads = [
        threading.Thread(target=loop, args=(spec["offset"] + 97 * t,))
        for t in range(spec["threads"])
    ]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {
        "seconds": time.perf_counter() - start,
        "timed_s": timed_ns[0] / 1e9 if timed_ns else None,
        "latencies_ns": [x for r in results for x in r["latencies_ns"]],
        "bad": sum(r["bad"] for r in results),
        "first_bad": next((r["first_bad"] for r in results if r["first_bad"]), None),
    }


def worker_load(spec: dict[str, Any]) -> dict[str, Any]:
    """Concurrent load from one process: ``connections`` keep-alive connections on one
    asyncio loop (uvloop when installed), each sending its next request as soon as the
    previous answer arrived, from ``start_at`` until ``until`` (wall clock, shared by the
    processes). Cheaper per request than threads with http.client, so one CPU keeps up."""
    import asyncio

    data = json.loads(Path(spec["payloads"]).read_text())
    expected: list[float] | None = data["expected"]
    head = (
        f"POST {spec['path']} HTTP/1.1\r\nHost: 127.0.0.1:{spec['port']}\r\n"
        "Content-Type: application/json\r\nContent-Length: {n}\r\n\r\n"
    )
    requests = [head.replace("{n}", str(len(b))).encode() + b.encode() for b in data["bodies"]]
    latencies: list[int] = []
    bad = [0]
    first_bad: list[str] = []

    async def connection(offset: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", spec["port"])
        clock = time.perf_counter_ns

        async def one(i: int) -> int:
            k = i % len(requests)
            t0 = clock()
            writer.write(requests[k])
            header = await reader.readuntil(b"\r\n\r\n")
            length = -1
            for line in header.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length < 0:
                raise BenchmarkError(f"an answer without content-length: {header!r}")
            body = await reader.readexactly(length)
            elapsed = clock() - t0
            status = int(header[9:12])
            got = first_prediction(body) if status == 200 else None
            if got is None or (
                expected is not None and abs(got - expected[k]) > 1e-6 * max(1.0, abs(expected[k]))
            ):
                bad[0] += 1
                if not first_bad:
                    first_bad.append(f"HTTP {status}: {body[:300]!r}")
            return elapsed

        i = offset
        for _ in range(spec.get("warmup", 0)):
            await one(i)
            i += 1
        await asyncio.sleep(max(0.0, spec["start_at"] - time.time()))
        while time.time() < spec["until"]:
            latencies.append(await one(i))
            i += 1
        writer.close()

    async def main() -> None:
        await asyncio.gather(*(connection(spec["offset"] + 97 * c) for c in range(spec["threads"])))

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
    return {
        "latencies_ns": latencies,
        "bad": bad[0],
        "first_bad": first_bad[0] if first_bad else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a serving benchmark worker")
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "ARG"), required=True)
    kind, arg = parser.parse_args(argv).worker
    if kind == "floor":
        worker_floor(int(arg))
    elif kind == "ceiling":
        worker_ceiling(int(arg))
    elif kind in ("client", "load"):  # big results: into the file the spec names
        spec = json.loads(arg)
        work = worker_client if kind == "client" else worker_load
        Path(spec["out"]).write_text(json.dumps(work(spec)))
    else:
        run = {"setup-triptych": worker_setup_triptych, "setup-mlflow": worker_setup_mlflow}
        print(RESULT_MARKER + json.dumps(run[kind](Path(arg))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
