UNIT_TESTS += log
log_SRCS := t/unit/test_log.c worker/log.c common/wh_utf8.c common/wh_time.c
log_LIBS := -ljansson
