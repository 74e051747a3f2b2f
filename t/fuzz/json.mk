FUZZERS += json
fuzz_json_SRCS := t/fuzz/fuzz_json.c common/wh_json.c
fuzz_json_LIBS := -ljansson
