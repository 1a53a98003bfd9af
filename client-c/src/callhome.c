/* The callhome C SDK: verification per docs/protocol.md, and the check-in over libcurl. */
#define _GNU_SOURCE
#include "callhome.h"

#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_KEYS 16
#define MAX_KINDS 32
#define MAX_SKEW_S 86400
#define CLOCK_TOLERANCE_S 300
#define KEYID_HEX 16

typedef struct {
    char keyid[KEYID_HEX + 1];
    unsigned char public_key[crypto_sign_PUBLICKEYBYTES];
    char public_key_b64[64];
    int windowed; /* a listed key: trusted only within [not_before, not_after) */
    int64_t not_before;
    int64_t not_after; /* 0: open */
} trusted_key;

typedef struct {
    char kind[96];
    int64_t issued_at;
} trusted_kind;

struct callhome_state {
    trusted_key pinned[MAX_KEYS];
    size_t pinned_count;
    trusted_key roots[MAX_KEYS];
    size_t root_count;
    trusted_key listed[MAX_KEYS];
    size_t listed_count;
    int64_t key_list_version;
    trusted_kind newest[MAX_KINDS];
    size_t kind_count;
    int64_t skew_s;
    int64_t clock_reached; /* the latest moment the clock has been seen at; 0: none */
};

const char *callhome_error_code(callhome_status status) {
    static const char *codes[] = {"ok",           "signature",   "unknown-key", "mismatch",
                                  "malformed",    "clock-skew",  "expired",     "rollback",
                                  "clock-behind", "unavailable", "rejected",    "argument",
                                  "wrong-machine"};
    return status <= CALLHOME_E_WRONG_MACHINE ? codes[status] : "argument";
}

callhome_state *callhome_state_new(void) {
    if (sodium_init() < 0) return NULL;
    return calloc(1, sizeof(callhome_state));
}

void callhome_state_free(callhome_state *state) { free(state); }

static void key_id(const unsigned char *public_key, char *out) {
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, public_key, crypto_sign_PUBLICKEYBYTES);
    sodium_bin2hex(out, KEYID_HEX + 1, digest, KEYID_HEX / 2);
}

static int decode_b64(const char *text, unsigned char *out, size_t capacity, size_t *length) {
    return sodium_base642bin(out, capacity, text, strlen(text), " \t", length, NULL,
                             sodium_base64_VARIANT_ORIGINAL);
}

static callhome_status make_key(const char *b64, trusted_key *key) {
    size_t length = 0;
    memset(key, 0, sizeof(*key));
    if (strlen(b64) >= sizeof(key->public_key_b64)) return CALLHOME_E_MALFORMED;
    if (decode_b64(b64, key->public_key, sizeof(key->public_key), &length) != 0 ||
        length != crypto_sign_PUBLICKEYBYTES)
        return CALLHOME_E_MALFORMED;
    key_id(key->public_key, key->keyid);
    strcpy(key->public_key_b64, b64);
    return CALLHOME_OK;
}

callhome_status callhome_pin_key(callhome_state *state, const char *public_key_b64) {
    if (state->pinned_count == MAX_KEYS) return CALLHOME_E_ARGUMENT;
    if (make_key(public_key_b64, &state->pinned[state->pinned_count]) != CALLHOME_OK)
        return CALLHOME_E_ARGUMENT;
    state->pinned_count++;
    return CALLHOME_OK;
}

callhome_status callhome_pin_root(callhome_state *state, const char *public_key_b64) {
    if (state->root_count == MAX_KEYS) return CALLHOME_E_ARGUMENT;
    if (make_key(public_key_b64, &state->roots[state->root_count]) != CALLHOME_OK)
        return CALLHOME_E_ARGUMENT;
    state->root_count++;
    return CALLHOME_OK;
}

static int64_t *newest_slot(callhome_state *state, const char *kind, int create) {
    for (size_t i = 0; i < state->kind_count; i++)
        if (strcmp(state->newest[i].kind, kind) == 0) return &state->newest[i].issued_at;
    if (!create || state->kind_count == MAX_KINDS || strlen(kind) >= sizeof(state->newest[0].kind))
        return NULL;
    trusted_kind *entry = &state->newest[state->kind_count++];
    strcpy(entry->kind, kind);
    entry->issued_at = INT64_MIN;
    return &entry->issued_at;
}

callhome_status callhome_set_trusted(callhome_state *state, const char *kind, int64_t issued_at) {
    int64_t *slot = newest_slot(state, kind, 1);
    if (slot == NULL) return CALLHOME_E_ARGUMENT;
    *slot = issued_at;
    return CALLHOME_OK;
}

callhome_status callhome_get_trusted(const callhome_state *state, const char *kind,
                                     int64_t *issued_at) {
    for (size_t i = 0; i < state->kind_count; i++)
        if (strcmp(state->newest[i].kind, kind) == 0) {
            *issued_at = state->newest[i].issued_at;
            return CALLHOME_OK;
        }
    return CALLHOME_E_ARGUMENT;
}

callhome_status callhome_set_clock_reached(callhome_state *state, int64_t at) {
    state->clock_reached = at;
    return CALLHOME_OK;
}

int64_t callhome_clock_reached(const callhome_state *state) { return state->clock_reached; }

/* The newest trusted time (section 7): the latest issued_at of any kind, or the latest
 * moment the clock has been seen at; INT64_MIN when there is none. */
static int64_t newest_trusted_time(const callhome_state *state) {
    int64_t newest = state->clock_reached != 0 ? state->clock_reached : INT64_MIN;
    for (size_t i = 0; i < state->kind_count; i++)
        if (state->newest[i].issued_at > newest) newest = state->newest[i].issued_at;
    return newest;
}

