"""Load benchmark for `POST /twilio/inbound`: signed webhooks through the real bridge.

Three processes on loopback: this driver, the bridge (`bridge.app:app` under
uvicorn) and a fake ElevenLabs register-call upstream (fixed latency). The driver
keeps `--concurrency` webhooks in flight until exactly `--requests` have been
answered, then reports throughput against the ideal bound `concurrency / latency`
and the latency the bridge adds on top of the upstream's.

All three share the machine's cores, so the driver and the fake are built to cost
as little CPU per call as possible (benchmarks/lean.py: raw asyncio protocols on
uvloop). `--driver aiohttp` and `--fake starlette` bring back the heavier ones.

    python benchmarks/inbound_load.py --concurrency 200 --latency 0.15 --requests 4000
    python benchmarks/inbound_load.py --baseline       # bridge run, then the driver alone
    python benchmarks/inbound_load.py --direct --json  # driver -> fake upstream only
    python benchmarks/inbound_load.py --workers 2      # uvicorn --workers 2 for the bridge
    python benchmarks/inbound_load.py --transport aiohttp   # the bridge's UPSTREAM_TRANSPORT
    python benchmarks/inbound_load.py --compare-transports  # pooled, aiohttp, direct; one table
    python benchmarks/inbound_load.py --lookup-latency 0.05  # LOOKUP_URL: a 50 ms lookup hook

See benchmarks/README.md for what each number means and measured results.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, Literal, Protocol
from urllib.parse import urlencode, urlsplit

import aiohttp
from lean import ENV_API_KEY, LeanClient, RunResult, classify, raw_request

HOST = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
INBOUND_PATH = "/twilio/inbound"
REGISTER_CALL_PATH = "/v1/convai/twilio/register-call"
AUTH_TOKEN = "bench-twilio-auth-token"
API_KEY = "bench-elevenlabs-key"
AGENT_ID = "agent_bench"
ACCOUNT_SID = "AC" + "0" * 32
# The lookup hook (--lookup-latency): served by the lean fake, signed with this.
LOOKUP_PATH = "/lookup"
LOOKUP_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
# Environment the fake-upstream subprocess reads (`fake_app` below, or lean.py).
FAKE_ENV_LATENCY = "BENCH_FAKE_LATENCY"
FAKE_ENV_API_KEY = ENV_API_KEY
FakeKind = Literal["lean", "starlette"]
DriverKind = Literal["lean", "aiohttp"]
# The bridge's upstream transport (its UPSTREAM_TRANSPORT setting).
TransportKind = Literal["pooled", "aiohttp"]
TRANSPORTS: tuple[TransportKind, ...] = ("pooled", "aiohttp")
# Bridge settings that would change what is measured if inherited from the shell.
SCRUBBED_ENV = (
    "ROUTES_FILE",
    "BRIDGE_INSECURE_SKIP_TWILIO_SIGNATURE",
    "INBOUND_DEADLINE_SECONDS",
    "TRUST_FORWARDED_HEADERS",
    "UPSTREAM_MAX_CONNECTIONS",
    "UPSTREAM_TRANSPORT",
    "LOOKUP_URL",
    "LOOKUP_SECRET",
    "LOOKUP_TIMEOUT_SECONDS",
    "EVENTS_WEBHOOK_URL",
    "EVENTS_WEBHOOK_SECRET",
    # The aiohttp transport honours these (trust_env); the fake is on loopback.
    *(f"{name}_proxy" for name in ("http", "https", "all", "no")),
    *(f"{name}_PROXY" for name in ("HTTP", "HTTPS", "ALL", "NO")),
)


# --- the Starlette fake upstream (--fake starlette), in its own uvicorn process ----


def fake_app() -> Any:
    """uvicorn `--factory` target: FakeElevenLabs configured from the environment."""
    from bridge.fakes import FakeElevenLabs

    fake = FakeElevenLabs(
        api_key=os.environ.get(FAKE_ENV_API_KEY, API_KEY),
        latency=float(os.environ.get(FAKE_ENV_LATENCY, "0.15")),
        keep_requests=False,  # an unbounded list would grow for the whole run
    )
    return fake.app


# --- subprocesses ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    def cpu_seconds(self) -> float | None:
        """CPU time of the server and its children so far (Linux /proc), or None."""
        try:
            return process_tree_cpu(self.process.pid)
        except (OSError, ValueError, IndexError):
            return None

    def log_tail(self, limit: int = 2000) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")[-limit:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def process_tree_cpu(pid: int) -> float:
    """utime + stime, in seconds, of `pid` and its live descendants (uvicorn --workers)."""
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        stat = (task / "stat").read_text()
        # Fields after the parenthesised command name; utime and stime are 14 and 15.
        fields = stat.rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for child in (task / "children").read_text().split():
            total += process_tree_cpu(int(child))
    return total


def machine_busy_seconds() -> float | None:
    """Busy CPU seconds of the whole machine since boot (Linux /proc/stat), or None."""
    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def uvicorn_command(
    target: str, port: int, *, factory: bool = False, extra: Sequence[str] = ()
) -> list[str]:
    factory_flags = ["--factory", "--app-dir", str(BENCH_DIR)] if factory else []
    return [
        sys.executable, "-m", "uvicorn", target, *factory_flags,
        "--host", HOST, "--port", str(port),
        "--loop", "uvloop", "--http", "httptools",
        "--log-level", "warning", "--no-access-log", *extra,
    ]  # fmt: skip


def _die_with_parent() -> None:
    # Runs in the child before exec: SIGTERM it if the driver dies without cleaning up.
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


@contextlib.contextmanager
def server_process(
    name: str, command: list[str], env: dict[str, str], port: int
) -> Iterator[Server]:
    """The server runs inside the `with`, and is stopped on the way out, always."""
    # Output goes to a temp file, never a pipe: a full pipe would stall the server.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        server = Server(name, port, process, log)
        # On stderr, so a profiler can attach: py-spy record -p PID
        print(f"started {name}: pid {process.pid}, port {port}", file=sys.stderr)
        try:
            yield server
        finally:
            server.stop()


def start_server(
    stack: ExitStack, name: str, command: list[str], env: dict[str, str], port: int
) -> Server:
    return stack.enter_context(server_process(name, command, env, port))


def child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PROJECT_DIR), env.get("PYTHONPATH", "")) if p
    )
    env.update(extra)
    return env


def start_fake(
    stack: ExitStack, latency: float, kind: FakeKind, lookup_latency: float | None = None
) -> Server:
    port = free_port()
    env = child_env({FAKE_ENV_LATENCY: repr(latency), FAKE_ENV_API_KEY: API_KEY})
    if kind == "lean":
        command = [
            sys.executable, str(BENCH_DIR / "lean.py"),
            "--host", HOST, "--port", str(port), "--latency", repr(latency),
            "--lookup-latency", repr(lookup_latency or 0.0),
        ]  # fmt: skip
    else:
        command = uvicorn_command("inbound_load:fake_app", port, factory=True)
    return start_server(stack, "fake-elevenlabs", command, env, port)


# The lean fake answers /healthz; for the Starlette one any status (a 404) means up.
FAKE_READY_PATH: dict[FakeKind, str] = {"lean": "/healthz", "starlette": "/"}


def start_bridge(
    stack: ExitStack,
    upstream_port: int,
    concurrency: int,
    log_level: str,
    *,
    transport: TransportKind = "pooled",
    target: str = "bridge.app:app",
    workers: int = 1,
    extra: Sequence[str] = (),
    lookup: bool = False,
) -> Server:
    port = free_port()
    # A fresh database per bridge, migrated first: the bridge refuses an unmigrated one.
    database = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "bench.sqlite3"
    env = child_env(
        {
            "DATABASE_URL": f"sqlite:///{database}",
            "ELEVENLABS_API_KEY": API_KEY,
            "ELEVENLABS_AGENT_ID": AGENT_ID,
            "ELEVENLABS_API_BASE": f"http://{HOST}:{upstream_port}",
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            # The URL the driver signs; the bridge rebuilds it from this.
            "PUBLIC_BASE_URL": f"http://{HOST}:{port}",
            "LOG_LEVEL": log_level,
            "UPSTREAM_MAX_CONNECTIONS": str(max(500, concurrency)),
            "UPSTREAM_TRANSPORT": transport,
            **(
                {
                    "LOOKUP_URL": f"http://{HOST}:{upstream_port}{LOOKUP_PATH}",
                    "LOOKUP_SECRET": LOOKUP_SECRET,
                }
                if lookup
                else {}
            ),
        }
    )
    subprocess.run(
        [sys.executable, "-m", "bridge.cli", "db", "upgrade"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=60,
    )
    if workers > 1:
        extra = ["--workers", str(workers), *extra]
    command = uvicorn_command(target, port, extra=extra)
    return start_server(stack, "bridge", command, env, port)


async def wait_ready(server: Server, path: str, timeout: float) -> None:
    """Until `path` answers (any HTTP status means the server is listening)."""
    deadline = time.monotonic() + timeout
    url = f"http://{HOST}:{server.port}{path}"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
        while True:
            if server.process.poll() is not None:
                raise RuntimeError(
                    f"{server.name} exited with {server.process.returncode}:\n" + server.log_tail()
                )
            try:
                async with session.get(url) as response:
                    await response.read()
                    if path != "/healthz" or response.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{server.name} not ready after {timeout:g} s:\n" + server.log_tail()
                )
            await asyncio.sleep(0.05)


# --- requests -------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """A request built (and signed) before the clock starts."""

    body: bytes
    headers: dict[str, str]


def webhook_params(index: int) -> dict[str, str]:
    """The fields Twilio posts for a ringing inbound call."""
    caller = f"+1415555{index % 10000:04d}"
    return {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": f"CA{index:032x}",
        "CallStatus": "ringing",
        "Called": "+14155550100",
        "CalledCity": "SAN FRANCISCO",
        "CalledCountry": "US",
        "CalledState": "CA",
        "CalledZip": "94105",
        "Caller": caller,
        "CallerCity": "OAKLAND",
        "CallerCountry": "US",
        "CallerState": "CA",
        "CallerZip": "94612",
        "Direction": "inbound",
        "From": caller,
        "FromCity": "OAKLAND",
        "FromCountry": "US",
        "FromState": "CA",
        "FromZip": "94612",
        "To": "+14155550100",
        "ToCity": "SAN FRANCISCO",
        "ToCountry": "US",
        "ToState": "CA",
        "ToZip": "94105",
    }


def prepare_webhooks(url: str, count: int, offset: int) -> list[Prepared]:
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(AUTH_TOKEN)
    prepared = []
    for index in range(offset, offset + count):
        params = webhook_params(index)
        prepared.append(
            Prepared(
                body=urlencode(params).encode(),
                headers={
                    "content-type": "application/x-www-form-urlencoded",
                    "x-twilio-signature": validator.compute_signature(url, params),
                },
            )
        )
    return prepared


def prepare_register_calls(count: int, offset: int) -> list[Prepared]:
    """What the bridge itself sends upstream, for the driver-only baseline."""
    headers = {
        "content-type": "application/json",
        "xi-api-key": API_KEY,
        "accept": "application/xml",
    }
    prepared = []
    for index in range(offset, offset + count):
        params = webhook_params(index)
        body = {
            "agent_id": AGENT_ID,
            "from_number": params["From"],
            "to_number": params["To"],
            "direction": "inbound",
        }
        prepared.append(Prepared(json.dumps(body).encode(), headers))
    return prepared


# --- the drivers ----------------------------------------------------------------


Send = Callable[[], Awaitable[RunResult]]


class Driver(Protocol):
    def load(self, requests: Sequence[Prepared]) -> Send:
        """Encode `requests` now, before the clock starts; the callable sends them all."""
        ...

    async def close(self) -> None: ...


class LeanDriver:
    """The default: request bytes built up front, written to raw keep-alive connections."""

    def __init__(self, url: str, args: argparse.Namespace) -> None:
        target = urlsplit(url)
        if target.hostname is None or target.port is None:
            raise ValueError(f"need host and port in {url!r}")
        self.host = target.netloc
        self.path = target.path
        self.timeout = args.timeout
        self.client = LeanClient(
            target.hostname, target.port, args.concurrency, request_timeout=args.request_timeout
        )

    def load(self, requests: Sequence[Prepared]) -> Send:
        raw = [raw_request("POST", self.host, self.path, r.headers, r.body) for r in requests]

        def send() -> Awaitable[RunResult]:
            return self.client.run(raw, hard_timeout=self.timeout)

        return send

    async def close(self) -> None:
        await self.client.close()


class AiohttpDriver:
    """`--driver aiohttp`: one ClientSession, one task per connection. ~10x the CPU per call."""

    def __init__(self, url: str, args: argparse.Namespace) -> None:
        self.url = url
        self.args = args
        connector = aiohttp.TCPConnector(limit=args.concurrency, force_close=False)
        self.session = aiohttp.ClientSession(connector=connector)

    def load(self, requests: Sequence[Prepared]) -> Send:
        def send() -> Awaitable[RunResult]:
            return drive_aiohttp(
                self.url, requests, self.args.concurrency, hard_timeout=self.args.timeout,
                request_timeout=self.args.request_timeout, session=self.session,
            )  # fmt: skip

        return send

    async def close(self) -> None:
        await self.session.close()


def open_driver(kind: DriverKind, url: str, args: argparse.Namespace) -> Driver:
    return LeanDriver(url, args) if kind == "lean" else AiohttpDriver(url, args)


async def drive_aiohttp(
    url: str,
    requests: Sequence[Prepared],
    concurrency: int,
    *,
    hard_timeout: float,
    request_timeout: float,
    session: aiohttp.ClientSession,
) -> RunResult:
    """Send every request exactly once with at most `concurrency` in flight."""
    result = RunResult()
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        timeout = aiohttp.ClientTimeout(total=request_timeout)
        while next_index < len(requests):
            request = requests[next_index]
            next_index += 1  # no await in between: tasks never take the same index
            started = time.perf_counter()
            try:
                async with session.post(
                    url, data=request.body, headers=request.headers, timeout=timeout
                ) as response:
                    outcome = classify(response.status, await response.read())
            except Exception as exc:  # connection errors, timeouts: counted, never fatal
                outcome = type(exc).__name__
            if outcome == "ok":
                result.latencies.append(time.perf_counter() - started)
            result.outcomes[outcome] += 1

    started = time.perf_counter()
    tasks = [asyncio.create_task(worker()) for _ in range(min(concurrency, len(requests)))]
    try:
        async with asyncio.timeout(hard_timeout):
            await asyncio.gather(*tasks)
    except TimeoutError:
        result.timed_out = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    result.elapsed = time.perf_counter() - started
    # Requests cut off by the hard timeout, or never sent, are failures too.
    missing = len(requests) - sum(result.outcomes.values())
    if missing:
        result.outcomes["hard_timeout"] += missing
    return result


# --- report ---------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (nan when empty)."""
    if not sorted_values:
        return math.nan
    rank = max(math.ceil(fraction * len(sorted_values)), 1)
    return sorted_values[rank - 1]


