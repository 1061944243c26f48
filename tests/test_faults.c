/* test_faults: a fault-injection matrix through the C ABI.
 *
 * For every app (tests/faults_host.h), in origin HTTP/1.1 and CGI mode, for every hook and
 * every kind of failure that hook can show, for k = 1 .. (calls in the healthy run + 1), the
 * k-th call of that hook fails in that way; the run is checked against the documented outcome
 * (fh_check_run), then the same handler, its hooks healthy again, serves the same app and the
 * echo app, and their output must be byte-identical to a fresh handler's.
 *
 *   test_faults [-v] [--mode origin|cgi] [--app NAME] [--hook NAME] [--kind NAME] [--k N]
 *               [--max-reports N] [--sabotage NAME]
 *
 * -v prints every combination; the filters select a part of the matrix (to replay one
 * failure); --sabotage breaks one rule on the test's side to show the check guarding it
 * fails (names: see SABOTAGE below). Exits 1 when any check failed. */
#include <dirent.h>
#include <signal.h>
#include <time.h>

#include "faults_host.h"

/* ---- close(2), interposed: how many times the library closed the handed-over fd ----------
 * The executable's close() takes precedence over libc's for the library's calls too (static
 * or shared); glibc exports the real one as __close. */

extern int __close(int fd);

static int tracked_fd = -1;
static int tracked_closes;
static bool sab_fd_uncounted;

int close(int fd) {
    if (fd >= 0 && fd == tracked_fd && !sab_fd_uncounted) tracked_closes++;
    return __close(fd);
}

static void track_fd(int fd) {
    tracked_fd = fd;
    tracked_closes = 0;
}

/* ---- the crash report: which combination was running ------------------------------------ */

static char current[256] = "before the first combination";

static void on_crash(int sig) {
    static const char msg[] = "\ntest_faults: crashed while running: ";
    ssize_t ignored = write(2, msg, sizeof msg - 1);
    ignored = write(2, current, strlen(current));
    ignored = write(2, "\n", 1);
    (void)ignored;
    signal(sig, SIG_DFL);
    raise(sig);
}

/* ---- options ------------------------------------------------------------------------------ */

static const char *const SABOTAGE[] = {
    "iter-close-uncounted", /* the test iterator's close does not count: iter-close fails */
    "fd-close-uncounted",   /* closes of the handed-over fd are not counted: fd-close fails */
    "stderr-half",          /* a failing stderr hook lets half a line through: stderr-lines fails */
    "pretend-ok",           /* CLIENT_GONE/IO_ERROR are checked as OK: status and wire-ok fail */
    "status-swap",          /* CLIENT_GONE and IO_ERROR swapped: status fails */
    "keep-alive-lie",       /* keep-alive checked as true: keep-alive fails */
    "terminator",           /* "0\r\n\r\n" appended to a cut chunked wire: wire-cut fails */
    "phantom-write",        /* one more write call counted after a failure: write-after-failure */
    "followup-byte",        /* a follow-up's wire gets one byte changed: followup fails */
    "leak-fd",              /* one descriptor leaked per combination: fd-leak fails */
    "expect-wrong",         /* the spelled-out expectation of the bytes app is wrong: reference */
    "no-page",              /* the expected error page loses a byte: wire-app-error fails */
    "short-drops-byte",     /* a short write reports 1 byte taken but stores none: wire-same/ok */
    "cgi-ignored",          /* add_cgi_vars "fails" but returns OK: setup (and status) fail */
    "refusal-ok",           /* a refused call is recorded as accepted: refusal fails */
    "extra-call",           /* one more flush call counted in runs without a fault: calls fails */
    NULL,
};

static struct {
    bool verbose;
    int mode, app, hook, kind, k;
    int max_reports;
    const char *sabotage;
} opt = { false, -1, -1, -1, -1, -1, 20000, NULL };

static bool sab(const char *name) {
    return opt.sabotage != NULL && strcmp(opt.sabotage, name) == 0;
}

static int lookup(const char *const *names, int count, const char *name, const char *what) {
    for (int i = 0; i < count; i++) {
        if (strcmp(names[i], name) == 0) return i;
    }
    fprintf(stderr, "test_faults: no %s named '%s'; one of:", what, name);
    for (int i = 0; i < count; i++) fprintf(stderr, " %s", names[i]);
    fprintf(stderr, "\n");
    exit(2);
}

/* ---- bookkeeping ---------------------------------------------------------------------------- */

static fh_ref refs[A_COUNT][M_COUNT];
static fh_ctx C, F; /* the faulty run, and the follow-ups */
static long ran, fired, failed_combos, failed_refs, reports, late_complete;
static long fired_by_hook[H_COUNT], ran_by_hook[H_COUNT];

