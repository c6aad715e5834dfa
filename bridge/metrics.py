"""What the bridge counts, in Prometheus' model, and the text `GET /metrics` serves.

Several uvicorn workers are several processes, and a scrape reaches one of them;
prometheus_client's multiprocess mode adds them up from files in a shared directory.
That mode is fixed when prometheus_client is imported, so the directory is chosen
before the import: `PROMETHEUS_MULTIPROC_DIR` if set (`callbridge serve` sets a fresh one),
else, in a worker process that uvicorn spawned, a directory named for the supervisor
process that every sibling worker finds. A single process keeps its counts in memory.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

from bridge.call import Answer

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
_SHARED_NAME = re.compile(r"callbridge-metrics-(\d+)-(\d+)")


def _process_start_ticks(pid: int) -> str:
    # With the pid this names one process, not a later one that reused its pid.
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return "0"
    return fields.rsplit(")", 1)[1].split()[19]


def shared_directory_for_workers() -> str | None:
    """The directory sibling worker processes share, or None in a lone process."""
    chosen = os.environ.get(MULTIPROCESS_ENV)
    if chosen:
        return chosen
    parent = multiprocessing.parent_process()
    # Without /proc a pid cannot be told from a later process that reused it, and
    # a reused directory would add old counts: each worker then counts on its own.
    if parent is None or parent.pid is None or not Path("/proc/self/stat").exists():
        return None
    root = Path(tempfile.gettempdir())
    _remove_stale_directories(root)
    path = root / f"callbridge-metrics-{parent.pid}-{_process_start_ticks(parent.pid)}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
    except OSError:
        return None
    if not _private(path):
        # Someone else made it (a shared /tmp): its files are not to be trusted.
        return None
    os.environ[MULTIPROCESS_ENV] = str(path)
    return str(path)


def _private(path: Path) -> bool:
    """A real directory of this user's that nobody else may write to."""
    try:
        info = path.lstat()
    except OSError:  # gone meanwhile (a sibling worker removed it)
        return False
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and stat.S_IMODE(info.st_mode) & 0o077 == 0
    )


def _remove_stale_directories(root: Path) -> None:
    """Directories of supervisors that have exited: their counts ended with them."""
    for path in root.glob("callbridge-metrics-*-*"):
        found = _SHARED_NAME.fullmatch(path.name)
        if not found or not _private(path):
            continue
        pid, ticks = found.groups()
        if _process_start_ticks(int(pid)) != ticks:
            # Renamed first, so that a sibling worker doing the same finds it gone.
            doomed = path.with_name(f".removing-{path.name}-{os.getpid()}")
            try:
                path.rename(doomed)
            except OSError:
                continue
            shutil.rmtree(doomed, ignore_errors=True)


MULTIPROCESS_DIRECTORY = shared_directory_for_workers()

