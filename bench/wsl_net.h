
/*
 * wsload: socket helpers shared by the client and publisher loops.
 */

#ifndef WSL_NET_H
#define WSL_NET_H


#include <sys/types.h>

#include "wsl.h"


#define WSL_PAYLOAD_TIME    "\"wl_t\":"
#define WSL_PAYLOAD_SEQ     "\"wl_s\":"


int wsl_connect(const struct sockaddr_in *server, struct in_addr source);
int wsl_connect_result(int fd);
void wsl_abort(int fd);
ssize_t wsl_send(int fd, const void *data, size_t len);
int wsl_expand(const char *tmpl, const char *channel, char *out,
    size_t len);
void wsl_channel_name(const wsl_conf_t *conf, unsigned i, char *out,
    size_t len);
int wsl_find_number(const char *data, size_t len, const char *key,
    uint64_t *value);

/* wsl_mqtt.c */
#define WSL_MQTT_CONNACK    2
#define WSL_MQTT_PUBLISH    3
#define WSL_MQTT_SUBACK     9

size_t wsl_mqtt_connect(uint8_t *out, size_t cap, const char *client_id);
size_t wsl_mqtt_subscribe(uint8_t *out, size_t cap, const char *filter);
size_t wsl_mqtt_publish(uint8_t *out, size_t cap, const char *topic,
    const char *payload, size_t len);
ssize_t wsl_mqtt_packet(const uint8_t *p, size_t len, unsigned *type,
    size_t *hlen);


#endif /* WSL_NET_H */
