# SimCLR in C. `make` builds ./simclr; `make test` builds and runs every test;
# `make test-sanitize` does the same under AddressSanitizer + UndefinedBehaviorSanitizer;
# `make demo` runs the Fashion-MNIST demo; `make bench` compares with PyTorch.
# Every src/*.c goes into BUILD/libsimclr.a (the library: no options, no printing of usage),
# every cli/*.c into ./simclr (and all but main.c into BUILD/libsimclr-cli.a: the option tables,
# recipes and subcommands, which the tests and fuzz harnesses of the command line link),
# every tests/test_*.c into its own test binary: adding a file needs no edit here.
# CFLAGS / LDFLAGS / CPPFLAGS given on the command line replace only the defaults below; the
# flags the project needs (include paths, C standard, OpenMP) are in SC_CFLAGS / SC_LDFLAGS.
# BUILD (default build/) holds every object and test binary, BIN is the command's path.

CC      ?= gcc
OPT     ?= -O2
ARCH    ?= -march=native
CFLAGS  ?= $(OPT) $(ARCH) -g
LDFLAGS ?=
BUILD   ?= build
BIN     ?= simclr
# MPI (Debian's OpenMPI 4.1, libopenmpi-dev): linked normally; MPI starts only under mpirun.
MPI_CFLAGS ?= $(shell pkg-config --cflags ompi-c 2>/dev/null)
MPI_LIBS   ?= $(shell pkg-config --libs ompi-c 2>/dev/null || echo -lmpi)
SC_CFLAGS  := -std=gnu11 -fopenmp -Wall -Wextra -Wno-unused-parameter -Wshadow -Wno-sign-compare \
              -Wno-missing-field-initializers -Wno-format-truncation -Isrc -I$(BUILD) \
              -D_FILE_OFFSET_BITS=64 -MMD -MP $(MPI_CFLAGS)
SC_LDFLAGS := -fopenmp
LDLIBS  += -ldnnl -lopenblas -llapacke -lpng -ljpeg -lcurl -larchive -lcrypto -lz -lm -lpthread $(MPI_LIBS)

SRC      := $(wildcard src/*.c)
CLI      := $(wildcard cli/*.c)
TESTS    := $(wildcard tests/test_*.c)
LIB_OBJ  := $(SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI:%.c=$(BUILD)/%.o)
CLI_LIB_OBJ := $(filter-out $(BUILD)/cli/main.o,$(CLI_OBJ))
TEST_BIN := $(TESTS:tests/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)
REPLAY_BIN := $(FUZZ_SRC:fuzz/%.c=$(BUILD)/fuzz-replay/%)
COMPILE  = $(CC) $(SC_CFLAGS) $(CPPFLAGS) $(CFLAGS)

all: $(BIN) $(TEST_BIN) $(REPLAY_BIN)

$(BUILD)/libsimclr.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libsimclr-cli.a: $(CLI_LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# The optimizer's square root vectorises only without errno (its argument is never negative).
$(BUILD)/src/optim.o: SC_CFLAGS += -fno-math-errno

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(COMPILE) -c $< -o $@

# The subcommand table is generated from the SIMCLR_COMMAND(...) lines of cli/*.c.
$(BUILD)/commands.inc: $(CLI)
	@mkdir -p $(BUILD)
	grep -h '^SIMCLR_COMMAND(' $(CLI) | sort > $@.tmp && mv $@.tmp $@

$(BUILD)/cli/main.o: $(BUILD)/commands.inc

$(BIN): $(CLI_OBJ) $(BUILD)/libsimclr.a
	$(CC) $(SC_LDFLAGS) $(CFLAGS) $(LDFLAGS) $(CLI_OBJ) $(BUILD)/libsimclr.a $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/%.c $(BUILD)/libsimclr-cli.a $(BUILD)/libsimclr.a tests/test.h
	@mkdir -p $(dir $@)
	$(COMPILE) -Itests -Icli $< $(BUILD)/libsimclr-cli.a $(BUILD)/libsimclr.a $(SC_LDFLAGS) $(LDFLAGS) $(LDLIBS) -o $@

# The fuzz harnesses built with gcc against fuzz/replay.c: the normal suite replays every seed
# and every past crash through them (tests/cli/fuzz_replay.sh).
$(BUILD)/fuzz-replay/fuzz_%: fuzz/fuzz_%.c fuzz/replay.c $(BUILD)/libsimclr-cli.a $(BUILD)/libsimclr.a $(wildcard fuzz/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -MMD -MP,$(SC_CFLAGS)) $(CPPFLAGS) $(CFLAGS) -Ifuzz -Icli fuzz/replay.c $< \
	    $(BUILD)/libsimclr-cli.a $(BUILD)/libsimclr.a $(SC_LDFLAGS) $(LDFLAGS) $(LDLIBS) -o $@

# ---- fuzzing: libFuzzer harnesses (Debian's clang; `tools/deps.sh --fuzz` installs it) ------
# `make fuzz` runs every fuzz/fuzz_*.c for FUZZ_SECONDS (FUZZ_TARGETS="npy image" for some)
# and fails when one crashes; see doc/fuzzing.md.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS  := -std=gnu11 -O1 -g -fopenmp -Isrc -Icli -Ifuzz -D_FILE_OFFSET_BITS=64 \
                -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_BIN     := $(FUZZ_SRC:fuzz/%.c=build/fuzz/%)
FUZZ_LIB_OBJ := $(SRC:%.c=build/fuzz/obj/%.o) $(filter-out build/fuzz/obj/cli/main.o,$(CLI:%.c=build/fuzz/obj/%.o))

build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

build/fuzz/libsimclr.a: $(FUZZ_LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

build/fuzz/fuzz_%: fuzz/fuzz_%.c build/fuzz/libsimclr.a $(wildcard fuzz/*.h)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< build/fuzz/libsimclr.a -Wl,--as-needed $(LDLIBS) -o $@

fuzz-build: $(FUZZ_BIN)

fuzz:
	bash tools/deps.sh --fuzz
	$(MAKE) fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash tools/fuzz.sh $(FUZZ_TARGETS)

deps:
	bash tools/deps.sh

test: deps all
	bash tests/run.sh

# The whole suite against an ASan + UBSan build in build-san/ (its own objects, test binaries
# and command build-san/simclr). Options and the one suppression are in tests/sanitize.env.
SAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
test-sanitize: deps
	$(MAKE) BUILD=build-san BIN=build-san/simclr CFLAGS="$(SAN_FLAGS) $(ARCH)" LDFLAGS="$(SAN_FLAGS)" all
	bash tests/run.sh --build build-san

demo: deps $(BIN)
	bash tools/demo.sh

bench: $(BIN)
	bash bench/run_all.sh

fixtures:
	bash tools/deps.sh --python
	bash tools/make_fixtures.sh

clean:
	rm -rf build build-san simclr

.PHONY: all deps test test-sanitize demo bench fixtures clean fuzz fuzz-build
-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_BIN:=.d) $(FUZZ_LIB_OBJ:.o=.d)
