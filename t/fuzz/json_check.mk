FUZZERS += json_check
fuzz_json_check_SRCS := t/fuzz/fuzz_json_check.c common/wh_json_check.c \
                        common/wh_utf8.c
fuzz_json_check_LIBS := -ljansson
