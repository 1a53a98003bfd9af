/* callhome: a minimal C SDK for the callhome licence protocol (docs/protocol.md).
 *
 * It verifies what the server says (Ed25519 signatures, the binding to the request,
 * the key list followed from a pinned root, the clock and freshness rules), checks in and
 * frees the seat over HTTPS with libcurl, and checks offline licence files with no
 * network. Dependencies: libsodium, libcurl, jansson.
 */
#ifndef CALLHOME_H
#define CALLHOME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CALLHOME_OK = 0,          /* trusted */
    CALLHOME_E_SIGNATURE,     /* unsigned, bad signature, a broken key list or root chain */
    CALLHOME_E_UNKNOWN_KEY,   /* signed by a key neither pinned nor listed (in force) */
    CALLHOME_E_MISMATCH,      /* answers another request or question */
    CALLHOME_E_MALFORMED,     /* not the documented JSON */
    CALLHOME_E_CLOCK_SKEW,    /* the machine's clock is more than a day off */
    CALLHOME_E_EXPIRED,       /* expires_at (or the lease) has passed */
    CALLHOME_E_ROLLBACK,      /* older than a document of its kind already trusted */
    CALLHOME_E_CLOCK_BEHIND,  /* the clock is behind the newest trusted time (set back) */
    CALLHOME_E_UNAVAILABLE,   /* network failure, 408, 429 or 5xx */
    CALLHOME_E_REJECTED,      /* another 4xx: the request is wrong */
    CALLHOME_E_ARGUMENT,      /* a bad argument or out of memory */
    CALLHOME_E_WRONG_MACHINE  /* an offline licence file issued to another machine */
} callhome_status;

/* The protocol's error code of a status ("signature", "expired", ...); "ok" for CALLHOME_OK. */
const char *callhome_error_code(callhome_status status);

typedef struct callhome_state callhome_state;

/* A new state: nothing trusted yet, no keys pinned. NULL when out of memory. */
callhome_state *callhome_state_new(void);
void callhome_state_free(callhome_state *state);

/* Pin a signing key or a root key (base64 of the 32 raw Ed25519 bytes). */
callhome_status callhome_pin_key(callhome_state *state, const char *public_key_b64);
callhome_status callhome_pin_root(callhome_state *state, const char *public_key_b64);

/* What the SDK keeps (docs/protocol.md section 7), to save and restore across restarts: the
 * newest issued_at trusted per kind ("verdict", "keys", "offline-licence:<product>", ...);
 * get answers CALLHOME_E_ARGUMENT for a kind never trusted. */
callhome_status callhome_set_trusted(callhome_state *state, const char *kind, int64_t issued_at);
callhome_status callhome_get_trusted(const callhome_state *state, const char *kind,
                                     int64_t *issued_at);

/* ... and the latest moment the clock has been seen at (0 for none): the server's time of
 * the last fresh answer (a check-in or a deactivation, which restarts it), then the clock
 * at each offline check of the kept verdict or of a licence file. Nothing is judged as of
 * an earlier time, and a clock more than 5 minutes behind it is CALLHOME_E_CLOCK_BEHIND.
 * Save it after every call that takes the state. */
callhome_status callhome_set_clock_reached(callhome_state *state, int64_t at);
int64_t callhome_clock_reached(const callhome_state *state);

/* Take in a GET /v1/keys body, verified from a pinned root, fresh by `now` (epoch seconds). */
callhome_status callhome_learn_keys(callhome_state *state, const char *body, size_t length,
                                    int64_t now);

typedef struct {
    char licence_status[32];
    int licensed;          /* status valid and seat granted */
    int64_t lease_expires; /* trust this verdict offline until then (epoch seconds) */
    int64_t server_time;
    void *document;        /* the answer (a jansson json_t *); freed by callhome_verdict_free */
} callhome_verdict;

void callhome_verdict_free(callhome_verdict *verdict);

/* Judge a check-in answer to `request` (the exact bytes sent), received at `now_local`. */
callhome_status callhome_judge_verdict(callhome_state *state, const char *request,
                                       size_t request_length, const char *signature_header,
                                       const char *body, size_t body_length, int64_t now_local,
                                       callhome_verdict *out);

