FUZZERS += frame
fuzz_frame_SRCS := t/fuzz/fuzz_frame.c common/wh_frame.c \
                   common/wh_utf8.c
