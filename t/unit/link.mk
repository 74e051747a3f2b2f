UNIT_TESTS += link
link_SRCS := t/unit/test_link.c common/wh_link.c
link_LIBS :=
