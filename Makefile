# mailroom's commands; the logic is in scripts/test.sh and scripts/run.sh.
#   make run                   mailroom on your account (MAILROOM_JMAP_TOKEN set), else a local demo
#   make test                  install, lint, type-check, run every test (real Cyrus included)
#   make test ARGS="-k foo"    extra pytest arguments
#   make lint / make install
ARGS ?=

.PHONY: run test lint install

run:
	scripts/run.sh

test:
	scripts/test.sh test $(ARGS)

lint:
	scripts/test.sh lint

install:
	scripts/test.sh install
