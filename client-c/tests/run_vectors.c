/* Runs the conformance vectors (client/conformance/vectors.json) through the C SDK. */
#define _DEFAULT_SOURCE
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "callhome.h"

static void format_time(int64_t seconds, char *out, size_t capacity) {
    time_t moment = (time_t)seconds;
    struct tm parts;
    gmtime_r(&moment, &parts);
    strftime(out, capacity, "%Y-%m-%dT%H:%M:%SZ", &parts);
}

static int64_t time_of(json_t *value) {
    int64_t seconds = 0;
    callhome_parse_time(json_string_value(value), &seconds);
    return seconds;
}

static json_t *refusal(callhome_status status) {
    return json_pack("{ssss}", "decision", "refuse", "error", callhome_error_code(status));
}

/* What the SDK decides of a licence file, as a JSON object in the vector's terms. */
static json_t *read_licence_file(callhome_state *state, json_t *vector, json_t *step) {
    json_t *request = json_object_get(vector, "request");
    const char *file = json_string_value(json_object_get(step, "licence_file"));
    callhome_offline_licence licence;
    callhome_status status = callhome_read_offline_licence(
        state, file, strlen(file), json_string_value(json_object_get(request, "product")),
        json_string_value(json_object_get(request, "computer_id")),
        time_of(json_object_get(step, "now")), &licence);
    if (status != CALLHOME_OK) return refusal(status);
    char issued[32], expires[32];
    format_time(licence.issued_at, issued, sizeof(issued));
    format_time(licence.expires_at, expires, sizeof(expires));
    json_t *decision = json_pack("{sssssbssssss}", "decision", "trust", "licence_status",
                                 licence.licence_status, "may_run", licence.may_run,
                                 "issued_at", issued, "expires_at", expires, "this_machine",
                                 licence.this_machine);
    callhome_offline_licence_free(&licence);
    return decision;
}

/* A trusted verdict in the vector's terms (with the plan of each feed `expect` names). */
static json_t *verdict_decision(const callhome_verdict *verdict, json_t *expect) {
    char until[32];
    const char *name;
    json_t *item;
    format_time(verdict->lease_expires, until, sizeof(until));
    json_t *decision = json_pack("{ssssss}", "decision", "trust", "licence_status",
                                 verdict->licence_status, "offline_until", until);
    json_t *expected_plan = json_object_get(expect, "plan");
    if (expected_plan != NULL) {
        json_t *plan = json_object();
        json_object_foreach(expected_plan, name, item) {
            callhome_step steps[16];
            long count = callhome_plan(verdict, name, steps, 16);
            json_t *pairs = json_array();
            for (long step = 0; step < count && step < 16; step++)
                json_array_append_new(pairs, json_pack("[II]", (json_int_t)steps[step].from_version,
                                                       (json_int_t)steps[step].to_version));
            json_object_set_new(plan, name, pairs);
        }
        json_object_set_new(decision, "plan", plan);
    }
    return decision;
}

/* A later check on the state the ones before left: the licence file read again, or the
 * kept verdict (the vector's answer) judged offline. */
static json_t *decide_later(callhome_state *state, json_t *vector, json_t *step) {
    if (strcmp(json_string_value(json_object_get(vector, "kind")), "offline-licence") == 0)
        return read_licence_file(state, vector, step);
    const char *ping = json_string_value(json_object_get(json_object_get(vector, "request"), "body"));
    json_t *answer = json_object_get(vector, "answer");
    const char *body = json_string_value(json_object_get(answer, "body"));
    callhome_verdict verdict;
    callhome_status status = callhome_offline_verdict(
        state, ping, strlen(ping), json_string_value(json_object_get(answer, "signature")), body,
        strlen(body), time_of(json_object_get(step, "now")), &verdict);
    if (status != CALLHOME_OK) return refusal(status);
    json_t *decision = verdict_decision(&verdict, json_object_get(step, "expect"));
    callhome_verdict_free(&verdict);
    return decision;
}

