UNIT_TESTS += engine
engine_SRCS := t/unit/test_engine.c worker/engine.c worker/engine_lmdb.c \
               worker/engine_lmdb_upgrade.c \
               worker/engine_lmdb_channels.c \
               worker/state.c worker/state_clients.c worker/state_commands.c \
               worker/state_jobs.c worker/state_audit.c \
               worker/state_cmd_client.c worker/kv.c \
               worker/kv_lmdb.c worker/keys.c \
               worker/engine_lmdb_store.c worker/state_sources.c \
               worker/log.c common/wh_utf8.c \
               worker/cmdqueue.c worker/map.c common/wh_time.c \
               common/wh_link.c worker/cmdrec.c worker/jsonw.c \
               worker/message.c
engine_LIBS := -llmdb -ljansson
