#!/usr/bin/env bash
# azd postdeploy hook (also runnable by hand): create or update the Event Grid subscription that
# feeds the ingest_blob trigger. Second deployment step, after the code is deployed, because the
# webhook needs the function host's `blobs_extension` system key, which appears only once the host
# has started with the Event Grid blob trigger.
#
# What it does, idempotently:
#   1. waits until the host lists the ingest_blob function and reports no error for it (the key of
#      step 2 exists as soon as the host starts, before the function has loaded: a function that
#      failed indexing, e.g. a missing MDC_STORAGE__queueServiceUri, would otherwise get a
#      subscription whose events are accepted and never ingested);
#   2. reads the blobs_extension system key (az functionapp keys list, then az rest listkeys);
#   3. finds the storage account's existing Event Grid system topic (an account has at most one),
#      or names a new one evgt-<account>; an existing topic keeps its identities and tags;
#   4. deploys infra/eventgrid.bicep into the topic's resource group (PUT: re-running updates in place).
#
# Inputs (azd exports the outputs of infra/main.bicep to hooks; by hand, the script reads
# `azd env get-values`, or export them yourself):
#   AZURE_FUNCTION_APP_NAME, AZURE_FUNCTION_APP_HOSTNAME, AZURE_RESOURCE_GROUP, AZURE_STORAGE_ACCOUNT_ID,
#   MDC_STORAGE_ACCOUNT_NAME, MDC_STORAGE_RESOURCE_GROUP, MDC_CONTAINER,
#   EVENTGRID_IDENTITY_ID, EVENTGRID_DEADLETTER_CONTAINER
#   optional: AZURE_SUBSCRIPTION_ID, MDC_STORAGE_SUBSCRIPTION_ID (default: AZURE_SUBSCRIPTION_ID),
#   EVENTGRID_SYSTEM_TOPIC_NAME, EVENTGRID_SYSTEM_TOPIC_RESOURCE_GROUP,
#   BLOB_KEY_ATTEMPTS (default 40), BLOB_KEY_DELAY_SECONDS (default 15),
#   DEPLOY_ATTEMPTS (default 3), DEPLOY_DELAY_SECONDS (default 30)
set -euo pipefail

SCRIPT_NAME=postdeploy
# shellcheck source=scripts/azd-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/azd-env.sh"

for name in AZURE_FUNCTION_APP_NAME AZURE_RESOURCE_GROUP AZURE_STORAGE_ACCOUNT_ID \
  MDC_STORAGE_ACCOUNT_NAME MDC_STORAGE_RESOURCE_GROUP MDC_CONTAINER \
  EVENTGRID_IDENTITY_ID EVENTGRID_DEADLETTER_CONTAINER; do
  [[ -n "${!name:-}" ]] || die "$name is not set (run 'azd provision' first, or export the outputs of infra/main.bicep)"
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
APP="$AZURE_FUNCTION_APP_NAME"
RG="$AZURE_RESOURCE_GROUP"
APP_HOST="${AZURE_FUNCTION_APP_HOSTNAME:-$APP.azurewebsites.net}"
SUB="${AZURE_SUBSCRIPTION_ID:-$(az account show --query id -o tsv)}"
# The watched account, its system topic and the Event Grid deployment live in its subscription.
MDC_SUB="${MDC_STORAGE_SUBSCRIPTION_ID:-$SUB}"
FUNCTION="ingest_blob"
KEY_ATTEMPTS="${BLOB_KEY_ATTEMPTS:-40}"
KEY_DELAY="${BLOB_KEY_DELAY_SECONDS:-15}"
DEPLOY_ATTEMPTS="${DEPLOY_ATTEMPTS:-3}"
DEPLOY_DELAY="${DEPLOY_DELAY_SECONDS:-30}"

json_string() { local s="${1//\\/\\\\}"; s="${s//\"/\\\"}"; printf '"%s"' "$s"; }

blob_extension_key() {
  local key
  key="$(az functionapp keys list --subscription "$SUB" -g "$RG" -n "$APP" \
    --query 'systemKeys.blobs_extension' -o tsv 2>/dev/null || true)"
  if [[ -z "$key" || "$key" == "None" ]]; then
    key="$(az rest --method post \
      --uri "/subscriptions/$SUB/resourceGroups/$RG/providers/Microsoft.Web/sites/$APP/host/default/listkeys?api-version=2024-04-01" \
      --query 'systemKeys.blobs_extension' -o tsv 2>/dev/null || true)"
  fi
  [[ "$key" == "None" ]] && key=""
  printf '%s' "$key"
}

