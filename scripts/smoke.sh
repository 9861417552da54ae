#!/usr/bin/env bash
# `make smoke`: run `python -m monitor smoke` against the app of the current azd environment
# (docs/deploy.md, "Smoke test"). Reads the outputs of infra/main.bicep (azd env get-values, or
# exported by hand), fetches the function key with az, and writes the smoke blobs with your own
# Entra identity (DefaultAzureCredential: az login), which needs Storage Blob Data Contributor on
# the watched account. Extra arguments go to the smoke command (e.g. --timeout 900 --keep).
set -euo pipefail

SCRIPT_NAME=smoke
# shellcheck source=scripts/azd-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/azd-env.sh"
for name in AZURE_FUNCTION_APP_NAME AZURE_RESOURCE_GROUP AZURE_FUNCTION_APP_URL \
  MDC_STORAGE_ACCOUNT_NAME MDC_STORAGE_RESOURCE_GROUP MDC_CONTAINER; do
  [[ -n "${!name:-}" ]] || die "$name is not set (run 'azd provision' first, or export the outputs of infra/main.bicep)"
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
MDC_SUB="${MDC_STORAGE_SUBSCRIPTION_ID:-${AZURE_SUBSCRIPTION_ID:-$(az account show --query id -o tsv)}}"

KEY="$(az functionapp keys list -g "$AZURE_RESOURCE_GROUP" -n "$AZURE_FUNCTION_APP_NAME" \
  --query functionKeys.default -o tsv)"
[[ -n "$KEY" && "$KEY" != "None" ]] || die "no default function key on $AZURE_FUNCTION_APP_NAME (is the code deployed?)"
BLOB="$(az storage account show --subscription "$MDC_SUB" -g "$MDC_STORAGE_RESOURCE_GROUP" \
  -n "$MDC_STORAGE_ACCOUNT_NAME" --query primaryEndpoints.blob -o tsv)"

# The key travels in the environment, never on a command line. The blob URI without a credential
# setting means DefaultAzureCredential: your `az login`.
export MONITOR_API_KEY="$KEY"
export MDC_STORAGE__blobServiceUri="$BLOB"
export MDC_CONTAINER
unset MDC_STORAGE MDC_STORAGE__credential MDC_STORAGE__clientId
cd "$ROOT"
exec "$PYTHON" -m monitor smoke --api "$AZURE_FUNCTION_APP_URL" "$@"
