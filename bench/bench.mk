# Benchmarks (included by the top Makefile with `-include bench/bench.mk`).
#   make bench        every scenario of DESIGN.md "Performance targets",
#                     Wirehub beside Nchan, a Node.js server, Mosquitto's
#                     WebSocket listener and the floor (about 9 minutes)
#   make bench-quick  the same scenarios, small and short (about 2 minutes)
#   make bench-cluster  fan-out and durable commands over three nodes
#                     on a Redis primary and replica (replicas_ack=1)
#                     beside one LMDB node (cluster mode; BENCH_SIZE=full
#                     for the large size; about two minutes quick)
#   make soak         churn and failures for SOAK_SECONDS (default 30 min)
#                     with SOAK_CLIENTS subscribers, then a verdict
#                     (bench/soak; not part of make test)
# Results: one table on stdout, JSON per run under build/bench/results/.

# this file defines rules: keep whatever goal the includer has as default
bench_default_goal := $(.DEFAULT_GOAL)

BUILD       ?= $(CURDIR)/build
CC          ?= gcc
PYTHON      ?= /usr/bin/python3
BENCH_BUILD := $(BUILD)/bench
BENCH_CFLAGS := -O2 -g -Wall -Wextra -Werror -std=gnu11 -D_GNU_SOURCE

WSLOAD_SRCS := bench/wsload.c bench/wsl_client.c bench/wsl_pub.c \
               bench/wsl_mqtt.c \
               bench/wsl_net.c bench/wsl_hist.c bench/wsl_token.c \
               bench/wsl_proc.c
WSLOAD_HDRS := bench/wsl.h bench/wsl_net.h

.PHONY: bench bench-quick bench-cluster bench-tools bench-deps soak

bench-tools: $(BENCH_BUILD)/wsload $(BENCH_BUILD)/floor

$(BENCH_BUILD)/wsload: $(WSLOAD_SRCS) $(WSLOAD_HDRS)
	@mkdir -p $(BENCH_BUILD)
	$(CC) $(BENCH_CFLAGS) -o $@ $(WSLOAD_SRCS) -lcrypto

$(BENCH_BUILD)/floor: bench/floor.c
	@mkdir -p $(BENCH_BUILD)
	$(CC) $(BENCH_CFLAGS) -o $@ bench/floor.c -lcrypto

bench-deps:
	@./bench/deps.sh

bench: deps bench-deps
	$(MAKE) all bench-tools
	$(PYTHON) bench/bench.py --full

bench-quick: deps bench-deps
	$(MAKE) all bench-tools
	$(PYTHON) bench/bench.py --quick

BENCH_SIZE ?= quick

bench-cluster: deps
	$(MAKE) all bench-tools
	$(PYTHON) bench/bench.py --$(BENCH_SIZE) \
	    --only fanout_cluster,commands_cluster --servers wirehub,cluster

# Every other SOAK_* knob (bench/README.md) reaches bench/soak from the
# environment or the make command line as it is.
SOAK_SECONDS ?= 1800
SOAK_CLIENTS ?= 2000

soak: deps
	$(MAKE) all
	SOAK_SECONDS=$(SOAK_SECONDS) SOAK_CLIENTS=$(SOAK_CLIENTS) \
	    $(PYTHON) bench/soak

.DEFAULT_GOAL := $(bench_default_goal)
