#!/usr/bin/env bash
# Put the secrets on the Lambda function $FUNCTION_NAME so that CloudFront
# and the function never disagree on the origin secret (docs/operations.md, "Rotating
# the origin secret"). Other variables on the function are kept, and nothing
# is written when nothing would change.
#
#   function-secrets.sh rotate   before `terraform apply` changes the header
#       CloudFront sends: a function whose ORIGIN_SECRET is not
#       $TF_VAR_origin_secret takes the new one and keeps its old one as
#       ORIGIN_SECRET_PREVIOUS, so it accepts both. No function yet (the
#       first deploy): nothing to do.
#   function-secrets.sh settle   once CloudFront sends $TF_VAR_origin_secret
#       everywhere (`terraform apply` waits for the distribution to be
#       deployed): ORIGIN_SECRET and SECRET_KEY ($APP_SECRET_KEY) set,
#       ORIGIN_SECRET_PREVIOUS removed.
set -euo pipefail

function_name="${FUNCTION_NAME:?FUNCTION_NAME is not set}"
secret="${TF_VAR_origin_secret:?TF_VAR_origin_secret is not set}"
case "${1:-}" in
  rotate)
    filter='(. // {}) as $env
      | if ($env.ORIGIN_SECRET // "") == "" or $env.ORIGIN_SECRET == $secret then $env
        else $env + {ORIGIN_SECRET: $secret, ORIGIN_SECRET_PREVIOUS: $env.ORIGIN_SECRET} end'
    ;;
  settle)
    : "${APP_SECRET_KEY:?APP_SECRET_KEY is not set}"
    filter='(. // {}) + {ORIGIN_SECRET: $secret, SECRET_KEY: $key} | del(.ORIGIN_SECRET_PREVIOUS)'
    ;;
  *)
    echo "usage: $0 rotate|settle" >&2
    exit 2
    ;;
esac

if ! current="$(aws lambda get-function-configuration --function-name "$function_name" \
    --query 'Environment.Variables' --output json 2>&1)"; then
  if [ "$1" = rotate ] && grep -q ResourceNotFoundException <<< "$current"; then
    echo "no function $function_name yet: no origin secret to rotate"
    exit 0
  fi
  echo "$current" >&2
  exit 1
fi

wanted="$(jq -c -S --arg secret "$secret" --arg key "${APP_SECRET_KEY:-}" "$filter" <<< "$current")"
if [ "$wanted" = "$(jq -c -S '. // {}' <<< "$current")" ]; then
  echo "$1: the function's secrets are already in place"
  exit 0
fi

environment="$(mktemp)"
trap 'rm -f "$environment"' EXIT
jq -c '{Variables: .}' <<< "$wanted" > "$environment"
aws lambda wait function-updated --function-name "$function_name"
aws lambda update-function-configuration --function-name "$function_name" \
  --environment "file://$environment" > /dev/null
# The next step (terraform apply, or zappa) must meet the new settings in force.
aws lambda wait function-updated --function-name "$function_name"
echo "$1: the function's secrets are updated"