# Imported only now: prometheus_client picks its storage from the environment.
from prometheus_client import (  # noqa: E402
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client import multiprocess as _multiprocess  # noqa: E402
from prometheus_client.exposition import choose_encoder  # noqa: E402

# `*_created` timestamps double the page and Prometheus does not need them.
disable_created_metrics()  # type: ignore[no-untyped-call]
# Register-call answers in about 150 ms; the inbound deadline is 5 s by default.
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """One app's metrics. In a lone process they live in their own registry, so two
    apps in one process (the tests) count apart; across workers they add up."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.calls = Counter(
            "callbridge_calls",
            "Calls answered by the bridge, by direction, routing rule, action and outcome "
            "(connected, handled, fallback).",
            ["direction", "rule", "action", "outcome"],
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "callbridge_fallbacks",
            "Answers that were the fallback TwiML, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.upstream_seconds = Histogram(
            "callbridge_upstream_request_seconds",
            "Upstream requests, each attempt on its own: seconds to the response headers, "
            "by endpoint and result (2xx, 4xx, 5xx, error).",
            ["endpoint", "result"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.signature_failures = Counter(
            "callbridge_signature_failures",
            "Webhooks refused for a missing or invalid signature, by route.",
            ["route"],
            registry=self.registry,
        )
        self.call_log_failures = Counter(
            "callbridge_call_log_write_failures",
            "Batches of inbound calls the call log could not write (kept and retried).",
            registry=self.registry,
        )
        self.call_log_dropped = Counter(
            "callbridge_call_log_dropped",
            "Inbound call records given up on while the database was unreachable.",
            registry=self.registry,
        )
        self.previous_token_signatures = Counter(
            "callbridge_signatures_with_previous_token",
            "Twilio webhooks signed with TWILIO_PREVIOUS_AUTH_TOKEN: while this grows, "
            "Twilio has not switched to the new token yet.",
            registry=self.registry,
        )
        self.audio_store_failures = Counter(
            "callbridge_audio_store_failures",
            "Audio the audio store (AUDIO_STORE) could not take, by kind (post_call, ...).",
            ["kind"],
            registry=self.registry,
        )
        self.outbound_requests = Counter(
            "callbridge_outbound_requests",
            "Outbound calls asked for, by mode and result (placed, not_placed, unknown).",
            ["mode", "result"],
            registry=self.registry,
        )

        self.reconcile_recovered = Counter(
            "callbridge_reconcile_recovered",
            "What reconciliation recovered, by kind (transcript: a post-call webhook "
            "never received; conversation: one the bridge never heard of; status: a "
            "final status from Twilio).",
            ["kind"],
            registry=self.registry,
        )
        self.reconcile_runs = Counter(
            "callbridge_reconcile_runs",
            "Reconciliation runs, by result (complete, bounded: stopped by a bound, "
            "faults: an upstream failed and the rest waits for the next run, "
            "failed: the run itself failed, e.g. the database).",
            ["result"],
            registry=self.registry,
        )

        self.recordings = Counter(
            "callbridge_recordings",
            "Twilio recordings' audio work, by kind (voicemail, recording) and result "
            "(fetched, retry, failed, deleted).",
            ["kind", "result"],
            registry=self.registry,
        )

        self.events = Counter(
            "callbridge_events",
            "Outgoing event deliveries attempted, by result (delivered; retried: to be "
            "tried again; failed: given up after 24 hours; disabled: the endpoint "
            "answered 410).",
            ["result"],
            registry=self.registry,
        )
        # The same value in every process (the database's): the largest one is shown.
        self.events_queue_depth = Gauge(
            "callbridge_events_queue_depth",
            "Outgoing event deliveries pending.",
            registry=self.registry,
            multiprocess_mode="max",
        )
        self.events_oldest_pending_seconds = Gauge(
            "callbridge_events_oldest_pending_seconds",
            "Age of the oldest event with a pending delivery, in seconds.",
            registry=self.registry,
            multiprocess_mode="max",
        )
        self.lookups = Counter(
            "callbridge_lookups",
            "Lookup hook requests, by result (ok; timeout, http_error, invalid, error: the "
            "call went on with its rule's own values).",
            ["result"],
            registry=self.registry,
        )

        self.campaign_dials = Counter(
            "callbridge_campaign_dials",
            "Campaign recipients dialled by a campaign worker, by result (placed; refused: "
            "definitely not placed; unknown: may have been placed, left to its lease; "
            "deferred: tried again later, e.g. at the concurrency cap).",
            ["result"],
            registry=self.registry,
        )
        self.campaign_outcomes = Counter(
            "callbridge_campaign_outcomes",
            "Campaign attempts settled, by outcome (completed, busy, no-answer, machine, "
            "failed) and what followed (retry, final).",
            ["outcome", "then"],
            registry=self.registry,
        )
        self.campaign_takeovers = Counter(
            "callbridge_campaign_takeovers",
            "Claims taken over from a worker whose lease expired (it died mid-dial).",
            registry=self.registry,
        )

    def count_recording(self, kind: str, result: str) -> None:
        self.recordings.labels(kind, result).inc()

    def count_answer(self, direction: str, answer: Answer, *, new_call: bool = True) -> None:
        """An answered webhook; a follow-up of a call (after a <Dial>) counts only
        its fallback, the call itself was counted when it came in."""
        if new_call:
            self.calls.labels(direction, answer.rule, answer.action, answer.outcome).inc()
        if answer.outcome == "fallback":
            self.fallbacks.labels(answer.reason or "unknown").inc()
        if answer.lookup is not None:
            self.lookups.labels(answer.lookup.result).inc()

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The text and its content type: Prometheus' text format, or OpenMetrics
        when the scraper's Accept header asks for it."""
        encode, content_type = choose_encoder(accept or "")
        if MULTIPROCESS_DIRECTORY is None:
            return encode(self.registry), content_type
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry, path=MULTIPROCESS_DIRECTORY)  # type: ignore[no-untyped-call]
        return encode(registry), content_type
