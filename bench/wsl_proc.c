
/*
 * What the server uses, read from /proc: CPU time (utime + stime of
 * /proc/PID/stat) and memory (VmRSS of /proc/PID/status, Pss of
 * /proc/PID/smaps_rollup) summed over the given processes and all their
 * descendants (an nginx master names its workers that way); and what the
 * kernel holds for sockets, which no process's RSS shows: the slab caches
 * of sockets (struct sock, inodes, files, epoll items) and TCP buffers
 * ("mem" of /proc/net/sockstat, in pages).
 */


#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "wsl.h"


#define WSL_PROC_MAX  256


typedef struct {
    pid_t     pids[WSL_PROC_MAX];
    unsigned  n;
} wsl_pidset_t;


static void wsl_proc_comm(pid_t pid, char *out, size_t len);


static int
wsl_pidset_has(const wsl_pidset_t *set, pid_t pid)
{
    unsigned  i;

    for (i = 0; i < set->n; i++) {
        if (set->pids[i] == pid) {
            return 1;
        }
    }

    return 0;
}


/* the fields after "(comm)" of /proc/PID/stat: comm may hold spaces */
static int
wsl_stat_fields(pid_t pid, char *buf, size_t len, char **rest)
{
    int      fd;
    char     path[64];
    char    *p;
    ssize_t  n;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return -1;
    }

    n = read(fd, buf, len - 1);
    close(fd);

    if (n <= 0) {
        return -1;
    }

    buf[n] = '\0';

    p = strrchr(buf, ')');
    if (p == NULL) {
        return -1;
    }

    *rest = p + 2;
    return 0;
}


static pid_t
wsl_parent_of(pid_t pid)
{
    int    ppid;
    char   buf[1024], state;
    char  *rest;

    if (wsl_stat_fields(pid, buf, sizeof(buf), &rest) != 0) {
        return -1;
    }

    if (sscanf(rest, "%c %d", &state, &ppid) != 2) {
        return -1;
    }

    return (pid_t) ppid;
}


/* add every process whose parent is in the set, until none is new */
static void
wsl_pidset_descendants(wsl_pidset_t *set)
{
    int             grew;
    DIR            *dir;
    pid_t           pid, parent;
    struct dirent  *de;

    do {
        grew = 0;

        dir = opendir("/proc");
        if (dir == NULL) {
            return;
        }

        while ((de = readdir(dir)) != NULL && set->n < WSL_PROC_MAX) {
            if (!isdigit((unsigned char) de->d_name[0])) {
                continue;
            }

            pid = (pid_t) atoi(de->d_name);
            if (wsl_pidset_has(set, pid)) {
                continue;
            }

            parent = wsl_parent_of(pid);
            if (parent > 0 && wsl_pidset_has(set, parent)) {
                set->pids[set->n++] = pid;
                grew = 1;
            }
        }

        closedir(dir);

    } while (grew);
}


static double
wsl_proc_cpu_s(pid_t pid)
{
    int                 i;
    char                buf[1024];
    char               *rest, *p;
    unsigned long long  utime, stime;

    if (wsl_stat_fields(pid, buf, sizeof(buf), &rest) != 0) {
        return 0.0;
    }

    /* rest starts at field 3 (state); utime and stime are fields 14, 15 */
    p = rest;

    for (i = 3; i < 14 && p; i++) {
        p = strchr(p, ' ');
        if (p) {
            p++;
        }
    }

    if (p == NULL || sscanf(p, "%llu %llu", &utime, &stime) != 2) {
        return 0.0;
    }

    return (double) (utime + stime) / (double) sysconf(_SC_CLK_TCK);
}


/* the "NAME N" field of the line starting with prefix, in a /proc file */
static uint64_t
wsl_proc_field(const char *path, const char *prefix, const char *name)
{
    char                line[512], *p;
    size_t              len;
    FILE               *f;
    unsigned long long  v;

    f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }

    len = strlen(prefix);
    v = 0;

    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, prefix, len) != 0) {
            continue;
        }

        p = strstr(line + len, name);

        if (p == NULL || sscanf(p + strlen(name), "%llu", &v) != 1) {
            v = 0;
        }

        break;
    }

    fclose(f);
    return v;
}


/* the first "NAME: N kB" line of a /proc file */
static uint64_t
wsl_proc_kib(pid_t pid, const char *file, const char *name)
{
    char  path[64], prefix[64];

    snprintf(path, sizeof(path), "/proc/%d/%s", (int) pid, file);
    snprintf(prefix, sizeof(prefix), "%s:", name);

    return wsl_proc_field(path, prefix, "");
}


/* the command name, without its newline */
static void
wsl_proc_comm(pid_t pid, char *out, size_t len)
{
    char   path[64], *p;
    FILE  *f;

    snprintf(path, sizeof(path), "/proc/%d/comm", (int) pid);
    out[0] = '\0';

    f = fopen(path, "r");
    if (f == NULL) {
        return;
    }

    if (fgets(out, (int) len, f) != NULL) {
        out[strcspn(out, "\n")] = '\0';
    }

    fclose(f);

    /* it goes into JSON as is */
    for (p = out; *p; p++) {
        if (*p == '"' || *p == '\\' || (unsigned char) *p < 0x20) {
            *p = '_';
        }
    }
}


