/* Checks in once: check_in BASE_URL PUBLIC_KEY REQUEST_JSON; prints the licence status. */
#include <stdio.h>
#include <time.h>

#include "callhome.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s base-url public-key request-json\n", argv[0]);
        return 2;
    }
    callhome_state *state = callhome_state_new();
    callhome_verdict verdict;
    if (state == NULL || callhome_pin_key(state, argv[2]) != CALLHOME_OK) return 2;
    callhome_status status = callhome_check_in(state, argv[1], argv[3], (int64_t)time(NULL), &verdict);
    if (status != CALLHOME_OK) {
        printf("refused %s\n", callhome_error_code(status));
        callhome_state_free(state);
        return 1;
    }
    printf("%s %s\n", verdict.licence_status, verdict.licensed ? "licensed" : "not-licensed");
    callhome_verdict_free(&verdict);
    callhome_state_free(state);
    return 0;
}
