#!/usr/bin/env bash
# The GSM8K report sweep of docs/results.md (problems 0-49): scripts/sweep-report.sh gsm8k, kept
# under this name for the commands the older tables give.
exec "$(dirname "$0")/sweep-report.sh" gsm8k "$@"