function_listed() {
  az functionapp function list --subscription "$SUB" -g "$RG" -n "$APP" --query '[].name' -o tsv 2>/dev/null \
    | grep -qE "(^|/)$FUNCTION\$"
}

# The errors the host reports for the function (ARM's function status, the host's
# admin/functions/{name}/status); empty when it loaded cleanly.
function_errors() {
  az rest --method get \
    --uri "/subscriptions/$SUB/resourceGroups/$RG/providers/Microsoft.Web/sites/$APP/functions/$FUNCTION/properties/status?api-version=2024-04-01" \
    --query 'properties.errors || errors' -o tsv 2>/dev/null | grep -v '^None$' || true
}

poke() {
  # Any request starts the host, which loads the functions and creates the system keys.
  if command -v curl >/dev/null 2>&1; then
    curl -s -o /dev/null --max-time 20 "https://$APP_HOST/api/health" || true
  fi
}

# 1. ingest_blob is loaded and not in error.
ERRORS=""
READY=""
for ((attempt = 1; attempt <= KEY_ATTEMPTS; attempt++)); do
  if function_listed; then
    ERRORS="$(function_errors)"
    if [[ -z "$ERRORS" ]]; then
      READY=1
      break
    fi
    log "$FUNCTION is in error ($attempt/$KEY_ATTEMPTS): $ERRORS"
  else
    log "waiting for the host of $APP to list $FUNCTION ($attempt/$KEY_ATTEMPTS)"
  fi
  poke
  sleep "$KEY_DELAY"
done
if [[ -z "$READY" ]]; then
  if [[ -n "$ERRORS" ]]; then
    die "$FUNCTION is in error after $KEY_ATTEMPTS attempts: $ERRORS. Check the MDC_STORAGE__blobServiceUri, MDC_STORAGE__queueServiceUri and MDC_CONTAINER app settings, then re-run this script (azd hooks run postdeploy)."
  fi
  die "the host of $APP does not list $FUNCTION after $KEY_ATTEMPTS attempts: is the code deployed (azd deploy), and does the app start (Application Insights: traces of the host, exceptions)? Re-run this script (azd hooks run postdeploy) once it does."
fi
log "$FUNCTION is loaded and reports no error"

# 2. The blobs_extension system key.
KEY=""
for ((attempt = 1; attempt <= KEY_ATTEMPTS; attempt++)); do
  KEY="$(blob_extension_key)"
  [[ -n "$KEY" ]] && break
  log "waiting for the blobs_extension system key of $APP ($attempt/$KEY_ATTEMPTS)"
  poke
  sleep "$KEY_DELAY"
done
[[ -n "$KEY" ]] || die "no blobs_extension key after $KEY_ATTEMPTS attempts although $FUNCTION is loaded: does it register with source=EventGrid? Re-run this script (azd hooks run postdeploy) once the host is up."

# 3. The system topic: at most one per storage account, so reuse the one that exists.
MDC_ID="$(az storage account show --subscription "$MDC_SUB" -g "$MDC_STORAGE_RESOURCE_GROUP" \
  -n "$MDC_STORAGE_ACCOUNT_NAME" --query id -o tsv)"
TOPIC_NAME="${EVENTGRID_SYSTEM_TOPIC_NAME:-}"
TOPIC_RG="${EVENTGRID_SYSTEM_TOPIC_RESOURCE_GROUP:-}"
if [[ -z "$TOPIC_NAME" ]]; then
  found="$(az eventgrid system-topic list --subscription "$MDC_SUB" \
    --query '[].[name, resourceGroup, source]' -o tsv 2>/dev/null \
    | awk -F '\t' -v src="$MDC_ID" 'tolower($3) == tolower(src) { print $1 "\t" $2; exit }')"
  if [[ -n "$found" ]]; then
    TOPIC_NAME="${found%%$'\t'*}"
    TOPIC_RG="${found#*$'\t'}"
    log "reusing the existing system topic $TOPIC_NAME (resource group $TOPIC_RG)"
  fi
fi
TOPIC_NAME="${TOPIC_NAME:-evgt-$MDC_STORAGE_ACCOUNT_NAME}"
TOPIC_RG="${TOPIC_RG:-$MDC_STORAGE_RESOURCE_GROUP}"

