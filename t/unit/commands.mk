UNIT_TESTS += commands
commands_SRCS := t/unit/test_commands.c worker/cmdqueue.c worker/map.c
