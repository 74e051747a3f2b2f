UNIT_TESTS += quota
quota_SRCS := t/unit/test_quota.c worker/quota.c worker/map.c worker/log.c \
              common/wh_utf8.c \
              worker/loop.c common/wh_channel.c common/wh_time.c
quota_LIBS := -ljansson
