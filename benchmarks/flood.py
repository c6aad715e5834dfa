"""Flood benchmark: genuine signed Twilio webhooks while unsigned junk arrives at a fixed rate.

Same three processes as inbound_load.py, all on 127.0.0.1: this driver, the bridge
(`bridge.app:app` under uvicorn) and the lean fake ElevenLabs register-call upstream.

1. **Cost per request.** Each kind of request alone (closed loop, `--cost-concurrency` in
   flight, `--cost-requests` of each): the bridge's CPU time per request. The genuine
   webhook is the yardstick; every junk kind is printed as a multiple of it.
2. **Genuine webhooks without the flood.** `--requests` signed webhooks, `--concurrency` in
   flight (inbound_load.py's driver): p50/p99.
3. **The same with the flood.** Junk at `--flood-rate` requests a second (open loop: a
   10 ms ticker, at most `--flood-connections` in flight; a tick that finds every
   connection busy drops its sends and counts them as `skipped`), starting one second
   before the genuine webhooks and stopping when they are done.

The junk mixes every kind below in turn: unsigned, malformed and wrongly signed normal
forms, and worst-case forms (4,500 fields in 64 KB, 10,700 empty keys in 64 KB, 199
fields in 32 KB with 1,990 %-escapes), each with a well-formed wrong signature so that
only the check itself can refuse them.
`--previous-token` also sets TWILIO_PREVIOUS_AUTH_TOKEN (the bridge then tries both tokens).

    python benchmarks/flood.py                      # defaults: 2000 genuine at 50, junk 1000/s
    python benchmarks/flood.py --previous-token
    python benchmarks/flood.py --json

Everything is bounded: request counts, `--timeout` per phase, the flood's rate and width.
See benchmarks/README.md for measured results.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from typing import cast
from urllib.parse import urlencode

from inbound_load import (
    HOST,
    INBOUND_PATH,
    Server,
    machine_busy_seconds,
    new_loop,
    percentile,
    prepare_webhooks,
    start_bridge,
    start_fake,
    wait_ready,
    webhook_params,
)
from lean import CONTENT_LENGTH, LeanClient, RunResult, header_value, raw_request

FORM_TYPE = "application/x-www-form-urlencoded"
PREVIOUS_TOKEN_ENV = "TWILIO_PREVIOUS_AUTH_TOKEN"
# A well-formed signature (base64 of 20 bytes) that never matches.
WRONG_SIGNATURE = "AAAAAAAAAAAAAAAAAAAAAAAAAAA="
TICK = 0.01


# --- the junk -----------------------------------------------------------------------


def _normal_form() -> bytes:
    return urlencode(webhook_params(7)).encode()


def junk_kinds() -> dict[str, tuple[bytes, str | None]]:
    """name -> (form body, X-Twilio-Signature or None): what an attacker posts."""
    fields_4500 = "&".join(f"P{n:04d}=v{n:06d}" for n in range(4500)).encode()
    # One empty name with 10,700 different values: the SDK sorts and joins them all.
    empty_keys = "&".join(f"={n:04x}" for n in range(10_700)).encode()
    # Every cap reached (32 KB, 199 fields, 1,990 %-escapes): the costliest form checked.
    padding = "%41" * 10 + "x" * (32 * 1024 // 199 - 38)
    at_caps = "&".join(f"F{n:03d}={padding}" for n in range(199)).encode()[: 32 * 1024]
    normal = _normal_form()
    return {
        "unsigned": (normal, None),
        "malformed signature": (normal, "bad"),
        "wrong signature": (normal, WRONG_SIGNATURE),
        "unsigned, 4,500 fields 64 KB": (fields_4500[: 64 * 1024], None),
        "wrong sig, 4,500 fields 64 KB": (fields_4500[: 64 * 1024], WRONG_SIGNATURE),
        "wrong sig, 10,700 empty keys 64 KB": (empty_keys[: 64 * 1024], WRONG_SIGNATURE),
        "wrong sig, 199 fields 32 KB, 1990 %XX": (at_caps, WRONG_SIGNATURE),
    }


def junk_request(host: str, body: bytes, signature: str | None) -> bytes:
    headers = {"content-type": FORM_TYPE}
    if signature is not None:
        headers["x-twilio-signature"] = signature
    return raw_request("POST", host, INBOUND_PATH, headers, body)


# --- the open-loop flood ----------------------------------------------------------------


class _FloodConnection(asyncio.Protocol):
    def __init__(self, flood: Flood) -> None:
        self.flood = flood
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.flood.idle.append(self)

    def send(self, payload: bytes) -> None:
        assert self.transport is not None
        self.busy = True
        self.buffer = b""
        self.transport.write(payload)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            self.buffer = buffer
            return
        head = buffer[:end]
        length = int(header_value(head, head.lower(), CONTENT_LENGTH) or b"0")
        if len(buffer) < end + 4 + length:
            self.buffer = buffer
            return
        self.flood.answered[f"http_{int(head[9:12])}"] += 1
        self.buffer = b""
        self.busy = False
        if self.flood.running:
            self.flood.idle.append(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.busy:
            self.flood.answered["connection_lost"] += 1
        self.transport = None
        with contextlib.suppress(ValueError):
            self.flood.idle.remove(self)
        self.flood.lost(self)


@dataclass
class FloodResult:
    sent: int = 0
    skipped: int = 0  # every connection was busy when the ticker wanted to send
    answered: dict[str, int] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=dict)


class Flood:
    """`rate` junk requests a second from `connections` keep-alive connections, in turn."""

    def __init__(self, port: int, rate: float, connections: int, payloads: list[bytes]) -> None:
        self.port = port
        self.rate = rate
        self.width = connections
        self.payloads = payloads
        self.loop = asyncio.get_running_loop()
        self.idle: list[_FloodConnection] = []
        self.connections: set[_FloodConnection] = set()
        self.answered: Counter[str] = Counter()
        self.sent = self.skipped = 0
        self.by_kind: Counter[int] = Counter()
        self.running = False
        self._credit = 0.0
        self._ticker: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        self.running = True
        await asyncio.gather(*(self._open() for _ in range(self.width)))
        self._ticker = self.loop.call_later(TICK, self._tick)

    async def _open(self) -> None:
        with contextlib.suppress(OSError):
            _, connection = await self.loop.create_connection(
                lambda: _FloodConnection(self), HOST, self.port
            )
            self.connections.add(connection)

    def lost(self, connection: _FloodConnection) -> None:
        self.connections.discard(connection)
        if self.running:
            self.loop.create_task(self._open())

    def _tick(self) -> None:
        if not self.running:
            return
        self._credit += self.rate * TICK
        while self._credit >= 1:
            self._credit -= 1
            if not self.idle:
                self.skipped += 1
                continue
            index = self.sent % len(self.payloads)
            self.idle.pop().send(self.payloads[index])
            self.by_kind[index] += 1
            self.sent += 1
        self._ticker = self.loop.call_later(TICK, self._tick)

    async def stop(self) -> FloodResult:
        self.running = False
        if self._ticker is not None:
            self._ticker.cancel()
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.abort()
        await asyncio.sleep(0)
        return FloodResult(self.sent, self.skipped, dict(self.answered))


# --- runs ---------------------------------------------------------------------------


@dataclass
class Cost:
    kind: str
    requests: int
    outcomes: dict[str, int]
    bridge_cpu_ms: float | None
    times_valid: float | None = None


@dataclass
class Latency:
    label: str
    requests: int
    ok: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    throughput_per_s: float
    outcomes: dict[str, int]
    bridge_cpu_s: float | None
    cores_busy: float | None


async def closed_loop(
    bridge: Server, requests: list[bytes], concurrency: int, timeout: float
) -> tuple[float | None, RunResult]:
    client = LeanClient(HOST, bridge.port, concurrency, request_timeout=timeout)
    before = bridge.cpu_seconds()
    result = await client.run(requests, hard_timeout=timeout)
    after = bridge.cpu_seconds()
    await client.close()
    cpu = None if before is None or after is None else after - before
    return cpu, result


def genuine_requests(host: str, url: str, count: int, offset: int) -> list[bytes]:
    return [
        raw_request("POST", host, INBOUND_PATH, p.headers, p.body)
        for p in prepare_webhooks(url, count, offset)
    ]


async def measure_costs(
    args: argparse.Namespace, bridge: Server, host: str, url: str
) -> list[Cost]:
    costs = []
    kinds: list[tuple[str, list[bytes]]] = [
        ("valid (signed webhook)", genuine_requests(host, url, args.cost_requests, 5 * 10**8))
    ]
    for name, (body, signature) in junk_kinds().items():
        kinds.append((name, [junk_request(host, body, signature)] * args.cost_requests))
    for name, requests in kinds:
        cpu, result = await closed_loop(bridge, requests, args.cost_concurrency, args.timeout)
        outcomes = dict(result.outcomes)
        per = None if cpu is None else round(cpu / len(requests) * 1000, 3)
        costs.append(Cost(name, len(requests), outcomes, per))
    valid = costs[0].bridge_cpu_ms
    for cost in costs:
        if valid and cost.bridge_cpu_ms is not None:
            cost.times_valid = round(cost.bridge_cpu_ms / valid, 2)
    return costs


async def genuine_run(
    label: str, args: argparse.Namespace, bridge: Server, host: str, url: str, offset: int
) -> Latency:
    requests = genuine_requests(host, url, args.requests, offset)
    machine_before = machine_busy_seconds()
    started = time.perf_counter()
    cpu, result = await closed_loop(bridge, requests, args.concurrency, args.timeout)
    elapsed = time.perf_counter() - started
    machine_after = machine_busy_seconds()
    latencies = sorted(result.latencies)
    outcomes = dict(result.outcomes)
    busy = None
    if machine_before is not None and machine_after is not None and elapsed:
        busy = round((machine_after - machine_before) / elapsed, 2)
    return Latency(
        label=label,
        requests=args.requests,
        ok=len(latencies),
        p50_ms=round(percentile(latencies, 0.5) * 1000, 1),
        p99_ms=round(percentile(latencies, 0.99) * 1000, 1),
        max_ms=round((latencies[-1] if latencies else float("nan")) * 1000, 1),
        throughput_per_s=round(len(latencies) / elapsed, 1) if elapsed else 0.0,
        outcomes={k: v for k, v in outcomes.items() if k != "ok"},
        bridge_cpu_s=None if cpu is None else round(cpu, 2),
        cores_busy=busy,
    )


@dataclass
class Report:
    flood_rate: float
    flood_connections: int
    previous_token: bool
    costs: list[Cost]
    without_flood: Latency
    with_flood: Latency
    flood: FloodResult


async def run(args: argparse.Namespace) -> Report:
    task = asyncio.current_task()
    if task is not None:
        with contextlib.suppress(NotImplementedError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    if args.previous_token:
        os.environ[PREVIOUS_TOKEN_ENV] = "bench-previous-twilio-auth-token"
    else:
        os.environ.pop(PREVIOUS_TOKEN_ENV, None)
    with ExitStack() as stack:
        fake = start_fake(stack, args.latency, "lean")
        await wait_ready(fake, "/healthz", args.startup_timeout)
        bridge = start_bridge(stack, fake.port, max(args.concurrency, 50), "WARNING")
        await wait_ready(bridge, "/healthz", args.startup_timeout)
        host = f"{HOST}:{bridge.port}"
        url = f"http://{host}{INBOUND_PATH}"
        # Warm-up: the connection pools open, the code paths run once.
        await closed_loop(
            bridge, genuine_requests(host, url, 2 * args.concurrency, 9 * 10**8),
            args.concurrency, args.timeout,
        )  # fmt: skip
        costs = await measure_costs(args, bridge, host, url)
        quiet = await genuine_run("without flood", args, bridge, host, url, 0)
        payloads = [junk_request(host, body, sig) for body, sig in junk_kinds().values()]
        flood = Flood(bridge.port, args.flood_rate, args.flood_connections, payloads)
        await flood.start()
        try:
            await asyncio.sleep(1.0)  # the junk is already queued when the genuine calls start
            loud = await genuine_run("with flood", args, bridge, host, url, 10**8)
        finally:
            flooded = await flood.stop()
        names = list(junk_kinds())
        flooded.by_kind = {names[i]: n for i, n in sorted(flood.by_kind.items())}
        if quiet.ok < args.requests or loud.ok < args.requests:
            print(f"bridge log tail:\n{bridge.log_tail(1000)}", file=sys.stderr)
    return Report(
        args.flood_rate, args.flood_connections, args.previous_token, costs, quiet, loud, flooded
    )


def format_report(report: Report, args: argparse.Namespace) -> str:
    lines = [
        f"== flood: genuine {args.requests} webhooks, {args.concurrency} in flight, upstream "
        f"{args.latency * 1000:.0f} ms; junk {report.flood_rate:g}/s, up to "
        f"{report.flood_connections} in flight; previous token "
        f"{'set' if report.previous_token else 'not set'}",
        "",
        f"cost per request, each kind alone ({args.cost_requests} requests, "
        f"{args.cost_concurrency} in flight):",
        f"  {'kind':<36} {'answers':<18} {'bridge cpu ms/req':>17} {'x valid':>8}",
    ]
    for cost in report.costs:
        answers = ", ".join(f"{k} {v}" for k, v in sorted(cost.outcomes.items()))
        cpu = "?" if cost.bridge_cpu_ms is None else f"{cost.bridge_cpu_ms:.3f}"
        times = "?" if cost.times_valid is None else f"{cost.times_valid:.2f}"
        lines.append(f"  {cost.kind:<36} {answers:<18} {cpu:>17} {times:>8}")
    lines += [
        "",
        "genuine webhooks:",
        f"  {'run':<14} {'ok':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'calls/s':>8}"
        f" {'cores busy':>10}  failures",
    ]
    for run_ in (report.without_flood, report.with_flood):
        busy = "?" if run_.cores_busy is None else f"{run_.cores_busy:.2f}"
        lines.append(
            f"  {run_.label:<14} {run_.ok:>6} {run_.p50_ms:>8.1f} {run_.p99_ms:>8.1f}"
            f" {run_.max_ms:>8.1f} {run_.throughput_per_s:>8.1f} {busy:>10}  "
            f"{run_.outcomes or 0}"
        )
    flood = report.flood
    lines += [
        "",
        f"junk during the flood: sent {flood.sent}, skipped (every connection busy) "
        f"{flood.skipped}, answers {dict(sorted(flood.answered.items()))}",
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=2000, help="genuine webhooks per run")
    parser.add_argument("--concurrency", type=int, default=50, help="genuine webhooks in flight")
    parser.add_argument("--latency", type=float, default=0.15, help="fake upstream latency, s")
    parser.add_argument("--flood-rate", type=float, default=1000.0, help="junk requests/s")
    parser.add_argument("--flood-connections", type=int, default=1000, help="junk in flight")
    parser.add_argument("--cost-requests", type=int, default=500, help="of each kind")
    parser.add_argument("--cost-concurrency", type=int, default=20)
    parser.add_argument("--previous-token", action="store_true", help="TWILIO_PREVIOUS_AUTH_TOKEN")
    parser.add_argument("--timeout", type=float, default=90.0, help="hard limit per phase, s")
    parser.add_argument("--startup-timeout", type=float, default=20.0)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    limits = (
        (1 <= args.requests <= 100_000, "--requests"),
        (1 <= args.concurrency <= 2000, "--concurrency"),
        (0 < args.flood_rate <= 20_000, "--flood-rate"),
        (1 <= args.flood_connections <= 5000, "--flood-connections"),
        (1 <= args.cost_requests <= 10_000, "--cost-requests"),
        (1 <= args.cost_concurrency <= 500, "--cost-concurrency"),
        (0 < args.timeout <= 600, "--timeout"),
    )
    for ok, name in limits:
        if not ok:
            parser.error(f"{name} is out of its bounds (see --help)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with asyncio.Runner(loop_factory=new_loop) as runner:
            report = runner.run(run(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; servers stopped", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(asdict(report), indent=2))
    else:
        print(format_report(report, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