static int clock_set_back(const callhome_state *state, int64_t now) {
    int64_t newest = newest_trusted_time(state);
    return newest != INT64_MIN && now < newest - CLOCK_TOLERANCE_S;
}

/* Note the clock seen at an offline check; returns the time to judge by: now, or the
 * latest moment seen when that is later, so a lease or file seen ended stays ended. */
static int64_t reach(callhome_state *state, int64_t now) {
    if (now > state->clock_reached) state->clock_reached = now;
    return state->clock_reached;
}

/* A fresh answer (bound to its request by its nonce) is the true time: its server time
 * restarts the moment seen, so one seen on a clock that ran ahead is disproved. */
static void observe_server_time(callhome_state *state, int64_t server_time, int64_t skew) {
    state->skew_s = skew;
    state->clock_reached = server_time;
}

/* Moves past `count` ASCII digits at *text, read into *value; 0 when all are there. */
static int read_digits(const char **text, int count, int *value) {
    *value = 0;
    for (int i = 0; i < count; i++, (*text)++) {
        if (!isdigit((unsigned char)**text)) return -1;
        *value = *value * 10 + (**text - '0');
    }
    return 0;
}

/* Moves past one of the characters `allowed` at *text; 0 when one is there. */
static int read_one_of(const char **text, const char *allowed) {
    if (**text == '\0' || strchr(allowed, **text) == NULL) return -1;
    (*text)++;
    return 0;
}

/* Moves past a YYYY-MM-DD day of the calendar, in years 1 to 9999 as the Python SDK's. */
static int read_date(const char **text, int *year, int *month, int *day) {
    static const int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (read_digits(text, 4, year) != 0 || read_one_of(text, "-") != 0 ||
        read_digits(text, 2, month) != 0 || read_one_of(text, "-") != 0 ||
        read_digits(text, 2, day) != 0 || *year < 1 || *month < 1 || *month > 12 || *day < 1)
        return -1;
    int leap = *year % 4 == 0 && (*year % 100 != 0 || *year % 400 == 0);
    return *day <= month_days[*month - 1] + (*month == 2 && leap) ? 0 : -1;
}

/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, in seconds since the epoch. */
#define FIRST_MOMENT_S INT64_C(-62135596800)
#define LAST_MOMENT_S INT64_C(253402300799)

/* Read as the Python SDK reads it: exact digits, a real day and time of day, any fraction
 * of a second, then Z or an offset +hh:mm. */
int callhome_parse_time(const char *text, int64_t *seconds) {
    struct tm moment;
    int year, month, day, hour, minute, second, offset_hours = 0, offset_minutes = 0;
    char sign = '+';
    memset(&moment, 0, sizeof(moment));
    if (text == NULL || read_date(&text, &year, &month, &day) != 0 ||
        read_one_of(&text, "Tt ") != 0 || read_digits(&text, 2, &hour) != 0 ||
        read_one_of(&text, ":") != 0 || read_digits(&text, 2, &minute) != 0 ||
        read_one_of(&text, ":") != 0 || read_digits(&text, 2, &second) != 0 || hour > 23 ||
        minute > 59 || second > 59)
        return -1;
    if (*text == '.') {
        text++;
        if (!isdigit((unsigned char)*text)) return -1;
        while (isdigit((unsigned char)*text)) text++;
    }
    if (*text == '+' || *text == '-') {
        sign = *text++;
        if (read_digits(&text, 2, &offset_hours) != 0 || read_one_of(&text, ":") != 0 ||
            read_digits(&text, 2, &offset_minutes) != 0)
            return -1;
    } else if (read_one_of(&text, "Zz") != 0) {
        return -1;
    }
    if (*text != '\0') return -1;
    moment.tm_year = year - 1900;
    moment.tm_mon = month - 1;
    moment.tm_mday = day;
    moment.tm_hour = hour;
    moment.tm_min = minute;
    moment.tm_sec = second;
    int64_t offset = (offset_hours * 3600 + offset_minutes * 60) * (sign == '+' ? 1 : -1);
    int64_t utc = (int64_t)timegm(&moment) - offset;
    /* A moment in UTC outside the years 1 to 9999, as the Python SDK's datetime holds. */
    if (utc < FIRST_MOMENT_S || utc > LAST_MOMENT_S) return -1;
    *seconds = utc;
    return 0;
}

/* -- signatures -------------------------------------------------------------------- */

static int parse_signature_header(const char *header, char *keyid, size_t keyid_capacity,
                                  unsigned char *signature) {
    char buffer[512];
    int have_keyid = 0, have_signature = 0;
    if (header == NULL || strlen(header) >= sizeof(buffer)) return -1;
    strcpy(buffer, header);
    for (char *part = strtok(buffer, ","); part != NULL; part = strtok(NULL, ",")) {
        while (isspace((unsigned char)*part)) part++;
        char *equals = strchr(part, '=');
        if (equals == NULL) continue;
        *equals = '\0';
        char *value = equals + 1, *end = equals;
        while (end > part && isspace((unsigned char)end[-1])) *--end = '\0';
        while (isspace((unsigned char)*value)) value++;
        for (end = value + strlen(value); end > value && isspace((unsigned char)end[-1]);) *--end = '\0';
        if (strcasecmp(part, "keyid") == 0 && strlen(value) < keyid_capacity) {
            strcpy(keyid, value);
            have_keyid = 1;
        } else if (strcasecmp(part, "ed25519") == 0) {
            size_t length = 0;
            if (decode_b64(value, signature, crypto_sign_BYTES, &length) != 0 ||
                length != crypto_sign_BYTES)
                return -1;
            have_signature = 1;
        }
    }
    return have_keyid && have_signature ? 0 : -1;
}

