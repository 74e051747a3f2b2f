
/*
 * Wirehub: the RFC 6455 frame layer.
 *
 * The parser is a byte-resumable state machine: header bytes are folded
 * into the parser state one at a time, so a read may end anywhere (inside
 * the length, inside the mask key); payload is handed out as it arrives,
 * unmasked in place, and never copied, except for control frames, which
 * are small and must be seen whole.  Every rule of RFC 6455 section 5 is
 * checked at the first byte that breaks it, so a bad peer is stopped
 * without waiting for the rest of its frame.
 */


#include <string.h>

#include "wh_frame.h"


typedef enum {
    FRAME_HEADER = 0,        /* FIN, RSV, opcode; zero: a zeroed parser */
    FRAME_LENGTH,            /* MASK, 7-bit length */
    FRAME_LENGTH16,          /* 16-bit extended length */
    FRAME_LENGTH64,          /* 64-bit extended length */
    FRAME_MASK_KEY,
    FRAME_PAYLOAD,           /* of a data frame */
    FRAME_CONTROL,           /* of a control frame, into p->control */
    FRAME_MESSAGE_END,       /* to report before reading on */
    FRAME_FAILED
} wh_frame_state_e;


typedef enum {
    FRAME_OK = 0,
    FRAME_ERR_RSV,
    FRAME_ERR_OPCODE,
    FRAME_ERR_CONTROL_FRAGMENTED,
    FRAME_ERR_CONTROL_TOO_LONG,
    FRAME_ERR_CONT_OUTSIDE,
    FRAME_ERR_DATA_INSIDE,
    FRAME_ERR_UNMASKED,
    FRAME_ERR_LENGTH_HIGH_BIT,
    FRAME_ERR_LENGTH_NOT_MINIMAL,
    FRAME_ERR_CLOSE_ONE_BYTE,
    FRAME_ERR_CLOSE_CODE,
    FRAME_ERR_TEXT_UTF8,
    FRAME_ERR_REASON_UTF8,
    FRAME_ERR_TOO_BIG
} wh_frame_error_e;


typedef struct {
    unsigned     close_code;
    const char  *reason;
} wh_frame_error_t;


/* indexed by wh_frame_error_e */
static const wh_frame_error_t  wh_frame_errors[]
    = {
    { 0, NULL },
    { 1002, "reserved bits set" },
    { 1002, "unknown opcode" },
    { 1002, "fragmented control frame" },
    { 1002, "control frame payload over 125 bytes" },
    { 1002, "continuation frame outside a message" },
    { 1002, "data frame inside a fragmented message" },
    { 1002, "unmasked client frame" },
    { 1002, "payload length with the high bit set" },
    { 1002, "payload length not minimally encoded" },
    { 1002, "close frame with a 1-byte payload" },
    { 1002, "invalid close code" },
    { 1007, "invalid UTF-8 in a text message" },
    { 1007, "invalid UTF-8 in a close reason" },
    { 1009, "message too big" }
};


#define FRAME_FIN                 0x80
#define FRAME_RSV1                0x40
#define FRAME_RSV2_RSV3           0x30
#define FRAME_OPCODE              0x0f
#define FRAME_MASKED              0x80
#define FRAME_LENGTH7             0x7f
#define FRAME_LENGTH7_16          126
#define FRAME_LENGTH7_64          127
#define FRAME_CONTROL_BIT         0x08

#define frame_is_control(opcode)  (((opcode) & FRAME_CONTROL_BIT) != 0)


static wh_frame_rc_e wh_frame_fail(
    wh_frame_parser_t *p, wh_frame_event_t *ev,
    wh_frame_error_e error);
static wh_frame_rc_e wh_frame_header_byte(
    wh_frame_parser_t *p, unsigned byte,
    wh_frame_event_t *ev);
static wh_frame_rc_e wh_frame_first_byte(
    wh_frame_parser_t *p, unsigned byte,
    wh_frame_event_t *ev);
static wh_frame_rc_e wh_frame_length_byte(
    wh_frame_parser_t *p, unsigned byte,
    wh_frame_event_t *ev);
static wh_frame_rc_e wh_frame_ext_length_byte(
    wh_frame_parser_t *p, unsigned byte,
    wh_frame_event_t *ev);
