UNIT_TESTS += kv
kv_SRCS := t/unit/test_kv.c worker/kv.c worker/kv_lmdb.c \
           worker/engine_lmdb_store.c worker/keys.c worker/engine.c \
           worker/log.c common/wh_utf8.c common/wh_time.c common/wh_link.c
kv_LIBS := -llmdb
