#!/usr/bin/env bash
# Install the real components imgpipe's tests, benchmarks and demo use, on
# Debian 12 with Go already present (the same list CI installs). Idempotent.
exec "$(dirname "$0")/../.ci/run" --install-only