/* Verify the header's signature over body; the key that made it goes to *signer. */
static callhome_status verify_signature(const callhome_state *state, const char *header,
                                        const char *body, size_t length,
                                        const trusted_key **signer) {
    char keyid[64];
    unsigned char signature[crypto_sign_BYTES];
    if (parse_signature_header(header, keyid, sizeof(keyid), signature) != 0)
        return CALLHOME_E_SIGNATURE;
    const trusted_key *key = NULL;
    for (size_t i = 0; i < state->pinned_count && key == NULL; i++)
        if (strcmp(state->pinned[i].keyid, keyid) == 0) key = &state->pinned[i];
    for (size_t i = 0; i < state->listed_count && key == NULL; i++)
        if (strcmp(state->listed[i].keyid, keyid) == 0) key = &state->listed[i];
    if (key == NULL) return CALLHOME_E_UNKNOWN_KEY;
    if (crypto_sign_verify_detached(signature, (const unsigned char *)body, length,
                                    key->public_key) != 0)
        return CALLHOME_E_SIGNATURE;
    *signer = key;
    return CALLHOME_OK;
}

static int time_field(json_t *object, const char *name, int64_t *seconds) {
    return callhome_parse_time(json_string_value(json_object_get(object, name)), seconds);
}

/* A signed document: verified, decoded, dated, signed within its key's window. */
static callhome_status verify_document(const callhome_state *state, const char *header,
                                       const char *body, size_t length, json_t **document,
                                       int64_t *issued_at, int64_t *expires_at) {
    const trusted_key *signer = NULL;
    callhome_status status = verify_signature(state, header, body, length, &signer);
    if (status != CALLHOME_OK) return status;
    *document = json_loadb(body, length, 0, NULL);
    if (*document == NULL || !json_is_object(*document) ||
        time_field(*document, "issued_at", issued_at) != 0 ||
        time_field(*document, "expires_at", expires_at) != 0 || *expires_at <= *issued_at) {
        json_decref(*document);
        *document = NULL;
        return CALLHOME_E_MALFORMED;
    }
    if (signer->windowed && (*issued_at < signer->not_before ||
                             (signer->not_after != 0 && *issued_at >= signer->not_after))) {
        json_decref(*document);
        *document = NULL;
        return CALLHOME_E_UNKNOWN_KEY;
    }
    return CALLHOME_OK;
}

static callhome_status check_fresh(callhome_state *state, const char *kind, int64_t issued_at,
                                   int64_t expires_at, int64_t now) {
    if (now >= expires_at) return CALLHOME_E_EXPIRED;
    int64_t *newest = newest_slot(state, kind, 0);
    if (newest != NULL && issued_at < *newest) return CALLHOME_E_ROLLBACK;
    return CALLHOME_OK;
}

static void remember(callhome_state *state, const char *kind, int64_t issued_at) {
    int64_t *slot = newest_slot(state, kind, 1);
    if (slot != NULL && issued_at > *slot) *slot = issued_at;
}

/* -- the key list ---------------------------------------------------------------- */

/* The payload of an envelope that each of `signers` signed; NULL (status set) otherwise. */
static json_t *open_envelope(json_t *envelope, const trusted_key *const *signers, size_t count,
                             callhome_status *status) {
    const char *payload = json_string_value(json_object_get(envelope, "payload"));
    json_t *signatures = json_object_get(envelope, "signatures");
    if (payload == NULL || !json_is_array(signatures)) {
        *status = CALLHOME_E_MALFORMED;
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        int verified = 0;
        size_t index;
        json_t *entry;
        json_array_foreach(signatures, index, entry) {
            const char *keyid = json_string_value(json_object_get(entry, "keyid"));
            const char *signature_b64 = json_string_value(json_object_get(entry, "ed25519"));
            unsigned char signature[crypto_sign_BYTES];
            size_t length = 0;
            if (keyid == NULL || signature_b64 == NULL || strcmp(keyid, signers[i]->keyid) != 0)
                continue;
            if (decode_b64(signature_b64, signature, sizeof(signature), &length) == 0 &&
                length == crypto_sign_BYTES &&
                crypto_sign_verify_detached(signature, (const unsigned char *)payload,
                                            strlen(payload), signers[i]->public_key) == 0)
                verified = 1;
        }
        if (!verified) {
            *status = CALLHOME_E_SIGNATURE;
            return NULL;
        }
    }
    json_t *document = json_loads(payload, 0, NULL);
    if (document == NULL || !json_is_object(document)) {
        json_decref(document);
        *status = CALLHOME_E_MALFORMED;
        return NULL;
    }
    return document;
}

