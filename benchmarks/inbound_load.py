"""Load benchmark for `POST /twilio/inbound`: signed webhooks through the real bridge.

Three processes on loopback: this driver (aiohttp), the bridge (`bridge.app:app`
under uvicorn) and a fake ElevenLabs register-call upstream (uvicorn, fixed
latency). The driver keeps `--concurrency` webhooks in flight until exactly
`--requests` have been answered, then reports throughput against the ideal
bound `concurrency / latency` and the latency the bridge adds on top of the
upstream's.

    python benchmarks/inbound_load.py --concurrency 200 --latency 0.15 --requests 4000
    python benchmarks/inbound_load.py --baseline       # bridge run, then the driver alone
    python benchmarks/inbound_load.py --direct --json  # driver -> fake upstream only

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
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

import aiohttp

HOST = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
INBOUND_PATH = "/twilio/inbound"
REGISTER_CALL_PATH = "/v1/convai/twilio/register-call"
AUTH_TOKEN = "bench-twilio-auth-token"
API_KEY = "bench-elevenlabs-key"
AGENT_ID = "agent_bench"
ACCOUNT_SID = "AC" + "0" * 32
# Environment the `fake_app` factory reads inside the fake-upstream subprocess.
FAKE_ENV_LATENCY = "BENCH_FAKE_LATENCY"
FAKE_ENV_API_KEY = "BENCH_FAKE_API_KEY"
# Bridge settings that would change what is measured if inherited from the shell.
SCRUBBED_ENV = (
    "ROUTES_FILE",
    "BRIDGE_INSECURE_SKIP_TWILIO_SIGNATURE",
    "INBOUND_DEADLINE_SECONDS",
    "TRUST_FORWARDED_HEADERS",
    "UPSTREAM_MAX_CONNECTIONS",
)


# --- the fake upstream, run inside its own uvicorn process ------------------------


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
        """utime + stime of the server process so far (Linux /proc), or None."""
        try:
            stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        except OSError:
            return None
        # Fields after the parenthesised command name; utime and stime are 14 and 15.
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

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


def uvicorn_command(target: str, port: int, *, factory: bool = False) -> list[str]:
    factory_flags = ["--factory", "--app-dir", str(BENCH_DIR)] if factory else []
    return [
        sys.executable, "-m", "uvicorn", target, *factory_flags,
        "--host", HOST, "--port", str(port),
        "--loop", "uvloop", "--http", "httptools",
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip


@contextlib.contextmanager
def server_process(
    name: str, command: list[str], env: dict[str, str], port: int
) -> Iterator[Server]:
    """The server runs inside the `with`, and is stopped on the way out, always."""
    # Output goes to a temp file, never a pipe: a full pipe would stall the server.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        server = Server(name, port, process, log)
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


def start_fake(stack: ExitStack, latency: float) -> Server:
    port = free_port()
    env = child_env({FAKE_ENV_LATENCY: repr(latency), FAKE_ENV_API_KEY: API_KEY})
    command = uvicorn_command("inbound_load:fake_app", port, factory=True)
    return start_server(stack, "fake-elevenlabs", command, env, port)


def start_bridge(stack: ExitStack, upstream_port: int, concurrency: int, log_level: str) -> Server:
    port = free_port()
    env = child_env(
        {
            "ELEVENLABS_API_KEY": API_KEY,
            "ELEVENLABS_AGENT_ID": AGENT_ID,
            "ELEVENLABS_API_BASE": f"http://{HOST}:{upstream_port}",
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            # The URL the driver signs; the bridge rebuilds it from this.
            "PUBLIC_BASE_URL": f"http://{HOST}:{port}",
            "LOG_LEVEL": log_level,
            "UPSTREAM_MAX_CONNECTIONS": str(max(500, concurrency)),
        }
    )
    return start_server(stack, "bridge", uvicorn_command("bridge.app:app", port), env, port)


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


# --- the driver -----------------------------------------------------------------


@dataclass
class RunResult:
    latencies: list[float] = field(default_factory=list)  # successful requests, seconds
    outcomes: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0
    timed_out: bool = False


def classify(status: int, text: str) -> str:
    if status != 200:
        return f"http_{status}"
    if "<Connect>" in text:
        return "ok"
    if "<Say>" in text:
        return "fallback"  # the bridge answered, but the caller got no agent
    return "bad_body"


async def drive(
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
                    text = await response.text()
                    outcome = classify(response.status, text)
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
    # CPU seconds per request, per process, during the measured run (None if unknown).
    cpu_ms_per_request: dict[str, float | None]
    log_level: str | None = None


def build_report(
    mode: str,
    args: argparse.Namespace,
    result: RunResult,
    cpu: dict[str, float | None],
) -> Report:
    latencies = sorted(result.latencies)
    ms = 1000.0
    throughput = args.requests / result.elapsed if result.elapsed else 0.0
    ideal = args.concurrency / args.latency if args.latency else math.inf
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    return Report(
        mode=mode,
        requests=args.requests,
        concurrency=args.concurrency,
        upstream_latency_ms=args.latency * ms,
        elapsed_s=round(result.elapsed, 3),
        throughput_per_s=round(throughput, 1),
        ideal_per_s=round(ideal, 1),
        ratio=round(throughput / ideal, 3) if ideal else math.nan,
        p50_ms=round(p50 * ms, 2),
        p90_ms=round(percentile(latencies, 0.90) * ms, 2),
        p99_ms=round(p99 * ms, 2),
        max_ms=round((latencies[-1] if latencies else math.nan) * ms, 2),
        overhead_p50_ms=round((p50 - args.latency) * ms, 2),
        overhead_p99_ms=round((p99 - args.latency) * ms, 2),
        failures=sum(n for outcome, n in result.outcomes.items() if outcome != "ok"),
        outcomes=dict(result.outcomes),
        cpu_ms_per_request={
            name: None if seconds is None else round(seconds / args.requests * ms, 3)
            for name, seconds in cpu.items()
        },
        log_level=args.log_level if mode == "bridge" else None,
    )


def format_report(report: Report) -> str:
    cpu = ", ".join(
        f"{name} {'?' if value is None else f'{value:.3f}'}"
        for name, value in report.cpu_ms_per_request.items()
    )
    title = (
        f"bridge (LOG_LEVEL={report.log_level})"
        if report.mode == "bridge"
        else "direct (driver -> fake upstream, no bridge)"
    )
    lines = [
        f"== {title}",
        f"requests          {report.requests}",
        f"concurrency       {report.concurrency}",
        f"upstream latency  {report.upstream_latency_ms:.0f} ms",
        f"elapsed           {report.elapsed_s:.3f} s",
        f"throughput        {report.throughput_per_s:.1f} calls/s",
        f"ideal bound       {report.ideal_per_s:.1f} calls/s (concurrency / latency)",
        f"ratio             {report.ratio:.3f}",
        f"latency p50/p90/p99  {report.p50_ms:.1f} / {report.p90_ms:.1f} / "
        f"{report.p99_ms:.1f} ms (max {report.max_ms:.1f})",
        f"overhead p50/p99  {report.overhead_p50_ms:.1f} / {report.overhead_p99_ms:.1f} ms",
        f"failures          {report.failures}"
        + (f"  {report.outcomes}" if report.failures else ""),
        f"cpu ms/request    {cpu}",
    ]
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
) -> Report:
    # Everything is built and signed up front, so the clock sees only HTTP work.
    warmup = prepare(args.warmup, 10**9)
    measured = prepare(args.requests, 0)
    connector = aiohttp.TCPConnector(limit=args.concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        if warmup:
            # Opens the driver's and the bridge's connection pools at full width.
            warm = await drive(
                url, warmup, args.concurrency, hard_timeout=args.timeout,
                request_timeout=args.request_timeout, session=session,
            )  # fmt: skip
            if warm.outcomes.get("ok", 0) != len(warmup):
                print(f"warning: warm-up outcomes {dict(warm.outcomes)}", file=sys.stderr)
        before = {s.name: s.cpu_seconds() for s in servers}
        driver_before = driver_cpu_seconds()
        result = await drive(
            url, measured, args.concurrency, hard_timeout=args.timeout,
            request_timeout=args.request_timeout, session=session,
        )  # fmt: skip
        driver_cpu = driver_cpu_seconds() - driver_before
        after = {s.name: s.cpu_seconds() for s in servers}
    cpu: dict[str, float | None] = {"driver": driver_cpu}
    for name, start in before.items():
        end = after[name]
        cpu[name] = None if start is None or end is None else end - start
    return build_report(mode, args, result, cpu)


async def run_bridge(args: argparse.Namespace) -> Report:
    with ExitStack() as stack:
        fake = start_fake(stack, args.latency)
        bridge = start_bridge(stack, fake.port, args.concurrency, args.log_level)
        await wait_ready(fake, "/", args.startup_timeout)
        await wait_ready(bridge, "/healthz", args.startup_timeout)
        url = f"http://{HOST}:{bridge.port}{INBOUND_PATH}"

        def prepare(count: int, offset: int) -> list[Prepared]:
            return prepare_webhooks(url, count, offset)

        report = await measured_run("bridge", args, url, prepare, [bridge, fake])
        if report.failures:
            print(f"bridge log tail:\n{bridge.log_tail()}", file=sys.stderr)
        return report


async def run_direct(args: argparse.Namespace) -> Report:
    with ExitStack() as stack:
        fake = start_fake(stack, args.latency)
        await wait_ready(fake, "/", args.startup_timeout)
        url = f"http://{HOST}:{fake.port}{REGISTER_CALL_PATH}"
        return await measured_run("direct", args, url, prepare_register_calls, [fake])


async def run(args: argparse.Namespace) -> list[Report]:
    reports = []
    if not args.direct:
        reports.append(await run_bridge(args))
    if args.direct or args.baseline:
        reports.append(await run_direct(args))
    return reports


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
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1 or args.latency < 0:
        parser.error("--requests and --concurrency must be >= 1, --latency >= 0")
    if args.warmup is None:
        args.warmup = 2 * args.concurrency
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with asyncio.Runner(loop_factory=new_loop) as runner:
        reports = runner.run(run(args))
    if args.json:
        data = [asdict(r) for r in reports]
        # One run: one object; --baseline: {"bridge": {...}, "direct": {...}}.
        print(json.dumps(data[0] if len(data) == 1 else {r["mode"]: r for r in data}, indent=2))
    else:
        print("\n\n".join(format_report(r) for r in reports))
    return 1 if any(r.failures for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
