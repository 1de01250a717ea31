#!/usr/bin/env bash
# Gives the tests a fresh RabbitMQ vhost, `cashvio_test`: everything earlier runs left there
# (queues, exchanges) goes in one command. The stack's own vhost (/) is not touched.
set -euo pipefail
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
vhost="${TEST_AMQP_VHOST:-cashvio_test}"
rabbitmqctl -q delete_vhost "$vhost" >/dev/null 2>&1 || true
rabbitmqctl -q add_vhost "$vhost"
rabbitmqctl -q set_permissions -p "$vhost" guest '.*' '.*' '.*'
say "fresh RabbitMQ vhost $vhost for the tests"