static callhome_status newest_root(const callhome_state *state, json_t *chain, trusted_key *root) {
    int found = 0;
    int64_t version = 0;
    size_t index;
    json_t *envelope;
    if (!json_is_array(chain)) return CALLHOME_E_MALFORMED;
    json_array_foreach(chain, index, envelope) {
        callhome_status status = CALLHOME_OK;
        json_t *claimed = json_loads(json_string_value(json_object_get(envelope, "payload")), 0, NULL);
        const char *type = json_string_value(json_object_get(claimed, "type"));
        const char *public_key = json_string_value(json_object_get(claimed, "public_key"));
        json_t *claimed_version = json_object_get(claimed, "version");
        trusted_key entry;
        if (type == NULL || strcmp(type, "callhome-root") != 0 || public_key == NULL ||
            !json_is_integer(claimed_version) || make_key(public_key, &entry) != CALLHOME_OK) {
            json_decref(claimed);
            return CALLHOME_E_MALFORMED;
        }
        int64_t entry_version = json_integer_value(claimed_version);
        json_decref(claimed);
        if (!found) {
            int pinned = 0;
            for (size_t i = 0; i < state->root_count; i++)
                if (strcmp(state->roots[i].public_key_b64, entry.public_key_b64) == 0) pinned = 1;
            if (!pinned) continue; /* a root older than the one pinned */
            const trusted_key *signers[] = {&entry};
            json_t *opened = open_envelope(envelope, signers, 1, &status);
            if (opened == NULL) return status;
            json_decref(opened);
        } else {
            if (entry_version != version + 1) return CALLHOME_E_SIGNATURE;
            const trusted_key *signers[] = {root, &entry};
            json_t *opened = open_envelope(envelope, signers, 2, &status);
            if (opened == NULL) return status;
            json_decref(opened);
        }
        *root = entry;
        version = entry_version;
        found = 1;
    }
    return found ? CALLHOME_OK : CALLHOME_E_UNKNOWN_KEY;
}

callhome_status callhome_learn_keys(callhome_state *state, const char *body, size_t length,
                                    int64_t now) {
    callhome_status status = CALLHOME_OK;
    trusted_key root;
    json_t *document = json_loadb(body, length, 0, NULL);
    json_t *key_list = NULL;
    if (document == NULL || json_is_null(json_object_get(document, "key_list"))) {
        status = document == NULL ? CALLHOME_E_MALFORMED : CALLHOME_E_UNKNOWN_KEY;
        goto done;
    }
    status = newest_root(state, json_object_get(document, "root_chain"), &root);
    if (status != CALLHOME_OK) goto done;
    const trusted_key *signers[] = {&root};
    key_list = open_envelope(json_object_get(document, "key_list"), signers, 1, &status);
    if (key_list == NULL) goto done;
    const char *type = json_string_value(json_object_get(key_list, "type"));
    const char *root_keyid = json_string_value(json_object_get(key_list, "root_keyid"));
    json_t *version = json_object_get(key_list, "version");
    json_t *keys = json_object_get(key_list, "keys");
    int64_t issued_at, expires_at;
    if (type == NULL || strcmp(type, "callhome-key-list") != 0 || root_keyid == NULL ||
        strcmp(root_keyid, root.keyid) != 0) {
        status = CALLHOME_E_SIGNATURE;
        goto done;
    }
    if (!json_is_integer(version) || !json_is_array(keys) ||
        time_field(key_list, "issued_at", &issued_at) != 0 ||
        time_field(key_list, "expires_at", &expires_at) != 0) {
        status = CALLHOME_E_MALFORMED;
        goto done;
    }
    status = check_fresh(state, "keys", issued_at, expires_at, now + state->skew_s);
    if (status == CALLHOME_OK && json_integer_value(version) < state->key_list_version)
        status = CALLHOME_E_ROLLBACK;
    if (status != CALLHOME_OK) goto done;
    trusted_key listed[MAX_KEYS];
    size_t count = 0, index;
    json_t *entry;
    json_array_foreach(keys, index, entry) {
        const char *public_key = json_string_value(json_object_get(entry, "public_key"));
        json_t *not_after = json_object_get(entry, "not_after");
        if (count == MAX_KEYS || public_key == NULL || make_key(public_key, &listed[count]) != 0 ||
            time_field(entry, "not_before", &listed[count].not_before) != 0 ||
            (!json_is_null(not_after) && time_field(entry, "not_after", &listed[count].not_after) != 0)) {
            status = CALLHOME_E_MALFORMED;
            goto done;
        }
        listed[count++].windowed = 1;
    }
    memcpy(state->listed, listed, count * sizeof(trusted_key));
    state->listed_count = count;
    state->key_list_version = json_integer_value(version);
    remember(state, "keys", issued_at);
done:
    json_decref(key_list);
    json_decref(document);
    return status;
}

/* -- the answer's shape ------------------------------------------------------------ */

/* The types of the fields a product reads (docs/protocol.md section 2), each read as the
 * Python SDK reads it, so that both refuse the same answers: a count is a JSON integer
 * (true is none), a flag true or false. */
typedef int (*shape)(json_t *value);

static int is_text(json_t *value) { return json_is_string(value); }

static int is_count(json_t *value) { return json_is_integer(value); }

static int is_flag(json_t *value) { return json_is_boolean(value); }

static int is_timestamp(json_t *value) {
    int64_t seconds;
    return callhome_parse_time(json_string_value(value), &seconds) == 0;
}

static int is_date(json_t *value) {
    const char *text = json_string_value(value);
    int year, month, day;
    return text != NULL && read_date(&text, &year, &month, &day) == 0 && *text == '\0';
}

static int all_are(json_t *list, shape is) {
    size_t index;
    json_t *item;
    if (!json_is_array(list)) return 0;
    json_array_foreach(list, index, item) {
        if (!is(item)) return 0;
    }
    return 1;
}

static int is_names(json_t *value) { return all_are(value, is_text); }

#define NULLABLE 1  /* null says none */
#define OMISSIBLE 2 /* may be left out, as older servers do */

typedef struct {
    const char *name;
    shape is;
    int may; /* NULLABLE, OMISSIBLE, both, or 0: there, of its shape */
} field;

static int has_fields(json_t *object, const field *fields, size_t count) {
    if (!json_is_object(object)) return 0;
    for (size_t i = 0; i < count; i++) {
        json_t *value = json_object_get(object, fields[i].name);
        if (value == NULL) {
            if (!(fields[i].may & OMISSIBLE)) return 0;
        } else if (!(json_is_null(value) && (fields[i].may & NULLABLE)) && !fields[i].is(value)) {
            return 0;
        }
    }
    return 1;
}

