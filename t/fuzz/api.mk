FUZZERS += api
fuzz_api_SRCS := t/fuzz/fuzz_api.c t/fuzz/fuzz_api_clients.c \
                 t/fuzz/fuzz_api_commands.c t/fuzz/fuzz_api_publish.c \
                 $(filter-out worker/main.c worker/api.c \
                     worker/clients_api.c worker/commands_api.c, \
                     $(DAEMON_SRCS))
fuzz_api_CFLAGS := -Iworker
fuzz_api_LIBS := $(DAEMON_LIBS)
