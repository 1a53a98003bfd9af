/* Frees this machine's seat: deactivate BASE_URL PUBLIC_KEY REQUEST_JSON; prints the status. */
#include <stdio.h>
#include <time.h>

#include "callhome.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s base-url public-key request-json\n", argv[0]);
        return 2;
    }
    callhome_state *state = callhome_state_new();
    callhome_deactivation answer;
    if (state == NULL || callhome_pin_key(state, argv[2]) != CALLHOME_OK) return 2;
    callhome_status status =
        callhome_deactivate(state, argv[1], argv[3], (int64_t)time(NULL), &answer);
    callhome_state_free(state);
    if (status != CALLHOME_OK) {
        printf("refused %s\n", callhome_error_code(status));
        return 1;
    }
    printf("%s %s\n", answer.status, answer.seat_free ? "seat-free" : "seat-kept");
    return 0;
}
