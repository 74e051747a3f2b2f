
/*
 * Wirehub: the RFC 6455 frame layer.
 *
 * Depends on libc only, so that unit tests and fuzzers can use it
 * without nginx.  The parser allocates nothing and keeps all of its state
 * in wh_frame_parser_t, which lives in every connection.
 */


#ifndef WH_FRAME_H
#define WH_FRAME_H


#include <stddef.h>
#include <stdint.h>

#include "wh_utf8.h"


#define WH_WS_OP_CONT          0x0
#define WH_WS_OP_TEXT          0x1
#define WH_WS_OP_BINARY        0x2
#define WH_WS_OP_CLOSE         0x8
#define WH_WS_OP_PING          0x9
#define WH_WS_OP_PONG          0xA

/* the largest control frame payload, and the largest close reason */
#define WH_WS_CONTROL_MAX      125
#define WH_WS_CLOSE_REASON_MAX 123

/* the largest header wh_frame_header() writes */
#define WH_FRAME_HEADER_MAX 10

/* a CLOSE without a code is reported with this code (never sent) */
#define WH_WS_CLOSE_NO_STATUS  1005


typedef enum {
    /* all input consumed, need more */
    WH_FRAME_AGAIN = 0,

    /*
     * ev->data, ev->len: payload bytes of the current data message,
     * unmasked in place in the caller's buffer; ev->opcode is the message
     * opcode (TEXT or BINARY); ev->compressed is set when RSV1 was on the
     * first frame of the message.  Never emitted with len 0: a message
     * without payload yields MESSAGE_END alone.
     */
    WH_FRAME_DATA,

    /*
     * the current data message is complete (its FIN frame fully read);
     * ev->opcode is the message opcode, ev->compressed as for DATA
     */
    WH_FRAME_MESSAGE_END,

    /*
     * a complete control frame: ev->opcode PING, PONG or CLOSE; ev->data,
     * ev->len its unmasked payload, held in the parser's own buffer (valid
     * until the next call); for CLOSE, ev->close_code (1005 if the payload
     * is empty) and ev->data, ev->len the reason, already checked to be
     * UTF-8
     */
    WH_FRAME_CONTROL,

    /*
     * a protocol violation: ev->close_code (1002, 1007 or 1009) and
     * ev->reason (a static string) say how to close; the parser stays in
     * this state and returns the same error on every later call
     */
    WH_FRAME_ERROR
} wh_frame_rc_e;


typedef struct {
    unsigned                  opcode;
    unsigned char            *data;
    size_t                    len;
    unsigned                  close_code;
    const char               *reason;
    unsigned                  compressed;   /* DATA and MESSAGE_END */
} wh_frame_event_t;


/*
 * The caller sets max_message_size, require_mask and allow_rsv1; every
 * other field is private.  Zeroing the whole struct gives a parser at the
 * start of a stream; wh_frame_parser_init() does the same
 * but keeps the three settings.
 */
typedef struct {
    /*
     * the largest total payload of a data message, fragments summed, in
     * bytes as they arrive (compressed bytes if RSV1); 0 = unlimited;
     * beyond it ERROR 1009 as soon as a frame header announces it
     */
    uint64_t                  max_message_size;

    uint64_t                  remaining;       /* of the frame's payload */
    uint64_t                  message_size;    /* announced so far */
    wh_utf8_t   utf8;            /* of the TEXT message */
    unsigned char             mask_key[4];
    unsigned char             control[WH_WS_CONTROL_MAX];
    uint8_t                   state;
    uint8_t                   header_need;     /* length or key bytes */
    uint8_t                   control_len;
    uint8_t                   mask_offset;     /* of the next payload byte */
    uint8_t                   frame_opcode;
    uint8_t                   message_opcode;
    uint8_t                   error;

    /* server side: client frames must be masked, else 1002 */
    unsigned                  require_mask:1;

    /*
     * permessage-deflate was negotiated: RSV1 is allowed on the first
     * frame of a data message; the parser then leaves UTF-8 validation of
     * that message to the caller, who checks the inflated text
     */
    unsigned                  allow_rsv1:1;

    unsigned                  fin:1;
    unsigned                  masked:1;
    unsigned                  in_message:1;
    unsigned                  compressed:1;
} wh_frame_parser_t;


/*
 * Resets the parser to the start of a stream; max_message_size,
 * require_mask and allow_rsv1 are kept as they are.
 */
void wh_frame_parser_init(wh_frame_parser_t *p);

/*
 * 1 when the parser is between messages with no frame begun: a caller
 * may drop it then and start the stream again with a fresh one.
 */
int wh_frame_parser_at_rest(const wh_frame_parser_t *p);

/*
 * Parses from buf[0..len) up to the next event and returns it; *consumed
 * is the number of bytes of buf used (<= len, == len for AGAIN).  The
 * caller calls again with buf + *consumed until AGAIN, also when no bytes
 * are left, since one input byte may complete two events (the last DATA
 * of a message, then MESSAGE_END).  Input may be cut at any byte.  Payload
 * bytes are unmasked in place in buf.  Every field of *ev not named for
 * the event is zero.
 */
wh_frame_rc_e wh_frame_parse(
    wh_frame_parser_t *p, unsigned char *buf, size_t len,
    size_t *consumed, wh_frame_event_t *ev);

/*
 * Writes the header of a server frame (unmasked) with a payload of len
 * bytes into out (WH_FRAME_HEADER_MAX bytes at least);
 * returns its length: 2, 4 or 10.
 */
size_t wh_frame_header(unsigned char *out, unsigned opcode,
    int fin, int rsv1, uint64_t len);

/*
 * Writes a close frame payload into out (WH_WS_CONTROL_MAX
 * bytes at least): the 2-byte code, then the reason (may be NULL) cut to
 * 123 bytes at a character boundary; returns its length.  Code 0 writes
 * an empty payload, the answer to a close that carried no code.
 */
size_t wh_frame_close_payload(unsigned char *out,
    unsigned code, const char *reason);

/*
 * Returns 1 if a close code received from a peer is valid per RFC 6455
 * and the IANA registry (1000-1003, 1007-1014, 3000-4999), else 0.
 */
int wh_frame_close_code_valid(unsigned code);


#endif /* WH_FRAME_H */
