# The two commands of the README. Each sets up ./.venv itself (idempotent) and then runs.
.PHONY: run test setup setup-dev

run: setup
	.venv/bin/latent-studio serve $(ARGS)

test: setup-dev
	.venv/bin/python -m pytest $(PYTEST_ARGS)

setup:
	scripts/setup.sh

setup-dev:
	scripts/setup.sh --dev
