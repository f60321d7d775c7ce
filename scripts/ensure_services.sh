#!/usr/bin/env bash
# Make sure PostgreSQL, Redis and RabbitMQ answer on 127.0.0.1, installing and starting them
# when absent (as root, from Debian's packages). Used by `make test` and .ci/run.
set -euo pipefail

pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }
rabbitmq_up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
wait_for() { for _ in $(seq 1 60); do "$1" && return 0; sleep 0.5; done; echo "$2 did not come up" >&2; return 1; }

apt_updated=0
apt_install() {
  if [ "$(id -u)" != 0 ]; then echo "need $* but not root: install it and rerun" >&2; exit 1; fi
  if [ $apt_updated = 0 ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! pg_up; then
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  conf=/etc/postgresql/$version/main
  # Trust auth on loopback, as the development machines have it.
  if ! grep -q "eseq-trust" "$conf/pg_hba.conf" 2>/dev/null; then
    sed -i '1i host all all 127.0.0.1/32 trust # eseq-trust\nhost all all ::1/128 trust # eseq-trust\nlocal all all trust # eseq-trust' "$conf/pg_hba.conf"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for pg_up PostgreSQL
fi

if ! redis_up; then
  command -v redis-server >/dev/null || apt_install redis-server
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for redis_up Redis
fi
# RabbitMQ, for the crash and recovery tests' RabbitMQ variants (each run makes its
# own vhost with rabbitmqctl, so it needs root or the rabbitmq user). The consumer
# timeout is raised to the ml pool's 3500 s time limit plus margin: with late acks a
# task is unacked while it runs, and RabbitMQ's default (30 min) would close the channel.
if ! rabbitmq_up; then
  if command -v rabbitmq-server >/dev/null || { [ "$(id -u)" = 0 ] && apt_install rabbitmq-server; }; then
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-rabbit consumer_timeout 3900000" rabbitmq-server -detached
    wait_for rabbitmq_up RabbitMQ || echo "RabbitMQ did not start: its test variants will be skipped" >&2
  else
    echo "rabbitmq-server is not installed (not root): the RabbitMQ test variants will be skipped" >&2
  fi
fi
# SpamAssassin, for the pre-flight check's tests against a real spamd
# (tests/integration/test_spamassassin.py starts its own); optional: without it
# those tests are skipped and say so.
if ! command -v spamd >/dev/null || ! command -v spamc >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt_install spamd spamc || echo "spamd/spamc could not be installed: the SpamAssassin tests will be skipped" >&2
  else
    echo "spamd/spamc are not installed (not root): the SpamAssassin tests will be skipped" >&2
  fi
fi
# PgBouncer, for the e2e test that runs the platform through it in transaction mode
# (tests/e2e/test_pgbouncer.py starts its own); optional like spamd: without it that
# test is skipped and says so. Installing it leaves Debian's own instance stopped
# or not: the test uses its own port and configuration.
if ! command -v pgbouncer >/dev/null && [ ! -x /usr/sbin/pgbouncer ]; then
  if [ "$(id -u)" = 0 ]; then
    apt_install pgbouncer || echo "pgbouncer could not be installed: the PgBouncer test will be skipped" >&2
  else
    echo "pgbouncer is not installed (not root): the PgBouncer test will be skipped" >&2
  fi
fi
# Chromium and its driver, for the console's browser tests (tests/e2e/test_console_browser.py)
# and scripts/console_screenshots.py; optional like spamd: without them those tests
# are skipped and say so. Selenium drives these two only and downloads nothing.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  if [ "$(id -u)" = 0 ]; then
    apt_install chromium chromium-driver || echo "chromium could not be installed: the browser tests will be skipped" >&2
  else
    echo "chromium/chromium-driver are not installed (not root): the browser tests will be skipped" >&2
  fi
fi
# promtool (Debian's prometheus), which parses every query of docs/grafana-dashboard.json
# (tests/unit/test_grafana_promql.py); optional like spamd: without it that test is skipped.
if ! command -v promtool >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt_install prometheus || echo "prometheus could not be installed: the dashboard's PromQL test will be skipped" >&2
  else
    echo "promtool is not installed (not root): the dashboard's PromQL test will be skipped" >&2
  fi
fi
echo "services: PostgreSQL and Redis up on 127.0.0.1$(rabbitmq_up && echo ', RabbitMQ too')"
