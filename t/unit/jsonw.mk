UNIT_TESTS += jsonw
jsonw_SRCS := t/unit/test_jsonw.c worker/jsonw.c worker/message.c \
              common/wh_utf8.c common/wh_link.c common/wh_time.c
jsonw_LIBS := -ljansson
