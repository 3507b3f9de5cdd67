# The two commands of the README. Each installs what is missing first (scripts/setup.sh).
.PHONY: run test setup doctor

ARGS ?=
PYTEST_ARGS ?=

setup:
	bash scripts/setup.sh

run:
	bash scripts/setup.sh
	.venv/bin/python run_assistant.py $(ARGS)

test:
	bash scripts/setup.sh --test
	.venv/bin/python -m pytest $(PYTEST_ARGS)

doctor:
	bash scripts/setup.sh
	.venv/bin/python run_assistant.py doctor
