# Thin wrapper around meson/ninja. The real build is meson.build.
#   make demo   install missing packages, build, run the two examples
#   make test   install missing packages, build, run every test (tests/run.sh)
BUILD ?= build

.PHONY: all deps build demo test clean

all: build

deps:
	@bash scripts/deps.sh

build:
	@test -f $(BUILD)/build.ninja || meson setup $(BUILD)
	ninja -C $(BUILD)

# deps first, then build: recipes rather than prerequisites, so `make -j` keeps the order
demo: deps
	@$(MAKE) --no-print-directory build
	./$(BUILD)/examples/linear_regression
	./$(BUILD)/examples/neuron

test: deps
	@$(MAKE) --no-print-directory build
	BUILD=$(BUILD) bash tests/run.sh

clean:
	rm -rf $(BUILD)
