"""scripts/postdeploy.sh (the second deployment step) against a fake `az` on PATH.

The fake records every call; nothing reaches Azure or the network. Checked: it waits until the host
lists ingest_blob without errors, then for the blobs_extension key, reuses an existing system topic
(an account has only one) keeping its identities and tags, works across subscriptions, passes the
key only through a private parameters file that it deletes, retries the deployment, and fails clearly.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.infra.bicep_json import REPO

SCRIPT = REPO / "scripts" / "postdeploy.sh"
MDC_ID = "/subscriptions/sub/resourceGroups/rg-ml/providers/Microsoft.Storage/storageAccounts/mlstore"
KEY = "k3y+/with=special=="
APP_RG_ID = "/subscriptions/sub/resourceGroups/rg-test/providers"

FAKE_AZ = r"""#!/usr/bin/env bash
printf '%s\n' "$*" >> "$FAKE_DIR/az.log"
bump() { local n; n=$(cat "$FAKE_DIR/$1" 2>/dev/null || echo 0); echo $((n + 1)) > "$FAKE_DIR/$1"; echo $((n + 1)); }
case "$1 $2" in
  "account show") echo "sub" ;;
  "functionapp keys")
    n=$(bump keycalls)
    if [[ -n "${FAKE_KEY:-}" && $n -ge ${FAKE_KEY_AFTER:-1} ]]; then printf '%s\n' "$FAKE_KEY"; fi ;;
  "functionapp function")
    n=$(bump functioncalls)
    if [[ -z "${FAKE_NO_FUNCTION:-}" && $n -ge ${FAKE_FUNCTION_AFTER:-1} ]]; then
      printf 'func-abc/aggregate_windows\nfunc-abc/ingest_blob\n'
    fi ;;
  "rest --method")
    if [[ "$3" == "get" ]]; then
      n=$(bump statuscalls)
      if [[ -n "${FAKE_FUNCTION_ERRORS:-}" && $n -lt ${FAKE_ERRORS_UNTIL:-999} ]]; then
        printf '%s\n' "$FAKE_FUNCTION_ERRORS"
      fi
    else
      echo "None"
    fi ;;
  "storage account") echo "$FAKE_MDC_ID" ;;
  "eventgrid system-topic")
    if [[ "$3" == "list" ]]; then
      if [[ -n "${FAKE_TOPICS:-}" ]]; then printf '%b\n' "$FAKE_TOPICS"; fi
    else
      [[ -n "${FAKE_TOPIC_EXISTS:-}" ]] || { echo "ResourceNotFound" >&2; exit 3; }
      prev=""; query=""
      for arg in "$@"; do [[ "$prev" == "--query" ]] && query="$arg"; prev="$arg"; done
      case "$query" in
        name) echo "topic" ;;
        identity.type) printf '%s\n' "${FAKE_TOPIC_IDENTITY_TYPE:-None}" ;;
        keys*) if [[ -n "${FAKE_TOPIC_IDENTITIES:-}" ]]; then printf '%b\n' "$FAKE_TOPIC_IDENTITIES"; fi ;;
        tags*) printf '%s\n' "${FAKE_TOPIC_TAGS:-{\}}" ;;
        *) echo "fake az: unexpected query $query" >&2; exit 3 ;;
      esac
    fi ;;
  "deployment group")
    prev=""
    for arg in "$@"; do
      if [[ "$prev" == "-p" ]]; then
        cp "${arg#@}" "$FAKE_DIR/params.json"
        stat -c '%a' "${arg#@}" > "$FAKE_DIR/params.mode"
      fi
      prev="$arg"
    done
    n=$(bump deploycalls)
    [[ $n -ge ${FAKE_DEPLOY_OK_AFTER:-1} ]] || { echo "webhook validation failed" >&2; exit 1; } ;;
  *) echo "fake az: unexpected call: $*" >&2; exit 3 ;;