# An existing topic (found, named, or ours from an earlier run) keeps its identities and tags.
REUSE=false
IDENTITY_TYPE="None"
IDENTITIES="{}"
TAGS="{}"
topic_query() {
  az eventgrid system-topic show --subscription "$MDC_SUB" -g "$TOPIC_RG" -n "$TOPIC_NAME" --query "$1" -o "$2" 2>/dev/null
}
if topic_query name tsv >/dev/null; then
  REUSE=true
  IDENTITY_TYPE="$(topic_query 'identity.type' tsv || true)"
  [[ -z "$IDENTITY_TYPE" ]] && IDENTITY_TYPE="None"
  IDENTITIES="{"
  while IFS= read -r id; do
    [[ -z "$id" ]] && continue
    [[ "$IDENTITIES" == "{" ]] || IDENTITIES+=", "
    IDENTITIES+="$(json_string "$id"): {}"
  done < <(topic_query 'keys(identity.userAssignedIdentities || `{}`)' tsv || true)
  IDENTITIES+="}"
  TAGS="$(topic_query 'tags || `{}`' json || true)"
  [[ -z "$TAGS" ]] && TAGS="{}"
  log "the system topic $TOPIC_NAME exists: keeping its identity ($IDENTITY_TYPE) and tags, adding the dead-letter identity"
fi

# 4. Deploy infra/eventgrid.bicep. The key goes through a private parameters file, never argv.
umask 077
PARAMS="$(mktemp "${TMPDIR:-/tmp}/eventgrid-params.XXXXXX")"
trap 'rm -f "$PARAMS"' EXIT
cat >"$PARAMS" <<JSON
{
  "\$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
  "contentVersion": "1.0.0.0",
  "parameters": {
    "systemTopicName": { "value": $(json_string "$TOPIC_NAME") },
    "mdcStorageAccountName": { "value": $(json_string "$MDC_STORAGE_ACCOUNT_NAME") },
    "mdcStorageResourceGroupName": { "value": $(json_string "$MDC_STORAGE_RESOURCE_GROUP") },
    "mdcContainerName": { "value": $(json_string "$MDC_CONTAINER") },
    "functionAppHostName": { "value": $(json_string "$APP_HOST") },
    "blobExtensionKey": { "value": $(json_string "$KEY") },
    "deadLetterStorageAccountId": { "value": $(json_string "$AZURE_STORAGE_ACCOUNT_ID") },
    "deadLetterContainerName": { "value": $(json_string "$EVENTGRID_DEADLETTER_CONTAINER") },
    "deadLetterIdentityId": { "value": $(json_string "$EVENTGRID_IDENTITY_ID") },
    "reuseExistingTopic": { "value": $REUSE },
    "existingTopicIdentityType": { "value": $(json_string "$IDENTITY_TYPE") },
    "existingTopicUserAssignedIdentities": { "value": $IDENTITIES },
    "existingTopicTags": { "value": $TAGS }
  }
}
JSON

# Event Grid validates the webhook when the subscription is created; a host that is still starting
# fails that handshake, so the deployment is retried.
for ((attempt = 1; attempt <= DEPLOY_ATTEMPTS; attempt++)); do
  log "deploying infra/eventgrid.bicep into $TOPIC_RG (topic $TOPIC_NAME, attempt $attempt/$DEPLOY_ATTEMPTS)"
  if az deployment group create --subscription "$MDC_SUB" -g "$TOPIC_RG" \
    -n "eventgrid-${AZURE_ENV_NAME:-genai-quality-monitor}" \
    -f "$ROOT/infra/eventgrid.bicep" -p "@$PARAMS" -o none; then
    if command -v azd >/dev/null 2>&1 && [[ -n "${AZURE_ENV_NAME:-}" ]]; then
      azd env set EVENTGRID_SYSTEM_TOPIC_NAME "$TOPIC_NAME" >/dev/null 2>&1 || true
      azd env set EVENTGRID_SYSTEM_TOPIC_RESOURCE_GROUP "$TOPIC_RG" >/dev/null 2>&1 || true
    fi
    log "Event Grid subscription ready: BlobCreated on $MDC_CONTAINER/modelDataCollector/**.jsonl -> $APP ingest_blob"
    exit 0
  fi
  ((attempt < DEPLOY_ATTEMPTS)) && sleep "$DEPLOY_DELAY"
done
die "the Event Grid deployment failed $DEPLOY_ATTEMPTS times; see the errors above"
