# crest — the two commands: `make run` and `make test`. Each installs what is
# missing (scripts/deps.sh), builds, and does its job on a fresh Debian machine.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
APP        ?= examples/tasks/app.yaml
LISTEN     ?= 127.0.0.1:8080
FUZZ_SECONDS ?= 600

.PHONY: all deps build run test unit e2e asan fuzz fuzz-smoke bench bench-relations bench-gzip bench-etag bench-cursor bench-changes install clean

all: build

deps:
	@scripts/deps.sh build

# `make run` needs no test framework: the unit tests (cmocka, installed by
# `make test`) are configured only when cmocka is there; scripts/test.sh turns
# them on (-DCREST_TESTS=ON) once it has installed it.
CREST_TESTS ?= $(shell pkg-config --exists cmocka 2>/dev/null && echo ON || echo OFF)

$(BUILD)/Makefile:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCREST_TESTS=$(CREST_TESTS)

build: deps $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

# Serves the example app on 127.0.0.1:8080 (its database lands in build/).
run: build
	cd $(BUILD) && ./crest serve ../$(APP) --listen $(LISTEN)

# Everything: unit + black-box tests, the same under ASan+UBSan, fuzz smoke runs.
test:
	@scripts/deps.sh test
	@scripts/test.sh

fuzz:
	@scripts/deps.sh test
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

bench:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory build
	@bench/run.sh

# The relations scenarios alone (bench/relations.sh: 10k people × 5 computers,
# a page without and with include=computers, a where across the relation, on
# SQLite and PostgreSQL); `make bench` runs them with the others.
bench-relations:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory build
	@BENCH_ONLY=rel_list,rel_include,rel_where bench/run.sh

# The gzip scenario alone (bench/gzip.sh: a 50-row page of the tasks list
# without and with Accept-Encoding: gzip at levels 1 and 6).
bench-gzip:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory build
	@BENCH_ONLY=gzip_list bench/run.sh

# The conditional-requests scenarios alone (bench/etag.sh: GET /tasks/12345
# without and with a matching If-None-Match, on SQLite and PostgreSQL).
bench-etag:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory build
	@BENCH_ONLY=etag_200,etag_304 bench/run.sh

# The cursor scenarios alone (bench/cursor.sh: page 10, 100, 1,000 by page= and
# by cursor, SQLite and PostgreSQL); `make bench` runs them with the others.
bench-cursor:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory build
	@BENCH_ONLY=cursor_page10,cursor_next10,cursor_page100,cursor_next100,cursor_page1000,cursor_next1000 bench/run.sh

# The change feed (bench/changes.py, a bounded client): events per second to
# 100 subscribers while POST /tasks runs, RSS with 1,000 idle subscribers; on
# SQLite (PostgreSQL: bench/changes.py --store postgres --pg DIR).
bench-changes:
	@$(MAKE) --no-print-directory build
	@/usr/bin/python3 bench/changes.py

# Into the prefix the build was configured with (/usr/local), or PREFIX=DIR;
# DESTDIR=DIR stages it (packaging).
install: build
	cmake --install $(BUILD) $(if $(PREFIX),--prefix $(PREFIX))

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
