UNIT_TESTS += sourcedef
sourcedef_SRCS := t/unit/test_sourcedef.c worker/sourcedef.c worker/url.c \
                  worker/ingest.c worker/message.c worker/map.c \
                  common/wh_channel.c common/wh_json.c common/wh_utf8.c \
                  common/wh_json_check.c \
                  common/wh_link.c common/wh_time.c
sourcedef_LIBS := -ljansson
