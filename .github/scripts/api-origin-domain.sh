#!/usr/bin/env bash
# Print "TF_VAR_api_origin_domain=<host>" for the Lambda function URL of
# $FUNCTION_NAME, for "$GITHUB_ENV". Prints nothing while the function (or
# its URL) does not exist yet, i.e. before the first `zappa deploy`: the
# stack then serves the site without the /api/* behaviour. Any other error
# (credentials, permissions) fails.
set -euo pipefail

function_name="${FUNCTION_NAME:?FUNCTION_NAME is not set}"

if ! answer="$(aws lambda get-function-url-config --function-name "$function_name" \
    --query FunctionUrl --output text 2>&1)"; then
  if grep -q ResourceNotFoundException <<< "$answer"; then
    echo "no function URL for $function_name yet: CloudFront serves the site without /api/*" >&2
    exit 0
  fi
  echo "$answer" >&2
  exit 1
fi

host="${answer#https://}"
host="${host%/}"
echo "TF_VAR_api_origin_domain=$host"
