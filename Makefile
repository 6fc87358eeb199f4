# mailroom's commands; the logic is in scripts/test.sh.
#   make test                  install, lint, type-check, run every test (real Cyrus included)
#   make test ARGS="-k foo"    extra pytest arguments
#   make lint / make install
ARGS ?=

.PHONY: test lint install

test:
	scripts/test.sh test $(ARGS)

lint:
	scripts/test.sh lint

install:
	scripts/test.sh install
