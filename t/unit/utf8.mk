UNIT_TESTS += utf8
utf8_SRCS := t/unit/test_utf8.c common/wh_utf8.c
