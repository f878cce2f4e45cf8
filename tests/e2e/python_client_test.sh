#!/usr/bin/env bash
# Starts `skiff apiserver` and runs the official Python client against it (Debian's
# python3-kubernetes, for /usr/bin/python3).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/e2e.sh"
skiff=$1
script=$2
e2e_workdir python
start_server apiserver "$work/data"
/usr/bin/python3 "$script" "$KUBECONFIG"
