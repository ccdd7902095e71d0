#!/usr/bin/env bash
# Installs Prometheus and promtool (Debian's `prometheus` package) when either is missing,
# for the alert-rule tests and the end-to-end scrape test. Idempotent: does nothing when
# both are on PATH already.
#
# The package would start its own service on :9090 with its own data dir. Our tests never use
# it (they start their own prometheus on a free port with their own config and data dir), so
# the install runs under a policy-rc.d that forbids starting services, and a service that runs
# anyway is stopped and disabled afterwards.
set -euo pipefail

if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-prometheus: promtool/prometheus missing and not root; install Debian's prometheus package" >&2
  exit 1
fi

policy=/usr/sbin/policy-rc.d
placed_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  placed_policy=1
fi
cleanup() { if [ "$placed_policy" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

# Whatever the init system did, the packaged service must not hold :9090 or a data dir.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl disable --now prometheus >/dev/null 2>&1 || true
elif [ -x /etc/init.d/prometheus ]; then
  /etc/init.d/prometheus stop >/dev/null 2>&1 || true
fi

command -v promtool >/dev/null && command -v prometheus >/dev/null
echo "ensure-prometheus: $(prometheus --version 2>&1 | head -n 1)"