/* The kept verdict while the server is down: verified again, judged by its lease as of
 * `now_local` (corrected by the skew), or of the latest moment seen when that is later, so
 * a lease seen lapsed stays lapsed. The clock seen is recorded (callhome_clock_reached). */
callhome_status callhome_offline_verdict(callhome_state *state, const char *request,
                                         size_t request_length, const char *signature_header,
                                         const char *body, size_t body_length,
                                         int64_t now_local, callhome_verdict *out);

typedef struct {
    char status[32];       /* "deactivated", "not_seated", "unknown" (newer servers may add more) */
    char this_machine[32]; /* the machine's short reference, "" when the answer names none */
    int seat_free;         /* deactivated or not_seated: drop the kept verdict, keep the record */
    int64_t issued_at;     /* the server's time when it answered */
    int64_t expires_at;
} callhome_deactivation;

/* Judge the answer to the deactivation `request` (the exact bytes sent), received at
 * `now_local`. Bound to the request by its nonce, it is judged by its own issued_at, as a
 * verdict by its server_time: only a clock more than a day off refuses it. */
callhome_status callhome_judge_deactivation(callhome_state *state, const char *request,
                                            size_t request_length, const char *signature_header,
                                            const char *body, size_t body_length,
                                            int64_t now_local, callhome_deactivation *out);

typedef struct {
    char licence_status[32]; /* as of now: "expired" past the licence's expiry */
    int licensed;            /* status valid and seat granted */
    int may_run;             /* licensed, or expired within the grace the file runs into */
    int64_t issued_at;
    int64_t expires_at;      /* the file's end */
    char this_machine[32];   /* the machine's short reference */
    void *document;          /* the signed document (a jansson json_t *); freed by
                              * callhome_offline_licence_free */
} callhome_offline_licence;

void callhome_offline_licence_free(callhome_offline_licence *licence);

/* Verify an offline licence file (machine.lic) on this machine, with no network: signed by
 * a trusted key, for `product`, bound to `computer_id`, within its time by `now_local`,
 * not older than a file of the product already accepted. An accepted file is recorded
 * under "offline-licence:<product>", and the clock seen as the clock reached, so a clock
 * set back later does not revive a file seen ended (docs/protocol.md section 13). */
callhome_status callhome_read_offline_licence(callhome_state *state, const char *file,
                                              size_t length, const char *product,
                                              const char *computer_id, int64_t now_local,
                                              callhome_offline_licence *out);

/* Judge a news answer of `kind` ("updates:<product>:<channel>", "feed:<name>") that must
 * echo the fields of `echo_json` (a JSON object). Its window goes to issued_at/expires_at. */
callhome_status callhome_judge_news(callhome_state *state, const char *kind,
                                    const char *echo_json, const char *signature_header,
                                    const char *body, size_t body_length, int64_t now_local,
                                    int64_t *issued_at, int64_t *expires_at);

typedef struct {
    int64_t from_version; /* -1 for the full set */
    int64_t to_version;
    const char *url;      /* valid while the verdict is */
    const char *sha256;
    int64_t size;
} callhome_step;

/* The ordered plan of a feed in a verdict: the chain of deltas, or the full set alone.
 * Returns the number of steps (at most `capacity` are written), or -1 for no such feed. */
long callhome_plan(const callhome_verdict *verdict, const char *feed, callhome_step *steps,
                   size_t capacity);

/* POST `request` to <base_url>/v1/ping and judge the answer (libcurl). */
callhome_status callhome_check_in(callhome_state *state, const char *base_url,
                                  const char *request, int64_t now_local,
                                  callhome_verdict *out);

/* POST the deactivation `request` to <base_url>/v1/machines/deactivate and judge the answer. */
callhome_status callhome_deactivate(callhome_state *state, const char *base_url,
                                    const char *request, int64_t now_local,
                                    callhome_deactivation *out);

/* Parse an RFC 3339 timestamp into epoch seconds; 0 on success. */
int callhome_parse_time(const char *text, int64_t *seconds);

#ifdef __cplusplus
}
#endif
#endif
