FUZZERS += ingest
fuzz_ingest_SRCS := t/fuzz/fuzz_ingest.c worker/ingest.c worker/egress.c \
                    worker/message.c worker/map.c common/wh_channel.c \
                    common/wh_json.c common/wh_json_check.c \
                    common/wh_utf8.c common/wh_link.c common/wh_time.c
fuzz_ingest_CFLAGS := -Iworker
fuzz_ingest_LIBS := -ljansson
