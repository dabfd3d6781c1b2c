#!/usr/bin/env bash
# Every Airflow service starts through this: the project's startup.sh first, as MWAA runs it before
# Airflow starts (sourced in bash; what it exports reaches Airflow and its tasks), then the command.
# Like MWAA's essential settings, what the sandbox itself sets (compose.yaml's environment) wins
# over the script: it may add variables and install things, not point Airflow elsewhere.
STARTUP=${SANDBOX_STARTUP:-/opt/airflow/startup/startup.sh}  # where compose.yaml mounts it
if [ -s "$STARTUP" ]; then
  echo "Running the project's startup.sh" >&2
  sandbox_env=$(declare -px)
  shopt -s expand_aliases
  alias exit=return  # as MWAA's wrapper does: the script's `exit` ends the script, not the container
  # shellcheck disable=SC1090
  source "$STARTUP" || echo "startup.sh ended with status $?" >&2
  unalias exit
  eval "$sandbox_env" 2>/dev/null  # read-only variables (BASHOPTS, ...) cannot be set again: harmless
fi
exec "$@"
