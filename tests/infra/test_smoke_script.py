"""scripts/smoke.sh (`make smoke`) against a fake `az` and a fake Python: it finds the app and the
watched account from the azd outputs, passes the function key only through the environment, and
points MDC_STORAGE at the account's blob endpoint with no credential setting (your `az login`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.infra.bicep_json import REPO

FAKE_AZ = r"""#!/usr/bin/env bash
printf '%s\n' "$*" >> "$FAKE_DIR/az.log"
case "$1 $2" in
  "account show") echo "sub-app" ;;
  "functionapp keys") [[ -n "${FAKE_NO_KEY:-}" ]] && echo "None" || echo "fn-key==" ;;
  "storage account") echo "https://mlstore.blob.core.windows.net/" ;;
  *) echo "fake az: unexpected call: $*" >&2; exit 3 ;;
esac
"""
FAKE_PYTHON = r"""#!/usr/bin/env bash
{ printf 'ARGS %s\n' "$*"; env | grep -E '^(MONITOR_API_KEY|MDC_STORAGE=|MDC_STORAGE__|MDC_CONTAINER)' | sort; } \
  > "$FAKE_DIR/python.log"
"""


def run(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in {"az": FAKE_AZ, "python": FAKE_PYTHON}.items():
        (bin_dir / name).write_text(text, encoding="utf-8")
        (bin_dir / name).chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "FAKE_DIR": str(tmp_path),
           "PYTHON": str(bin_dir / "python"), "AZURE_FUNCTION_APP_NAME": "func-abc",
           "AZURE_RESOURCE_GROUP": "rg-app", "AZURE_FUNCTION_APP_URL": "https://func-abc.azurewebsites.net",
           "MDC_STORAGE_ACCOUNT_NAME": "mlstore", "MDC_STORAGE_RESOURCE_GROUP": "rg-ml",
           "MDC_STORAGE_SUBSCRIPTION_ID": "sub-ml", "MDC_CONTAINER": "azureml-blobstore-0000",
           "MDC_STORAGE": "stale connection string", **extra}
    return subprocess.run(["bash", str(REPO / "scripts" / "smoke.sh"), "--keep"], env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def test_runs_the_smoke_command_with_the_deployment_outputs(tmp_path: Path) -> None:
    proc = run(tmp_path)
    assert proc.returncode == 0, proc.stderr
    logged = (tmp_path / "python.log").read_text(encoding="utf-8").splitlines()
    assert logged[0] == "ARGS -m monitor smoke --api https://func-abc.azurewebsites.net --keep"
    assert set(logged[1:]) == {"MONITOR_API_KEY=fn-key==", "MDC_CONTAINER=azureml-blobstore-0000",
                               "MDC_STORAGE__blobServiceUri=https://mlstore.blob.core.windows.net/"}
    calls = (tmp_path / "az.log").read_text(encoding="utf-8")
    assert "fn-key" not in calls
    assert "storage account show --subscription sub-ml -g rg-ml -n mlstore" in calls


def test_names_a_missing_output_and_a_missing_key(tmp_path: Path) -> None:
    proc = run(tmp_path, MDC_CONTAINER="")
    assert proc.returncode != 0 and "MDC_CONTAINER is not set" in proc.stderr
    proc = run(tmp_path, FAKE_NO_KEY="1")
    assert proc.returncode != 0 and "no default function key on func-abc" in proc.stderr
