# pimg — one top-level Makefile. `make` builds build/pimg; `make test` runs unit + service tests;
# `make asan` does the same under AddressSanitizer + UBSan; `make deps` installs Debian packages.
CC ?= cc
BUILD ?= build
OPT ?= -O2 -g
CFLAGS ?= $(OPT)
WARN = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow
PKGS = vips libmicrohttpd libcjson sqlite3
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)
ALL_CFLAGS = $(WARN) $(CFLAGS) $(PKG_CFLAGS) -Ilib -MMD -MP
LIBS = $(PKG_LIBS) -lvl -lsvm -lpthread -lm

# Debian packages the build, the tests and the evaluation scripts need.
DEB_PKGS = libvips-dev libvips-tools libvlfeat-dev libsvm-dev libcjson-dev libmicrohttpd-dev \
  libsqlite3-dev check pkg-config curl libcurl4-openssl-dev python3-numpy python3-pil python3-scipy
LIB_SRC = $(sort $(wildcard lib/*.c))
SVC_SRC = $(sort $(wildcard service/*.c))
LIB_OBJ = $(LIB_SRC:%.c=$(BUILD)/%.o)
SVC_OBJ = $(SVC_SRC:%.c=$(BUILD)/%.o)
# Every tests/{unit,service}/<name>_test.c is its own Check program (its own main), so modules
# add tests without touching a shared list. tests/*/common*.c are linked into each of them.
UNIT_TESTS = $(patsubst %.c,$(BUILD)/%,$(sort $(wildcard tests/unit/*_test.c)))
SVC_TESTS = $(patsubst %.c,$(BUILD)/%,$(sort $(wildcard tests/service/*_test.c)))
UNIT_COMMON = $(patsubst %.c,$(BUILD)/%.o,$(filter-out %_test.c,$(wildcard tests/unit/*.c)))
SVC_COMMON = $(patsubst %.c,$(BUILD)/%.o,$(filter-out %_test.c,$(wildcard tests/service/*.c))) $(BUILD)/tests/unit/testutil.o
# Sanitizer runs: LeakSanitizer is on; the only leaks it may ignore are third-party ones listed,
# with their reasons, in tests/lsan.supp (VLFeat's GMM).
TEST_ENV = PIMG_BIN=$(BUILD)/pimg ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 UBSAN_OPTIONS=print_stacktrace=1 CK_DEFAULT_TIMEOUT=120

.PHONY: all deps run test unit asan clean
.SECONDARY:
all: deps $(BUILD)/pimg

deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing:$$missing"; \
	    (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing) >/dev/null || exit 1; \
	  else echo "missing Debian packages; run: sudo apt-get install -y$$missing"; exit 1; fi; fi

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo 'CC $<'
	@$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -c $< -o $@

$(BUILD)/libpimg.a: $(LIB_OBJ)
	@rm -f $@; ar rcs $@ $^

$(BUILD)/pimg: $(SVC_OBJ) $(BUILD)/libpimg.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(SVC_OBJ) $(BUILD)/libpimg.a $(LIBS)

$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(UNIT_COMMON) $(BUILD)/libpimg.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS) $(CHECK_LIBS)

$(BUILD)/tests/service/%: $(BUILD)/tests/service/%.o $(SVC_COMMON) $(BUILD)/libpimg.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS) $(CHECK_LIBS) -lcurl

run: all
	$(BUILD)/pimg serve --port $${PORT:-8080}

# Runs every test program even when one fails, then fails if any did.
test: deps $(BUILD)/pimg $(UNIT_TESTS) $(SVC_TESTS)
	@fail=0; for t in $(UNIT_TESTS) $(SVC_TESTS); do echo "== $$t"; $(TEST_ENV) $$t || fail=1; done; \
	if [ $$fail = 0 ]; then echo "all test programs passed"; else echo "SOME TESTS FAILED"; exit 1; fi

unit: deps $(UNIT_TESTS)
	@fail=0; for t in $(UNIT_TESTS); do $(TEST_ENV) $$t || fail=1; done; exit $$fail

asan:
	$(MAKE) test BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=address,undefined"

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---- fuzzing and load testing (not part of `make test`/CI) ----
# `make fuzz [FUZZ_TIME=60]`: libFuzzer (clang) on tests/fuzz/decode_fuzz.c with ASan+UBSan,
# seeded from tests/fuzz/corpus; crashes land in build/fuzz/ (copy them to tests/fuzz/crashes/).
FUZZ_TIME ?= 60
FUZZ_CC ?= clang
.PHONY: fuzz loadtest
fuzz:
	@mkdir -p $(BUILD)/fuzz/corpus
	$(FUZZ_CC) $(WARN) -Wno-unused-command-line-argument -g -O1 -fsanitize=fuzzer,address,undefined \
	  -DPIMG_FUZZ_MULTIPART $(PKG_CFLAGS) -Ilib -o $(BUILD)/fuzz/decode_fuzz tests/fuzz/decode_fuzz.c \
	  service/http_util.c $(LIB_SRC) $(LIBS)
	cp -n tests/fuzz/corpus/* $(BUILD)/fuzz/corpus/
	ASAN_OPTIONS=detect_leaks=0 nice $(BUILD)/fuzz/decode_fuzz -max_total_time=$(FUZZ_TIME) -max_len=16384 \
	  -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$(BUILD)/fuzz/ $(BUILD)/fuzz/corpus \
	  tests/fuzz/crashes 2>&1 | grep -v 'VIPS-WARNING\|^$$' | tail -n 25

# `make loadtest [LOAD_TIME=60]`: loopback only. Serves with default workers, floods /enhance
# with 3 MP JPEGs at 4x workers concurrency (wrk), then runs `pimg enhance` back to back with the
# same parallelism for comparison, and checks SIGTERM under load; see tests/load/loadtest.sh.
LOAD_TIME ?= 60
loadtest: $(BUILD)/pimg
	PIMG_BIN=$(BUILD)/pimg LOAD_TIME=$(LOAD_TIME) tests/load/loadtest.sh
