UNIT_TESTS += u64map
u64map_SRCS := t/unit/test_u64map.c worker/u64map.c