@dataclass
class Report:
    mode: str  # "bridge" or "direct"
    requests: int
    concurrency: int
    upstream_latency_ms: float
    elapsed_s: float
    throughput_per_s: float
    ideal_per_s: float
    ratio: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    overhead_p50_ms: float
    overhead_p99_ms: float
    failures: int
    outcomes: dict[str, int]
    # CPU milliseconds per request, per process, during the measured run (None: unknown).
    cpu_ms_per_request: dict[str, float | None]
    # driver + fake: what the load generator costs, taken from the bridge's CPU share.
    harness_cpu_ms_per_request: float | None
    # Machine-wide: cores busy on average during the run, and how many of them were
    # busy with processes other than these three (another job skews the numbers).
    cores: int
    cores_busy: float | None
    cores_busy_other: float | None
    driver: str = "lean"
    fake: str = "lean"
    # The bridge's uvicorn --workers, LOG_LEVEL and UPSTREAM_TRANSPORT (bridge mode only).
    workers: int | None = None
    log_level: str | None = None
    transport: str | None = None
    # The lookup hook's latency (--lookup-latency), part of the ideal bound; None: no lookup.
    lookup_latency_ms: float | None = None


def build_report(
    mode: str,
    args: argparse.Namespace,
    result: RunResult,
    cpu: dict[str, float | None],
    machine_busy: float | None,
    transport: TransportKind | None,
) -> Report:
    latencies = sorted(result.latencies)
    ms = 1000.0
    # Only calls that got agent TwiML count; failures make neither throughput nor latency.
    ok = result.outcomes.get("ok", 0)
    answered = max(args.requests - result.outcomes.get("hard_timeout", 0), 1)
    throughput = ok / result.elapsed if result.elapsed else 0.0
    # What one call waits for upstream: register-call, and the lookup hook before it.
    lookup = args.lookup_latency if mode == "bridge" and args.lookup_latency else 0.0
    waited = args.latency + lookup
    # With no upstream latency there is no bound to compare against.
    ideal = args.concurrency / waited if waited else math.nan
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    cores_busy = cores_other = None
    if machine_busy is not None and result.elapsed:
        cores_busy = round(machine_busy / result.elapsed, 2)
        own = sum(v for v in cpu.values() if v is not None)
        cores_other = round(max(machine_busy - own, 0.0) / result.elapsed, 2)
    cpu_ms = {
        name: None if seconds is None else round(seconds / answered * ms, 3)
        for name, seconds in cpu.items()
    }
    harness = [v for k, v in cpu_ms.items() if k != "bridge"]
    harness_total = None if None in harness else sum(v for v in harness if v is not None)
    return Report(
        mode=mode,
        requests=args.requests,
        concurrency=args.concurrency,
        upstream_latency_ms=args.latency * ms,
        elapsed_s=round(result.elapsed, 3),
        throughput_per_s=round(throughput, 1),
        ideal_per_s=round(ideal, 1),
        ratio=round(throughput / ideal, 3),
        p50_ms=round(p50 * ms, 2),
        p90_ms=round(percentile(latencies, 0.90) * ms, 2),
        p99_ms=round(p99 * ms, 2),
        max_ms=round((latencies[-1] if latencies else math.nan) * ms, 2),
        overhead_p50_ms=round((p50 - waited) * ms, 2),
        overhead_p99_ms=round((p99 - waited) * ms, 2),
        failures=sum(n for outcome, n in result.outcomes.items() if outcome != "ok"),
        outcomes=dict(result.outcomes),
        cpu_ms_per_request=cpu_ms,
        harness_cpu_ms_per_request=None if harness_total is None else round(harness_total, 3),
        cores=os.cpu_count() or 0,
        cores_busy=cores_busy,
        cores_busy_other=cores_other,
        driver=args.driver,
        fake=args.fake,
        workers=args.workers if mode == "bridge" else None,
        log_level=args.log_level if mode == "bridge" else None,
        transport=transport if mode == "bridge" else None,
        lookup_latency_ms=lookup * ms if lookup else None,
    )


