UNIT_TESTS += store
store_SRCS := t/unit/test_store.c worker/engine.c \
              worker/engine_lmdb_store.c worker/keys.c worker/log.c common/wh_utf8.c \
              common/wh_time.c common/wh_link.c
store_LIBS := -llmdb
