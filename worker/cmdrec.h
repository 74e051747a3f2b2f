/*
 * The fields of a stored command record (state_commands.c has its
 * format), and a scanner that reads them from the record's JSON text
 * without building a jansson tree: a command is read back twice in its
 * life (sent, answered), and json_loadb() was the largest part of the
 * daemon's time per command.  The scanner knows the record's shape
 * only: flat members of strings and integers, and "history", an array
 * of such objects.  Anything else (another kind of value, a number
 * that is not a plain integer, more history than WH_CMD_HISTORY_MAX)
 * answers WH_CMDREC_OTHER and the caller reads the record with
 * jansson, so what the scanner takes it reads exactly as jansson does.
 */

#ifndef WH_CMDREC_H
#define WH_CMDREC_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"


/* the string members, in this order */
enum {
    WH_CMDREC_CLIENT = 0, WH_CMDREC_COMMAND, WH_CMDREC_PAYLOAD,
    WH_CMDREC_IDEM, WH_CMDREC_RESULT, WH_CMDREC_ERROR, WH_CMDREC_REASON,
    WH_CMDREC_LANE, WH_CMDREC_SUPERSEDE, WH_CMDREC_ISSUED_BY,
    WH_CMDREC_JOB, WH_CMDREC_STRS
};

/* the integer members, in this order */
enum {
    WH_CMDREC_PRIORITY = 0, WH_CMDREC_SEQ, WH_CMDREC_STATUS,
    WH_CMDREC_ATTEMPT, WH_CMDREC_EXPIRES, WH_CMDREC_DEADLINE,
    WH_CMDREC_CREATED, WH_CMDREC_UPDATED, WH_CMDREC_NOT_BEFORE,
    WH_CMDREC_JIDX, WH_CMDREC_INTS
};

typedef struct {
    int64_t    status, at, attempt;
    wh_str_t   session, reason;
} wh_cmdrec_event_t;

/* absent members are "" and 0, as jansson's readers give them */
typedef struct {
    wh_str_t            strs[WH_CMDREC_STRS];
    int                 has_client;         /* "client" is a string */
    int64_t             ints[WH_CMDREC_INTS];
    size_t              nhistory;
    wh_cmdrec_event_t   history[WH_CMD_HISTORY_MAX];
} wh_cmdrec_t;

#define WH_CMDREC_OTHER  1

extern const char  *wh_cmdrec_str_keys[WH_CMDREC_STRS];
extern const char  *wh_cmdrec_int_keys[WH_CMDREC_INTS];

/*
 * 0: rec holds the record's fields, its strings pointing into text or,
 * when they had escapes, into scratch (at least len bytes, the caller's
 * until it has copied them); WH_CMDREC_OTHER: not a record the scanner
 * reads (malformed ones included)
 */
int wh_cmdrec_scan(const char *text, size_t len, wh_cmdrec_t *rec,
    char *scratch);

/*
 * The same for a record of flat members only (a client): the members
 * named by skeys and ikeys into strs and ints, absent ones "" and 0;
 * an array or an object in it answers WH_CMDREC_OTHER
 */
int wh_cmdrec_scan_flat(const char *text, size_t len, const char **skeys,
    size_t ns, wh_str_t *strs, const char **ikeys, size_t ni, int64_t *ints,
    char *scratch);

#endif /* WH_CMDREC_H */
