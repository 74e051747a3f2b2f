UNIT_TESTS += frame
frame_SRCS := t/unit/test_frame.c common/wh_frame.c \
              common/wh_utf8.c
