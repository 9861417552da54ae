"""The command line a new user meets: result commands, storage errors, suggestions, warnings, help."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from monitor.api import create_app
from monitor.cli import build_parser, main
from monitor.settings import azurite_connection_string
from tests.support.seed import BREACHED_METRIC, Seeded, seed_config, seed_monitor
from tests.support.storage import reset_caches

ROOT = Path(__file__).resolve().parents[2]


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def seeded(storage: object, monitor_name: str) -> Seeded:
    return seed_monitor(monitor_name)


@pytest.fixture
def client(storage: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.delenv("MONITOR_API_KEY", raising=False)
    with TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


# --------------------------------------------------------------------------------------------
# metrics / alerts / records: what the HTTP routes return


@pytest.mark.azurite
@pytest.mark.parametrize(("command", "route", "params"), [
    ("metrics", "metrics", {"metric": BREACHED_METRIC, "segment": "deployment=green"}),
    ("metrics", "metrics", {}),
    ("alerts", "alerts", {"start": "2026-11-20T10:00:00Z", "end": "2026-11-20T13:00:00Z"}),
    ("records", "records", {"metric": BREACHED_METRIC, "segment": "deployment=blue"}),
])
def test_result_commands_print_what_the_routes_return(seeded: Seeded, client: TestClient,
                                                      capsys: pytest.CaptureFixture[str], command: str,
                                                      route: str, params: dict[str, str]) -> None:
    args = [command, "--monitor", seeded.name, *(x for k, v in params.items() for x in (f"--{k}", v))]
    code, out, err = _run(capsys, *args, "--json")
    assert code == 0, err
    expected = client.get(f"/api/monitors/{seeded.name}/{route}", params=params)
    assert expected.status_code == 200
    assert json.loads(out) == expected.json()
    assert expected.json()[{"metrics": "windows"}.get(route, route)], "the route returned nothing to compare"
    code, table, err = _run(capsys, *args)
    assert code == 0 and not table.lstrip().startswith("{")
    lines = table.splitlines()
    header = {"metrics": "window start", "alerts": "window start", "records": "lowest"}[command]
    assert lines[0].startswith(header) and set(lines[1]) <= {"-", " "}
    assert len(lines) - 2 == len(expected.json()[{"metrics": "windows"}.get(route, route)])


@pytest.mark.azurite
def test_metrics_table_marks_the_breach_and_records_page(seeded: Seeded, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "metrics", "--monitor", seeded.name, "--metric", BREACHED_METRIC,
                        "--segment", "all")
    assert code == 0
    breached = [line for line in out.splitlines() if "BREACHED" in line]
    assert len(breached) == 1 and "45.0%" in breached[0]
    assert "records seen" in out.splitlines()[0]
    code, out, err = _run(capsys, "records", "--monitor", seeded.name, "--failing", "--limit", "1")
    assert code == 0 and len(out.splitlines()) == 3 and "more: add --continuation " in err
    token = err.split("--continuation ")[1].strip()
    code, again, _ = _run(capsys, "records", "--monitor", seeded.name, "--failing", "--limit", "1",
                          "--continuation", token)
    assert code == 0 and again.splitlines()[2] != out.splitlines()[2]


@pytest.mark.azurite
def test_result_command_errors_name_the_option(seeded: Seeded, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "metrics", "--monitor", seeded.name, "--metric", "groundednes")
    assert code == 2 and "unknown metric 'groundednes'" in err and err.count("error:") == 1
    code, _, err = _run(capsys, "alerts", "--monitor", "no-such-monitor")
    assert code == 2 and "no monitor named 'no-such-monitor'" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["records", "--monitor", seeded.name, "--start", "yesterday"])
    assert exit_info.value.code == 2 and "not an ISO 8601 time" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# storage that cannot be reached


UNREACHABLE = (
    ("monitors", "list"), ("monitors", "get", "some-monitor"), ("status", "--monitor", "some-monitor"),
    ("quarantine", "--monitor", "some-monitor"), ("metrics", "--monitor", "some-monitor"),
    ("alerts", "--monitor", "some-monitor"), ("records", "--monitor", "some-monitor"),
    ("aggregate", "--monitor", "some-monitor"),
    ("backfill", "--monitor", "some-monitor", "--since", "2026-11-20", "--until", "2026-11-21"),
)


@pytest.fixture
def no_storage(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """MONITOR_STORAGE and MDC_STORAGE pointing at ports nothing listens on."""
    port = _free_port()
    conn = azurite_connection_string(blob=port, queue=port, table=port)
    monkeypatch.setenv("MONITOR_STORAGE", conn)
    monkeypatch.setenv("MDC_STORAGE", conn)
    reset_caches()
    yield f"127.0.0.1:{port}"
    monkeypatch.undo()
    reset_caches()


@pytest.mark.parametrize("args", UNREACHABLE, ids=[" ".join(a[:2]) for a in UNREACHABLE])
def test_unreachable_storage_is_one_line(no_storage: str, capsys: pytest.CaptureFixture[str],
                                         args: tuple[str, ...]) -> None:
    code, out, err = _run(capsys, *args)
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: cannot reach ") and no_storage in lines[0]
    setting = "MDC_STORAGE" if args[0] == "backfill" else "MONITOR_STORAGE"   # the watched blobs come first
    assert f"check {setting}" in lines[0] and "Traceback" not in err


def test_storage_error_as_a_process(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONITOR_STORAGE", "MDC_STORAGE"))}
    env["MONITOR_STORAGE"] = azurite_connection_string(table=port, queue=port, blob=port)
    result = subprocess.run([sys.executable, "-m", "monitor", "status", "--monitor", "x-y-z"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert f"cannot reach table storage at http://127.0.0.1:{port}/devstoreaccount1 (Connection refused); " \
        "check MONITOR_STORAGE" in result.stderr


def test_unset_storage_means_local_azurite(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without MONITOR_STORAGE the message says so and points at Azurite; an SDK error is matched by host."""
    from monitor.storage.reach import describe_storage_failure

    for key in [k for k in os.environ if k.startswith(("MONITOR_STORAGE", "MDC_STORAGE"))]:
        monkeypatch.delenv(key)
    reset_caches()
    try:
        message = describe_storage_failure(ConnectionError("HTTPConnectionPool(host='127.0.0.1', port=10002)"))
        blob = describe_storage_failure(ConnectionError("HTTPConnectionPool(host='127.0.0.1', port=10000)"))
    finally:
        monkeypatch.undo()
        reset_caches()
    assert message == ("cannot reach table storage at http://127.0.0.1:10002/devstoreaccount1; MONITOR_STORAGE is "
                       "not set, so this is the local Azurite development account: start Azurite or set "
                       "MONITOR_STORAGE")
    assert blob.startswith("cannot reach blob storage at http://127.0.0.1:10000/devstoreaccount1; MDC_STORAGE")