/* What the SDK decides, as a JSON object in the vector's terms. */
static json_t *decide(callhome_state *state, json_t *vector) {
    const char *kind = json_string_value(json_object_get(vector, "kind"));
    json_t *request = json_object_get(vector, "request");
    json_t *answer = json_object_get(vector, "answer");
    const char *signature = json_string_value(json_object_get(answer, "signature"));
    const char *body = json_string_value(json_object_get(answer, "body"));
    int64_t now = time_of(json_object_get(vector, "now"));
    json_t *decision = json_object();
    size_t index;
    json_t *item;
    const char *name;
    callhome_status status = CALLHOME_OK;

    json_array_foreach(json_object_get(vector, "pinned_public_keys"), index, item)
        callhome_pin_key(state, json_string_value(item));
    json_array_foreach(json_object_get(vector, "pinned_root_keys"), index, item)
        callhome_pin_root(state, json_string_value(item));
    json_object_foreach(json_object_get(vector, "trusted"), name, item)
        callhome_set_trusted(state, name, time_of(item));
    json_t *clock_reached = json_object_get(vector, "clock_reached_at");
    if (json_is_string(clock_reached)) callhome_set_clock_reached(state, time_of(clock_reached));
    if (strcmp(kind, "offline-licence") == 0) {
        json_decref(decision);
        return read_licence_file(state, vector, vector);
    }
    json_t *key_document = json_object_get(vector, "key_document");
    if (!json_is_null(key_document)) {
        char *text = json_dumps(key_document, JSON_COMPACT);
        status = callhome_learn_keys(state, text, strlen(text), now);
        free(text);
    }
    if (status == CALLHOME_OK && strcmp(kind, "news") == 0) {
        int64_t issued_at, expires_at;
        char *echo = json_dumps(json_object_get(request, "echo"), JSON_COMPACT);
        status = callhome_judge_news(state, json_string_value(json_object_get(request, "kind")),
                                     echo, signature, body, strlen(body), now, &issued_at,
                                     &expires_at);
        free(echo);
        if (status == CALLHOME_OK) {
            char issued[32], expires[32];
            format_time(issued_at, issued, sizeof(issued));
            format_time(expires_at, expires, sizeof(expires));
            json_object_set_new(decision, "issued_at", json_string(issued));
            json_object_set_new(decision, "expires_at", json_string(expires));
        }
    } else if (status == CALLHOME_OK && strcmp(kind, "deactivation") == 0) {
        const char *asked = json_string_value(json_object_get(request, "body"));
        callhome_deactivation freed;
        status = callhome_judge_deactivation(state, asked, strlen(asked), signature, body,
                                             strlen(body), now, &freed);
        if (status == CALLHOME_OK) {
            json_object_set_new(decision, "status", json_string(freed.status));
            json_t *named = freed.this_machine[0] ? json_string(freed.this_machine) : json_null();
            json_object_set_new(decision, "this_machine", named);
            json_object_set_new(decision, "seat_free", json_boolean(freed.seat_free));
        }
    } else if (status == CALLHOME_OK) {
        const char *ping = json_string_value(json_object_get(request, "body"));
        callhome_verdict verdict;
        status = strcmp(kind, "offline") == 0
                     ? callhome_offline_verdict(state, ping, strlen(ping), signature, body,
                                                strlen(body), now, &verdict)
                     : callhome_judge_verdict(state, ping, strlen(ping), signature, body,
                                              strlen(body), now, &verdict);
        if (status == CALLHOME_OK) {
            json_decref(decision);
            decision = verdict_decision(&verdict, json_object_get(vector, "expect"));
            callhome_verdict_free(&verdict);
        }
    }
    if (status != CALLHOME_OK) {
        json_decref(decision);
        return refusal(status);
    }
    json_object_set_new(decision, "decision", json_string("trust"));
    return decision;
}

int main(int argc, char **argv) {
    json_error_t error;
    if (argc != 2) {
        fprintf(stderr, "usage: %s vectors.json\n", argv[0]);
        return 2;
    }
    json_t *root = json_load_file(argv[1], 0, &error);
    if (root == NULL) {
        fprintf(stderr, "%s: %s\n", argv[1], error.text);
        return 2;
    }
    size_t index, failures = 0;
    json_t *vector;
    json_array_foreach(json_object_get(root, "vectors"), index, vector) {
        const char *name = json_string_value(json_object_get(vector, "name"));
        /* the vector's decision, then each later step's on the state the ones before left */
        callhome_state *state = callhome_state_new();
        json_t *decided = json_pack("[o]", decide(state, vector));
        json_t *expected = json_pack("[O]", json_object_get(vector, "expect"));
        size_t step;
        json_t *later;
        json_array_foreach(json_object_get(vector, "then"), step, later) {
            json_array_append_new(decided, decide_later(state, vector, later));
            json_array_append(expected, json_object_get(later, "expect"));
        }
        callhome_state_free(state);
        if (json_equal(decided, expected)) {
            printf("ok %s\n", name);
        } else {
            char *got = json_dumps(decided, JSON_COMPACT | JSON_SORT_KEYS);
            char *want = json_dumps(expected, JSON_COMPACT | JSON_SORT_KEYS);
            printf("FAIL %s: got %s, expected %s\n", name, got, want);
            free(got);
            free(want);
            failures++;
        }
        json_decref(decided);
        json_decref(expected);
    }
    printf("%zu of %zu vectors failed\n", failures, json_array_size(json_object_get(root, "vectors")));
    json_decref(root);
    return failures == 0 ? 0 : 1;
}
