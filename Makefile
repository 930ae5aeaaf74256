# auditrail — one top-level GNU Makefile, out-of-tree build, pkg-config per target.
#
#   make            build binaries into build/bin/
#   make test       install deps, build (-Werror), stack up, every test, ASan+UBSan run
#   make run        install deps, stack up, the end-to-end demo
#   make SANITIZE=address,undefined   build into build-address-undefined/
#   make format     clang-format every C file

comma := ,
SANITIZE ?=
WERROR ?= -Werror
ifeq ($(SANITIZE),)
BUILD ?= build
else
BUILD ?= build-$(subst $(comma),-,$(SANITIZE))
endif

CC ?= cc
CSTD ?= -std=gnu11
OPT ?= -O2 -g
WARN := -Wall -Wextra $(WERROR) -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
CPPFLAGS += -I. -D_GNU_SOURCE -MMD -MP
CFLAGS += $(CSTD) $(OPT) $(WARN) -fno-strict-aliasing
ifneq ($(SANITIZE),)
CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
endif

# pkg-config modules per target
PKG_COMMON := yaml-0.1 jansson openssl libmicrohttpd libcurl
PKG_AGENT := $(PKG_COMMON) rdkafka
PKG_AGGR := $(PKG_COMMON) rdkafka libpq hiredis
PKG_CLI := $(PKG_COMMON)
PKG_MOCK := rdkafka
PKG_TEST := $(PKG_AGGR) check

pkg_cflags = $(shell pkg-config --cflags $(1) 2>/dev/null)
pkg_libs = $(shell pkg-config --libs $(1) 2>/dev/null)

CPPFLAGS += $(call pkg_cflags,$(PKG_TEST))
LDLIBS_BASE := -lpthread -lm

OBJ := $(BUILD)/obj
LIB := $(BUILD)/lib
BIN := $(BUILD)/bin
TBIN := $(BUILD)/tests

