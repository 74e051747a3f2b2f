UNIT_TESTS += json
json_SRCS := t/unit/test_json.c common/wh_json.c
json_LIBS := -ljansson