@pytest.mark.azurite
def test_broken_pipe_is_silent(seeded: Seeded) -> None:
    """`... | head`: the reader goes away before the output is written; nothing on stderr."""
    for args in (["metrics", "--monitor", seeded.name, "--json"], ["--help"]):
        process = subprocess.Popen([sys.executable, "-m", "monitor", *args], cwd=ROOT, env={**os.environ},
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()
        err = process.stderr.read().decode()
        assert process.wait(timeout=120) in (0, 2) and err == "", err


# --------------------------------------------------------------------------------------------
# configuration errors and warnings


@pytest.mark.azurite
def test_misspelt_field_suggests_the_right_one(storage: object, monitor_name: str, tmp_path: Path,
                                               client: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    body = {**seed_config(monitor_name), "sampling_rte": 0.5}
    body["judge"] = {"provider": "heuristic", "max_concurency": 4}
    path = tmp_path / "monitor.json"
    path.write_text(json.dumps(body))
    code, _, err = _run(capsys, "monitors", "put", str(path))
    assert code == 2
    assert "did you mean `sampling_rate`?" in err and "did you mean `max_concurrency`?" in err
    assert err.count("sampling_rte") == 1, err                 # printed once
    assert "Value error" not in err
    response = client.put(f"/api/monitors/{monitor_name}", json=body)
    assert response.status_code == 422
    details = {d["field"]: d["message"] for d in response.json()["error"]["details"]}
    assert details["sampling_rte"] == "unknown field; did you mean `sampling_rate`?"
    assert details["judge.max_concurency"] == "unknown field; did you mean `max_concurrency`?"
    bad = {**seed_config(monitor_name), "source": {"prefix": "/abs/"}}
    path.write_text(json.dumps(bad))
    code, _, err = _run(capsys, "monitors", "put", str(path))
    assert code == 2 and "Value error" not in err and err.count("must not start with '/'") == 1


@pytest.mark.azurite
def test_overlapping_prefixes_are_accepted_with_a_warning(storage: object, monitor_name: str, tmp_path: Path,
                                                          client: TestClient,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    wide, narrow = f"{monitor_name}-all"[:63], f"{monitor_name}-one"[:63]
    base = seed_config(wide)
    path = tmp_path / "wide.json"
    path.write_text(json.dumps({**base, "source": {**base["source"], "prefix": f"overlap/{monitor_name}/"}}))
    assert _run(capsys, "monitors", "put", str(path))[0] == 0
    inner = {**seed_config(narrow), "source": {**base["source"], "prefix": f"overlap/{monitor_name}/blue/"}}
    path.write_text(json.dumps(inner))
    code, out, err = _run(capsys, "monitors", "put", str(path))
    assert code == 0 and json.loads(out)["name"] == narrow
    warning = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and wide in warning[0] and narrow in warning[0]
    response = client.put(f"/api/monitors/{narrow}", json=inner)
    assert response.status_code == 200
    assert wide in response.headers["x-monitor-warning"] and narrow in response.headers["x-monitor-warning"]
    separate = {**inner, "source": {**base["source"], "prefix": f"elsewhere/{monitor_name}/"}}
    assert "x-monitor-warning" not in client.put(f"/api/monitors/{narrow}", json=separate).headers


# --------------------------------------------------------------------------------------------
# help


def _subparsers(parser: Any) -> dict[str, Any]:
    import argparse

    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[name] = sub
                found.update({f"{name} {k}": v for k, v in _subparsers(sub).items()})
    return found


def test_every_option_is_explained_with_an_example() -> None:
    parser = build_parser()
    top = parser.format_help()
    assert "MONITOR_STORAGE" in top and "MDC_STORAGE" in top
    subs = _subparsers(parser)
    for name in ("demo", "monitors put", "backfill", "aggregate", "serve", "quarantine", "status", "metrics",
                 "alerts", "records"):
        assert name in subs, name
    for name, sub in subs.items():
        text = sub.format_help()
        assert "example:" in text and "python -m monitor" in text, name
        for action in sub._actions:
            if action.dest in ("help", "action"):
                continue
            assert action.help, f"{name}: {action.dest} has no help"
            if action.metavar in ("ISO", "NAME", "S", "M", "PORT", "FILE", "HOST", "X", "REASON"):
                assert "e.g." in action.help, f"{name}: {action.dest} gives no example"


def test_demo_checks_its_port_before_processing(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**os.environ, "MONITOR_DEMO_DIR": str(tmp_path)}
        result = subprocess.run([sys.executable, "-m", "monitor", "demo", "--port", str(port)], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr and "--port" in result.stderr
    assert "Azurite" not in result.stderr and result.stdout == ""   # nothing was started or processed


def test_demo_export_lines_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    import shlex

    from monitor.demo import export_lines

    conn = azurite_connection_string(blob=41000, queue=41001, table=41002)
    monkeypatch.setenv("MONITOR_STORAGE", conn)
    monkeypatch.setenv("MDC_STORAGE", conn)
    monkeypatch.setenv("MDC_CONTAINER", "azureml")
    lines = export_lines(True)
    export = next(line.strip() for line in lines if line.strip().startswith("export "))
    values = dict(item.split("=", 1) for item in shlex.split(export)[1:])
    assert values == {"MONITOR_STORAGE": conn, "MDC_STORAGE": conn, "MDC_CONTAINER": "azureml"}
