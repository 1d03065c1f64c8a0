# SimCLR in C. `make` builds ./simclr; `make test` builds and runs every test;
# `make demo` runs the Fashion-MNIST demo; `make bench` compares with PyTorch.
# Every src/*.c goes into build/libsimclr.a, every cli/*.c into ./simclr,
# every tests/test_*.c into its own test binary: adding a file needs no edit here.

CC      ?= gcc
ARCH    ?= -march=native
OPT     ?= -O2
CFLAGS  += -std=gnu11 $(OPT) $(ARCH) -g -fopenmp -Wall -Wextra -Wno-unused-parameter \
           -Wshadow -Wno-sign-compare -Wno-missing-field-initializers -Wno-format-truncation -Isrc -Ibuild -D_FILE_OFFSET_BITS=64 -MMD -MP
# MPI (Debian's OpenMPI 4.1, libopenmpi-dev): linked normally; MPI starts only under mpirun.
MPI_CFLAGS ?= $(shell pkg-config --cflags ompi-c 2>/dev/null)
MPI_LIBS   ?= $(shell pkg-config --libs ompi-c 2>/dev/null || echo -lmpi)
CFLAGS  += $(MPI_CFLAGS)
LDLIBS  += -ldnnl -lopenblas -llapacke -lpng -ljpeg -lcurl -larchive -lcrypto -lz -lm -lpthread $(MPI_LIBS)
LDFLAGS += -fopenmp

SRC      := $(wildcard src/*.c)
CLI      := $(wildcard cli/*.c)
TESTS    := $(wildcard tests/test_*.c)
LIB_OBJ  := $(SRC:%.c=build/%.o)
CLI_OBJ  := $(CLI:%.c=build/%.o)
TEST_BIN := $(TESTS:tests/%.c=build/tests/%)
FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)
REPLAY_BIN := $(FUZZ_SRC:fuzz/%.c=build/fuzz-replay/%)

all: simclr $(TEST_BIN) $(REPLAY_BIN)

build/libsimclr.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

build/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# The subcommand table is generated from the SIMCLR_COMMAND(...) lines of cli/*.c.
build/commands.inc: $(CLI)
	@mkdir -p build
	grep -h '^SIMCLR_COMMAND(' $(CLI) | sort > $@.tmp && mv $@.tmp $@

build/cli/main.o: build/commands.inc

simclr: $(CLI_OBJ) build/libsimclr.a
	$(CC) $(LDFLAGS) $(CLI_OBJ) build/libsimclr.a $(LDLIBS) -o $@

build/tests/%: tests/%.c build/libsimclr.a tests/test.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $< build/libsimclr.a $(LDLIBS) $(LDFLAGS) -o $@

# The fuzz harnesses built with gcc against fuzz/replay.c: the normal suite replays every seed
# and every past crash through them (tests/cli/fuzz_replay.sh).
build/fuzz-replay/fuzz_%: fuzz/fuzz_%.c fuzz/replay.c build/libsimclr.a $(wildcard fuzz/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -MMD -MP,$(CFLAGS)) -Ifuzz fuzz/replay.c $< build/libsimclr.a $(LDLIBS) $(LDFLAGS) -o $@

# ---- fuzzing: libFuzzer harnesses (Debian's clang; `tools/deps.sh --fuzz` installs it) ------
# `make fuzz` runs every fuzz/fuzz_*.c for FUZZ_SECONDS (FUZZ_TARGETS="npy image" for some)
# and fails when one crashes; see doc/fuzzing.md.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS  := -std=gnu11 -O1 -g -fopenmp -Isrc -Ifuzz -D_FILE_OFFSET_BITS=64 \
                -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_BIN     := $(FUZZ_SRC:fuzz/%.c=build/fuzz/%)
FUZZ_LIB_OBJ := $(SRC:%.c=build/fuzz/obj/%.o)

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

demo: deps simclr
	bash tools/demo.sh

bench: simclr
	bash bench/run_all.sh

fixtures:
	bash tools/deps.sh --python
	bash tools/make_fixtures.sh

clean:
	rm -rf build simclr

.PHONY: all deps test demo bench fixtures clean fuzz fuzz-build
-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(FUZZ_LIB_OBJ:.o=.d)
