FUZZERS += link
fuzz_link_SRCS := t/fuzz/fuzz_link.c common/wh_link.c
fuzz_link_LIBS :=