static wh_frame_rc_e wh_frame_length_known(
    wh_frame_parser_t *p, wh_frame_event_t *ev);
static wh_frame_rc_e wh_frame_payload_start(
    wh_frame_parser_t *p, wh_frame_event_t *ev);
static wh_frame_rc_e wh_frame_data(
    wh_frame_parser_t *p, unsigned char *data, size_t avail,
    size_t *used, wh_frame_event_t *ev);
static wh_frame_rc_e wh_frame_control_data(
    wh_frame_parser_t *p, const unsigned char *data,
    size_t avail, size_t *used, wh_frame_event_t *ev);
static wh_frame_rc_e wh_frame_control_end(
    wh_frame_parser_t *p, wh_frame_event_t *ev);
static wh_frame_rc_e wh_frame_message_end(
    wh_frame_parser_t *p, wh_frame_event_t *ev);
static unsigned wh_frame_unmask(unsigned char *data,
    size_t len, const unsigned char *key, unsigned offset);


void
wh_frame_parser_init(wh_frame_parser_t *p)
{
    uint64_t  max_message_size;
    unsigned  require_mask, allow_rsv1;

    max_message_size = p->max_message_size;
    require_mask = p->require_mask;
    allow_rsv1 = p->allow_rsv1;

    memset(p, 0, sizeof(wh_frame_parser_t));

    p->max_message_size = max_message_size;
    p->require_mask = require_mask;
    p->allow_rsv1 = allow_rsv1;
}


int
wh_frame_parser_at_rest(const wh_frame_parser_t *p)
{
    return p->state == FRAME_HEADER && !p->in_message;
}


wh_frame_rc_e
wh_frame_parse(wh_frame_parser_t *p,
    unsigned char *buf, size_t len, size_t *consumed,
    wh_frame_event_t *ev)
{
    size_t                       pos, used;
    wh_frame_rc_e  rc;

    memset(ev, 0, sizeof(wh_frame_event_t));

    pos = 0;

    do {
        switch (p->state) {

        case FRAME_FAILED:
            rc = wh_frame_fail(p, ev, p->error);
            break;

        case FRAME_MESSAGE_END:
            rc = wh_frame_message_end(p, ev);
            break;

        case FRAME_PAYLOAD:
            if (pos == len) {
                rc = WH_FRAME_AGAIN;
                goto done;
            }

            rc = wh_frame_data(p, buf + pos, len - pos, &used,
                                             ev);
            pos += used;
            break;

        case FRAME_CONTROL:
            if (pos == len) {
                rc = WH_FRAME_AGAIN;
                goto done;
            }

            rc = wh_frame_control_data(p, buf + pos, len - pos,
                                                     &used, ev);
            pos += used;
            break;

        default:
            if (pos == len) {
                rc = WH_FRAME_AGAIN;
                goto done;
            }

            rc = wh_frame_header_byte(p, buf[pos++], ev);
            break;
        }

    } while (rc == WH_FRAME_AGAIN);

done:

    *consumed = pos;

    return rc;
}


static wh_frame_rc_e
wh_frame_fail(wh_frame_parser_t *p,
    wh_frame_event_t *ev, wh_frame_error_e error)
{
    p->state = FRAME_FAILED;
    p->error = error;

    memset(ev, 0, sizeof(wh_frame_event_t));
    ev->close_code = wh_frame_errors[error].close_code;
    ev->reason = wh_frame_errors[error].reason;

    return WH_FRAME_ERROR;
}


static wh_frame_rc_e
wh_frame_header_byte(wh_frame_parser_t *p,
    unsigned byte, wh_frame_event_t *ev)
{
    switch (p->state) {

    case FRAME_HEADER:
        return wh_frame_first_byte(p, byte, ev);

    case FRAME_LENGTH:
        return wh_frame_length_byte(p, byte, ev);

    case FRAME_LENGTH16:
    case FRAME_LENGTH64:
        return wh_frame_ext_length_byte(p, byte, ev);

    default: /* FRAME_MASK_KEY */
        p->mask_key[4 - p->header_need] = (unsigned char) byte;

        if (--p->header_need) {
            return WH_FRAME_AGAIN;
        }

        return wh_frame_payload_start(p, ev);
    }
}


