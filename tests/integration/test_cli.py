"""`python -m monitor`: monitors CRUD, backfill (idempotent) and status, against Azurite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from azure.storage.blob import ContainerClient

from monitor.cli import main
from tests.support.mdc import monitor_config, upload_reference

pytestmark = pytest.mark.azurite
ROOT = Path(__file__).resolve().parents[2]


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_monitors_crud(storage: object, monitor_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "monitor.json"
    path.write_text(json.dumps(monitor_config(monitor_name, "azureml")))
    code, out, err = _run(capsys, "monitors", "put", str(path))
    assert code == 0 and "created" in err and json.loads(out)["name"] == monitor_name
    code, out, err = _run(capsys, "monitors", "put", str(path))
    assert code == 0 and "replaced" in err
    code, out, _ = _run(capsys, "monitors", "get", monitor_name)
    assert json.loads(out)["source"]["prefix"] == "modelDataCollector/contoso-chat/blue/"
    code, out, _ = _run(capsys, "monitors", "list")
    assert monitor_name in [m["name"] for m in json.loads(out)]
    code, _, err = _run(capsys, "monitors", "delete", monitor_name)
    assert code == 0
    code, _, err = _run(capsys, "monitors", "get", monitor_name)
    assert code == 2 and "no monitor named" in err


def test_invalid_config_exits_2_naming_the_field(storage: object, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({**monitor_config("bad-one", "azureml"), "sampling_rate": 2}))
    code, _, err = _run(capsys, "monitors", "put", str(path))
    assert code == 2 and "sampling_rate" in err
    path.write_text("{\n  broken")
    code, _, err = _run(capsys, "monitors", "put", str(path))
    assert code == 2 and "line 2" in err


def test_backfill_is_idempotent_and_status_reports(mdc_container: ContainerClient, monitor_name: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    upload_reference(mdc_container)
    path = tmp_path / "monitor.json"
    path.write_text(json.dumps(monitor_config(monitor_name, mdc_container.container_name)))
    assert _run(capsys, "monitors", "put", str(path))[0] == 0
    # An hour outside the range is not touched.
    code, out, _ = _run(capsys, "backfill", "--monitor", monitor_name, "--since", "2026-11-20T15:00:00Z",
                        "--until", "2026-11-21T00:00:00Z")
    assert code == 0 and json.loads(out)["blobs"] == 0
    code, out, err = _run(capsys, "backfill", "--monitor", monitor_name, "--since", "2026-11-20T00:00:00Z",
                          "--until", "2026-11-21T00:00:00Z")
    first = json.loads(out)
    assert code == 0 and first["blobs"] == 2 and first["processed"] == 2 and first["records"] == 4
    assert "backfill blobs" in err  # the progress bar
    code, out, _ = _run(capsys, "backfill", "--monitor", monitor_name, "--since", "2026-11-20T00:00:00Z",
                        "--until", "2026-11-21T00:00:00Z")
    again = json.loads(out)
    assert again["skipped"] == 2 and again["processed"] == 0
    code, out, _ = _run(capsys, "status", "--monitor", monitor_name, "--json")
    status = json.loads(out)
    for key in ("blobs_processed", "records", "unmatched", "quarantined", "quarantine_reasons", "scores",
                "last_aggregation"):
        assert key in status
    assert (status["blobs_processed"], status["records"], status["unmatched"]) == (2, 4, 1)
    code, out, _ = _run(capsys, "status", "--monitor", monitor_name)
    assert "records" in out and "approximate" in out


def test_backfill_rejects_an_empty_range(storage: object, monitor_name: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "monitor.json"
    path.write_text(json.dumps(monitor_config(monitor_name, "azureml")))
    _run(capsys, "monitors", "put", str(path))
    code, _, err = _run(capsys, "backfill", "--monitor", monitor_name, "--since", "2026-11-21T00:00:00Z",
                        "--until", "2026-11-20T00:00:00Z")
    assert code == 2 and "--since" in err


def test_module_entry_point_runs_as_a_process(storage: object) -> None:
    result = subprocess.run([sys.executable, "-m", "monitor", "monitors", "list"], cwd=ROOT, env={**os.environ},
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert isinstance(json.loads(result.stdout), list)
    result = subprocess.run([sys.executable, "-m", "monitor", "backfill", "--monitor", "x", "--since", "nope",
                             "--until", "2026-11-20"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 2 and "not an ISO 8601 time" in result.stderr