#define HAS_FIELDS(object, fields) has_fields(object, fields, sizeof(fields) / sizeof(fields[0]))

/* A file to fetch: an update, a delta, a chain step, a full signature set. */
static int is_download(json_t *value) {
    static const field fields[] = {{"url", is_text, 0}, {"sha256", is_text, 0},
                                   {"size", is_count, 0}};
    return HAS_FIELDS(value, fields);
}

static int is_delta(json_t *value) {
    return is_download(value) && is_count(json_object_get(value, "from"));
}

static int is_step(json_t *value) {
    return is_delta(value) && is_count(json_object_get(value, "to"));
}

static int is_steps(json_t *value) { return all_are(value, is_step); }

static int is_offer(json_t *value) {
    static const field fields[] = {{"version", is_count, 0}, {"delta", is_delta, NULLABLE},
                                   {"chain", is_steps, NULLABLE | OMISSIBLE}};
    return is_download(value) && HAS_FIELDS(value, fields);
}

static int is_offers(json_t *value) {
    const char *feed;
    json_t *offer;
    if (!json_is_object(value)) return 0;
    json_object_foreach(value, feed, offer) {
        if (!is_offer(offer)) return 0;
    }
    return 1;
}

static int is_update(json_t *value) {
    static const field fields[] = {{"version", is_text, 0}, {"notes_url", is_text, NULLABLE},
                                   {"critical", is_flag, 0}};
    return is_download(value) && HAS_FIELDS(value, fields);
}

static int is_machines(json_t *value) {
    static const field fields[] = {
        {"allowed", is_count, 0}, {"active", is_count, 0}, {"over_limit", is_flag, 0},
        {"seat", is_text, 0}, {"this_machine", is_text, NULLABLE | OMISSIBLE},
        {"floating", is_flag, OMISSIBLE}};
    return HAS_FIELDS(value, fields);
}

/* A verdict's `licence`, in a check-in answer or a licence file. */
static int is_licence(json_t *value) {
    static const field fields[] = {
        {"status", is_text, 0}, {"expires_at", is_timestamp, NULLABLE},
        {"max_users", is_count, NULLABLE}, {"users_over_limit", is_flag, 0},
        {"machines", is_machines, 0}, {"entitlements", is_names, OMISSIBLE},
        {"updates_until", is_date, NULLABLE | OMISSIBLE},
        {"grace_until", is_timestamp, NULLABLE | OMISSIBLE}};
    return HAS_FIELDS(value, fields);
}

static int is_answer(json_t *value) {
    static const field fields[] = {
        {"licence", is_licence, 0}, {"update", is_update, NULLABLE},
        {"signatures", is_offers, 0}, {"next_check_in", is_count, 0},
        {"lease_expires", is_timestamp, 0}, {"server_time", is_timestamp, 0}};
    return HAS_FIELDS(value, fields);
}

/* -- verdicts ---------------------------------------------------------------------- */

void callhome_verdict_free(callhome_verdict *verdict) {
    if (verdict->document != NULL) json_decref((json_t *)verdict->document);
    verdict->document = NULL;
}

/* A signed document that answers `request`: its request_sha256 and nonce name it. */
static callhome_status verified_reply(const callhome_state *state, const char *request,
                                      size_t request_length, const char *header,
                                      const char *body, size_t body_length, json_t **document,
                                      int64_t *issued_at, int64_t *expires_at) {
    callhome_status status =
        verify_document(state, header, body, body_length, document, issued_at, expires_at);
    if (status != CALLHOME_OK) return status;
    unsigned char digest[crypto_hash_sha256_BYTES];
    char digest_hex[crypto_hash_sha256_BYTES * 2 + 1];
    crypto_hash_sha256(digest, (const unsigned char *)request, request_length);
    sodium_bin2hex(digest_hex, sizeof(digest_hex), digest, sizeof(digest));
    json_t *asked = json_loadb(request, request_length, 0, NULL);
    const char *answered_digest = json_string_value(json_object_get(*document, "request_sha256"));
    json_t *asked_nonce = json_object_get(asked, "nonce");
    json_t *answered_nonce = json_object_get(*document, "nonce");
    int bound = answered_digest != NULL && strcmp(answered_digest, digest_hex) == 0 &&
                asked_nonce != NULL && answered_nonce != NULL &&
                json_equal(asked_nonce, answered_nonce);
    json_decref(asked);
    if (!bound) {
        json_decref(*document);
        *document = NULL;
        return CALLHOME_E_MISMATCH;
    }
    return CALLHOME_OK;
}

/* The skew a reply bound to its request measures: its nonce proves it fresh, so its
 * server time is the reference clock, unless it lies further off than a working clock. */
static callhome_status fresh_skew(int64_t server_time, int64_t now_local, int64_t *skew) {
    *skew = server_time - now_local;
    return *skew > MAX_SKEW_S || *skew < -MAX_SKEW_S ? CALLHOME_E_CLOCK_SKEW : CALLHOME_OK;
}

