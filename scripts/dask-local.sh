#!/usr/bin/env bash
# Start a Dask scheduler and N single-threaded workers on this machine, for trying
# `BACKEND=dask SCHEDULER=tcp://127.0.0.1:PORT` before moving to a real cluster. Ctrl-C stops all.
# Usage: scripts/dask-local.sh VENV WORKERS PORT
set -euo pipefail

venv=${1:?usage: dask-local.sh VENV WORKERS PORT}
workers=${2:?usage: dask-local.sh VENV WORKERS PORT}
port=${3:?usage: dask-local.sh VENV WORKERS PORT}
dask="$venv/bin/dask"
[[ -x "$dask" ]] || { echo "dask-local: $dask not found; run 'make setup' first" >&2; exit 2; }

# Workers import pyutils, so they run from the repository root with it on PYTHONPATH.
repo=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT INT TERM

"$dask" scheduler --host 127.0.0.1 --port "$port" --no-dashboard &
pids+=("$!")
for _ in $(seq "$workers"); do
  "$dask" worker "tcp://127.0.0.1:$port" --nthreads 1 --no-dashboard &
  pids+=("$!")
done
echo "dask-local: scheduler tcp://127.0.0.1:$port with $workers workers; Ctrl-C to stop" >&2
echo "dask-local: e.g. make frames BACKEND=dask SCHEDULER=tcp://127.0.0.1:$port VIDEOS=... FRAMES=..." >&2
wait
