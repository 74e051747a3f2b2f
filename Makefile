SHELL      := /bin/bash
# Wirehub: `make` builds build/ngx_http_wirehub_module.so and build/wirehubd.
# `make run` starts mosquitto + wirehubd + nginx on loopback; `make test` runs
# every test.  Both install what is missing first (make deps).

NGINX_SRC  ?= /usr/share/nginx/src
BUILD      := $(CURDIR)/build
NGX_BUILD  := $(BUILD)/nginx
PYTHON     := /usr/bin/python3
CC         ?= gcc
WARN       := -Wall -Wextra -Werror
CFLAGS     ?= -O2 -g
DEP_CFLAGS := $(WARN) -std=gnu11 -D_GNU_SOURCE -Icommon -Ingx_module
SAN        := -fsanitize=address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=undefined

MODULE     := $(BUILD)/ngx_http_wirehub_module.so
DAEMON     := $(BUILD)/wirehubd
# make test builds everything first, this many jobs at once
JOBS       ?= $(shell nproc)

MODULE_SRCS := config docs/openapi.json scripts/embed-openapi.sh \
               $(wildcard ngx_module/*.c ngx_module/*.h common/*.c common/*.h)
DAEMON_SRCS := $(wildcard worker/*.c common/*.c)
DAEMON_HDRS := $(wildcard worker/*.h common/*.h)
DAEMON_LIBS := -llmdb -ljansson -lmosquitto -lhiredis -lssl -lcrypto \
               -lpthread
# one object per source: compiled in parallel, and once for both wirehubd
# and `make layers`, which reads them
DAEMON_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(DAEMON_SRCS))

UNIT_TESTS :=
FUZZERS    :=
-include $(wildcard t/unit/*.mk)
-include $(wildcard t/fuzz/*.mk)
-include bench/bench.mk
-include packaging.mk

.PHONY: all deps module daemon run test unit integration test-redis \
        fuzz fuzz-replay \
        fuzz-merge clean bench layers test-asan autobahn redis-probe \
        cluster cluster-stop

.DEFAULT_GOAL := all

all: module daemon

module: $(MODULE)
daemon: $(DAEMON)

# nginx-dev ships headers and configure only: configure a private copy of
# the tree with Debian's own flags so the .so is binary compatible.  The
# list of module sources is part of the configuration (a new file needs a
# new objs/Makefile), so it is kept in a stamp that changes only with it.
MODULE_LIST := $(BUILD)/module-sources.txt

$(shell mkdir -p $(BUILD); \
    echo "$(sort $(wildcard ngx_module/*.c common/*.c)) $(NGINX_SRC)" \
        > $(MODULE_LIST).new; \
    cmp -s $(MODULE_LIST).new $(MODULE_LIST) \
        || mv -f $(MODULE_LIST).new $(MODULE_LIST); \
    rm -f $(MODULE_LIST).new)

# nginx_module_rules(dir, module, cc options, configure options): a copy of
# the nginx tree in dir, configured with Debian's own flags, builds the
# module, copied to module (a new inode: running nginx processes keep the
# old mapping).  Logs go to dir.configure.log and dir.module.log.
define nginx_module_rules
$(1)/objs/Makefile: config $(MODULE_LIST)
	rm -rf $(1)
	mkdir -p $(dir $(1))
	cp -r $(NGINX_SRC) $(1)
	cd $(1) && \
	    if [ -f conf_flags ]; then . ./conf_flags; fi && \
	    ./configure "$$$${NGX_CONF_FLAGS[@]}" --with-compat \
	        --with-cc-opt="$(3)" $(4) \
	        --add-dynamic-module=$(CURDIR) > $(1).configure.log 2>&1 || \
	    { tail -20 $(1).configure.log; exit 1; }

$(2): $(1)/objs/Makefile $(MODULE_SRCS)
	sh scripts/embed-openapi.sh docs/openapi.json \
	    $(1)/objs/wirehub/ngx_http_wirehub_openapi.h
	$(MAKE) -s -C $(1) -f objs/Makefile modules > $(1).module.log 2>&1 || \
	    { grep -E "error|warning" -A3 $(1).module.log | head -40; exit 1; }
	cp $(1)/objs/ngx_http_wirehub_module.so $$@.tmp
	mv -f $$@.tmp $$@
endef

NGX_CC_OPT := $(WARN) -Wno-unused-parameter -O2 -g -fPIC
$(eval $(call nginx_module_rules,$(NGX_BUILD),$(MODULE),$(NGX_CC_OPT),))

$(BUILD)/obj/%.o: %.c $(DAEMON_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEP_CFLAGS) -Iworker -c -o $@ $<

$(DAEMON): $(DAEMON_OBJS)
	$(CC) $(CFLAGS) -o $@ $(DAEMON_OBJS) $(DAEMON_LIBS)

deps:
	@./scripts/deps.sh

# build/redis_probe drives worker/redis.c alone on the loop, for
# t/test_redis_link.py; build/asan/redis_probe is the same under
# ASan/UBSan.
PROBE_SRCS := t/redis/redis_probe.c worker/redis.c worker/loop.c \
              common/wh_time.c common/wh_utf8.c \
              worker/log.c
PROBE_HDRS := worker/redis.h worker/loop.h worker/log.h common/wh_link.h

$(BUILD)/redis_probe: $(PROBE_SRCS) $(PROBE_HDRS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) $(DEP_CFLAGS) -Iworker -o $@ $(PROBE_SRCS) \
	    -lhiredis -lcrypto

$(BUILD)/asan/redis_probe: $(PROBE_SRCS) $(PROBE_HDRS)
	@mkdir -p $(BUILD)/asan
	$(CC) -O1 -g $(SAN) $(DEP_CFLAGS) -Iworker -o $@ $(PROBE_SRCS) \
	    -lhiredis -lcrypto

# build/kv_probe drives worker/kv_redis.c alone, for t/test_kv_redis.py
KVPROBE_SRCS := t/redis/kv_probe.c worker/kv_redis.c worker/kv.c \
                worker/map.c worker/keys.c \
                $(PROBE_SRCS:t/redis/redis_probe.c=)
KVPROBE_HDRS := worker/kv_redis.h worker/kv.h worker/map.h worker/keys.h \
                $(PROBE_HDRS)

$(BUILD)/kv_probe: $(KVPROBE_SRCS) $(KVPROBE_HDRS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) $(DEP_CFLAGS) -Iworker -o $@ $(KVPROBE_SRCS) \
	    -lhiredis -lcrypto

$(BUILD)/asan/kv_probe: $(KVPROBE_SRCS) $(KVPROBE_HDRS)
	@mkdir -p $(BUILD)/asan
	$(CC) -O1 -g $(SAN) $(DEP_CFLAGS) -Iworker -o $@ $(KVPROBE_SRCS) \
	    -lhiredis -lcrypto

redis-probe: $(BUILD)/redis_probe $(BUILD)/asan/redis_probe \
             $(BUILD)/kv_probe $(BUILD)/asan/kv_probe

# Layers: no file calls into a file that calls back into it.  Read from the
# module's objects as nginx built them, and from wirehubd's (scripts/
# check-layers.py says why the module object is ignored).
layers: $(MODULE) $(DAEMON_OBJS)
	$(PYTHON) scripts/check-layers.py --ignore ngx_http_wirehub_module \
	    $(NGX_BUILD)/objs/addon/*/*.o
	$(PYTHON) scripts/check-layers.py $(DAEMON_OBJS)

# C unit tests (cmocka) under ASan/UBSan.  Each t/unit/NAME.mk adds NAME to
# UNIT_TESTS and sets NAME_SRCS (and optionally NAME_LIBS).
define unit_rule
$(BUILD)/unit/test_$(1): $$($(1)_SRCS) $$(wildcard ngx_module/*.h common/*.h)
	@mkdir -p $(BUILD)/unit
	$$(CC) -O1 -g $(SAN) $(DEP_CFLAGS) -o $$@ $$($(1)_SRCS) \
	    $$($(1)_LIBS) -lcmocka
endef
$(foreach t,$(UNIT_TESTS),$(eval $(call unit_rule,$(t))))

UNIT_BINS := $(foreach t,$(UNIT_TESTS),$(BUILD)/unit/test_$(t))

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_TESTS); do \
	    echo "== unit: $$t"; $(BUILD)/unit/test_$$t; done

# libFuzzer targets: t/fuzz/NAME.mk adds NAME to FUZZERS, sets fuzz_NAME_SRCS
# (and optionally fuzz_NAME_CFLAGS, fuzz_NAME_LIBS); the seeds are the files
# of t/fuzz/corpus/NAME (t/fuzz/make_seeds.py writes the hand-made ones).
# UBSan stops at its first report, as ASan does.
FUZZ_CORPUS := t/fuzz/corpus

define fuzz_rule
$(BUILD)/fuzz/fuzz_$(1): $$(fuzz_$(1)_SRCS) \
    $$(wildcard ngx_module/*.h common/*.h worker/*.h)
	@mkdir -p $(BUILD)/fuzz
	clang -O1 -g -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=undefined $(DEP_CFLAGS) \
	    $$(fuzz_$(1)_CFLAGS) -o $$@ $$(fuzz_$(1)_SRCS) $$(fuzz_$(1)_LIBS)
endef
$(foreach f,$(FUZZERS),$(eval $(call fuzz_rule,$(f))))
FUZZ_BINS := $(foreach f,$(FUZZERS),$(BUILD)/fuzz/fuzz_$(f))

# `make fuzz` runs each target FUZZ_SECONDS from its seeds, copied to
# build/fuzz/corpus_NAME: what it finds stays there, the committed corpus is
# not touched; a crash is written to build/fuzz/crash-*.
FUZZ_SECONDS ?= 60
fuzz: $(FUZZ_BINS)
	@set -e; for f in $(FUZZERS); do mkdir -p $(BUILD)/fuzz/corpus_$$f; \
	    if [ -d $(FUZZ_CORPUS)/$$f ]; then \
	        cp -n $(FUZZ_CORPUS)/$$f/* $(BUILD)/fuzz/corpus_$$f/ || true; fi; \
	    echo "== fuzz: $$f ($(FUZZ_SECONDS)s)"; \
	    $(BUILD)/fuzz/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) \
	        -artifact_prefix=$(BUILD)/fuzz/ $(BUILD)/fuzz/corpus_$$f; done

# what `make fuzz` found, minimized into the committed corpus: -merge=1 adds
# only inputs with new coverage; if that passes FUZZ_MERGE_MAX files, edges
# alone (-use_counters=0) decide.  Review and commit t/fuzz/corpus after.
FUZZ_MERGE_MAX ?= 280
fuzz-merge: $(FUZZ_BINS)
	@set -e; for f in $(FUZZERS); do m=$(BUILD)/fuzz/merge_$$f; \
	    mkdir -p $(FUZZ_CORPUS)/$$f $(BUILD)/fuzz/corpus_$$f; \
	    for counters in 1 0; do rm -rf $$m; \
	        cp -r $(FUZZ_CORPUS)/$$f $$m; \
	        $(BUILD)/fuzz/fuzz_$$f -merge=1 -use_counters=$$counters $$m \
	            $(BUILD)/fuzz/corpus_$$f > $$m.log 2>&1 || \
	        { tail -20 $$m.log; exit 1; }; \
	        [ $$(ls $$m | wc -l) -gt $(FUZZ_MERGE_MAX) ] || break; done; \
	    cp -n $$m/* $(FUZZ_CORPUS)/$$f/; \
	    echo "== fuzz-merge: $$f: $$(ls $(FUZZ_CORPUS)/$$f | wc -l) files," \
	         "$$(du -sh $(FUZZ_CORPUS)/$$f | cut -f1)"; done

# every target over its committed corpus once, under ASan/UBSan (make test)
fuzz-replay: $(FUZZ_BINS)
	@set -e; for f in $(FUZZERS); do \
	    echo "== fuzz-replay: $$f ($$(ls $(FUZZ_CORPUS)/$$f | wc -l) inputs)"; \
	    $(BUILD)/fuzz/fuzz_$$f -runs=0 -artifact_prefix=$(BUILD)/fuzz/ \
	        $(FUZZ_CORPUS)/$$f > $(BUILD)/fuzz/replay_$$f.log 2>&1 || \
	    { tail -40 $(BUILD)/fuzz/replay_$$f.log; exit 1; }; done

integration: all
	$(PYTHON) -m pytest -q t/

# The integration suite again with every wirehubd on the Redis engine
# (cluster mode, each with a redis-server of its own: t/wh.py), plain
# builds.  What only the LMDB engine has (its files, its map) is marked
# lmdb_only in t/pytest.ini and skipped.  Not part of make test: it
# takes about 9 min on two cores, more than make test has room for.
test-redis: deps
	$(MAKE) all $(BUILD)/redis_probe $(BUILD)/kv_probe
	WIREHUB_ENGINE=redis $(PYTHON) -m pytest -q t/

# The integration suite against ASan/UBSan builds of the module and
# wirehubd.  nginx itself is Debian's: a wrapper preloads the sanitizer
# runtimes into it.  Any report fails the run.  Left out (t/pytest.ini
# says which is which; make integration runs them): the heavy tests, load
# and measurements whose code paths lighter tests take under the
# sanitizers too, at several times the CPU; the browser tests, whose
# requests the Python tests make too; the nosan ones, which run none of
# these builds and would repeat the plain pass unchanged.
ASAN_SKIP   := not heavy and not browser and not nosan
ASAN_BUILD  := $(BUILD)/asan
ASAN_NGX    := $(ASAN_BUILD)/nginx
ASAN_MODULE := $(ASAN_BUILD)/ngx_http_wirehub_module.so
ASAN_DAEMON := $(ASAN_BUILD)/wirehubd
ASAN_NGINX  := $(ASAN_BUILD)/nginx.sh
ASAN_LOGS   := $(ASAN_BUILD)/logs

ASAN_CC_OPT := $(WARN) -Wno-unused-parameter -O1 -g -fPIC $(SAN)
ASAN_CONF   := --with-ld-opt="-fsanitize=address,undefined"
$(eval $(call nginx_module_rules,$(ASAN_NGX),$(ASAN_MODULE),$(ASAN_CC_OPT),\
    $(ASAN_CONF)))

ASAN_OBJS := $(patsubst %.c,$(ASAN_BUILD)/obj/%.o,$(DAEMON_SRCS))

$(ASAN_BUILD)/obj/%.o: %.c $(DAEMON_HDRS)
	@mkdir -p $(dir $@)
	$(CC) -O1 -g $(SAN) $(DEP_CFLAGS) -Iworker -c -o $@ $<

$(ASAN_DAEMON): $(ASAN_OBJS)
	$(CC) -O1 -g $(SAN) -o $@ $(ASAN_OBJS) $(DAEMON_LIBS)

$(ASAN_NGINX):
	@mkdir -p $(ASAN_BUILD)
	printf '#!/bin/sh\nLD_PRELOAD=%s:%s exec /usr/sbin/nginx "$$@"\n' \
	    "$$($(CC) -print-file-name=libasan.so)" \
	    "$$($(CC) -print-file-name=libubsan.so)" > $@
	chmod +x $@

ASAN_BINS := $(ASAN_MODULE) $(ASAN_DAEMON) $(ASAN_NGINX)

test-asan: deps
	$(MAKE) $(ASAN_BINS)
	rm -rf $(ASAN_LOGS)
	mkdir -p $(ASAN_LOGS)
	ASAN_OPTIONS=detect_leaks=0:log_path=$(ASAN_LOGS)/asan \
	UBSAN_OPTIONS=print_stacktrace=1:log_path=$(ASAN_LOGS)/ubsan \
	WIREHUB_NGINX=$(ASAN_NGINX) WIREHUB_MODULE=$(ASAN_MODULE) \
	WIREHUBD=$(ASAN_DAEMON) $(PYTHON) -m pytest -q -m "$(ASAN_SKIP)" t/
	@if [ -n "$$(ls $(ASAN_LOGS))" ]; then \
	    echo "sanitizer reports in $(ASAN_LOGS):"; \
	    head -60 $(ASAN_LOGS)/*; exit 1; fi

# Every phase's programs are built first, JOBS at once (the nginx trees
# configure while the rest compiles); the phases then only run.
test: deps
	$(MAKE) -j$(JOBS) --output-sync=target all \
	    $(UNIT_BINS) $(FUZZ_BINS) $(ASAN_BINS) $(BUILD)/redis_probe \
	    $(BUILD)/asan/redis_probe $(BUILD)/kv_probe $(BUILD)/asan/kv_probe
	$(MAKE) layers
	$(MAKE) unit
	$(MAKE) fuzz-replay
	$(MAKE) integration
	$(MAKE) test-asan

run: deps
	$(MAKE) all
	./scripts/run.sh

# The Autobahn|Testsuite fuzzing client against wirehub_echo (not part of
# `make test`): AUTOBAHN=/path/to/a checkout of its Python 3 port.
autobahn: module
	AUTOBAHN="$(AUTOBAHN)" ./scripts/autobahn.sh

clean:
	rm -rf $(BUILD)

# The three-node cluster example of conf/cluster/ (Redis + Sentinel, a
# front nginx) on loopback, in the background under build/cluster/;
# `make cluster-stop` stops what it started.
cluster: deps
	$(MAKE) all
	./scripts/cluster.sh start

cluster-stop:
	./scripts/cluster.sh stop
