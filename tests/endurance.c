/* endurance: N requests (default 1000000) through one reused handler.
 *
 * The apps of tests/faults_host.h take turns, in origin HTTP/1.1 and CGI mode (switched on
 * the same handler), with healthy hooks except that every 7th request meets a fault (a
 * disconnect, a write error, an early end of the request body, add_cgi_vars failing, the
 * iterator failing, the error log failing, a short write), so every (app, mode, fault)
 * combination comes round every 2002 requests (lcm of 13 apps x 2 modes and 7 x 11 faults). Every response is checked by the same oracle
 * as test_faults (fh_check_run: status, bytes on the wire, log lines, keep-alive, the body
 * closed once, the file descriptor closed).
 *
 * Resources: the resident set size (/proc/self/statm) and the number of open descriptors
 * (/proc/self/fd) are taken after a warm-up of 10000 requests and at the end. The RSS may
 * grow by less than 1 MiB. A warmed-up handler makes no heap allocation per request (see
 * bench --check-allocations) and this program allocates nothing per request either, so a
 * leak is the only way to grow: over the 990000 measured requests, 1 MiB is about one byte
 * per request, so even a leak of the smallest malloc chunk (32 bytes) on one request in 30
 * is caught. The margin above zero absorbs pages touched late (a deeper stack, stdio
 * buffers). With fewer requests the bound stays 1 MiB and the program prints the per-request
 * growth it can still detect. The descriptor count must not change at all.
 *
 *   endurance [REQUESTS] [--sabotage leak|leak-fd]   exits 1 on any failure
 *
 * Under AddressSanitizer or valgrind the RSS bound is not checked (their quarantine of freed
 * memory grows the RSS by design; their own leak checks stand in for it).
 *
 * --sabotage leak leaks 48 bytes of heap on every request after the warm-up, leak-fd one
 * descriptor every 1000 requests: the RSS and descriptor checks must then fail. */
#include <dirent.h>
#include <time.h>

#include "faults_host.h"

#define WARMUP 10000L
#define RSS_BOUND (1024L * 1024L)
#define MAX_REPORTS 20

static const struct {
    int hook, k, kind;
} FAULTS[] = {
    { H_WRITE, 1, K_EPIPE },       { H_WRITE, 2, K_ECONNRESET }, { H_WRITE, 1, K_EIO },
    { H_FLUSH, 1, K_EPIPE },       { H_READ, 2, K_EOF },         { H_READ, 1, K_ECONNRESET },
    { H_CGI, 1, K_ST_CLIENT_GONE }, { H_CGI, 1, K_ST_IO_ERROR }, { H_NEXT, 2, K_NEXT_FAIL },
    { H_WERR, 1, K_EIO },          { H_WRITE, 1, K_SHORT },
};
#define NFAULTS ((long)(sizeof FAULTS / sizeof FAULTS[0]))

static fh_ref refs[A_COUNT][M_COUNT];
static fh_ctx C;

/* failures per (check, app, hook, kind), for the summary */
#define MAX_KINDS 64
static struct {
    const char *check;
    int app, hook, kind;
    long count;
} tally[MAX_KINDS];

static void count_failure(const char *check, int app, int hook, int kind) {
    for (int i = 0; i < MAX_KINDS; i++) {
        if (tally[i].check == NULL) {
            tally[i].check = check;
            tally[i].app = app;
            tally[i].hook = hook;
            tally[i].kind = kind;
        }
        if (strcmp(tally[i].check, check) == 0 && tally[i].app == app && tally[i].hook == hook && tally[i].kind == kind) {
            tally[i].count++;
            return;
        }
    }
}

static long rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (f == NULL) return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') n++;
    }
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

