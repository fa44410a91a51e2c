# Espy: `make run` starts the server, `make test` runs every test. Both
# install missing Debian packages first (scripts/install-deps).
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= 2
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo

.PHONY: all deps build run test test-asan bench fuzz format clean package reference

all: build

deps:
	scripts/install-deps build test

$(BUILD)/build.ninja: | deps
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD) -j $(JOBS)

run: build
	./$(BUILD)/espy serve

# docs/configuration.md is generated from the code; tests/e2e/cli_test.py fails
# when the committed file and `espy config reference` differ.
reference: build
	./$(BUILD)/espy config reference > docs/configuration.md

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

# The Debian package: build/espy_<version>_<arch>.deb (packaging/build-deb).
package: build
	packaging/build-deb $(BUILD)/espy $(BUILD)

# The same tests with AddressSanitizer and UndefinedBehaviorSanitizer.
test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DESPY_SANITIZE=ON
	ninja -C $(ASAN_BUILD) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS)

bench: build
	scripts/install-deps bench
	@echo "see bench/README.md for the benchmark commands"

# libFuzzer: one fuzzer per parser (src/ingest/*_fuzz.cc), built with Debian's
# clang++ under ASan and UBSan, each run for FUZZ_SECONDS; corpora are kept in
# $(FUZZ_BUILD)/corpus/<fuzzer> between runs, crashes land in $(FUZZ_BUILD)/fuzz/.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZERS ?= json_parser_fuzz influx_parser_fuzz graphite_parser_fuzz remote_write_parser_fuzz
FUZZ_FLAGS = -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
  -fno-omit-frame-pointer

fuzz:
	scripts/install-deps build fuzz
	cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_COMPILER=clang++ -DESPY_FUZZ=ON "-DCMAKE_CXX_FLAGS=$(FUZZ_FLAGS)"
	ninja -C $(FUZZ_BUILD) -j $(JOBS) fuzzers
	set -e; for f in $(FUZZERS); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$f; \
	  echo "fuzz: $$f for $(FUZZ_SECONDS)s"; \
	  $(FUZZ_BUILD)/fuzz/$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/fuzz/$$f- $(FUZZ_BUILD)/corpus/$$f; \
	done

format:
	git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