static wh_frame_rc_e
wh_frame_first_byte(wh_frame_parser_t *p,
    unsigned byte, wh_frame_event_t *ev)
{
    unsigned  opcode, rsv;

    opcode = byte & FRAME_OPCODE;
    rsv = byte & (FRAME_RSV1 | FRAME_RSV2_RSV3);

    p->fin = (byte & FRAME_FIN) != 0;
    p->frame_opcode = (uint8_t) opcode;

    switch (opcode) {

    case WH_WS_OP_CONT:
        if (!p->in_message) {
            return wh_frame_fail(p, ev,
                                               FRAME_ERR_CONT_OUTSIDE);
        }

        /* RSV1 (compression) belongs to the first frame of a message */
        if (rsv) {
            return wh_frame_fail(p, ev, FRAME_ERR_RSV);
        }

        break;

    case WH_WS_OP_TEXT:
    case WH_WS_OP_BINARY:
        if (p->in_message) {
            return wh_frame_fail(p, ev, FRAME_ERR_DATA_INSIDE);
        }

        if ((rsv & FRAME_RSV2_RSV3) || (rsv && !p->allow_rsv1)) {
            return wh_frame_fail(p, ev, FRAME_ERR_RSV);
        }

        p->in_message = 1;
        p->message_opcode = (uint8_t) opcode;
        p->compressed = (rsv != 0);
        p->message_size = 0;
        p->utf8.state = 0;
        break;

    case WH_WS_OP_CLOSE:
    case WH_WS_OP_PING:
    case WH_WS_OP_PONG:
        if (rsv) {
            return wh_frame_fail(p, ev, FRAME_ERR_RSV);
        }

        if (!p->fin) {
            return wh_frame_fail(p, ev,
                                               FRAME_ERR_CONTROL_FRAGMENTED);
        }

        break;

    default:
        return wh_frame_fail(p, ev, FRAME_ERR_OPCODE);
    }

    p->state = FRAME_LENGTH;

    return WH_FRAME_AGAIN;
}


static wh_frame_rc_e
wh_frame_length_byte(wh_frame_parser_t *p,
    unsigned byte, wh_frame_event_t *ev)
{
    unsigned  length7;

    length7 = byte & FRAME_LENGTH7;
    p->masked = (byte & FRAME_MASKED) != 0;

    if (p->require_mask && !p->masked) {
        return wh_frame_fail(p, ev, FRAME_ERR_UNMASKED);
    }

    if (frame_is_control(p->frame_opcode)) {

        if (length7 > WH_WS_CONTROL_MAX) {
            return wh_frame_fail(p, ev,
                                               FRAME_ERR_CONTROL_TOO_LONG);
        }

        /* a close payload is empty or starts with a 2-byte code */
        if (p->frame_opcode == WH_WS_OP_CLOSE && length7 == 1) {
            return wh_frame_fail(p, ev,
                                               FRAME_ERR_CLOSE_ONE_BYTE);
        }
    }

    p->remaining = 0;

    switch (length7) {

    case FRAME_LENGTH7_16:
        p->header_need = 2;
        p->state = FRAME_LENGTH16;
        return WH_FRAME_AGAIN;

    case FRAME_LENGTH7_64:
        p->header_need = 8;
        p->state = FRAME_LENGTH64;
        return WH_FRAME_AGAIN;

    default:
        p->remaining = length7;
        return wh_frame_length_known(p, ev);
    }
}


static wh_frame_rc_e
wh_frame_ext_length_byte(wh_frame_parser_t *p,
    unsigned byte, wh_frame_event_t *ev)
{
    uint64_t  minimum;

    /* the first of 8 length bytes already tells a length of 2^63 or more */
    if (p->state == FRAME_LENGTH64 && p->header_need == 8 && (byte & 0x80)) {
        return wh_frame_fail(p, ev, FRAME_ERR_LENGTH_HIGH_BIT);
    }

    p->remaining = (p->remaining << 8) | byte;

    if (--p->header_need) {
        return WH_FRAME_AGAIN;
    }

    /* RFC 6455 5.2: "the minimal number of bytes MUST be used" */
    minimum = (p->state == FRAME_LENGTH16) ? FRAME_LENGTH7_16 : 0x10000;

    if (p->remaining < minimum) {
        return wh_frame_fail(p, ev,
                                           FRAME_ERR_LENGTH_NOT_MINIMAL);
    }

    return wh_frame_length_known(p, ev);
}