def format_report(report: Report) -> str:
    cpu = ", ".join(
        f"{name} {'?' if value is None else f'{value:.3f}'}"
        for name, value in report.cpu_ms_per_request.items()
    )
    harness = f"driver {report.driver}, fake {report.fake}"
    harness_ms = report.harness_cpu_ms_per_request
    harness_cpu = "?" if harness_ms is None else f"{harness_ms:.3f}"
    title = (
        f"bridge (transport {report.transport}, workers {report.workers}, "
        f"LOG_LEVEL={report.log_level}; {harness})"
        if report.mode == "bridge"
        else f"direct (driver -> fake upstream, no bridge; {harness})"
    )
    lines = [
        f"== {title}",
        f"requests          {report.requests}",
        f"concurrency       {report.concurrency}",
        f"upstream latency  {report.upstream_latency_ms:.0f} ms"
        + (
            f" + lookup {report.lookup_latency_ms:.0f} ms"
            if report.lookup_latency_ms is not None
            else ""
        ),
        f"elapsed           {report.elapsed_s:.3f} s",
        f"throughput        {report.throughput_per_s:.1f} calls/s",
        f"ideal bound       {report.ideal_per_s:.1f} calls/s (concurrency / "
        + ("(latency + lookup))" if report.lookup_latency_ms is not None else "latency)"),
        f"ratio             {report.ratio:.3f}",
        f"latency p50/p90/p99  {report.p50_ms:.1f} / {report.p90_ms:.1f} / "
        f"{report.p99_ms:.1f} ms (max {report.max_ms:.1f})",
        f"overhead p50/p99  {report.overhead_p50_ms:.1f} / {report.overhead_p99_ms:.1f} ms",
        f"failures          {report.failures}"
        + (f"  {report.outcomes}" if report.failures else ""),
        f"cpu ms/request    {cpu}",
        f"harness cpu       {harness_cpu} ms/request (driver + fake)",
    ]
    if report.cores_busy is not None:
        lines.append(
            f"machine cpu       {report.cores_busy:.2f} of {report.cores} cores busy"
            f" ({report.cores_busy_other:.2f} by other processes)"
        )
    return "\n".join(lines)


