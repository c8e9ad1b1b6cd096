#!/usr/bin/env bash
# Kept at this path because the GPU machines' instructions name it; the check is
# tools/device-check.sh (same arguments).
exec bash "$(dirname "${BASH_SOURCE[0]}")/../tools/device-check.sh" "$@"
