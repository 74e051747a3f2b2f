UNIT_TESTS += idem
idem_SRCS := t/unit/test_idem.c worker/idem.c worker/map.c
