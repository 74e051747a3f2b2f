/*
 * Channel names, channel patterns and workspace names: the grammar of
 * DESIGN.md, shared by the nginx module and wirehubd so that both
 * sides accept exactly the same strings.
 */

#ifndef WH_CHANNEL_H
#define WH_CHANNEL_H

#include <stddef.h>


#define WH_CHANNEL_MAX     200
#define WH_WORKSPACE_MAX   64

/* 1 if s is a channel name: 1-200 bytes of A-Z a-z 0-9 _ - . : /, no
 * empty segment, no "." or ".." segment; or exactly one of the system
 * channels "$presence", "$commands", "$stats", "$sources" */
int wh_channel_valid(const char *s, size_t len);

/* 1 if s names a system channel ("$presence", ...) */
int wh_channel_is_system(const char *s, size_t len);

/* 1 if s is a pattern: a channel name where a segment may be exactly
 * "+", and the last one exactly "#"; a system channel names itself */
int wh_pattern_valid(const char *s, size_t len);

/* 1 if the pattern matches the channel name, MQTT style: "+" is one
 * segment, a final "#" the rest, including nothing after its parent
 * ("a/#" matches "a"); wildcards never match a system channel, which
 * only the identical pattern matches */
int wh_pattern_match(const char *pat, size_t plen, const char *name,
    size_t nlen);

/* 1 if s is a workspace name: 1-64 bytes of A-Z a-z 0-9 _ . - */
int wh_workspace_valid(const char *s, size_t len);

#endif /* WH_CHANNEL_H */