/* The answer, once signed, bound to `request`, and of the documented shape. */
static callhome_status verified_answer(callhome_state *state, const char *request,
                                       size_t request_length, const char *header,
                                       const char *body, size_t body_length,
                                       callhome_verdict *out, int64_t *issued_at,
                                       int64_t *expires_at) {
    json_t *document = NULL;
    memset(out, 0, sizeof(*out));
    callhome_status status = verified_reply(state, request, request_length, header, body,
                                            body_length, &document, issued_at, expires_at);
    if (status != CALLHOME_OK) return status;
    json_t *licence = json_object_get(document, "licence");
    json_t *machines = json_object_get(licence, "machines");
    const char *licence_status = json_string_value(json_object_get(licence, "status"));
    const char *seat = json_string_value(json_object_get(machines, "seat"));
    if (!is_answer(document) || strlen(licence_status) >= sizeof(out->licence_status) ||
        time_field(document, "lease_expires", &out->lease_expires) != 0 ||
        time_field(document, "server_time", &out->server_time) != 0) {
        json_decref(document);
        return CALLHOME_E_MALFORMED;
    }
    strcpy(out->licence_status, licence_status);
    out->licensed = strcmp(licence_status, "valid") == 0 && strcmp(seat, "granted") == 0;
    out->document = document;
    return CALLHOME_OK;
}

callhome_status callhome_judge_verdict(callhome_state *state, const char *request,
                                       size_t request_length, const char *signature_header,
                                       const char *body, size_t body_length, int64_t now_local,
                                       callhome_verdict *out) {
    int64_t issued_at, expires_at;
    callhome_status status = verified_answer(state, request, request_length, signature_header,
                                             body, body_length, out, &issued_at, &expires_at);
    if (status != CALLHOME_OK) return status;
    int64_t skew;
    status = fresh_skew(out->server_time, now_local, &skew);
    if (status == CALLHOME_OK)
        status = check_fresh(state, "verdict", issued_at, expires_at, out->server_time);
    if (status != CALLHOME_OK) {
        callhome_verdict_free(out);
        return status;
    }
    observe_server_time(state, out->server_time, skew);
    remember(state, "verdict", issued_at);
    return CALLHOME_OK;
}

callhome_status callhome_offline_verdict(callhome_state *state, const char *request,
                                         size_t request_length, const char *signature_header,
                                         const char *body, size_t body_length,
                                         int64_t now_local, callhome_verdict *out) {
    int64_t issued_at, expires_at;
    callhome_status status = verified_answer(state, request, request_length, signature_header,
                                             body, body_length, out, &issued_at, &expires_at);
    if (status != CALLHOME_OK) return status;
    int64_t now = now_local + state->skew_s;
    int64_t *newest = newest_slot(state, "verdict", 0);
    if (newest != NULL && issued_at < *newest)
        status = CALLHOME_E_ROLLBACK;
    else if (clock_set_back(state, now))
        status = CALLHOME_E_CLOCK_BEHIND;
    else if (reach(state, now) >= out->lease_expires)
        status = CALLHOME_E_EXPIRED;
    if (status != CALLHOME_OK) callhome_verdict_free(out);
    return status;
}

callhome_status callhome_judge_deactivation(callhome_state *state, const char *request,
                                            size_t request_length, const char *signature_header,
                                            const char *body, size_t body_length,
                                            int64_t now_local, callhome_deactivation *out) {
    json_t *document = NULL;
    int64_t skew;
    memset(out, 0, sizeof(*out));
    callhome_status status =
        verified_reply(state, request, request_length, signature_header, body, body_length,
                       &document, &out->issued_at, &out->expires_at);
    if (status != CALLHOME_OK) return status;
    const char *answered = json_string_value(json_object_get(document, "status"));
    json_t *this_machine = json_object_get(document, "this_machine");
    if (answered == NULL || strlen(answered) >= sizeof(out->status) ||
        !(json_is_null(this_machine) ||
          (json_is_string(this_machine) &&
           strlen(json_string_value(this_machine)) < sizeof(out->this_machine)))) {
        status = CALLHOME_E_MALFORMED;
    } else {
        strcpy(out->status, answered);
        if (json_is_string(this_machine))
            strcpy(out->this_machine, json_string_value(this_machine));
        out->seat_free =
            strcmp(answered, "deactivated") == 0 || strcmp(answered, "not_seated") == 0;
        /* Judged by its own issued_at, as a verdict by its server_time: by this machine's
         * clock, a few minutes fast, the fresh answer would read as expired. */
        status = fresh_skew(out->issued_at, now_local, &skew);
        if (status == CALLHOME_OK) observe_server_time(state, out->issued_at, skew);
    }
    json_decref(document);
    return status;
}

/* -- offline licence files ------------------------------------------------------------ */

#define LICENCE_FILE_FORMAT "callhome-offline-licence/1"
#define MAX_LICENCE_FILE_BYTES 16384

void callhome_offline_licence_free(callhome_offline_licence *licence) {
    if (licence->document != NULL) json_decref((json_t *)licence->document);
    licence->document = NULL;
}

/* The signed document of a licence file, once a trusted key signed it; NULL (status set)
 * otherwise. */
static json_t *licence_document(const callhome_state *state, const char *file, size_t length,
                                callhome_status *status) {
    json_t *outer = json_loadb(file, length, 0, NULL);
    const char *encoded = json_string_value(json_object_get(outer, "document"));
    unsigned char *document = NULL;
    size_t document_length = 0;
    json_t *opened = NULL;
    *status = CALLHOME_E_MALFORMED;
    if (encoded == NULL || length > MAX_LICENCE_FILE_BYTES) goto done;
    document = malloc(strlen(encoded) + 1);
    if (document == NULL || decode_b64(encoded, document, strlen(encoded), &document_length) != 0)
        goto done;
    /* A file with no signature is refused as unsigned, as an answer with no header is. */
    const trusted_key *signer = NULL;
    *status = verify_signature(state, json_string_value(json_object_get(outer, "signature")),
                               (const char *)document, document_length, &signer);
    if (*status != CALLHOME_OK) goto done;
    opened = json_loadb((const char *)document, document_length, 0, NULL);
    if (!json_is_object(opened)) {
        json_decref(opened);
        opened = NULL;
        *status = CALLHOME_E_MALFORMED;
    }
done:
    free(document);
    json_decref(outer);
    return opened;
}

