"""Layer 3: checkov (bicep framework) over infra/, from its own virtual environment.

tests/infra/run_checkov.sh creates .venv-checkov on first use (checkov pins old `packaging` and
`pycep-parser`, which clash with the test venv). checkov exits 0 on files it cannot parse, so the
test fails on any parsing error; every failed check must instead be skipped inside the resource
body with `// checkov:skip=CKV_ID: reason`.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.infra.bicep_json import REPO

SCRIPT = REPO / "tests" / "infra" / "run_checkov.sh"

# Templates that hold resources checkov has policies for: if one is missing from the report,
# checkov silently skipped the file.
SCANNED = {"/app/function.bicep", "/app/storage.bicep", "/app/openai.bicep", "/eventgrid.bicep"}


def _run_checkov() -> dict[str, Any]:
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        pytest.fail(f"checkov did not run (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    bicep = [r for r in reports if r.get("check_type") == "bicep"]
    assert bicep, f"no bicep report in checkov output: {proc.stdout[:500]}"
    return bicep[0]  # type: ignore[no-any-return]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_checkov_bicep_clean() -> None:
    report = _run_checkov()
    summary = report["summary"]
    assert summary["parsing_errors"] == 0, f"checkov could not parse some templates: {summary}"
    results = report["results"]
    failed = [
        f"{c['check_id']} {c['file_path']} {c['resource']}: {c['check_name']}" for c in results.get("failed_checks", [])
    ]
    assert not failed, "failed checkov checks (fix, or skip inside the resource with a reason):\n" + "\n".join(failed)
    for check in results.get("skipped_checks", []):
        reason = (check.get("check_result") or {}).get("suppress_comment", "").strip()
        assert len(reason) >= 10, f"{check['check_id']} on {check['resource']} is skipped without a written reason"
    seen = {c["file_path"] for kind in ("passed_checks", "skipped_checks") for c in results.get(kind, [])}
    assert seen >= SCANNED, f"checkov reported nothing for {sorted(SCANNED - seen)}"
    assert summary["passed"] > 0
