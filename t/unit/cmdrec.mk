UNIT_TESTS += cmdrec
cmdrec_SRCS := t/unit/test_cmdrec.c worker/cmdrec.c
cmdrec_LIBS := -ljansson
