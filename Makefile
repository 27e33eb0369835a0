# skyprof build. Out-of-tree into $(BUILD); quiet unless V=1.
#
#   make            build every stage, the broker, the launcher, BPF objects
#   make deps       install the Debian packages the build, tests and run need
#   make run        deps + build + start the local pipeline profiling this host
#   make test       deps + sanitizer build + every test (tests/run-tests.sh)
#   make bench      deps + build + the peer benchmarks (bench/)
#   make fuzz       libFuzzer harnesses (tests/fuzz/), each run FUZZ_SECONDS
#   make soak       deps + build + the churn soak (tests/soak.py, ~25 min)
#   make install    PREFIX=/usr/local DESTDIR=
#
# Sources are discovered per directory: every directory in STAGE_DIRS builds
# an archive of its non-main objects (its subdirectories' included) plus one
# executable from main.c, so a helper adding a .c file to a stage never
# needs to touch this file.

BUILD      ?= build
PREFIX     ?= /usr/local
DESTDIR    ?=
CC         ?= gcc
CLANG      ?= clang
BPFTOOL    ?= bpftool
PROTOC_C   ?= protoc-c
SAN        ?= 0
ARCH       := $(shell uname -m | sed 's/x86_64/x86/; s/aarch64/arm64/')

ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-8s %s\n' '$(1)' '$(2)';
endif

PKGS := libbpf libelf libzmq msgpack libprotobuf-c grpc yaml-0.1 libcurl \
        libmicrohttpd sqlite3 zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null)

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
ALL_CFLAGS = -std=gnu11 $(CFLAGS) $(WARN) -MMD -MP -D_GNU_SOURCE \
             -I. -Ilib -I$(GEN) $(PKG_CFLAGS)
ALL_LDFLAGS = $(LDFLAGS) -Wl,--as-needed
LDLIBS  := $(PKG_LIBS) -liberty -lpthread -lm

ifeq ($(SAN),1)
ALL_CFLAGS  += -fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer -fno-sanitize-recover=undefined,float-cast-overflow
ALL_LDFLAGS += -fsanitize=address,undefined,float-cast-overflow
endif
# The fuzz tree (tests/fuzz/README.md): clang instruments every project
# object for libFuzzer's coverage and ASan/UBSan; only the harnesses link
# libFuzzer's main.
ifeq ($(SAN),fuzz)
FUZZ_SAN    := address,undefined,float-cast-overflow
ALL_CFLAGS  += -fsanitize=fuzzer-no-link,$(FUZZ_SAN) -fno-omit-frame-pointer -fno-sanitize-recover=undefined,float-cast-overflow
ALL_LDFLAGS += -fsanitize=$(FUZZ_SAN)
endif

# name of the directory -> name of the executable
STAGE_DIRS := lib broker collector symbolizer aggregator policy-engine uplink deploy/local
exe_name = $(BUILD)/bin/$(if $(filter deploy/local,$(1)),skyprof,$(if $(filter policy-engine,$(1)),skyprof-policy,skyprof-$(1)))

# ---------------------------------------------------------------- generated
GEN := $(BUILD)/gen
VMLINUX_H := $(GEN)/vmlinux.h
BPF_SRCS  := $(wildcard bpf/*.bpf.c)
BPF_OBJS  := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS     := $(patsubst bpf/%.bpf.c,$(GEN)/%.skel.h,$(BPF_SRCS))
PROTOS    := $(wildcard proto/*.proto)
PROTO_C   := $(patsubst proto/%.proto,$(GEN)/%.pb-c.c,$(PROTOS))
PROTO_H   := $(PROTO_C:.c=.h)
PROTO_OBJS := $(patsubst $(GEN)/%.c,$(BUILD)/obj/gen/%.o,$(PROTO_C))
GENERATED := $(SKELS) $(PROTO_H)

# ---------------------------------------------------------------- sources
# A stage directory may keep its sources in rooms, one level of
# subdirectories (aggregator/core, aggregator/http, ...): they join the
# stage's archive like the files beside main.c.
srcs_of    = $(filter-out $(1)/main.c,$(wildcard $(1)/*.c $(1)/*/*.c))
objs_of    = $(patsubst %.c,$(BUILD)/obj/%.o,$(call srcs_of,$(1)))
archive_of = $(BUILD)/lib/lib$(subst /,-,$(1)).a

ARCHIVES := $(foreach d,$(STAGE_DIRS),$(call archive_of,$(d))) $(BUILD)/lib/libgen.a
EXES     := $(foreach d,$(STAGE_DIRS),$(if $(wildcard $(d)/main.c),$(call exe_name,$(d))))
ALL_OBJS := $(foreach d,$(STAGE_DIRS),$(call objs_of,$(d)) $(if $(wildcard $(d)/main.c),$(BUILD)/obj/$(d)/main.o))
LINK_ARCHIVES = -Wl,--start-group $(ARCHIVES) -Wl,--end-group