/*
 * What the slab caches a socket lives in hold, in KiB: the socket, its
 * inode, file and dentry, its epoll item.  Named so that what else grows
 * on a shared box (/proc inodes, page tables) is left out; without
 * /proc/slabinfo (root only), all of Slab in /proc/meminfo.
 */
static uint64_t
wsl_socket_slab_kib(void)
{
    char                name[64], line[512];
    FILE               *f;
    unsigned            i;
    uint64_t            bytes;
    unsigned long long  active, num, size;
    static const char  *caches[] = {
        "TCP", "TCPv6", "request_sock_TCP", "sock_inode_cache", "filp",
        "dentry", "eventpoll_epi", "eventpoll_pwq", "ep_head",
        "lsm_file_cache", "lsm_inode_cache", "skbuff_head_cache"
    };

    f = fopen("/proc/slabinfo", "r");
    if (f == NULL) {
        return wsl_proc_field("/proc/meminfo", "Slab:", "");
    }

    bytes = 0;

    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "%63s %llu %llu %llu", name, &active, &num, &size)
            != 4)
        {
            continue;
        }

        for (i = 0; i < sizeof(caches) / sizeof(caches[0]); i++) {
            if (strcmp(name, caches[i]) == 0) {
                bytes += (uint64_t) num * size;
                break;
            }
        }
    }

    fclose(f);
    return bytes / 1024;
}


static void
wsl_kernel_read(wsl_usage_t *u)
{
    u->slab_kib = wsl_socket_slab_kib();
    u->tcp_buf_kib = wsl_proc_field("/proc/net/sockstat", "TCP:", " mem ")
                     * (uint64_t) sysconf(_SC_PAGESIZE) / 1024;
}


int
wsl_usage_read(const wsl_conf_t *conf, wsl_usage_t *u)
{
    double        cpu;
    unsigned      i;
    uint64_t      rss, pss;
    wsl_pidset_t  set;

    memset(u, 0, sizeof(wsl_usage_t));
    u->box_cpu_s = wsl_box_cpu_s();
    u->softirqd_cpu_s = wsl_softirqd_cpu_s();
    wsl_kernel_read(u);

    if (conf->nserver_pids == 0) {
        return -1;
    }

    set.n = 0;

    for (i = 0; i < conf->nserver_pids; i++) {
        set.pids[set.n++] = conf->server_pids[i];
    }

    wsl_pidset_descendants(&set);

    for (i = 0; i < set.n; i++) {
        rss = wsl_proc_kib(set.pids[i], "status", "VmRSS");
        pss = wsl_proc_kib(set.pids[i], "smaps_rollup", "Pss");
        cpu = wsl_proc_cpu_s(set.pids[i]);
        u->cpu_s += cpu;
        u->rss_kib += rss;
        u->pss_kib += pss;

        if (i < WSL_USAGE_DETAIL) {
            u->detail[i].pid = set.pids[i];
            u->detail[i].cpu_s = cpu;
            u->detail[i].rss_kib = rss;
            u->detail[i].pss_kib = pss;
            wsl_proc_comm(set.pids[i], u->detail[i].comm,
                          sizeof(u->detail[i].comm));
        }
    }

    u->nprocs = set.n;
    return 0;
}


/*
 * CPU seconds of the kernel's softirq threads: network work the kernel
 * deferred out of the benchmark's own processes, not other work.
 */
double
wsl_softirqd_cpu_s(void)
{
    char            comm[32];
    double          sum;
    DIR            *dir;
    pid_t           pid;
    struct dirent  *de;

    dir = opendir("/proc");
    if (dir == NULL) {
        return 0.0;
    }

    sum = 0.0;

    while ((de = readdir(dir)) != NULL) {
        if (!isdigit((unsigned char) de->d_name[0])) {
            continue;
        }

        pid = (pid_t) atoi(de->d_name);
        wsl_proc_comm(pid, comm, sizeof(comm));

        if (strncmp(comm, "ksoftirqd/", 10) == 0) {
            sum += wsl_proc_cpu_s(pid);
        }
    }

    closedir(dir);
    return sum;
}


/* busy CPU seconds of the whole machine, from the "cpu" line of /proc/stat */
double
wsl_box_cpu_s(void)
{
    int                 n;
    FILE               *f;
    unsigned long long  v[8];

    f = fopen("/proc/stat", "r");
    if (f == NULL) {
        return 0.0;
    }

    n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
               &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
    fclose(f);

    if (n != 8) {
        return 0.0;
    }

    /* everything but idle (3) and iowait (4) */
    return (double) (v[0] + v[1] + v[2] + v[5] + v[6] + v[7])
           / (double) sysconf(_SC_CLK_TCK);
}


double
wsl_self_cpu_s(void)
{
    struct rusage  ru;

    if (getrusage(RUSAGE_SELF, &ru) != 0) {
        return 0.0;
    }

    return (double) ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
           + (double) ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}
