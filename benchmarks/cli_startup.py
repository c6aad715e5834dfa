"""How long the installed `callbridge` command takes to start and finish a quick command.

Each case runs the command as a new process (wall time, `subprocess`), a few times in
rounds (every case once per round, so that a busy moment spreads over all of them),
and the table shows the median, min and max in seconds, and the median CPU time (user +
system) of the process, which a machine busy with other work inflates less:

    python benchmarks/cli_startup.py                  # the installed command, 9 rounds
    python benchmarks/cli_startup.py --rounds 15
    python benchmarks/cli_startup.py --source /tmp/old-checkout   # another commit's code

`--source DIR` runs the same command with DIR first on PYTHONPATH (a `git worktree` of
another commit): its `bridge` package is the one imported, for before/after numbers in
the same sitting. Run from the repository's root (the cases read tests/data).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = "tests/data/routes_example.toml"
CASES: dict[str, list[str]] = {
    "--help": ["--help"],
    "route --from ... --to ...": ["route", "--from", "+16175550123", "--to", "+12125550123"],
    f"routes check {EXAMPLE}": ["routes", "check", EXAMPLE],
}
BASELINE = "python -c pass (the interpreter alone)"


Timing = tuple[float, float]  # (wall, CPU) seconds


def run_once(argv: Sequence[str], env: dict[str, str]) -> Timing:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(
        argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)}: exit {result.returncode}\n{result.stderr.decode()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def measure(command: Path, rounds: int, source: Path | None) -> dict[str, list[Timing]]:
    env = {name: value for name, value in os.environ.items() if name != "ROUTES_FILE"}
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(source), *filter(None, [env.get("PYTHONPATH")])])
    runs: dict[str, list[Timing]] = {name: [] for name in [BASELINE, *CASES]}
    for argv in [[sys.executable, "-c", "pass"], *([str(command), *a] for a in CASES.values())]:
        run_once(argv, env)  # warm the file cache
    for _ in range(rounds):
        runs[BASELINE].append(run_once([sys.executable, "-c", "pass"], env))
        for name, arguments in CASES.items():
            runs[name].append(run_once([str(command), *arguments], env))
    return runs


def table(runs: dict[str, list[Timing]]) -> list[str]:
    width = max(len(name) for name in runs)
    lines = [f"{'case':<{width}}  median     min     max     cpu", "-" * (width + 34)]
    for name, timings in runs.items():
        wall = [timing[0] for timing in timings]
        cpu = [timing[1] for timing in timings]
        lines.append(
            f"{name:<{width}}  {statistics.median(wall):6.3f}  {min(wall):6.3f}  "
            f"{max(wall):6.3f}  {statistics.median(cpu):6.3f}"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="runs of each case (default 9)")
    parser.add_argument(
        "--command",
        type=Path,
        default=Path(sys.executable).parent / "callbridge",
        help="the command to run (default: callbridge next to this Python)",
    )
    parser.add_argument(
        "--source", type=Path, help="a checkout whose `bridge` package is imported instead"
    )
    args = parser.parse_args(argv)
    runs = measure(args.command, args.rounds, args.source)
    code = f"source {args.source}" if args.source else "the installed code"
    print(f"{args.command} ({code}), {args.rounds} rounds, wall seconds")
    for line in table(runs):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