/* Whether SHA-256 of the salt + computer ID is the file's binding: 1 or 0; -1 when the
 * binding is incomplete. */
static int bound_to_machine(json_t *machine, const char *computer_id) {
    const char *salt_b64 = json_string_value(json_object_get(machine, "binding_salt"));
    const char *expected = json_string_value(json_object_get(machine, "binding_sha256"));
    unsigned char salt[64], digest[crypto_hash_sha256_BYTES];
    char digest_hex[crypto_hash_sha256_BYTES * 2 + 1];
    size_t salt_length = 0;
    crypto_hash_sha256_state hashing;
    if (salt_b64 == NULL || expected == NULL || strlen(expected) != sizeof(digest_hex) - 1 ||
        decode_b64(salt_b64, salt, sizeof(salt), &salt_length) != 0)
        return -1;
    crypto_hash_sha256_init(&hashing);
    crypto_hash_sha256_update(&hashing, salt, salt_length);
    crypto_hash_sha256_update(&hashing, (const unsigned char *)computer_id, strlen(computer_id));
    crypto_hash_sha256_final(&hashing, digest);
    sodium_bin2hex(digest_hex, sizeof(digest_hex), digest, sizeof(digest));
    return sodium_memcmp(digest_hex, expected, sizeof(digest_hex) - 1) == 0;
}

/* The file's licence as of `judged_at`: past the licence's expiry it is expired, and in
 * the grace the file runs into (the server ends the file with the grace). */
static callhome_status licence_terms(json_t *licence, int64_t judged_at,
                                     callhome_offline_licence *out) {
    const char *status = json_string_value(json_object_get(licence, "status"));
    json_t *machines = json_object_get(licence, "machines");
    const char *seat = json_string_value(json_object_get(machines, "seat"));
    json_t *expires = json_object_get(licence, "expires_at");
    json_t *grace = json_object_get(licence, "grace_until");
    int ends = expires != NULL && !json_is_null(expires);
    int graced = grace != NULL && !json_is_null(grace);
    int64_t licence_expires = 0, grace_until = 0;
    if (!is_licence(licence) || strlen(status) >= sizeof(out->licence_status) ||
        (ends && time_field(licence, "expires_at", &licence_expires) != 0) ||
        (graced && time_field(licence, "grace_until", &grace_until) != 0))
        return CALLHOME_E_MALFORMED;
    int seated = strcmp(seat, "granted") == 0;
    int in_grace = strcmp(status, "expired") == 0 && graced && seated;
    if (strcmp(status, "valid") == 0 && ends && judged_at >= licence_expires) {
        status = "expired";
        in_grace = seated;
    }
    strcpy(out->licence_status, status);
    out->licensed = strcmp(status, "valid") == 0 && seated;
    out->may_run = out->licensed || in_grace;
    return CALLHOME_OK;
}

callhome_status callhome_read_offline_licence(callhome_state *state, const char *file,
                                              size_t length, const char *product,
                                              const char *computer_id, int64_t now_local,
                                              callhome_offline_licence *out) {
    callhome_status status;
    char kind[96];
    memset(out, 0, sizeof(*out));
    if (snprintf(kind, sizeof(kind), "offline-licence:%s", product) >= (int)sizeof(kind))
        return CALLHOME_E_ARGUMENT;
    json_t *document = licence_document(state, file, length, &status);
    if (document == NULL) return status;
    const char *format = json_string_value(json_object_get(document, "format"));
    const char *named = json_string_value(json_object_get(document, "product"));
    json_t *machine = json_object_get(document, "machine");
    const char *this_machine = json_string_value(json_object_get(machine, "this_machine"));
    int bound = json_is_object(machine) ? bound_to_machine(machine, computer_id) : -1;
    if (format == NULL || strcmp(format, LICENCE_FILE_FORMAT) != 0)
        status = CALLHOME_E_MALFORMED;
    else if (named == NULL || strcmp(named, product) != 0)
        status = CALLHOME_E_MISMATCH;
    else if (bound < 0)
        status = CALLHOME_E_MALFORMED;
    else if (!bound)
        status = CALLHOME_E_WRONG_MACHINE;
    else if (time_field(document, "issued_at", &out->issued_at) != 0 ||
             time_field(document, "expires_at", &out->expires_at) != 0 ||
             out->expires_at <= out->issued_at ||
             (this_machine != NULL && strlen(this_machine) >= sizeof(out->this_machine)))
        status = CALLHOME_E_MALFORMED;
    if (status != CALLHOME_OK) {
        json_decref(document);
        return status;
    }
    int64_t now = now_local + state->skew_s;
    /* Never judged as of a time before the latest moment the clock has been seen at. */
    int64_t judged_at = now > state->clock_reached ? now : state->clock_reached;
    status = licence_terms(json_object_get(document, "licence"), judged_at, out);
    int issued_after_now = out->issued_at - now > CLOCK_TOLERANCE_S;
    if (status == CALLHOME_OK && (issued_after_now || clock_set_back(state, now)))
        status = CALLHOME_E_CLOCK_BEHIND;
    /* Seen ended, it stays ended: a clock set back later cannot bring it back. */
    if (status == CALLHOME_OK)
        status = check_fresh(state, kind, out->issued_at, out->expires_at, reach(state, now));
    if (status != CALLHOME_OK) {
        json_decref(document);
        return status;
    }
    remember(state, kind, out->issued_at);
    if (this_machine != NULL) strcpy(out->this_machine, this_machine);
    out->document = document;
    return CALLHOME_OK;
}

