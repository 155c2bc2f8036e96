# Ferry — plain GNU make.
#
#   make            build bin/ferryd, bin/ferryctl and the test programs
#   make deps       install missing Debian packages (idempotent, silent when all present)
#   make run        build and start Ferry in the foreground with etc/ferry-local.conf
#   make test       build and run every test; ends with "N passed, N failed"
#   make test SAN=1 the same, built with AddressSanitizer and UndefinedBehaviorSanitizer
#   make fuzz       build the libFuzzer targets (clang) and run each for FUZZ_SECONDS
#   make interop    the interop suite: Ferry against Exim, OpenSMTPD, Postfix, Dovecot (tests/interop/)
#   make bench      build and run the benchmarks in tests/bench/ (prints figures)
#   make clean
#
# Layout rule: every .c file under the source directories goes into build/libferry.a,
# except files named *_main.c, which are program entry points.

SRC_DIRS := lib smtpd queue delivery auth pull ctl

PKGS := libevent libevent_openssl openssl ldns zlib libidn2 libxml-2.0 libzip json-c libcurl

ifeq ($(SAN),1)
BUILD    ?= build-san
CC       := clang
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT      := -O1 -g
else ifeq ($(SAN),thread)
# ThreadSanitizer, for the code with threads (queue/spool_flusher.c):
#   make SAN=thread build-tsan/tests/test_spool_flusher && build-tsan/tests/test_spool_flusher
BUILD    ?= build-tsan
CC       := clang
SANFLAGS := -fsanitize=thread
OPT      := -O1 -g
else
BUILD    ?= build
SANFLAGS :=
OPT      ?= -O2 -g
endif

# gcc warns about snprintf truncation that Ferry does on purpose (bounded messages);
# clang has no such warning and rejects the flag.
NO_TRUNC_WARN = $(if $(findstring clang,$(shell $(CC) --version 2>/dev/null)),,-Wno-format-truncation)
BIN      := $(if $(filter 1,$(SAN)),bin-san,$(if $(filter thread,$(SAN)),bin-tsan,bin))
CC       ?= cc
CPPFLAGS += -D_GNU_SOURCE -I.
CFLAGS   += -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter $(NO_TRUNC_WARN) \
            $(OPT) $(SANFLAGS) -pthread -fstack-protector-strong -D_FORTIFY_SOURCE=2 \
            $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -ldb
# -pthread: the smtp process's spool flusher runs fsyncs on threads (queue/spool_flusher.h).
LDFLAGS  += $(SANFLAGS) -pthread
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null)

ALL_SRC  := $(foreach d,$(SRC_DIRS),$(wildcard $(d)/*.c))
MAIN_SRC := $(filter %_main.c,$(ALL_SRC))
LIB_SRC  := $(filter-out %_main.c,$(ALL_SRC))
LIB_OBJ  := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRC))
LIBFERRY := $(BUILD)/libferry.a

PROGRAMS := $(BIN)/ferryd $(BIN)/ferryctl $(BIN)/ferry-sendmail

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BIN := $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(TOOL_SRC))
# LD_PRELOAD libraries the integration tests put between ferryd and the C library.
SHIM_SRC := $(wildcard tests/shim/*.c)
SHIM_LIB := $(patsubst tests/shim/%.c,$(BUILD)/tests/shim/%.so,$(SHIM_SRC))

BENCH_SRC := $(wildcard tests/bench/bench_*.c)
BENCH_BIN := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(FUZZ_SRC))
FUZZ_SECONDS ?= 20

.PHONY: all pkgcheck deps run test test-unit test-integration interop fuzz bench clean
.DEFAULT_GOAL := all

all: pkgcheck $(PROGRAMS) $(UNIT_BIN) $(TOOL_BIN) $(SHIM_LIB)

# A missing -dev package shows up here as one sentence, not as a page of linker errors.
pkgcheck:
	@pkg-config --exists $(PKGS) check || { echo "missing libraries ($(PKGS) check): run 'make deps'" >&2; exit 1; }
	@test -f /usr/include/db.h || { echo "missing Berkeley DB headers: run 'make deps'" >&2; exit 1; }

deps:
	@sh tests/install-deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIBFERRY): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BIN)/ferryd: $(BUILD)/smtpd/ferryd_main.o $(LIBFERRY)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/ferryctl: $(BUILD)/ctl/ferryctl_main.o $(LIBFERRY)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/ferry-sendmail: $(BUILD)/ctl/sendmail_main.o $(LIBFERRY)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIBFERRY)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(CHECK_CFLAGS) $(LDFLAGS) -o $@ $< $(LIBFERRY) $(LDLIBS) $(CHECK_LIBS)

# Not sanitized: a preloaded library stands outside the program under test.
$(BUILD)/tests/shim/%.so: tests/shim/%.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -Wall -Wextra -Werror -O2 -fPIC -shared -o $@ $< -ldl

$(BUILD)/tests/tools/%: tests/tools/%.c $(LIBFERRY)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIBFERRY) $(LDLIBS)

# run and test install what is missing first, then build in a fresh make: the
# pkg-config flags above are read when make starts, before deps could add them.
run: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p var
	@FERRYCTL=$(BIN)/ferryctl sh etc/make-run-setup.sh
	$(BIN)/ferryd -c etc/ferry-local.conf -f

test: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) BIN=$(BIN) python3 tests/run_tests.py

test-unit: all
	@BUILD=$(BUILD) BIN=$(BIN) python3 tests/run_tests.py --unit-only

test-integration: all
	@BUILD=$(BUILD) BIN=$(BIN) python3 tests/run_tests.py --integration-only

# Rewrites tests/interop/RESULTS.md. `make test` runs it too (run_tests.py).
interop: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) BIN=$(BIN) python3 tests/run_tests.py --interop-only

$(BUILD)/bench/%: tests/bench/%.c $(LIBFERRY)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIBFERRY) $(LDLIBS)

# Benchmarks: figures printed side by side with Postfix's smtp-sink, never asserted.
# Postfix (installed by `make deps` with no system configuration, so its service
# never starts) provides smtp-source/smtp-sink.
bench: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory $(BENCH_BIN)
	@for b in $(BENCH_BIN); do $$b || exit 1; done
	@BUILD=$(BUILD) BIN=$(BIN) python3 tests/bench/bench_smtp.py

# libFuzzer targets: the parser sources are compiled again with coverage instrumentation.
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -I. -g -O1 -fsanitize=fuzzer,address,undefined \
               $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
build-fuzz/%: tests/fuzz/%.c $(LIB_SRC)
	@mkdir -p build-fuzz
	clang $(FUZZ_CFLAGS) -o $@ $< $(LIB_SRC) $(LDLIBS)

fuzz: deps $(FUZZ_BIN)
	@set -e; for f in $(FUZZ_BIN); do \
	    n=$$(basename $$f); mkdir -p build-fuzz/corpus-$$n; \
	    seeds=tests/fuzz/corpus/$$n; [ -d $$seeds ] || seeds=; \
	    echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
	    $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 build-fuzz/corpus-$$n $$seeds 2>build-fuzz/$$n.log \
	        || { tail -40 build-fuzz/$$n.log; exit 1; }; \
	    grep -E 'stat::number_of_executed_units' build-fuzz/$$n.log || true; \
	done

clean:
	rm -rf build build-san build-fuzz bin bin-san

-include $(LIB_OBJ:.o=.d) $(patsubst %.c,$(BUILD)/%.d,$(MAIN_SRC))