COMMON_SRC := $(sort $(wildcard common/*.c))
AGENT_SRC := $(filter-out agent/main.c,$(sort $(wildcard agent/*.c)))
AGGR_SRC := $(filter-out aggregator/main.c,$(sort $(wildcard aggregator/*.c)))
CLI_SRC := $(filter-out cli/main.c,$(sort $(wildcard cli/*.c)))
MOCK_SRC := $(sort $(wildcard tools/kafka-mock/*.c))
WRITER_SRC := $(sort $(wildcard tools/audit-writer/*.c))
SUPPORT_SRC := $(sort $(wildcard tests/support/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
INTEG_SRC := $(sort $(wildcard tests/integration/test_*.c))
E2E_SRC := $(sort $(wildcard tests/e2e/test_*.c))

objs = $(patsubst %.c,$(OBJ)/%.o,$(1))

LIBCOMMON := $(LIB)/libauditrail_common.a
LIBAGENT := $(LIB)/libauditrail_agent.a
LIBAGGR := $(LIB)/libauditrail_aggregator.a
LIBCLI := $(LIB)/libauditrail_cli.a
LIBSUPPORT := $(LIB)/libauditrail_testsupport.a

BINS := $(BIN)/auditrail-agent $(BIN)/auditrail-aggregator $(BIN)/auditrail $(BIN)/kafka-mock \
	$(BIN)/audit-writer
UNIT_BINS := $(patsubst tests/unit/%.c,$(TBIN)/unit/%,$(UNIT_SRC))
INTEG_BINS := $(patsubst tests/integration/%.c,$(TBIN)/integration/%,$(INTEG_SRC))
E2E_BINS := $(patsubst tests/e2e/%.c,$(TBIN)/e2e/%,$(E2E_SRC))

.PHONY: all bins tests test run format format-check clean deps stack-up stack-down fuzz bench image
all: bins
bins: $(BINS)
tests: $(UNIT_BINS) $(INTEG_BINS) $(E2E_BINS)

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

# The version lives in one place, VERSION: --version and auditrail_build_info
# print it (common/prog.c), the image labels and the charts' appVersion carry it.
VERSION := $(shell cat VERSION)
$(OBJ)/common/prog.o: CPPFLAGS += -DAUDITRAIL_VERSION='"$(VERSION)"'
$(OBJ)/common/prog.o: VERSION

$(LIBCOMMON): $(call objs,$(COMMON_SRC))
$(LIBAGENT): $(call objs,$(AGENT_SRC))
$(LIBAGGR): $(call objs,$(AGGR_SRC))
$(LIBCLI): $(call objs,$(CLI_SRC))
$(LIBSUPPORT): $(call objs,$(SUPPORT_SRC))
$(LIB)/%.a:
	@mkdir -p $(dir $@)
	@rm -f $@
	$(AR) rcs $@ $^ $(if $^,,$(OBJ)/empty.o)

# An empty archive still needs one member on some ar versions.
$(OBJ)/empty.o:
	@mkdir -p $(dir $@)
	echo 'typedef int auditrail_empty_unit;' | $(CC) $(CFLAGS) -x c -c - -o $@
$(LIB)/libauditrail_agent.a $(LIB)/libauditrail_aggregator.a $(LIB)/libauditrail_cli.a $(LIB)/libauditrail_testsupport.a: | $(OBJ)/empty.o

$(BIN)/auditrail-agent: $(OBJ)/agent/main.o $(LIBAGENT) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(call pkg_libs,$(PKG_AGENT)) $(LDLIBS_BASE)

$(BIN)/auditrail-aggregator: $(OBJ)/aggregator/main.o $(LIBAGGR) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(call pkg_libs,$(PKG_AGGR)) $(LDLIBS_BASE)

$(BIN)/auditrail: $(OBJ)/cli/main.o $(LIBCLI) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(call pkg_libs,$(PKG_CLI)) $(LDLIBS_BASE)

$(BIN)/kafka-mock: $(call objs,$(MOCK_SRC)) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(call pkg_libs,$(PKG_MOCK) $(PKG_COMMON)) $(LDLIBS_BASE)

$(BIN)/audit-writer: $(call objs,$(WRITER_SRC)) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(call pkg_libs,$(PKG_COMMON)) $(LDLIBS_BASE)

TEST_LIBS = $(LIBSUPPORT) $(LIBAGENT) $(LIBAGGR) $(LIBCLI) $(LIBCOMMON)
$(TBIN)/%: $(OBJ)/tests/%.o $(TEST_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(call pkg_libs,$(PKG_TEST)) $(LDLIBS_BASE)

# compile_commands.json for clangd / clang-tidy (uses bear when present).
compile_commands.json:
	bear -- $(MAKE) -B bins tests

deps:
	scripts/deps

test:
	scripts/test

run:
	scripts/run

stack-up:
	scripts/stack up
stack-down:
	scripts/stack down

fuzz:
	scripts/fuzz run

bench:
	bench/run

C_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null; git ls-files --others --exclude-standard '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(C_FILES)
format-check:
	clang-format --dry-run --Werror $(C_FILES)

clean:
	rm -rf build build-*

# The container image (deploy/docker/Dockerfile) with Docker or Podman, and
# its binaries' debug symbols into $(BUILD)/debug-symbols/.
IMAGE ?= auditrail:$(VERSION)
image:
	@engine=; \
	if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then engine=docker; \
	elif command -v podman >/dev/null 2>&1; then engine=podman; fi; \
	if [ -z "$$engine" ]; then echo "make image: no running Docker engine or Podman here" >&2; exit 1; fi; \
	set -e; args="--build-arg VERSION=$(VERSION) --build-arg REVISION=$$(git rev-parse HEAD 2>/dev/null || echo unknown) --build-arg CREATED=$$(date -u +%Y-%m-%dT%H:%M:%SZ)"; \
	$$engine build -f deploy/docker/Dockerfile $$args -t $(IMAGE) .; \
	$$engine build -f deploy/docker/Dockerfile $$args --target debug --output type=local,dest=$(BUILD)/debug-symbols .

.SECONDARY:
-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---- aggregator storage: migrations embedded at build time (owner: storage) ----
# build/gen/migrations.c holds schemas/postgres/*.sql as C arrays
# (aggregator/migrate.h: migrate_embedded[]), so the binary needs no
# repository at run time. It is compiled into libauditrail_aggregator.a.
MIGRATION_SQL := $(sort $(wildcard schemas/postgres/*.sql))
GEN := $(BUILD)/gen
$(GEN)/migrations.c: $(MIGRATION_SQL) scripts/embed-sql
	@mkdir -p $(dir $@)
	scripts/embed-sql $@ $(MIGRATION_SQL)
$(OBJ)/gen/migrations.o: $(GEN)/migrations.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@
$(LIBAGGR): $(OBJ)/gen/migrations.o
# Storage benchmark: pg_writer vs a raw COPY of the same rows (DESIGN.md §10).
$(BIN)/bench-aggregator-storage: $(OBJ)/bench/aggregator_storage.o $(LIBAGGR) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(call pkg_libs,$(PKG_AGGR)) $(LDLIBS_BASE)
# ---- end aggregator storage ----
# ---- read path benchmark (bench/query): API vs libpq, cache, Zipf ----
$(BIN)/bench-query: $(OBJ)/bench/query_load.o $(LIBAGGR) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(call pkg_libs,$(PKG_AGGR)) $(LDLIBS_BASE)
