# libFuzzer harnesses (clang only). Builds the library sources again with
# coverage, AddressSanitizer and UBSan into $(FUZZ_BUILD) (default build-fuzz,
# ignored by git), apart from the meson builds. From the repository root:
#   make -f fuzz/fuzz.mk            build every harness
#   bash fuzz/run.sh                build, then run each for FUZZ_SECONDS (60)
# OpenMP is left out: the parsers are serial and one thread keeps runs
# reproducible.
ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)
FUZZ_BUILD ?= $(ROOT)/build-fuzz
FUZZ_CC ?= clang

HARNESSES := json safetensors checkpoint idx idx_gz csv device cli

PKG_CFLAGS := $(shell pkg-config --cflags sleef zlib 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs sleef zlib 2>/dev/null || echo -lsleef -lz)
SAN := -fsanitize=address,undefined -fno-sanitize-recover=all
WARN := -Wall -Wextra -Werror -Wno-unknown-pragmas
CFLAGS_FUZZ := -std=c11 -g -O1 -fno-omit-frame-pointer $(SAN) -fsanitize=fuzzer-no-link \
	$(WARN) -I$(ROOT)/include -I$(ROOT)/src -I$(ROOT)/src/base -I$(ROOT)/src/core -I$(ROOT)/src/nn -I$(ROOT)/src/io \
	-I$(ROOT)/backends -I$(ROOT)/backends/common -I$(ROOT)/cli -I$(ROOT)/src/dist $(PKG_CFLAGS)

# Every core, shared-backend and CPU-backend source, as in meson.build, and the
# tool's argument parser (fuzz_cli); ISA kernels need their -m flags.
# The other architecture's kernels are left out, as meson.build does.
ARCH := $(shell uname -m)
ifeq ($(ARCH),aarch64)
OTHER_ISA := %_avx2.c %_avx512.c
else
OTHER_ISA := %_neon.c
endif
# The fuzzers run in one process: the MPI transport is left out for the one of
# a job of one (dist_none.c), as -Dmpi=disabled builds it.
LIB_SRC := $(filter-out %/dist_mpi.c,$(wildcard $(ROOT)/src/*/*.c)) $(wildcard $(ROOT)/backends/common/*.c) \
	$(filter-out $(OTHER_ISA),$(wildcard $(ROOT)/backends/cpu/*.c)) $(ROOT)/cli/args.c
LIB_OBJ := $(patsubst $(ROOT)/%.c,$(FUZZ_BUILD)/obj/%.o,$(LIB_SRC))
ISA_avx2 := -mavx2 -mfma
ISA_avx512 := -mavx512f -mavx2 -mfma
isa_flags = $(if $(findstring _avx512,$(notdir $1)),$(ISA_avx512),$(if $(findstring _avx2,$(notdir $1)),$(ISA_avx2)))

BINS := $(addprefix $(FUZZ_BUILD)/fuzz_,$(HARNESSES))

.PHONY: all
all: $(BINS)

$(FUZZ_BUILD)/obj/%.o: $(ROOT)/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CFLAGS_FUZZ) -D_POSIX_C_SOURCE=200809L $(call isa_flags,$<) -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/libanygrad-fuzz.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

# Harnesses use memfd_create, hence _GNU_SOURCE.
$(FUZZ_BUILD)/fuzz_%: $(ROOT)/fuzz/fuzz_%.c $(ROOT)/fuzz/fuzz_common.h $(FUZZ_BUILD)/libanygrad-fuzz.a
	$(FUZZ_CC) $(CFLAGS_FUZZ) -D_GNU_SOURCE -fsanitize=fuzzer $< $(FUZZ_BUILD)/libanygrad-fuzz.a \
		$(PKG_LIBS) -lm -lpthread -o $@

-include $(LIB_OBJ:.o=.d)