esac
"""

FAKE_LOGGER = """#!/usr/bin/env bash
printf '%s\\n' "$*" >> "$FAKE_DIR/$(basename "$0").log"
"""


@pytest.fixture
def fake(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in {"az": FAKE_AZ, "curl": FAKE_LOGGER, "azd": FAKE_LOGGER}.items():
        tool = bin_dir / name
        tool.write_text(text, encoding="utf-8")
        tool.chmod(0o755)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    return {
        "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp),
        "FAKE_DIR": str(tmp_path),
        "FAKE_MDC_ID": MDC_ID,
        "AZURE_ENV_NAME": "test",
        "AZURE_FUNCTION_APP_NAME": "func-abc",
        "AZURE_FUNCTION_APP_HOSTNAME": "func-abc.azurewebsites.net",
        "AZURE_RESOURCE_GROUP": "rg-test",
        "AZURE_STORAGE_ACCOUNT_ID": f"{APP_RG_ID}/Microsoft.Storage/storageAccounts/stabc",
        "MDC_STORAGE_ACCOUNT_NAME": "mlstore",
        "MDC_STORAGE_RESOURCE_GROUP": "rg-ml",
        "MDC_CONTAINER": "azureml-blobstore-0000",
        "EVENTGRID_IDENTITY_ID": f"{APP_RG_ID}/Microsoft.ManagedIdentity/userAssignedIdentities/id-evgt",
        "EVENTGRID_DEADLETTER_CONTAINER": "eventgrid-deadletter",
        "BLOB_KEY_DELAY_SECONDS": "0",
        "DEPLOY_DELAY_SECONDS": "0",
    }


def run(env: dict[str, str], **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT)], env={**env, **extra}, capture_output=True, text=True, timeout=60, check=False
    )


def log(env: dict[str, str], name: str) -> list[str]:
    path = Path(env["FAKE_DIR"]) / f"{name}.log"
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def deployments(env: dict[str, str]) -> list[str]:
    return [line for line in log(env, "az") if line.startswith("deployment group create")]


def test_waits_for_the_key_then_deploys_a_new_topic(fake: dict[str, str]) -> None:
    proc = run(fake, FAKE_KEY=KEY, FAKE_KEY_AFTER="3")
    assert proc.returncode == 0, proc.stderr
    assert (Path(fake["FAKE_DIR"]) / "keycalls").read_text().strip() == "3"
    assert len(log(fake, "curl")) == 2, "the app is poked while the host starts"
    assert all("https://func-abc.azurewebsites.net/" in line for line in log(fake, "curl"))

    (deploy,) = deployments(fake)
    args = deploy.split()
    assert args[args.index("-g") + 1] == "rg-ml"
    assert args[args.index("-f") + 1] == str(REPO / "infra" / "eventgrid.bicep")
    params = json.loads((Path(fake["FAKE_DIR"]) / "params.json").read_text())["parameters"]
    assert {k: v["value"] for k, v in params.items()} == {
        "systemTopicName": "evgt-mlstore",
        "mdcStorageAccountName": "mlstore",
        "mdcStorageResourceGroupName": "rg-ml",
        "mdcContainerName": "azureml-blobstore-0000",
        "functionAppHostName": "func-abc.azurewebsites.net",
        "blobExtensionKey": KEY,
        "deadLetterStorageAccountId": fake["AZURE_STORAGE_ACCOUNT_ID"],
        "deadLetterContainerName": "eventgrid-deadletter",
        "deadLetterIdentityId": fake["EVENTGRID_IDENTITY_ID"],
        "reuseExistingTopic": False,
        "existingTopicIdentityType": "None",
        "existingTopicUserAssignedIdentities": {},
        "existingTopicTags": {},
    }
    assert (Path(fake["FAKE_DIR"]) / "params.mode").read_text().strip() == "600"
    assert not any(KEY in line for line in log(fake, "az")), "the key must not be passed on a command line"
    assert KEY not in proc.stdout + proc.stderr
    assert not os.listdir(fake["TMPDIR"]), "the parameters file with the key is deleted"
    assert "env set EVENTGRID_SYSTEM_TOPIC_NAME evgt-mlstore" in log(fake, "azd")


def test_waits_until_ingest_blob_is_listed_and_not_in_error(fake: dict[str, str]) -> None:
    """The key exists before the function has loaded: the subscription waits for the function."""
    proc = run(fake, FAKE_KEY=KEY, FAKE_FUNCTION_AFTER="2", FAKE_FUNCTION_ERRORS="queueServiceUri missing",
               FAKE_ERRORS_UNTIL="3")
    assert proc.returncode == 0, proc.stderr
    assert (Path(fake["FAKE_DIR"]) / "functioncalls").read_text().strip() == "4"
    assert (Path(fake["FAKE_DIR"]) / "statuscalls").read_text().strip() == "3"
    assert "waiting for the host of func-abc to list ingest_blob (1/40)" in proc.stderr
    assert "ingest_blob is in error (2/40): queueServiceUri missing" in proc.stderr
    calls = log(fake, "az")
    first_key = next(i for i, line in enumerate(calls) if line.startswith("functionapp keys"))
    last_status = max(i for i, line in enumerate(calls) if line.startswith("rest --method get"))
    assert last_status < first_key, "the key is read only once the function is loaded"
    assert any("/sites/func-abc/functions/ingest_blob/properties/status" in line for line in calls)
    assert len(deployments(fake)) == 1


def test_fails_naming_the_error_when_ingest_blob_stays_in_error(fake: dict[str, str]) -> None:
    proc = run(fake, FAKE_KEY=KEY, BLOB_KEY_ATTEMPTS="2", FAKE_FUNCTION_ERRORS="Storage account connection missing")
    assert proc.returncode != 0
    assert "ingest_blob is in error after 2 attempts: Storage account connection missing" in proc.stderr
    assert "MDC_STORAGE__queueServiceUri" in proc.stderr
    assert not deployments(fake)
    assert not any(line.startswith("functionapp keys") for line in log(fake, "az"))


def test_fails_when_the_host_never_lists_ingest_blob(fake: dict[str, str]) -> None:
    proc = run(fake, FAKE_KEY=KEY, BLOB_KEY_ATTEMPTS="2", FAKE_NO_FUNCTION="1")
    assert proc.returncode != 0
    assert "does not list ingest_blob after 2 attempts" in proc.stderr
    assert not deployments(fake)


def test_an_existing_topic_keeps_its_identities_and_tags(fake: dict[str, str]) -> None:
    """Another subscription on the topic may deliver or dead-letter with the topic's identities."""
    other = "/subscriptions/sub/resourceGroups/rg-ml/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-x"
    proc = run(fake, FAKE_KEY=KEY, EVENTGRID_SYSTEM_TOPIC_NAME="ml-topic", FAKE_TOPIC_EXISTS="1",
               FAKE_TOPIC_IDENTITY_TYPE="SystemAssigned, UserAssigned", FAKE_TOPIC_IDENTITIES=other,
               FAKE_TOPIC_TAGS='{"owner": "ml-team", "cost-center": "42"}')
    assert proc.returncode == 0, proc.stderr
    params = json.loads((Path(fake["FAKE_DIR"]) / "params.json").read_text())["parameters"]
    assert params["systemTopicName"]["value"] == "ml-topic"
    assert params["reuseExistingTopic"]["value"] is True
    assert params["existingTopicIdentityType"]["value"] == "SystemAssigned, UserAssigned"
    assert params["existingTopicUserAssignedIdentities"]["value"] == {other: {}}
    assert params["existingTopicTags"]["value"] == {"owner": "ml-team", "cost-center": "42"}
    assert "keeping its identity (SystemAssigned, UserAssigned) and tags" in proc.stderr


