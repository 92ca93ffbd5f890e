# Thin wrapper around meson/ninja. The real build is meson.build.
#   make demo   install missing packages, build, run the seed's examples, then train
#               an MLP on Fashion-MNIST for two epochs on the best device
#               (`anygrad train`: progress bar, test accuracy)
#   make test   install missing packages, build, run every test (tests/run.sh)
#   make test-arm  install the aarch64 cross toolchain, qemu and arm64 libraries
#               (scripts/deps-arm.sh), cross-build into build-arm/ without the
#               GPU backends, run the CPU suite under qemu-aarch64 per ISA
#               (neon, scalar; cross/test-arm.sh)
BUILD ?= build
ARM_BUILD ?= build-arm

SAN_BUILD ?= build-sanitize

.PHONY: regen all deps deps-test build build-sanitize build-arm demo test test-fast test-arm fuzz clean
FUZZ_SECONDS ?= 60

all: build

# what make demo needs (build, run, data set); deps-test adds the test suite's
deps:
	@bash scripts/deps.sh demo

deps-test:
	@bash scripts/deps.sh test

# MESON_OPTS: extra meson options (make test sets werror and the tests)
build:
	@test -f $(BUILD)/build.ninja || meson setup $(BUILD) $(MESON_OPTS)
	@test -z "$(MESON_OPTS)" || meson configure $(BUILD) $(MESON_OPTS)
	ninja -C $(BUILD)

# deps first, then build: recipes rather than prerequisites, so `make -j` keeps the order
demo: deps
	@$(MAKE) --no-print-directory build
	./$(BUILD)/examples/linear_regression
	./$(BUILD)/examples/neuron
	./$(BUILD)/cli/anygrad devices
	./$(BUILD)/cli/anygrad train --model mlp --epochs 2

# AddressSanitizer + LeakSanitizer + UBSan build of the same sources
build-sanitize:
	@test -f $(SAN_BUILD)/build.ninja || meson setup $(SAN_BUILD) -Db_sanitize=address,undefined \
		-Dc_args=-fno-sanitize-recover=all -Dc_link_args=-fno-sanitize-recover=all $(MESON_OPTS)
	@test -z "$(MESON_OPTS)" || meson configure $(SAN_BUILD) $(MESON_OPTS)
	ninja -C $(SAN_BUILD)

# every suite on every backend, under the sanitizers, and on aarch64 under qemu;
# warnings are errors here (CI), never in a plain build
TEST_OPTS = -Dwerror=true -Dtests=enabled
test: deps-test
	@bash scripts/deps-arm.sh
	@$(MAKE) --no-print-directory build build-sanitize build-arm MESON_OPTS="$(TEST_OPTS)"
	BUILD=$(BUILD) SAN_BUILD=$(SAN_BUILD) ARM_BUILD=$(ARM_BUILD) bash tests/run.sh

# without the sanitizer pass
test-fast: deps-test
	@$(MAKE) --no-print-directory build MESON_OPTS="$(TEST_OPTS)"
	BUILD=$(BUILD) SAN_BUILD=none bash tests/run.sh

# aarch64 cross build (cross/aarch64-linux-gnu.ini): the CPU backend only
build-arm:
	@test -f $(ARM_BUILD)/build.ninja || meson setup --cross-file cross/aarch64-linux-gnu.ini \
		$(ARM_BUILD) -Dopencl=disabled -Dvulkan=disabled $(MESON_OPTS)
	@test -z "$(MESON_OPTS)" || meson configure $(ARM_BUILD) $(MESON_OPTS)
	ninja -C $(ARM_BUILD)

test-arm:
	@bash scripts/deps-arm.sh
	@$(MAKE) --no-print-directory build-arm MESON_OPTS="$(TEST_OPTS)"
	ARM_BUILD=$(ARM_BUILD) bash cross/test-arm.sh

# libFuzzer harnesses (fuzz/), each for FUZZ_SECONDS; fails on any crash, leak or hang
fuzz: deps-test
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash fuzz/run.sh

clean:
	rm -rf $(BUILD) $(SAN_BUILD) $(ARM_BUILD) build-fuzz build-bt

# refresh the regions of anygrad.h and README.md generated from the op tables
regen:
	python3 scripts/gen_ops.py regions --write src/ops/unary_table.h src/ops/binary_table.h include/anygrad.h README.md
