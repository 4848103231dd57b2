# The two commands (see README): `make run` and `make test`. Both install what is missing.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=

.PHONY: all deps build run test test-unit test-asan bench format clean

all: build

deps-%:
	@scripts/install-deps.sh $*

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS)

build: deps-build $(BUILD)/build.ninja
	ninja -C $(BUILD) -j$(JOBS)

# Starts the server in the foreground with the embedded store.
run: deps-run $(BUILD)/build.ninja
	ninja -C $(BUILD) -j$(JOBS) stratus
	$(BUILD)/src/cli/stratus server $(ARGS)

# Every test: unit, sandbox and end-to-end (labels), then the unit and end-to-end tests again
# under AddressSanitizer + UndefinedBehaviorSanitizer (the e2e servers run instrumented too).
test: deps-test $(BUILD)/build.ninja
	ninja -C $(BUILD) -j$(JOBS)
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) --timeout 600
	$(MAKE) test-asan

test-unit: deps-test $(BUILD)/build.ninja
	ninja -C $(BUILD) -j$(JOBS)
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) -L unit

$(ASAN_BUILD)/build.ninja:
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSTRATUS_SANITIZE=ON -DSTRATUS_BENCH=OFF $(CMAKE_ARGS)

test-asan: deps-test $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j$(JOBS) -L "unit|e2e" --timeout 600

bench: deps-bench $(BUILD)/build.ninja
	ninja -C $(BUILD) -j$(JOBS)
	bench/run-all.sh $(BUILD)

format:
	find src tests bench -name '*.cpp' -o -name '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
