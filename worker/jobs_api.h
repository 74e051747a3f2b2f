/*
 * The jobs' HTTP routes (jobs_api.c).
 */

#ifndef WH_JOBS_API_H
#define WH_JOBS_API_H

#include "wh_link.h"
#include "jobs.h"
#include "link.h"


/* 1 if path is a route of the jobs: /jobs or /jobs/... */
int wh_jobs_api_path(wh_str_t path);

/* REQUEST for those routes */
void wh_jobs_api(wh_jobs_t *j, wh_peer_t *peer, const wh_link_msg_t *m,
    wh_str_t path);

#endif /* WH_JOBS_API_H */