TEST_SRCS := $(wildcard tests/test_*.c)
TEST_EXES := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
TEST_COMMON_SRCS := $(filter-out $(TEST_SRCS),$(wildcard tests/*.c))
TEST_COMMON_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(TEST_COMMON_SRCS))
# Workloads with known function names, built with frame pointers so user
# stacks unwind; lib*.c become shared libraries every workload may link.
PROG_LIB_SRCS := $(wildcard tests/progs/lib*.c)
PROG_SRCS     := $(filter-out $(PROG_LIB_SRCS),$(wildcard tests/progs/*.c))
PROG_LIBS     := $(patsubst tests/progs/%.c,$(BUILD)/tests/progs/%.so,$(PROG_LIB_SRCS))
PROGS         := $(patsubst tests/progs/%.c,$(BUILD)/tests/progs/%,$(PROG_SRCS))
# Extra libraries of one test program (the system OpenSSL for httpload).
PROG_LDLIBS_httpload := -lssl -lcrypto
PROG_CFLAGS   := -O1 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -fno-inline -Wall
# The unwinder's workloads (tests/progs/unwind/README.md): built the way
# distributions build software, no frame pointers, once per compiler.
UW_COMPILERS  := gcc $(CLANG)
UW_CFLAGS     := -O2 -g -fomit-frame-pointer -Wall
UW_OUT        := $(foreach c,$(UW_COMPILERS),$(addprefix $(BUILD)/tests/progs/unwind/$(notdir $(c))/,unwind_work libuwchain.so libuwplugin.so))

.PHONY: all deps run test check bench install clean images help fuzz fuzzers fuzz-build
all: $(EXES) $(BPF_OBJS)

help:
	@sed -n '2,15p' Makefile | sed 's/^# \{0,1\}//'

deps:
	$(Q)sh mk/deps.sh

# -------------------------------------------------------------- BPF
$(VMLINUX_H):
	$(call msg,GEN,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(VMLINUX_H)
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -MMD -MP \
		-I$(GEN) -Ibpf -Ilib -c $< -o $@

$(GEN)/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@.tmp && mv $@.tmp $@

# -------------------------------------------------------------- protobuf
$(GEN)/%.pb-c.c $(GEN)/%.pb-c.h: proto/%.proto
	$(call msg,PROTOC,$<)
	$(Q)mkdir -p $(GEN)
	$(Q)$(PROTOC_C) -Iproto --c_out=$(GEN) $<

$(BUILD)/obj/gen/%.o: $(GEN)/%.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -Wno-shadow -c $< -o $@

$(BUILD)/lib/libgen.a: $(PROTO_OBJS)
	$(call msg,AR,$@)
	$(Q)mkdir -p $(@D)
	$(Q)rm -f $@ && ar crs $@ $^ $(if $^,,/dev/null 2>/dev/null || ar crs $@)

# -------------------------------------------------------------- C
$(BUILD)/obj/%.o: %.c | $(GENERATED)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

define stage_rules
$(call archive_of,$(1)): $(call objs_of,$(1))
	$$(call msg,AR,$$@)
	$$(Q)mkdir -p $$(@D)
	$$(Q)rm -f $$@ && ar crs $$@ $$^
$(if $(wildcard $(1)/main.c),
$(call exe_name,$(1)): $(BUILD)/obj/$(1)/main.o $(ARCHIVES)
	$$(call msg,LINK,$$@)
	$$(Q)mkdir -p $$(@D)
	$$(Q)$$(CC) $$(ALL_LDFLAGS) -o $$@ $$< $$(LINK_ARCHIVES) $$(LDLIBS)
)
endef
$(foreach d,$(STAGE_DIRS),$(eval $(call stage_rules,$(d))))

# -------------------------------------------------------------- tests
$(BUILD)/tests/progs/lib%.so: tests/progs/lib%.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(PROG_CFLAGS) -shared -fPIC -Wl,--build-id -o $@ $<

$(BUILD)/tests/progs/%: tests/progs/%.c $(PROG_LIBS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(PROG_CFLAGS) -Wl,--build-id -o $@ $< -L$(@D) \
		$(patsubst $(BUILD)/tests/progs/lib%.so,-l%,$(PROG_LIBS)) \
		-Wl,-rpath,'$$ORIGIN' $(PROG_LDLIBS_$*) -lpthread -lm

define unwind_prog_rules
$(BUILD)/tests/progs/unwind/$(notdir $(1))/lib%.so: tests/progs/unwind/lib%.c
	$$(call msg,CC,$$@)
	$$(Q)mkdir -p $$(@D)
	$$(Q)$(1) $$(UW_CFLAGS) -shared -fPIC -Wl,--build-id -o $$@ $$<
$(BUILD)/tests/progs/unwind/$(notdir $(1))/unwind_work: tests/progs/unwind/unwind_work.c $(BUILD)/tests/progs/unwind/$(notdir $(1))/libuwchain.so
	$$(call msg,CC,$$@)
	$$(Q)$(1) $$(UW_CFLAGS) -Wl,--build-id -o $$@ $$< -L$$(@D) -luwchain \
		-Wl,-rpath,'$$$$ORIGIN' -lpthread -ldl
endef
$(foreach c,$(UW_COMPILERS),$(eval $(call unwind_prog_rules,$(c))))

$(BUILD)/obj/tests/%.o: tests/%.c | $(GENERATED)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -Itests -c $< -o $@

$(BUILD)/tests/test_%: $(BUILD)/obj/tests/test_%.o $(TEST_COMMON_OBJS) $(ARCHIVES)
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(TEST_COMMON_OBJS) $(LINK_ARCHIVES) $(CHECK_LIBS) $(LDLIBS)

tests: $(EXES) $(BPF_OBJS) $(TEST_EXES) $(PROGS) $(PROG_LIBS) $(UW_OUT)

# -------------------------------------------------------------- fuzzing
# Every tests/fuzz/fuzz_<name>.c is one libFuzzer harness linking the
# project archives of the fuzz tree (SAN=fuzz, built with clang).
FUZZ_BUILD   ?= build/fuzz
FUZZ_SECONDS ?= 60
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_EXES := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))
# Helpers every harness links: tests/fuzz/common/ and the aggregator
# tests' sample batch.
FUZZ_COMMON_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard tests/fuzz/common/*.c) tests/agg_fixture.c)

$(BUILD)/fuzz/fuzz_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_COMMON_OBJS) $(ARCHIVES)
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_LDFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_COMMON_OBJS) $(LINK_ARCHIVES) $(LDLIBS)

fuzzers: $(FUZZ_EXES)

# One recursive make builds the fuzz tree with clang wherever BUILD points.
# FUZZ_GEN may name another tree's generated headers (skeletons, protobuf)
# to take them from there instead of generating them again.
fuzz-build:
	$(Q)$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) SAN=fuzz CC=$(CLANG) OPT=-O1 \
		$(if $(FUZZ_GEN),GEN=$(FUZZ_GEN)) fuzzers

fuzz: deps
	$(Q)$(MAKE) --no-print-directory fuzz-build
	$(Q)sh tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) explore

# `make test` builds a sanitizer tree of its own so the normal build stays
# fast, then runs every test binary against it; the fuzz tree's harnesses
# run over their corpora plus a few seconds of fuzzing each.
# A plain `make test` (.ci/run) builds both trees with a job per CPU (it
# compiled one file at a time); a -j given to make (-j1 too) wins.
TEST_JOBS = $(if $(filter -j%,$(MAKEFLAGS)),,-j$(shell nproc))
test: deps
	$(Q)$(MAKE) --no-print-directory $(TEST_JOBS) BUILD=build/san SAN=1 OPT=-O1 tests
	$(Q)$(MAKE) --no-print-directory $(TEST_JOBS) FUZZ_GEN=build/san/gen fuzz-build
	$(Q)SKYPROF_BUILD=build/san SKYPROF_FUZZ_BUILD=$(FUZZ_BUILD) sh tests/run-tests.sh

check: test

run: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(BUILD)/bin/skyprof --bin-dir $(BUILD)/bin $(if $(CONFIG),--config $(CONFIG),--config deploy/local/skyprof.yaml)

bench: deps
	$(Q)$(MAKE) --no-print-directory all tests
	$(Q)sh bench/run.sh

# Churn soak (tests/soak.py): long, needs root; SOAK_SECONDS, SOAK_RATE,
# SOAK_PHASES, SOAK_FLAP_SECONDS, SOAK_NET_RATE, SOAK_NET_SECONDS tune it
# (SOAK_PHASES=net: the network soak alone). Not part of `make test`.
.PHONY: soak
soak: deps
	$(Q)$(MAKE) --no-print-directory all tests
	$(Q)python3 tests/soak.py

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/skyprof
	install -m 0755 $(EXES) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 deploy/local/skyprof.yaml $(DESTDIR)$(PREFIX)/share/skyprof/

images: all
	$(Q)sh deploy/images/build.sh

clean:
	rm -rf build

# Objects and generated files stay after a build (make deletes the
# intermediate files of pattern chains). Not a blanket .SECONDARY: that
# makes every target intermediate, and a missing intermediate object is not
# built while its archive is newer than its source, so a new .c with an old
# mtime (checked out, merged, moved) silently stayed out of its archive.
# (.PRECIOUS names the target patterns of the rules, as written.)
.PRECIOUS: $(BUILD)/obj/%.o $(BUILD)/obj/tests/%.o $(BUILD)/obj/gen/%.o \
           $(GEN)/%.pb-c.c $(GEN)/%.pb-c.h $(GEN)/%.skel.h $(BUILD)/bpf/%.bpf.o

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
