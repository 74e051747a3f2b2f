FUZZERS += config
fuzz_config_SRCS := t/fuzz/fuzz_config.c worker/config.c worker/ingest.c \
                    worker/egress.c worker/log.c worker/map.c \
                    worker/message.c common/wh_channel.c common/wh_json.c \
                    common/wh_json_check.c \
                    common/wh_utf8.c common/wh_link.c common/wh_time.c \
                    worker/quota.c worker/loop.c worker/sourcedef.c \
                    worker/url.c
fuzz_config_CFLAGS := -Iworker
fuzz_config_LIBS := -ljansson
