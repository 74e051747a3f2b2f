UNIT_TESTS += engine
engine_SRCS := t/unit/test_engine.c worker/engine.c worker/engine_lmdb.c \
               worker/engine_lmdb_upgrade.c \
               worker/engine_lmdb_channels.c \
               worker/engine_lmdb_commands.c worker/engine_lmdb_jobs.c \
               worker/engine_lmdb_store.c worker/engine_lmdb_sources.c \
               worker/engine_lmdb_audit.c worker/log.c common/wh_utf8.c \
               worker/cmdqueue.c worker/map.c common/wh_time.c \
               common/wh_link.c
engine_LIBS := -llmdb -ljansson
