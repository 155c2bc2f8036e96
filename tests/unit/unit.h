/*
 * unit.h — the common main() of a Check unit-test program.
 *
 * Each tests/unit/test_NAME.c builds into its own program: it defines
 * `Suite *NAME_suite(void)` and ends with UNIT_MAIN(NAME_suite). The program prints
 * Check's summary ("NN%: Checks: N, Failures: F, Errors: E"), which
 * tests/run_tests.py adds up, and exits 1 when anything failed.
 */
#ifndef FERRY_UNIT_H
#define FERRY_UNIT_H

#include <check.h>
#include <stdlib.h>

#define UNIT_MAIN(suite_fn)                                           \
    int main(void)                                                    \
    {                                                                 \
        SRunner *sr = srunner_create(suite_fn());                     \
        srunner_run_all(sr, CK_NORMAL);                               \
        int failed = srunner_ntests_failed(sr);                       \
        srunner_free(sr);                                             \
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;                  \
    }

#endif
