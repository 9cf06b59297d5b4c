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
UNIT_SRC = $(sort $(wildcard tests/unit/*_test.c))
LIB_OBJ = $(LIB_SRC:%.c=$(BUILD)/%.o)
SVC_OBJ = $(SVC_SRC:%.c=$(BUILD)/%.o)
SVC_NOMAIN = $(filter-out $(BUILD)/service/main.o,$(SVC_OBJ))
UNIT_BIN = $(BUILD)/tests/unit_tests
SVC_TEST_BIN = $(BUILD)/tests/service_tests
SVC_TEST_SRC = $(sort $(wildcard tests/service/*.c))

.PHONY: all deps run test unit service-test asan clean eval fuzz loadtest
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

$(UNIT_BIN): $(UNIT_SRC:%.c=$(BUILD)/%.o) $(BUILD)/libpimg.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS) $(CHECK_LIBS)

$(SVC_TEST_BIN): $(SVC_TEST_SRC:%.c=$(BUILD)/%.o) $(BUILD)/libpimg.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS) $(CHECK_LIBS) -lcurl

run: all
	$(BUILD)/pimg serve --port $${PORT:-8080}

test: deps $(BUILD)/pimg $(UNIT_BIN) $(SVC_TEST_BIN)
	PIMG_BIN=$(BUILD)/pimg $(UNIT_BIN)
	PIMG_BIN=$(BUILD)/pimg $(SVC_TEST_BIN)

unit: deps $(UNIT_BIN)
	$(UNIT_BIN)

asan:
	$(MAKE) test BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=address,undefined"

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
