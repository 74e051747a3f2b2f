FUZZERS += query
fuzz_query_SRCS := t/fuzz/fuzz_query.c worker/query.c
fuzz_query_LIBS :=
fuzz_query_CFLAGS := -Iworker