#define MAX_CHECKS 32
static const char *check_names[MAX_CHECKS];
static long check_counts[MAX_CHECKS];

static void count_check(const char *name) {
    for (int i = 0; i < MAX_CHECKS; i++) {
        if (check_names[i] == NULL) check_names[i] = name;
        if (strcmp(check_names[i], name) == 0) {
            check_counts[i]++;
            return;
        }
    }
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

/* After a run: the handed-over descriptor must be closed, exactly once; a kept write end is
 * closed here. Runs before anything else can reuse the descriptor's number. */
static void check_fds(fh_ctx *c) {
    if (c->handed_fd >= 0) {
        bool closed = fh_fd_closed(c->handed_fd);
        if (tracked_closes == 0 && !closed) {
            fh_fail(c, "fd-close", "the descriptor %d handed over with close_fd=true is still open", c->handed_fd);
            __close(c->handed_fd); /* so the next combination starts clean */
        } else if (tracked_closes != 1) {
            fh_fail(c, "fd-close", "the descriptor handed over with close_fd=true was closed %d times", tracked_closes);
        } else if (!closed && opt.verbose) {
            printf("  note: descriptor %d closed once, and its number was reused during the run\n", c->handed_fd);
        }
    }
    tracked_fd = -1;
    if (c->writer_fd >= 0) __close(c->writer_fd);
}

static void report(const fh_ctx *c, const char *what, gw_status st, bool ka) {
    for (int i = 0; i < c->nfails; i++) count_check(c->fail_check[i]);
    if (reports >= opt.max_reports) return;
    reports++;
    printf("FAIL %s\n", what);
    for (int i = 0; i < c->nfails; i++) printf("  %s: %s\n", c->fail_check[i], c->fail_msg[i]);
    printf("  status=%s keep_alive=%d fired=%d calls:", fh_status_name(st), ka, c->fired);
    for (int i = H_WRITE; i < H_COUNT; i++) printf(" %s=%d", FH_HOOK_NAMES[i], c->calls[i]);
    printf("\n  wire:   ");
    fh_print_escaped(stdout, c->wire, c->wire_len, 600);
    printf("\n  stderr: ");
    fh_print_escaped(stdout, c->err, c->err_len, 600);
    printf("\n");
}

/* Runs `c` (already reset) on `h`; the checks, the fd check and the report. */
static bool run_checked(gw_handler *h, fh_ctx *c, const char *what, bool followup) {
    c->on_handover = track_fd;
    if (gw_handler_set_userdata(h, c) != GW_STATUS_OK) {
        fprintf(stderr, "set_userdata: %s\n", gw_last_error_message());
        exit(2);
    }
    gw_status st = gw_handler_run(h, fh_app, c);
    bool ka = true;
    uint16_t code = 0;
    uint64_t body_bytes = 0;
    if (gw_handler_last_keep_alive(h, &ka) != GW_STATUS_OK) fh_fail(c, "api", "last_keep_alive failed");
    if (gw_handler_last_response(h, &code, &body_bytes) != GW_STATUS_OK) fh_fail(c, "api", "last_response failed");
    check_fds(c);

    /* sabotage on the test's side */
    if (sab("pretend-ok") && (st == GW_STATUS_CLIENT_GONE || st == GW_STATUS_IO_ERROR)) st = GW_STATUS_OK;
    if (sab("status-swap")) {
        if (st == GW_STATUS_CLIENT_GONE) st = GW_STATUS_IO_ERROR;
        else if (st == GW_STATUS_IO_ERROR) st = GW_STATUS_CLIENT_GONE;
    }
    if (sab("keep-alive-lie")) ka = true;
    if (sab("terminator") && st != GW_STATUS_OK && c->wire_len + 5 < sizeof c->wire &&
        fh_find(c->wire, c->wire_len, "Transfer-Encoding: chunked") != NULL) {
        memcpy(c->wire + c->wire_len, "0\r\n\r\n", 5);
        c->wire_len += 5;
    }
    if (sab("phantom-write") && c->out_failed) c->calls_after_failure += 1000;
    if (sab("followup-byte") && followup && c->wire_len > 0) c->wire[c->wire_len - 1] ^= 1;
    if (sab("refusal-ok") && c->refused_status != -1) c->refused_status = GW_STATUS_OK;
    if (sab("refusal-ok") && c->second_start_status != -1) c->second_start_status = GW_STATUS_OK;
    if (sab("extra-call") && !c->fired) c->calls[H_FLUSH]++;

    const fh_ref *r = &refs[c->app][c->mode];
    fh_check_run(c, r, st, ka, code, body_bytes);
    if (!followup && st != GW_STATUS_OK && r->status == GW_STATUS_OK &&
        fh_same(c->wire, c->wire_len, r->wire, r->wire_len)) {
        char why[256];
        if (fh_frame(c->wire, c->wire_len, why, sizeof why) == FR_COMPLETE) late_complete++;
    }
    if (c->nfails > 0) report(c, what, st, ka);
    if (opt.verbose) printf("  %s -> %s%s\n", what, fh_status_name(st), c->nfails > 0 ? " FAILED" : "");
    return c->nfails == 0;
}

static void describe(char *buf, size_t cap, int app, int mode, int hook, int k, int kind) {
    snprintf(buf, cap, "[%s] app=%s hook=%s k=%d kind=%s", FH_MODE_NAMES[mode], FH_APP_NAMES[app],
             FH_HOOK_NAMES[hook], k, FH_KIND_NAMES[kind]);
}

/* One combination: the faulty run, then two healthy follow-ups on the same handler. */
static void run_combo(int app, int mode, int hook, int k, int kind) {
    describe(current, sizeof current, app, mode, hook, k, kind);
    int fds_before = count_fds();
    if (sab("leak-fd") && dup(0) < 0) perror("dup");

    fh_ctx_reset(&C, app, mode, hook, k, kind);
    gw_handler *h = fh_new_handler(&C, mode);
    bool ok = run_checked(h, &C, current, false);
    ran++;
    ran_by_hook[hook]++;
    if (C.fired) {
        fired++;
        fired_by_hook[hook]++;
    }

    int followups[2] = { app, A_ECHO_READ };
    for (int i = 0; i < (app == A_ECHO_READ ? 1 : 2); i++) {
        char what[400];
        snprintf(what, sizeof what, "%s, then on the same handler a healthy %s", current, FH_APP_NAMES[followups[i]]);
        fh_ctx_reset(&F, followups[i], mode, H_NONE, 0, K_NONE);
        if (!run_checked(h, &F, what, true)) {
            ok = false;
            count_check("followup");
        }
    }
    gw_handler_free(h);

    int fds_after = count_fds();
    if (fds_after != fds_before) {
        ok = false;
        count_check("fd-leak");
        if (reports++ < opt.max_reports)
            printf("FAIL %s\n  fd-leak: %d descriptors open before, %d after\n", current, fds_before, fds_after);
    }
    if (!ok) failed_combos++;
}

/* The healthy run of every app on a fresh handler: the reference for the faulty runs, and
 * itself checked against the expected output spelled out in fh_expected. */
static void make_reference(int app, int mode) {
    describe(current, sizeof current, app, mode, H_NONE, 0, K_NONE);
    fh_ctx_reset(&C, app, mode, H_NONE, 0, K_NONE);
    C.on_handover = track_fd;
    gw_handler *h = fh_new_handler(&C, mode);
    gw_status st = gw_handler_run(h, fh_app, &C);
    check_fds(&C);
    fh_ref *r = &refs[app][mode];
    fh_ref_take(r, &C, st, h);
    gw_handler_free(h);
    if (sab("no-page")) {
        r->error_page.d[10] ^= 1;
        r->error_page_close.d[10] ^= 1;
    }

    fh_expect e;
    fh_expected(app, mode, &e);
    if (sab("expect-wrong") && app == A_BYTES) e.wire.d[e.wire.n - 1] ^= 1;
    bool wire_differs = !fh_same(C.wire, C.wire_len, e.wire.d, e.wire.n);
    if (app == A_FAIL_BEFORE) wire_differs = !fh_is_error_page(r, C.wire, C.wire_len, false);
    bool err_differs = !fh_same(C.err, C.err_len, e.err, strlen(e.err));
    if (st != e.status)
        fh_fail(&C, "reference", "healthy run returned %s, expected %s", fh_status_name(st), fh_status_name(e.status));
    if (wire_differs) fh_fail(&C, "reference", "healthy wire differs from the expected output (below)");
    if (err_differs) fh_fail(&C, "reference", "healthy stderr differs from the expected (below)");
    if (r->keep_alive != e.keep_alive)
        fh_fail(&C, "reference", "healthy keep-alive %d, expected %d", r->keep_alive, e.keep_alive);
    /* the generic checks too (close once, fd closed, whole log lines, refusals) */
    fh_check_run(&C, r, st, r->keep_alive, r->code, r->body_bytes);
    if (C.nfails > 0) {
        char what[300];
        snprintf(what, sizeof what, "[%s] app=%s healthy run on a fresh handler (the reference)", FH_MODE_NAMES[mode],
                 FH_APP_NAMES[app]);
        bool shown = reports < opt.max_reports;
        report(&C, what, st, r->keep_alive);
        if (shown && wire_differs) {
            printf("  expected wire:   ");
            fh_print_escaped(stdout, e.wire.d, e.wire.n, 600);
            printf("\n");
        }
        if (shown && err_differs) {
            printf("  expected stderr: ");
            fh_print_escaped(stdout, e.err, strlen(e.err), 600);
            printf("\n");
        }
        failed_refs++;
    }
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-v") == 0) {
            opt.verbose = true;
            continue;
        }
        if (v == NULL) {
            fprintf(stderr, "usage: test_faults [-v] [--mode M] [--app A] [--hook H] [--kind K] [--k N] "
                            "[--max-reports N] [--sabotage S]\n");
            return 2;
        }
        i++;
        if (strcmp(a, "--mode") == 0) opt.mode = lookup(FH_MODE_NAMES, M_COUNT, v, "mode");
        else if (strcmp(a, "--app") == 0) opt.app = lookup(FH_APP_NAMES, A_COUNT, v, "app");
        else if (strcmp(a, "--hook") == 0) opt.hook = lookup(FH_HOOK_NAMES, H_COUNT, v, "hook");
        else if (strcmp(a, "--kind") == 0) opt.kind = lookup(FH_KIND_NAMES, K_COUNT, v, "kind");
        else if (strcmp(a, "--k") == 0) opt.k = atoi(v);
        else if (strcmp(a, "--max-reports") == 0) opt.max_reports = atoi(v);
        else if (strcmp(a, "--sabotage") == 0) {
            int n = 0;
            while (SABOTAGE[n] != NULL) n++;
            opt.sabotage = SABOTAGE[lookup(SABOTAGE, n, v, "sabotage")];
        } else {
            fprintf(stderr, "test_faults: unknown option %s\n", a);
            return 2;
        }
    }
    signal(SIGSEGV, on_crash);
    signal(SIGBUS, on_crash);
    signal(SIGABRT, on_crash);
    signal(SIGFPE, on_crash);
    signal(SIGILL, on_crash);
    signal(SIGPIPE, SIG_IGN);
    C.sab_close_uncounted = F.sab_close_uncounted = sab("iter-close-uncounted");
    C.sab_stderr_half = sab("stderr-half");
    C.sab_short_drops = sab("short-drops-byte");
    C.sab_cgi_ignored = sab("cgi-ignored");
    sab_fd_uncounted = sab("fd-close-uncounted");

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int fds_start = count_fds();

    for (int mode = 0; mode < M_COUNT; mode++) {
        for (int app = 0; app < A_COUNT; app++) make_reference(app, mode);
    }
    for (int mode = 0; mode < M_COUNT; mode++) {
        if (opt.mode >= 0 && mode != opt.mode) continue;
        for (int app = 0; app < A_COUNT; app++) {
            if (opt.app >= 0 && app != opt.app) continue;
            for (int hook = H_WRITE; hook < H_COUNT; hook++) {
                if (opt.hook >= 0 && hook != opt.hook) continue;
                for (const int *kind = FH_HOOK_KINDS[hook]; *kind != K_NONE; kind++) {
                    if (opt.kind >= 0 && *kind != opt.kind) continue;
                    int last = refs[app][mode].calls[hook] + 1;
                    for (int k = 1; k <= last; k++) {
                        if (opt.k >= 0 && k != opt.k) continue;
                        run_combo(app, mode, hook, k, *kind);
                    }
                }
            }
        }
    }

    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    int fds_end = count_fds();
    printf("\ntest_faults: %ld combinations ran, %ld fired a fault, %ld failed; %d healthy reference runs, %ld "
           "failed (%.2f s)\n", ran, fired, failed_combos, A_COUNT * M_COUNT, failed_refs, secs);
    printf("  by hook (ran/fired):");
    for (int h = H_WRITE; h < H_COUNT; h++) printf(" %s %ld/%ld", FH_HOOK_NAMES[h], ran_by_hook[h], fired_by_hook[h]);
    printf("\n  runs of healthy-OK apps that ended non-OK with the complete healthy response on the wire (the\n"
           "  failure came after the last byte: a flush, the iterator's end, the file's EOF): %ld\n", late_complete);
    for (int i = 0; i < MAX_CHECKS && check_names[i] != NULL; i++)
        printf("  failures of check %-20s %ld\n", check_names[i], check_counts[i]);
    if (fds_end != fds_start) {
        printf("  descriptors open at the start %d, at the end %d\n", fds_start, fds_end);
        failed_combos++;
    }
    if (opt.sabotage != NULL) printf("  (sabotage '%s' was on)\n", opt.sabotage);
    return failed_combos == 0 && failed_refs == 0 ? 0 : 1;
}