def test_watched_account_in_another_subscription(fake: dict[str, str]) -> None:
    proc = run(fake, FAKE_KEY=KEY, MDC_STORAGE_SUBSCRIPTION_ID="sub-ml")
    assert proc.returncode == 0, proc.stderr
    calls = log(fake, "az")
    for prefix in ("storage account show", "eventgrid system-topic list", "deployment group create"):
        (line,) = [c for c in calls if c.startswith(prefix)]
        args = line.split()
        assert args[args.index("--subscription") + 1] == "sub-ml", prefix
    for prefix in ("functionapp keys", "functionapp function"):
        line = next(c for c in calls if c.startswith(prefix))
        args = line.split()
        assert args[args.index("--subscription") + 1] == "sub", prefix


def test_reuses_the_existing_system_topic_of_the_account(fake: dict[str, str]) -> None:
    topics = "\\n".join(
        [
            "other\trg-x\t/subscriptions/sub/resourceGroups/rg-x/providers/Microsoft.Storage/storageAccounts/other",
            "existing-topic\trg-topics\t" + MDC_ID.upper(),
        ]
    )
    proc = run(fake, FAKE_KEY=KEY, FAKE_TOPICS=topics)
    assert proc.returncode == 0, proc.stderr
    (deploy,) = deployments(fake)
    args = deploy.split()
    assert args[args.index("-g") + 1] == "rg-topics"
    params = json.loads((Path(fake["FAKE_DIR"]) / "params.json").read_text())["parameters"]
    assert params["systemTopicName"]["value"] == "existing-topic"
    assert "reusing the existing system topic existing-topic" in proc.stderr


def test_topic_name_from_the_environment_wins(fake: dict[str, str]) -> None:
    proc = run(fake, FAKE_KEY=KEY, EVENTGRID_SYSTEM_TOPIC_NAME="my-topic")
    assert proc.returncode == 0, proc.stderr
    assert not any(line.startswith("eventgrid system-topic list") for line in log(fake, "az"))
    params = json.loads((Path(fake["FAKE_DIR"]) / "params.json").read_text())["parameters"]
    assert params["systemTopicName"]["value"] == "my-topic"


def test_retries_the_deployment_while_the_webhook_handshake_fails(fake: dict[str, str]) -> None:
    proc = run(fake, FAKE_KEY=KEY, FAKE_DEPLOY_OK_AFTER="2")
    assert proc.returncode == 0, proc.stderr
    assert len(deployments(fake)) == 2


def test_gives_up_when_the_key_never_appears(fake: dict[str, str]) -> None:
    proc = run(fake, BLOB_KEY_ATTEMPTS="3")
    assert proc.returncode != 0
    assert "no blobs_extension key after 3 attempts although ingest_blob is loaded" in proc.stderr
    assert not deployments(fake)
    assert any(line.startswith("rest --method post") and "/host/default/listkeys" in line for line in log(fake, "az"))


def test_names_a_missing_output(fake: dict[str, str]) -> None:
    env = {k: v for k, v in fake.items() if k != "MDC_CONTAINER"}
    proc = run(env, FAKE_KEY=KEY)
    assert proc.returncode != 0
    assert "MDC_CONTAINER is not set" in proc.stderr
    assert not log(env, "az")
