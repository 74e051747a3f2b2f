FUZZERS += message
fuzz_message_SRCS := t/fuzz/fuzz_message.c common/wh_channel.c \
                     common/wh_json.c common/wh_json_check.c \
                     common/wh_utf8.c
fuzz_message_LIBS := -ljansson
