# rcl — the two commands are `make book` and `make test`; both set everything up on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PROFILE ?= cpu
BOOK_NOTEBOOKS := book/notebooks
SMOKE_NOTEBOOKS := build/smoke

.PHONY: help setup notebooks book sensitivity backbones test lint clean

help:
	@echo "make book    set up, execute every notebook at PROFILE=$(PROFILE) and render the book"
	@echo "make test    set up and run every test (notebooks at the smoke profile, the book build)"
	@echo "make sensitivity  run the sensitivity study (proxy evaluations, as notebook 04) that notebook 06 shows;"
	@echo "             an hour to an hour and a half at PROFILE=cpu after make book; then make book shows it"
	@echo "make backbones    run the backbone study (plain, residual, input-concat U-Nets) that notebook 03"
	@echo "             shows; 5 to 8 minutes at PROFILE=cpu after make book"
	@echo "make setup   only create $(VENV) and install requirements.txt"
	@echo "make lint    ruff on the package, tests and notebooks; the CI workflow and CITATION.cff against their"
	@echo "             schemas (bundled with check-jsonschema: no network)"
	@echo "make clean   remove build products (keeps $(VENV), runs and downloaded data)"

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $(STAMP)

setup: $(STAMP)

notebooks: $(STAMP)
	$(BIN)/python -m rcl notebooks --profile $(PROFILE) --out $(BOOK_NOTEBOOKS)

book: notebooks
	$(BIN)/jupyter-book build book -W -n --keep-going
	@echo
	@echo "The book is ready: open book/_build/html/index.html"
	@studies="$$($(BIN)/python -c 'from rcl.profiles import STUDY_PROFILES as p; print(*p)')"; \
	for s in sensitivity:06 backbones:03; do study=$${s%:*}; nb=$${s#*:}; \
		if ls results/$$study-*-$(PROFILE)-*.csv > /dev/null 2>&1; then :; \
		elif ! echo " $$studies " | grep -q " $(PROFILE) "; then \
			echo "(notebook $$nb shows no $$study study: it runs at PROFILE=$$(echo $$studies | sed "s/ / or /g") only)"; \
		elif ls book/studies/$$study-*-$(PROFILE)-*.csv > /dev/null 2>&1; then \
			echo "(notebook $$nb shows the published $$study study of book/studies/, not computed here: make $$study computes it)"; \
		else echo "(notebook $$nb shows no $$study study: run make $$study, then make book again)"; fi; done

sensitivity: $(STAMP)
	$(BIN)/python -m rcl sensitivity --profile $(PROFILE)

backbones: $(STAMP)
	$(BIN)/python -m rcl backbones --profile $(PROFILE)

test: $(STAMP)
	$(BIN)/python -m rcl sensitivity --profile smoke --quiet --jobs 2 --runs-dir $(CURDIR)/build/smoke-runs \
		--results-dir $(CURDIR)/build/smoke-results
	$(BIN)/python -m rcl notebooks --profile smoke --out $(SMOKE_NOTEBOOKS) --quiet \
		-p runs_dir $(CURDIR)/build/smoke-runs -p results_dir $(CURDIR)/build/smoke-results
	RCL_SMOKE_NOTEBOOKS=$(SMOKE_NOTEBOOKS) $(BIN)/python -m pytest tests $(SMOKE_NOTEBOOKS) --nbval-lax

lint: $(STAMP)
	$(BIN)/ruff check rcl tests benchmarks notebooks
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.citation-file-format --default-filetype yaml CITATION.cff

clean:
	rm -rf build book/_build $(BOOK_NOTEBOOKS)
	@echo "kept runs/ (finished pre-training runs); remove it by hand to retrain everything"
