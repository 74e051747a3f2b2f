/*
 * What the files of the command queue share, and nothing else
 * includes: commands.c (the requests as ops of the batch, delivery,
 * the timer) over commands_notes.c (state changes decided in a txn and
 * acted on after the commit).
 */

#ifndef WH_COMMANDS_INTERNAL_H
#define WH_COMMANDS_INTERNAL_H

#include <stdint.h>

#include "commands.h"


struct wh_cmd_note_s {
    wh_cmd_note_t    *next;
    wh_cmd_state_t    state;
    unsigned          priority;
    uint64_t          seq;
    int               publish;        /* WH_NOTE_CHANGED, ... */
    wh_peer_t        *peer;           /* a delivery to this session */
    wh_buf_t          event;          /* "$commands" data */
    wh_buf_t          command;        /* the device_command text */
    uint64_t          job_idx;
    wh_str_t          ws, client_id, id, session, job;  /* into mem */
    char              mem[];
};


/* what a note is besides memory's new view of the command */
enum {
    WH_NOTE_QUIET = 0,              /* nothing changed */
    WH_NOTE_CHANGED,                /* its status changed here: counted,
                                     * announced, told to its job */
    WH_NOTE_CHANGED_ELSEWHERE       /* cluster: another node changed it
                                     * and announced it; its job (run
                                     * here) learns of it */
};

void wh_cmd_notes_clear(wh_cmd_notes_t *notes);

/* notes the command's state as it is now; publish: one of the above;
 * peer: it is delivered to that session */
int wh_cmd_note(wh_cmd_notes_t *notes, const wh_command_t *cmd,
    int publish, wh_peer_t *peer, wh_str_t session, int64_t now,
    wh_err_t *err);

/* moves an open command to status `to` (WH_CMD_SENT: delivered once
 * more to peer/session), stores it and notes it */
int wh_cmd_change(wh_commands_t *c, wh_etxn_t *t, wh_command_t *cmd,
    wh_cmd_status_e to, const char *reason, wh_peer_t *peer,
    wh_str_t session, int64_t now, wh_cmd_notes_t *notes, wh_err_t *err);

/* carries out what the rules say for an open command now; *changed if
 * it did more than wait */
int wh_cmd_advance(wh_commands_t *c, wh_etxn_t *t, wh_command_t *cmd,
    int64_t now, wh_cmd_notes_t *notes, int *changed, wh_err_t *err);

#endif /* WH_COMMANDS_INTERNAL_H */
