UNIT_TESTS += channel
channel_SRCS := t/unit/test_channel.c common/wh_channel.c common/wh_time.c
channel_LIBS :=
