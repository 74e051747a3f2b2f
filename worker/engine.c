/*
 * What every engine hands out, and its memory: the structs of engine.h
 * are the same whatever stores them; and a channel's epoch.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "engine.h"


void
wh_client_free(wh_client_t *cl)
{
    free(cl->mem);
    cl->mem = NULL;
}


void
wh_client_list_free(wh_client_list_t *l)
{
    size_t  i;

    for (i = 0; i < l->n; i++) {
        wh_client_free(&l->items[i]);
    }

    free(l->items);
    memset(l, 0, sizeof(wh_client_list_t));
}


void
wh_job_free(wh_job_t *job)
{
    free(job->mem);
    job->mem = NULL;
}


void
wh_command_free(wh_command_t *cmd)
{
    free(cmd->mem);
    free(cmd->history);
    cmd->mem = NULL;
    cmd->history = NULL;
    cmd->nhistory = 0;
    cmd->history_cap = 0;
}


void
wh_cmd_list_free(wh_cmd_list_t *l)
{
    size_t  i;

    for (i = 0; i < l->n; i++) {
        wh_command_free(&l->items[i]);
    }

    free(l->items);
    memset(l, 0, sizeof(wh_cmd_list_t));
}


wh_command_t *
wh_cmd_list_add(wh_cmd_list_t *l)
{
    size_t         cap;
    wh_command_t  *items;

    if (l->n == l->cap) {
        cap = l->cap ? 2 * l->cap : 16;
        items = realloc(l->items, cap * sizeof(wh_command_t));

        if (items == NULL) {
            return NULL;
        }

        l->items = items;
        l->cap = cap;
    }

    memset(&l->items[l->n], 0, sizeof(wh_command_t));

    return &l->items[l->n++];
}


int
wh_command_event(wh_command_t *cmd, const wh_cmd_event_t *ev)
{
    size_t           cap;
    wh_cmd_event_t  *h;

    /* the oldest entries after the first give way to the newest */
    if (cmd->nhistory >= WH_CMD_HISTORY_MAX) {
        memmove(&cmd->history[1], &cmd->history[2],
                (cmd->nhistory - 2) * sizeof(wh_cmd_event_t));
        cmd->nhistory--;
    }

    if (cmd->nhistory == cmd->history_cap) {
        cap = cmd->history_cap ? 2 * cmd->history_cap : 4;
        cap = cap > WH_CMD_HISTORY_MAX ? WH_CMD_HISTORY_MAX : cap;
        h = realloc(cmd->history, cap * sizeof(wh_cmd_event_t));

        if (h == NULL) {
            return -1;
        }

        cmd->history = h;
        cmd->history_cap = cap;
    }

    cmd->history[cmd->nhistory++] = *ev;

    return 0;
}


int
wh_strs_copy(char **mem, wh_str_t **dst, const wh_str_t *strs, size_t n)
{
    char    *p;
    size_t   i, total = 0;

    for (i = 0; i < n; i++) {
        total += strs[i].len;
    }

    p = malloc(total + 1);

    if (p == NULL) {
        return -1;
    }

    *mem = p;

    for (i = 0; i < n; i++) {
        if (strs[i].len) {
            memcpy(p, strs[i].data, strs[i].len);
        }

        dst[i]->data = p;
        dst[i]->len = strs[i].len;
        p += strs[i].len;
    }

    return 0;
}


void
wh_epoch_new(char *epoch)
{
    int            i;
    unsigned char  r[WH_EPOCH_LEN];
    static const char  alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";

    if (getrandom(r, sizeof(r), 0) != (ssize_t) sizeof(r)) {
        /* getrandom on Linux >= 3.17 does not fail for 8 bytes; the
         * address-and-time mix only avoids a fixed epoch if it did */
        uint64_t  x = (uint64_t) (uintptr_t) r ^ (uint64_t) time(NULL);

        for (i = 0; i < WH_EPOCH_LEN; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            r[i] = (unsigned char) (x >> 56);
        }
    }

    for (i = 0; i < WH_EPOCH_LEN; i++) {
        epoch[i] = alphabet[r[i] % 36];
    }

    epoch[WH_EPOCH_LEN] = '\0';
}


char *
wh_nodes_join(const wh_str_t *nodes, size_t n)
{
    char    *list, *p;
    size_t   i, len = 1;

    for (i = 0; i < n; i++) {
        len += nodes[i].len + 1;
    }

    list = malloc(len);

    if (list == NULL) {
        return NULL;
    }

    for (p = list, i = 0; i < n; i++) {
        if (i > 0) {
            *p++ = '\n';
        }

        memcpy(p, nodes[i].data, nodes[i].len);
        p += nodes[i].len;
    }

    *p = '\0';

    return list;
}


int
wh_nodes_have(const char *list, wh_str_t node)
{
    size_t       len;
    const char  *p, *end;

    for (p = list; p != NULL && *p != '\0'; p = end ? end + 1 : NULL) {
        end = strchr(p, '\n');
        len = end ? (size_t) (end - p) : strlen(p);

        if (len == node.len && memcmp(p, node.data, len) == 0) {
            return 1;
        }
    }

    return 0;
}
