UNIT_TESTS += prom
prom_SRCS := t/unit/test_prom.c worker/prom.c common/wh_link.c
prom_LIBS :=
