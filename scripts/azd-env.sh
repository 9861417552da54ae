# Sourced by the scripts that act on a deployed app (postdeploy.sh, smoke.sh): logging, the Azure CLI
# check, and the outputs of infra/main.bicep from the azd environment when they are not exported.
# The sourcing script sets SCRIPT_NAME first (the prefix of its messages).

log() { printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v az >/dev/null 2>&1 || die "the Azure CLI (az) is required; install it and run 'az login'"

if [[ -z "${AZURE_FUNCTION_APP_NAME:-}" ]] && command -v azd >/dev/null 2>&1; then
  set -a
  eval "$(azd env get-values)"
  set +a
fi
