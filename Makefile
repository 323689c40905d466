# The two commands of a fresh machine (see README.md): `make preview STACK=dev` and `make test`.
STACK ?= dev
SNAPSHOT ?= examples/registry-snapshot.json
PY := .venv/bin/python

.PHONY: preview test lint typecheck unit docs

preview:  ## offline preview of both projects of a stack (mock engine, no credentials)
	scripts/setup.sh python
	$(PY) -m mlopsctl preview --stack $(STACK)
	$(PY) -m mlopsctl preview --project models --stack $(STACK) --registry-snapshot $(SNAPSHOT) \
		--platform-outputs examples/platform-outputs.$(STACK).json

test: ## install everything the tests need, then lint, type-check and run the tests
	scripts/setup.sh all
	$(MAKE) lint typecheck unit

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

typecheck:
	.venv/bin/mypy .

unit:
	$(PY) -m pytest

docs: ## regenerate Pulumi.yaml's config block and the configuration reference in docs/configuration.md
	$(PY) -m mlopsctl config-reference --write
