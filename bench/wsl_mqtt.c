
/*
 * The few MQTT 3.1.1 packets wsload needs: CONNECT (clean session, no
 * keepalive, so no PINGREQ is ever due), SUBSCRIBE and PUBLISH at QoS 0,
 * and the framing of what comes back (fixed header, remaining length).
 */


#include <string.h>

#include "wsl.h"
#include "wsl_net.h"


#define WSL_MQTT_MAX_REMAINING  268435455


/* the remaining-length varint; bytes written */
static size_t
wsl_mqtt_length(uint8_t *out, size_t len)
{
    size_t  n;

    n = 0;

    do {
        out[n] = (uint8_t) (len % 128);
        len /= 128;
        if (len) {
            out[n] |= 0x80;
        }
        n++;
    } while (len);

    return n;
}


static size_t
wsl_mqtt_string(uint8_t *out, const char *s, size_t len)
{
    out[0] = (uint8_t) (len >> 8);
    out[1] = (uint8_t) len;
    memcpy(out + 2, s, len);

    return 2 + len;
}


/* fixed header + body; 0 if it does not fit in `cap` */
static size_t
wsl_mqtt_packet_out(uint8_t *out, size_t cap, uint8_t first,
    const uint8_t *body, size_t len)
{
    size_t   n;
    uint8_t  head[5];

    head[0] = first;
    n = 1 + wsl_mqtt_length(head + 1, len);

    if (n + len > cap) {
        return 0;
    }

    memcpy(out, head, n);
    memcpy(out + n, body, len);

    return n + len;
}


size_t
wsl_mqtt_connect(uint8_t *out, size_t cap, const char *client_id)
{
    size_t   n, idlen;
    uint8_t  body[300];

    idlen = strlen(client_id);
    if (idlen > 200) {
        return 0;
    }

    n = wsl_mqtt_string(body, "MQTT", 4);
    body[n++] = 4;                  /* protocol level 3.1.1 */
    body[n++] = 0x02;               /* clean session */
    body[n++] = 0;                  /* keepalive 0: none */
    body[n++] = 0;
    n += wsl_mqtt_string(body + n, client_id, idlen);

    return wsl_mqtt_packet_out(out, cap, 0x10, body, n);
}


size_t
wsl_mqtt_subscribe(uint8_t *out, size_t cap, const char *filter)
{
    size_t   n, flen;
    uint8_t  body[300];

    flen = strlen(filter);
    if (flen > 250) {
        return 0;
    }

    body[0] = 0;                    /* packet identifier 1 */
    body[1] = 1;
    n = 2 + wsl_mqtt_string(body + 2, filter, flen);
    body[n++] = 0;                  /* QoS 0 */

    return wsl_mqtt_packet_out(out, cap, 0x82, body, n);
}


size_t
wsl_mqtt_publish(uint8_t *out, size_t cap, const char *topic,
    const char *payload, size_t len)
{
    size_t  n, tlen, rl;

    tlen = strlen(topic);
    rl = 2 + tlen + len;

    if (rl > WSL_MQTT_MAX_REMAINING || cap < 5 + rl) {
        return 0;
    }

    out[0] = 0x30;                  /* PUBLISH, QoS 0, no retain */
    n = 1 + wsl_mqtt_length(out + 1, rl);
    n += wsl_mqtt_string(out + n, topic, tlen);
    memcpy(out + n, payload, len);

    return n + len;
}


/*
 * The first packet of p: its whole length (*type the packet type, *hlen
 * the fixed header's length), 0 if incomplete, -1 if malformed.
 */
ssize_t
wsl_mqtt_packet(const uint8_t *p, size_t len, unsigned *type, size_t *hlen)
{
    size_t    i, mult, rl;

    if (len < 2) {
        return 0;
    }

    rl = 0;
    mult = 1;

    for (i = 1; i < 5; i++) {
        if (i >= len) {
            return 0;
        }

        rl += (size_t) (p[i] & 0x7f) * mult;
        mult *= 128;

        if ((p[i] & 0x80) == 0) {
            break;
        }
    }

    if (i == 5) {
        return -1;
    }

    *type = p[0] >> 4;
    *hlen = i + 1;

    return (len < *hlen + rl) ? 0 : (ssize_t) (*hlen + rl);
}
