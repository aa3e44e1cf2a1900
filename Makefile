# teleport - trigger-based PostgreSQL replication in small commands.
#
#   make            build bin/ programs into build/bin
#   make check      install missing packages, build, run every test
#                   (unit tests and bats suites, against an ASan+UBSan build)
#   make demo       replicate a sample workload between two local clusters
#   make bench      capture cost; apply against COPY; tp-load against pg_dump;
#                   what ddl = event-triggers adds to a schema change
#   make valgrind   the suites (SUITES=...) with every command under valgrind
#   make install    PREFIX=/usr/local DESTDIR=

SHELL := /bin/bash
PREFIX ?= /usr/local
BINDIR = $(PREFIX)/bin
MANDIR = $(PREFIX)/share/man
DOCDIR = $(PREFIX)/share/doc/teleport
PKG_CONFIG ?= pkg-config
CC ?= cc
CFLAGS ?= -O2 -g
BUILD ?= build

PKGS = libpq inih libcurl libarchive libcrypto libmicrohttpd
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)

TP_CFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow \
	-Wno-missing-field-initializers -Ilib -I$(BUILD) $(PKG_CFLAGS)
ALL_CFLAGS = $(TP_CFLAGS) $(CFLAGS) $(SAN_CFLAGS)
ALL_LDFLAGS = $(LDFLAGS) $(SAN_CFLAGS)

COMMANDS = tp-install tp-ddlscan tp-batch tp-send tp-recv tp-apply tp-vacuum tp-status tp-load
LIB_SRC = $(wildcard lib/*.c)
LIB_OBJ = $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/sqlfiles.o
CMD_BIN = $(COMMANDS:%=$(BUILD)/bin/%)
UNIT_SRC = $(wildcard test/unit/test_*.c)
UNIT_BIN = $(UNIT_SRC:test/unit/%.c=$(BUILD)/test/%)
SQL = $(sort $(wildcard sql/*.sql))
MAN = $(wildcard man/*.[157])
# example files for cron, systemd, inetd, web servers: under DOCDIR/contrib
CONTRIB = $(filter-out contrib/demo/%,$(shell find contrib -type f 2>/dev/null))

.PHONY: all check unit demo bench valgrind install uninstall clean deps lint
all: $(CMD_BIN) $(UNIT_BIN)

$(BUILD)/sqlfiles.c: $(SQL) build-aux/sql2c.awk
	@mkdir -p $(@D)
	awk -f build-aux/sql2c.awk $(SQL) > $@.tmp && mv $@.tmp $@

$(BUILD)/%.o: %.c $(wildcard lib/*.h)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/sqlfiles.o: $(BUILD)/sqlfiles.c
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/libteleport.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/bin/%: $(BUILD)/cmd/%.o $(BUILD)/libteleport.a
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(BUILD)/libteleport.a $(PKG_LIBS)

$(BUILD)/test/%: $(BUILD)/test/unit/%.o $(BUILD)/test/unit/tap.o $(BUILD)/libteleport.a
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(BUILD)/test/unit/tap.o $(BUILD)/libteleport.a $(PKG_LIBS)

$(BUILD)/test/unit/%.o: test/unit/%.c $(wildcard test/unit/*.h) $(wildcard lib/*.h)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itest/unit -c -o $@ $<

.SECONDARY:

deps:
	@build-aux/deps

# The suite runs against the sanitizer build: every bats test doubles as
# an ASan+UBSan (and leak) check of the commands it runs.
check: deps
	$(MAKE) all
	$(MAKE) all BUILD=build/asan SAN_CFLAGS='-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all' CFLAGS='-O1 -g'
	test/run build/asan

# The same suites with every command under valgrind; slow, so pick suites:
#   make valgrind SUITES="test/tp-apply.bats test/tp-batch.bats"
valgrind: deps all
	build-aux/valgrind-wrap $(BUILD) build/valgrind
	SUITES="$(SUITES)" test/run build/valgrind

demo: deps all
	contrib/demo/demo.sh $(BUILD)/bin

bench: deps all
	test/bench/capture.sh $(BUILD)/bin
	test/bench/apply.sh $(BUILD)/bin
	test/bench/load.sh $(BUILD)/bin
	test/bench/ddl.sh $(BUILD)/bin

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr -Ilib lib cmd
	for m in $(MAN); do mandoc -Tlint -W warning $$m || exit 1; done

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man7
	install -m 0755 $(CMD_BIN) contrib/cron/tp-cycle $(DESTDIR)$(BINDIR)/
	for m in $(MAN); do s=$${m##*.}; install -m 0644 $$m $(DESTDIR)$(MANDIR)/man$$s/; done
	for f in $(CONTRIB); do install -d $(DESTDIR)$(DOCDIR)/$${f%/*}; \
		install -m 0644 $$f $(DESTDIR)$(DOCDIR)/$$f; done

uninstall:
	for c in $(COMMANDS) tp-cycle; do rm -f $(DESTDIR)$(BINDIR)/$$c; done
	rm -rf $(DESTDIR)$(DOCDIR)
	for m in $(MAN); do s=$${m##*.}; rm -f $(DESTDIR)$(MANDIR)/man$$s/$${m##*/}; done

clean:
	rm -rf build
