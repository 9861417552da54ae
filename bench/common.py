"""Shared helpers of the benchmark scripts: machine facts, medians, results files, child processes.

Every scenario writes one JSON file under bench/out/ with the machine it ran on, the exact command,
the runs and their medians; bench/render.py turns those files into docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(os.environ.get("BENCH_OUT", ROOT / "bench" / "out"))
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0", "false", "no")


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "ram_gib": round(ram / 2**30, 1),
            "python": platform.python_version(), "implementation": platform.python_implementation(),
            "os": f"{platform.system()} {platform.release()}", "executable": sys.executable,
            # Other work on the machine while a scenario ran (shared machine): the 1-minute load.
            "loadavg_1m_at_end": round(os.getloadavg()[0], 2)}


def command() -> str:
    """The command that produced a result (as typed from the project root)."""
    exe = os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(str(ROOT)) else sys.executable
    module = sys.modules["__main__"].__spec__
    target = ["-m", module.name] if module is not None else [os.path.relpath(sys.argv[0], ROOT)]
    env = " ".join(f"{k}={os.environ[k]}" for k in ("BENCH_QUICK",) if os.environ.get(k))
    return (env + " " if env else "") + shlex.join([exe, *target, *sys.argv[1:]])


def rel(path: Path) -> str:
    """A path as given on a command line from the project root (absolute when outside it)."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def median(values: Iterable[float | int | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return statistics.median(present) if present else None


def medians(runs: Sequence[Mapping[str, Any]], keys: Iterable[str] | None = None) -> dict[str, Any]:
    """The median of every numeric field over the runs (non-numeric fields: the first run's value)."""
    if not runs:
        return {}
    names = list(keys) if keys is not None else list(runs[0])
    out: dict[str, Any] = {}
    for name in names:
        values = [r.get(name) for r in runs]
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values if v is not None):
            out[name] = median(values)
        else:
            out[name] = values[0]
    return out


def write_result(name: str, payload: dict[str, Any]) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    data = {"scenario": name, "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "quick": QUICK, "machine": machine(), "command": command(), **payload}
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}", flush=True)
    return path


def peak_rss_mib() -> float:
    """This process's peak resident set size (ru_maxrss is KiB on Linux)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def cpu_seconds() -> float:
    """CPU time (user + system) of this process, all threads, plus waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_child(module: str, args: Sequence[str], *, python: str | None = None, timeout: float = 900,
              env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Run `python -m module args` from the project root; its last stdout line is a JSON result."""
    argv = [python or sys.executable, "-m", module, *args]
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"{shlex.join(argv)} printed no JSON result:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    result.setdefault("child_wall_s", round(time.monotonic() - started, 3))
    return result


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)