# --- runs -----------------------------------------------------------------------


def driver_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measured_run(
    mode: str,
    args: argparse.Namespace,
    url: str,
    prepare: Callable[[int, int], list[Prepared]],
    servers: Sequence[Server],
    transport: TransportKind | None = None,
) -> Report:
    driver = open_driver(args.driver, url, args)
    try:
        # Everything is built, signed and encoded up front: the clock sees only HTTP work.
        send_warmup = driver.load(prepare(args.warmup, 10**9)) if args.warmup else None
        send_measured = driver.load(prepare(args.requests, 0))
        if send_warmup is not None:
            # Opens the driver's and the bridge's connection pools at full width.
            warm = await send_warmup()
            if warm.outcomes.get("ok", 0) != args.warmup:
                print(f"warning: warm-up outcomes {dict(warm.outcomes)}", file=sys.stderr)
        before = {s.name: s.cpu_seconds() for s in servers}
        driver_before = driver_cpu_seconds()
        machine_before = machine_busy_seconds()
        result = await send_measured()
        driver_cpu = driver_cpu_seconds() - driver_before
        machine_after = machine_busy_seconds()
        after = {s.name: s.cpu_seconds() for s in servers}
        if result.timed_out:
            print(f"warning: {mode} run hit the --timeout of {args.timeout:g} s", file=sys.stderr)
    finally:
        await driver.close()
    cpu: dict[str, float | None] = {"driver": driver_cpu}
    for name, start in before.items():
        end = after[name]
        cpu[name] = None if start is None or end is None else end - start
    machine = None
    if machine_before is not None and machine_after is not None:
        machine = machine_after - machine_before
    return build_report(mode, args, result, cpu, machine, transport)


