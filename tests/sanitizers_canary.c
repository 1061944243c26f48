/* Planted bugs for tests/sanitizers.sh: each mode commits one on purpose, so the script can
 * check that the sanitizer of the build really reports it (and, for the library's bugs, that
 * the report comes from the instrumented Rust code, not from an interceptor in the runtime).
 * Never part of a passing run: every mode is expected to end in a sanitizer report.
 *
 *   asan-rust  the library reads one byte past a C buffer: gw_environ_get is told the name is
 *              one byte longer than its allocation, and the library's name fingerprint reads
 *              the last byte directly (an instrumented load, no libc call to intercept).
 *   asan-leak  an environ that is never freed: LeakSanitizer must report the library's
 *              allocation.
 *   ubsan-c    a signed overflow in C.
 *   tsan-c     two C threads write one int without a lock.
 *   tsan-rust  two threads change one handler's setting at once (breaking the one thread at
 *              a time rule): the racing writes are inside the library. */
#define _POSIX_C_SOURCE 200809L

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"

static int asan_rust(void) {
    gw_environ *env = NULL;
    if (gw_environ_new(&env) != GW_STATUS_OK) return 1;
    char *name = malloc(16);
    if (name == NULL) return 1;
    memset(name, 'N', 16);
    const char *value = NULL;
    size_t len = 0;
    gw_status st = gw_environ_get(env, name, 17, &value, &len); /* one byte too many */
    printf("canary: gw_environ_get returned %d without a report\n", (int)st);
    free(name);
    gw_environ_free(env);
    return 0;
}

static int asan_leak(void) {
    gw_environ *env = NULL;
    if (gw_environ_new(&env) != GW_STATUS_OK) return 1;
    if (gw_environ_set(env, "LEAKED", 6, "yes", 3) != GW_STATUS_OK) return 1;
    env = NULL; /* dropped without gw_environ_free */
    return 0;
}

static int ubsan_c(int argc) {
    int big = INT_MAX - 1;
    big += argc + 1; /* argc >= 2 here: overflows */
    printf("canary: %d\n", big);
    return 0;
}

static int shared_int;

static void *canary_c_race(void *arg) {
    (void)arg;
    for (int i = 0; i < 1000; i++) shared_int++;
    return NULL;
}

static void *canary_rust_race(void *arg) {
    gw_handler *h = arg;
    for (int i = 0; i < 1000; i++) gw_handler_set_multithread(h, (i & 1) != 0);
    return NULL;
}

static int noop_write(void *userdata, const void *data, size_t len, size_t *out_written) {
    (void)userdata;
    (void)data;
    *out_written = len;
    return 0;
}

static int two_threads(void *(*body)(void *), void *arg) {
    pthread_t a, b;
    if (pthread_create(&a, NULL, body, arg) != 0 || pthread_create(&b, NULL, body, arg) != 0) return 1;
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "asan-rust") == 0) return asan_rust();
    if (strcmp(mode, "asan-leak") == 0) return asan_leak();
    if (strcmp(mode, "ubsan-c") == 0) return ubsan_c(argc);
    if (strcmp(mode, "tsan-c") == 0) return two_threads(canary_c_race, NULL);
    if (strcmp(mode, "tsan-rust") == 0) {
        gw_handler_hooks hooks = { .size = sizeof(gw_handler_hooks), .write = noop_write };
        gw_handler *h = NULL;
        if (gw_handler_new(&hooks, &h) != GW_STATUS_OK) return 1;
        int rc = two_threads(canary_rust_race, h);
        gw_handler_free(h);
        return rc;
    }
    fprintf(stderr, "usage: %s asan-rust|asan-leak|ubsan-c|tsan-c|tsan-rust\n", argv[0]);
    return 2;
}