static wh_frame_rc_e
wh_frame_length_known(wh_frame_parser_t *p,
    wh_frame_event_t *ev)
{
    /* the size limit is checked before any of the payload is read */
    if (!frame_is_control(p->frame_opcode) && p->max_message_size) {

        if (p->remaining > p->max_message_size - p->message_size) {
            return wh_frame_fail(p, ev, FRAME_ERR_TOO_BIG);
        }

        p->message_size += p->remaining;
    }

    if (p->masked) {
        p->header_need = 4;
        p->state = FRAME_MASK_KEY;
        return WH_FRAME_AGAIN;
    }

    return wh_frame_payload_start(p, ev);
}


static wh_frame_rc_e
wh_frame_payload_start(wh_frame_parser_t *p,
    wh_frame_event_t *ev)
{
    p->mask_offset = 0;

    if (frame_is_control(p->frame_opcode)) {
        p->control_len = 0;

        if (p->remaining == 0) {
            return wh_frame_control_end(p, ev);
        }

        p->state = FRAME_CONTROL;

        return WH_FRAME_AGAIN;
    }

    if (p->remaining) {
        p->state = FRAME_PAYLOAD;

    } else {
        p->state = p->fin ? FRAME_MESSAGE_END : FRAME_HEADER;
    }

    return WH_FRAME_AGAIN;
}


static wh_frame_rc_e
wh_frame_data(wh_frame_parser_t *p,
    unsigned char *data, size_t avail, size_t *used,
    wh_frame_event_t *ev)
{
    size_t  n;

    n = (p->remaining < avail) ? (size_t) p->remaining : avail;
    *used = n;

    if (p->masked) {
        p->mask_offset = (uint8_t) wh_frame_unmask(data, n,
                                                 p->mask_key, p->mask_offset);
    }

    /*
     * text is checked as it arrives, to stop at the first bad byte;
     * compressed text can only be checked by the caller, once inflated
     */
    if (p->message_opcode == WH_WS_OP_TEXT && !p->compressed
        && wh_utf8_feed(&p->utf8, data, n) != 0)
    {
        return wh_frame_fail(p, ev, FRAME_ERR_TEXT_UTF8);
    }

    p->remaining -= n;

    if (p->remaining == 0) {
        p->state = p->fin ? FRAME_MESSAGE_END : FRAME_HEADER;
    }

    ev->opcode = p->message_opcode;
    ev->data = data;
    ev->len = n;
    ev->compressed = p->compressed;

    return WH_FRAME_DATA;
}


static wh_frame_rc_e
wh_frame_control_data(wh_frame_parser_t *p,
    const unsigned char *data, size_t avail, size_t *used,
    wh_frame_event_t *ev)
{
    size_t  n;

    /* remaining is at most 125 here, as the header was checked */
    n = (p->remaining < avail) ? (size_t) p->remaining : avail;
    *used = n;

    memcpy(p->control + p->control_len, data, n);
    p->control_len += n;
    p->remaining -= n;

    if (p->remaining) {
        return WH_FRAME_AGAIN;
    }

    return wh_frame_control_end(p, ev);
}


static wh_frame_rc_e
wh_frame_control_end(wh_frame_parser_t *p,
    wh_frame_event_t *ev)
{
    unsigned  code;

    if (p->masked) {
        (void) wh_frame_unmask(p->control, p->control_len,
                                             p->mask_key, 0);
    }

    p->state = FRAME_HEADER;

    ev->opcode = p->frame_opcode;
    ev->data = p->control;
    ev->len = p->control_len;

    if (p->frame_opcode != WH_WS_OP_CLOSE) {
        return WH_FRAME_CONTROL;
    }

    if (p->control_len == 0) {
        ev->close_code = WH_WS_CLOSE_NO_STATUS;
        return WH_FRAME_CONTROL;
    }

    /* a 1-byte close payload was refused with the header */
    code = ((unsigned) p->control[0] << 8) | p->control[1];

    if (!wh_frame_close_code_valid(code)) {
        return wh_frame_fail(p, ev, FRAME_ERR_CLOSE_CODE);
    }

    if (wh_utf8_validate(p->control + 2, p->control_len - 2)
        != 0)
    {
        return wh_frame_fail(p, ev, FRAME_ERR_REASON_UTF8);
    }

    ev->close_code = code;
    ev->data = p->control + 2;
    ev->len = p->control_len - 2;

    return WH_FRAME_CONTROL;
}