async def run_bridge(args: argparse.Namespace, fake: Server, transport: TransportKind) -> Report:
    """One bridge process, started for this run only, in front of the running `fake`."""
    with ExitStack() as stack:
        bridge = start_bridge(
            stack, fake.port, args.concurrency, args.log_level,
            transport=transport, workers=args.workers, lookup=args.lookup_latency is not None,
        )  # fmt: skip
        await wait_ready(bridge, "/healthz", args.startup_timeout)
        url = f"http://{HOST}:{bridge.port}{INBOUND_PATH}"

        def prepare(count: int, offset: int) -> list[Prepared]:
            return prepare_webhooks(url, count, offset)

        report = await measured_run("bridge", args, url, prepare, [bridge, fake], transport)
        if report.failures:
            print(f"bridge log tail:\n{bridge.log_tail()}", file=sys.stderr)
        return report


async def run_direct(args: argparse.Namespace, fake: Server) -> Report:
    url = f"http://{HOST}:{fake.port}{REGISTER_CALL_PATH}"
    return await measured_run("direct", args, url, prepare_register_calls, [fake])


async def run(args: argparse.Namespace) -> list[Report]:
    # SIGTERM cancels the run, so the servers are stopped on the way out (as on Ctrl-C).
    task = asyncio.current_task()
    if task is not None:
        with contextlib.suppress(NotImplementedError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    transports: Sequence[TransportKind] = ()
    if args.compare_transports:
        transports = TRANSPORTS
    elif not args.direct:
        transports = (args.transport,)
    reports = []
    with ExitStack() as stack:
        # One fake upstream serves every run of this invocation; each bridge run gets
        # a fresh bridge process.
        fake = start_fake(stack, args.latency, args.fake, args.lookup_latency)
        await wait_ready(fake, FAKE_READY_PATH[args.fake], args.startup_timeout)
        for transport in transports:
            reports.append(await run_bridge(args, fake, transport))
        if args.direct or args.baseline or args.compare_transports:
            reports.append(await run_direct(args, fake))
    return reports


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator or math.isnan(numerator + denominator):
        return None
    return round(numerator / denominator, 3)


def transport_ratios(reports: Sequence[Report]) -> dict[str, float | None]:
    """pooled / aiohttp, from the bridge runs of one --compare-transports invocation."""
    by_transport = {r.transport: r for r in reports if r.mode == "bridge"}
    pooled, aiohttp_ = by_transport["pooled"], by_transport["aiohttp"]
    return {
        "throughput": _ratio(pooled.throughput_per_s, aiohttp_.throughput_per_s),
        "bridge_cpu_ms_per_request": _ratio(
            pooled.cpu_ms_per_request.get("bridge"), aiohttp_.cpu_ms_per_request.get("bridge")
        ),
    }


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None or math.isnan(value) else format(value, spec)


def format_comparison(reports: Sequence[Report]) -> str:
    """One table: each transport's bridge run and the direct baseline, same load."""
    first = reports[0]
    workers = next((r.workers for r in reports if r.workers is not None), 1)
    header = (
        f"{'run':<18} {'calls/s':>8} {'ratio':>6} {'overhead p50/p99 ms':>20}"
        f" {'bridge cpu ms/call':>19} {'harness cpu ms/call':>20} {'cores busy (other)':>19}"
        f" {'failures':>8}"
    )
    lines = [
        f"== transports compared: {first.requests} calls, {first.concurrency} in flight, "
        f"upstream {first.upstream_latency_ms:.0f} ms, ideal {first.ideal_per_s:.1f} calls/s; "
        f"bridge workers {workers}, driver {first.driver}, fake {first.fake}",
        header,
    ]
    for r in reports:
        name = f"bridge {r.transport}" if r.mode == "bridge" else "direct (no bridge)"
        overhead = f"{_num(r.overhead_p50_ms, '.1f')} / {_num(r.overhead_p99_ms, '.1f')}"
        busy = f"{_num(r.cores_busy, '.2f')} ({_num(r.cores_busy_other, '.2f')})"
        lines.append(
            f"{name:<18} {r.throughput_per_s:>8.1f} {r.ratio:>6.3f} {overhead:>20}"
            f" {_num(r.cpu_ms_per_request.get('bridge'), '.3f'):>19}"
            f" {_num(r.harness_cpu_ms_per_request, '.3f'):>20} {busy:>19} {r.failures:>8}"
        )
    ratios = transport_ratios(reports)
    lines.append(
        f"pooled / aiohttp: throughput {_num(ratios['throughput'], '.3f')}, "
        f"bridge cpu per call {_num(ratios['bridge_cpu_ms_per_request'], '.3f')}"
    )
    return "\n".join(lines)


def new_loop() -> asyncio.AbstractEventLoop:
    # The driver shares the CPUs with both servers, so it runs on uvloop as they do.
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=4000, help="measured webhooks")
    parser.add_argument("--concurrency", type=int, default=200, help="webhooks in flight")
    parser.add_argument("--latency", type=float, default=0.15, help="fake upstream latency, s")
    parser.add_argument("--warmup", type=int, default=None, help="default: 2 x concurrency")
    parser.add_argument("--timeout", type=float, default=120.0, help="hard limit per run, s")
    parser.add_argument("--request-timeout", type=float, default=20.0, help="per request, s")
    parser.add_argument("--startup-timeout", type=float, default=20.0)
    parser.add_argument(
        "--log-level", default="WARNING", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="the bridge's LOG_LEVEL (INFO logs one line per call)",
    )  # fmt: skip
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--direct", action="store_true", help="driver -> fake upstream only")
    mode.add_argument("--baseline", action="store_true", help="the bridge run, then --direct")
    mode.add_argument(
        "--compare-transports", action="store_true",
        help="bridge with each UPSTREAM_TRANSPORT (pooled, then aiohttp), then --direct",
    )  # fmt: skip
    parser.add_argument(
        "--transport", choices=TRANSPORTS, default=None,
        help="the bridge's UPSTREAM_TRANSPORT (default pooled)",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=int, default=1, help="uvicorn --workers for the bridge (default 1)"
    )
    parser.add_argument(
        "--driver", default="lean", choices=("lean", "aiohttp"),
        help="lean: raw asyncio keep-alive client (default); aiohttp: ClientSession",
    )  # fmt: skip
    parser.add_argument(
        "--fake", default="lean", choices=("lean", "starlette"),
        help="lean: raw asyncio server (default); starlette: FakeElevenLabs under uvicorn",
    )  # fmt: skip
    parser.add_argument(
        "--lookup-latency", type=float, default=None, metavar="SECONDS",
        help="put a lookup hook (LOOKUP_URL, served by the lean fake) of this latency in the "
        "path; the ideal bound becomes concurrency / (latency + lookup latency)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    if args.lookup_latency is not None and (args.lookup_latency < 0 or args.fake != "lean"):
        parser.error("--lookup-latency needs the lean fake (--fake lean) and must be >= 0")
    if args.requests < 1 or args.concurrency < 1 or args.latency < 0 or args.workers < 1:
        parser.error("--requests, --concurrency and --workers must be >= 1, --latency >= 0")
    if args.compare_transports and args.transport is not None:
        parser.error("--compare-transports runs every --transport; give one or the other")
    if args.transport is None:
        args.transport = "pooled"
    if args.warmup is None:
        args.warmup = 2 * args.concurrency
    return args


def _json_safe(data: dict[str, Any]) -> dict[str, Any]:
    # No successful request leaves percentiles as nan, which JSON cannot carry.
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in data.items()}


def json_output(args: argparse.Namespace, reports: Sequence[Report]) -> dict[str, Any]:
    """One run: its report. --baseline: {"bridge": ..., "direct": ...}.

    --compare-transports: {"bridge_pooled": ..., "bridge_aiohttp": ..., "direct": ...,
    "pooled_over_aiohttp": {"throughput": ..., "bridge_cpu_ms_per_request": ...}}.
    """
    data = {
        f"bridge_{r.transport}" if args.compare_transports and r.mode == "bridge" else r.mode: (
            _json_safe(asdict(r))
        )
        for r in reports
    }
    if args.compare_transports:
        data["pooled_over_aiohttp"] = transport_ratios(reports)
    return next(iter(data.values())) if len(data) == 1 else data


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with asyncio.Runner(loop_factory=new_loop) as runner:
            reports = runner.run(run(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; servers stopped", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(json_output(args, reports), indent=2))
    else:
        text = [format_report(r) for r in reports]
        if args.compare_transports:
            text.append(format_comparison(reports))
        print("\n\n".join(text))
    return 1 if any(r.failures for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
