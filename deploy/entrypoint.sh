#!/bin/sh
# The image's processes by name (deploy/Dockerfile); any other command runs as given, so the run
# launcher's `dagster api execute_run ...` override works. exec: the process gets ECS's SIGTERM.
set -eu
case "${1:-code-server}" in
  code-server)
    exec dagster code-server start -h 0.0.0.0 -p 4000 -m lakehouse.definitions ;;
  webserver)
    exec dagster-webserver -h 0.0.0.0 -p 3000 -w /opt/dagster/app/workspace.yaml ;;
  daemon)
    exec dagster-daemon run -w /opt/dagster/app/workspace.yaml ;;
  *)
    exec "$@" ;;
esac