static wh_frame_rc_e
wh_frame_message_end(wh_frame_parser_t *p,
    wh_frame_event_t *ev)
{
    /* text that stops inside a character is as bad as a bad byte */
    if (p->message_opcode == WH_WS_OP_TEXT && !p->compressed
        && wh_utf8_done(&p->utf8) != 0)
    {
        return wh_frame_fail(p, ev, FRAME_ERR_TEXT_UTF8);
    }

    p->in_message = 0;
    p->state = FRAME_HEADER;

    ev->opcode = p->message_opcode;
    ev->compressed = p->compressed;

    return WH_FRAME_MESSAGE_END;
}


/*
 * XORs data with the mask key, starting offset bytes into the key, and
 * returns the offset of the byte after data; a word at a time, since the
 * key repeats every 4 bytes and so every 8.
 */
static unsigned
wh_frame_unmask(unsigned char *data, size_t len,
    const unsigned char *key, unsigned offset)
{
    size_t         i;
    uint64_t       word, key_word;
    unsigned char  key_bytes[8];

    for (i = 0; i < 8; i++) {
        key_bytes[i] = key[(offset + i) & 3];
    }

    memcpy(&key_word, key_bytes, 8);

    for (i = 0; i + 8 <= len; i += 8) {
        memcpy(&word, data + i, 8);
        word ^= key_word;
        memcpy(data + i, &word, 8);
    }

    for ( /* void */ ; i < len; i++) {
        data[i] ^= key_bytes[i & 7];
    }

    return (offset + len) & 3;
}


size_t
wh_frame_header(unsigned char *out, unsigned opcode, int fin,
    int rsv1, uint64_t len)
{
    unsigned  i;

    out[0] = (unsigned char) ((fin ? FRAME_FIN : 0) | (rsv1 ? FRAME_RSV1 : 0)
                              | (opcode & FRAME_OPCODE));

    if (len < FRAME_LENGTH7_16) {
        out[1] = (unsigned char) len;
        return 2;
    }

    if (len <= 0xffff) {
        out[1] = FRAME_LENGTH7_16;
        out[2] = (unsigned char) (len >> 8);
        out[3] = (unsigned char) len;
        return 4;
    }

    out[1] = FRAME_LENGTH7_64;

    for (i = 0; i < 8; i++) {
        out[2 + i] = (unsigned char) (len >> (56 - 8 * i));
    }

    return 10;
}


size_t
wh_frame_close_payload(unsigned char *out, unsigned code,
    const char *reason)
{
    size_t  len;

    if (code == 0) {
        return 0;
    }

    out[0] = (unsigned char) (code >> 8);
    out[1] = (unsigned char) code;

    if (reason == NULL) {
        return 2;
    }

    len = strlen(reason);

    if (len > WH_WS_CLOSE_REASON_MAX) {
        len = WH_WS_CLOSE_REASON_MAX;

        /* back off to the start of the character that would be cut */
        while (len > 0 && ((unsigned char) reason[len] & 0xc0) == 0x80) {
            len--;
        }
    }

    memcpy(out + 2, reason, len);

    return 2 + len;
}


int
wh_frame_close_code_valid(unsigned code)
{
    /*
     * 1004 is reserved; 1005, 1006 and 1015 stand for a missing code, a
     * dropped connection and a TLS failure and must never be sent;
     * 1016-2999 are not assigned; 3000-3999 are registered with IANA and
     * 4000-4999 are private
     */
    return (code >= 1000 && code <= 1003)
           || (code >= 1007 && code <= 1014)
           || (code >= 3000 && code <= 4999);
}