/* Whether freed memory is held back by a checker, so that RSS says nothing about leaks. */
static bool rss_meaningless(void) {
#ifdef __SANITIZE_ADDRESS__
    return true;
#else
    const char *preload = getenv("LD_PRELOAD");
    return preload != NULL && strstr(preload, "vgpreload") != NULL;
#endif
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The handed-over descriptor must be closed; a kept write end is closed here. */
static void check_fds(fh_ctx *c) {
    if (c->handed_fd >= 0 && !fh_fd_closed(c->handed_fd)) {
        fh_fail(c, "fd-close", "the descriptor %d handed over with close_fd=true is still open", c->handed_fd);
        close(c->handed_fd);
    }
    if (c->writer_fd >= 0) close(c->writer_fd);
}

int main(int argc, char **argv) {
    long total = argc > 1 ? atol(argv[1]) : 1000000L;
    const char *sabotage = argc > 3 && strcmp(argv[2], "--sabotage") == 0 ? argv[3] : "";
    if (total <= 0 || (argc > 2 && sabotage[0] == '\0')) {
        fprintf(stderr, "usage: endurance [REQUESTS] [--sabotage leak|leak-fd]\n");
        return 2;
    }
    long warmup = total > 10 * WARMUP ? WARMUP : total / 10;
    bool trace = getenv("ENDURANCE_TRACE") != NULL; /* the RSS every 50000 requests, printed at the end */
    long trace_rss[100];
    int ntrace = 0;

    /* the references: each app's healthy run on a fresh handler */
    for (int mode = 0; mode < M_COUNT; mode++) {
        for (int app = 0; app < A_COUNT; app++) {
            fh_ctx_reset(&C, app, mode, H_NONE, 0, K_NONE);
            gw_handler *h = fh_new_handler(&C, mode);
            gw_status st = gw_handler_run(h, fh_app, &C);
            check_fds(&C);
            fh_ref_take(&refs[app][mode], &C, st, h);
            gw_handler_free(h);
        }
    }

    gw_handler *h = fh_new_handler(&C, M_ORIGIN);
    int mode_now = M_ORIGIN;
    long failures = 0, faulted = 0, fired = 0, reports = 0;
    long by_status[32] = { 0 };
    long rss_warm = 0, rss_end = 0;
    int fds_warm = 0, fds_end = 0;
    double t_start = now(), t_warm = t_start;

    for (long i = 0; i < total; i++) {
        if (trace && i % 50000 == 0 && ntrace < 100) trace_rss[ntrace++] = rss_bytes();
        if (i == warmup) {
            /* once first, so that what fopen and opendir allocate is in place before measuring */
            (void)rss_bytes();
            (void)count_fds();
            rss_warm = rss_bytes();
            fds_warm = count_fds();
            t_warm = now();
        }
        if (i >= warmup && strcmp(sabotage, "leak") == 0) {
            volatile char *lost = malloc(48);
            if (lost != NULL) lost[0] = 1;
        }
        if (i >= warmup && i % 1000 == 0 && strcmp(sabotage, "leak-fd") == 0 && dup(0) < 0) perror("dup");
        int app = (int)(i % A_COUNT);
        int mode = (int)((i / A_COUNT) % M_COUNT);
        int hook = H_NONE, k = 0, kind = K_NONE;
        if (i % 7 == 6) {
            long f = (i / 7) % NFAULTS;
            hook = FAULTS[f].hook;
            k = FAULTS[f].k;
            kind = FAULTS[f].kind;
            faulted++;
        }
        if (mode != mode_now) {
            if (gw_handler_set_origin_server(h, mode == M_ORIGIN) != GW_STATUS_OK ||
                gw_handler_set_http_version(h, mode == M_ORIGIN ? "1.1" : "1.0", 3) != GW_STATUS_OK) {
                fprintf(stderr, "endurance: switching modes failed: %s\n", gw_last_error_message());
                return 2;
            }
            mode_now = mode;
        }
        fh_ctx_reset(&C, app, mode, hook, k, kind);
        gw_status st = gw_handler_run(h, fh_app, &C);
        bool ka = true;
        uint16_t code = 0;
        uint64_t body_bytes = 0;
        if (gw_handler_last_keep_alive(h, &ka) != GW_STATUS_OK || gw_handler_last_response(h, &code, &body_bytes) != GW_STATUS_OK)
            fh_fail(&C, "api", "the handler's getters failed");
        check_fds(&C);
        fh_check_run(&C, &refs[app][mode], st, ka, code, body_bytes);
        if (C.fired) fired++;
        if (st >= 0 && st < 32) by_status[st]++;
        if (C.nfails > 0) {
            failures++;
            for (int j = 0; j < C.nfails; j++) count_failure(C.fail_check[j], app, hook, kind);
            if (reports++ < MAX_REPORTS) {
                printf("FAIL request %ld [%s] app=%s hook=%s k=%d kind=%s\n", i, FH_MODE_NAMES[mode], FH_APP_NAMES[app],
                       FH_HOOK_NAMES[hook], k, FH_KIND_NAMES[kind]);
                for (int j = 0; j < C.nfails; j++) printf("  %s: %s\n", C.fail_check[j], C.fail_msg[j]);
                printf("  status=%s keep_alive=%d\n  wire:   ", fh_status_name(st), ka);
                fh_print_escaped(stdout, C.wire, C.wire_len, 400);
                printf("\n  stderr: ");
                fh_print_escaped(stdout, C.err, C.err_len, 400);
                printf("\n");
            }
        }
    }
    double t_end = now();
    rss_end = rss_bytes();
    fds_end = count_fds();
    gw_handler_free(h);

    for (int t = 0; t < ntrace; t++) printf("  request %d: RSS %ld KiB\n", t * 50000, trace_rss[t] / 1024);
    long measured = total - warmup;
    long growth = rss_end - rss_warm;
    printf("endurance: %ld requests through one handler in %.2f s: %.0f requests/s (%.0f after the warm-up)\n", total,
           t_end - t_start, (double)total / (t_end - t_start),
           t_end > t_warm ? (double)measured / (t_end - t_warm) : 0.0);
    printf("  %ld with a fault planned, %ld fired; statuses: OK %ld, APP_ERROR %ld, RESPONSE_INCOMPLETE %ld, "
           "CLIENT_GONE %ld, IO_ERROR %ld\n",
           faulted, fired, by_status[GW_STATUS_OK], by_status[GW_STATUS_APP_ERROR],
           by_status[GW_STATUS_RESPONSE_INCOMPLETE], by_status[GW_STATUS_CLIENT_GONE], by_status[GW_STATUS_IO_ERROR]);
    printf("  RSS after %ld requests %.1f KiB, at the end %.1f KiB: %+ld bytes (bound %ld; detects leaks above %.2f "
           "bytes/request)\n",
           warmup, rss_warm / 1024.0, rss_end / 1024.0, growth, RSS_BOUND,
           measured > 0 ? (double)RSS_BOUND / (double)measured : 0.0);
    printf("  open descriptors after the warm-up %d, at the end %d\n", fds_warm, fds_end);

    int rc = 0;
    if (failures > 0) {
        printf("endurance: %ld requests failed their checks:\n", failures);
        for (int i = 0; i < MAX_KINDS && tally[i].check != NULL; i++)
            printf("  %-14s app=%s hook=%s kind=%s: %ld\n", tally[i].check, FH_APP_NAMES[tally[i].app],
                   FH_HOOK_NAMES[tally[i].hook], FH_KIND_NAMES[tally[i].kind], tally[i].count);
        rc = 1;
    }
    if (rss_meaningless()) {
        printf("  (the RSS bound is not checked under AddressSanitizer or valgrind)\n");
    } else if (rss_warm <= 0 || rss_end <= 0 || growth >= RSS_BOUND) {
        printf("endurance: RSS grew by %ld bytes (bound %ld)\n", growth, RSS_BOUND);
        rc = 1;
    }
    if (fds_end != fds_warm) {
        printf("endurance: %d descriptors leaked\n", fds_end - fds_warm);
        rc = 1;
    }
    if (rc == 0) printf("endurance: passed\n");
    return rc;
}
