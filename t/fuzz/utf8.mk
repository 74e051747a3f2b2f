FUZZERS += utf8
fuzz_utf8_SRCS := t/fuzz/fuzz_utf8.c common/wh_utf8.c
fuzz_utf8_LIBS :=
