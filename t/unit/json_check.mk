UNIT_TESTS += json_check
json_check_SRCS := t/unit/test_json_check.c common/wh_json_check.c \
                   common/wh_utf8.c
json_check_LIBS := -ljansson