callhome_status callhome_judge_news(callhome_state *state, const char *kind,
                                    const char *echo_json, const char *signature_header,
                                    const char *body, size_t body_length, int64_t now_local,
                                    int64_t *issued_at, int64_t *expires_at) {
    json_t *document = NULL;
    callhome_status status = verify_document(state, signature_header, body, body_length,
                                             &document, issued_at, expires_at);
    if (status != CALLHOME_OK) return status;
    json_t *echo = json_loads(echo_json, 0, NULL);
    const char *name;
    json_t *expected;
    if (!json_is_object(echo)) status = CALLHOME_E_ARGUMENT;
    json_object_foreach(echo, name, expected) {
        json_t *answered = json_object_get(document, name);
        if (answered == NULL || !json_equal(answered, expected)) status = CALLHOME_E_MISMATCH;
    }
    json_decref(echo);
    json_decref(document);
    if (status == CALLHOME_OK)
        status = check_fresh(state, kind, *issued_at, *expires_at, now_local + state->skew_s);
    if (status == CALLHOME_OK) remember(state, kind, *issued_at);
    return status;
}

long callhome_plan(const callhome_verdict *verdict, const char *feed, callhome_step *steps,
                   size_t capacity) {
    json_t *offer = json_object_get(json_object_get((json_t *)verdict->document, "signatures"), feed);
    if (!json_is_object(offer)) return -1;
    json_t *chain = json_object_get(offer, "chain");
    if (!json_is_array(chain) || json_array_size(chain) == 0) {
        if (capacity > 0) {
            steps[0].from_version = -1;
            steps[0].to_version = json_integer_value(json_object_get(offer, "version"));
            steps[0].url = json_string_value(json_object_get(offer, "url"));
            steps[0].sha256 = json_string_value(json_object_get(offer, "sha256"));
            steps[0].size = json_integer_value(json_object_get(offer, "size"));
        }
        return 1;
    }
    size_t index;
    json_t *step;
    json_array_foreach(chain, index, step) {
        if (index >= capacity) break;
        steps[index].from_version = json_integer_value(json_object_get(step, "from"));
        steps[index].to_version = json_integer_value(json_object_get(step, "to"));
        steps[index].url = json_string_value(json_object_get(step, "url"));
        steps[index].sha256 = json_string_value(json_object_get(step, "sha256"));
        steps[index].size = json_integer_value(json_object_get(step, "size"));
    }
    return (long)json_array_size(chain);
}

/* -- the check-in over libcurl ------------------------------------------------------ */

#define MAX_ANSWER_BYTES (256 * 1024)

typedef struct {
    char *data;
    size_t length;
    char signature[512];
} received;

static size_t take_body(char *chunk, size_t size, size_t count, void *context) {
    received *answer = context;
    size_t length = size * count;
    if (answer->length + length > MAX_ANSWER_BYTES) return 0;
    char *grown = realloc(answer->data, answer->length + length + 1);
    if (grown == NULL) return 0;
    memcpy(grown + answer->length, chunk, length);
    answer->data = grown;
    answer->length += length;
    answer->data[answer->length] = '\0';
    return length;
}

static size_t take_header(char *line, size_t size, size_t count, void *context) {
    received *answer = context;
    size_t length = size * count;
    static const char name[] = "callhome-signature:";
    if (length > sizeof(name) && strncasecmp(line, name, sizeof(name) - 1) == 0) {
        size_t start = sizeof(name) - 1, end = length;
        while (start < end && isspace((unsigned char)line[start])) start++;
        while (end > start && isspace((unsigned char)line[end - 1])) end--;
        if (end - start < sizeof(answer->signature)) {
            memcpy(answer->signature, line + start, end - start);
            answer->signature[end - start] = '\0';
        }
    }
    return length;
}

/* POST `request` to base_url + path: CALLHOME_OK with the 200 answer, else the failure. */
static callhome_status post(const char *base_url, const char *path, const char *request,
                            received *answer) {
    char url[1024];
    long http_status = 0;
    if (snprintf(url, sizeof(url), "%s%s", base_url, path) >= (int)sizeof(url))
        return CALLHOME_E_ARGUMENT;
    CURL *curl = curl_easy_init();
    if (curl == NULL) return CALLHOME_E_ARGUMENT;
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, take_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, answer);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, take_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, answer);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
    CURLcode result = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http_status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    if (result != CURLE_OK || http_status == 408 || http_status == 429 || http_status >= 500)
        return CALLHOME_E_UNAVAILABLE;
    return http_status == 200 ? CALLHOME_OK : CALLHOME_E_REJECTED;
}

callhome_status callhome_check_in(callhome_state *state, const char *base_url,
                                  const char *request, int64_t now_local,
                                  callhome_verdict *out) {
    received answer = {NULL, 0, ""};
    callhome_status status = post(base_url, "/v1/ping", request, &answer);
    if (status == CALLHOME_OK)
        status = callhome_judge_verdict(state, request, strlen(request),
                                        answer.signature[0] ? answer.signature : NULL,
                                        answer.data ? answer.data : "", answer.length, now_local, out);
    free(answer.data);
    return status;
}

callhome_status callhome_deactivate(callhome_state *state, const char *base_url,
                                    const char *request, int64_t now_local,
                                    callhome_deactivation *out) {
    received answer = {NULL, 0, ""};
    callhome_status status = post(base_url, "/v1/machines/deactivate", request, &answer);
    if (status == CALLHOME_OK)
        status = callhome_judge_deactivation(state, request, strlen(request),
                                             answer.signature[0] ? answer.signature : NULL,
                                             answer.data ? answer.data : "", answer.length,
                                             now_local, out);
    free(answer.data);
    return status;
}
