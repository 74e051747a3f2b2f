#!/bin/bash
# nginx's container healthcheck: GET /healthz answers 200 only while this
# nginx's link to wirehubd is up. bash's /dev/tcp: no curl in the image.
exec 3<>"/dev/tcp/127.0.0.1/${WIREHUB_PORT:-8080}" || exit 1
printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3
head -1 <&3 | grep -q ' 200 '
