# 盛岡市 手続き案内チャットボット — build, run and test.
#   make run   : set up both environments, train the model when data changed, start the whole stack
#   make test  : set up, train when needed, run every test (unit, NLU regression, stories, end-to-end)
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.10 (Rasa 3.6 needs 3.8-3.10): newest 3.10.x under pyenv, else python3.10 on PATH.
# Override with `make PY310=/path/to/python3.10`.
PY310 ?= $(shell v=$$(pyenv versions --bare 2>/dev/null | grep -E '^3\.10\.[0-9]+$$' | sort -V | tail -n1); \
          if [ -n "$$v" ]; then echo "$$(pyenv root)/versions/$$v/bin/python"; \
          elif command -v python3.10 >/dev/null 2>&1 && python3.10 -V >/dev/null 2>&1; then command -v python3.10; fi)

VENV      := .venv
VENV_RASA := .venv-rasa
PY        := $(VENV)/bin/python
RASA      := $(VENV_RASA)/bin/rasa
MODEL     := models/current.tar.gz
CITY      ?= morioka
export PYTHONPATH := $(CURDIR)
export CITY
export TF_CPP_MIN_LOG_LEVEL := 2
export RASA_TELEMETRY_ENABLED := false
export SANIC_REGISTER := false

CATALOGUE  := $(wildcard procedures/cities/$(CITY)/*.yml) procedures/schema.yml
GENERATED  := data/nlu/generated/procedures.yml
TRAIN_DEPS := config.yml domain.yml $(GENERATED) $(filter-out $(GENERATED),$(wildcard data/nlu/*.yml data/rules/*.yml data/stories/*.yml)) $(wildcard bot/nlu/*.py)

.PHONY: help print-python check-python setup run test test-unit test-nlu test-stories test-e2e validate model nlu-data cross-validate evaluate faq-evaluate bench-api clean

help:
	@echo "make run   - 環境構築・学習（必要なとき）・ボット起動 (http://localhost:8000)"
	@echo "make test  - 環境構築・学習（必要なとき）・全テスト"
	@echo "make validate - カタログと学習データの検査（例文の重複・矛盾も）"
	@echo "make evaluate - NLU の交差検証とレポート results/evaluate/index.html（25〜45分）"

print-python:
	@echo "$(PY310)"

check-python:
	@test -n "$(PY310)" || { echo "Python 3.10 が見つかりません（pyenv install 3.10 などで入れてください）"; exit 1; }

$(VENV)/.installed: requirements.txt | check-python
	test -x $(PY) || $(PY310) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip<25" wheel
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV_RASA)/.installed: requirements-rasa.txt constraints-rasa.txt | check-python
	test -x $(VENV_RASA)/bin/python || $(PY310) -m venv $(VENV_RASA)
	$(VENV_RASA)/bin/python -m pip install -q --upgrade "pip<24.1" wheel
	$(VENV_RASA)/bin/python -m pip install -q -r requirements-rasa.txt -c constraints-rasa.txt
	touch $@

setup: $(VENV)/.installed $(VENV_RASA)/.installed

# NLU synonyms and lookup table generated from the catalogue aliases (never edit by hand).
$(GENERATED): $(CATALOGUE) procedures/*.py $(VENV)/.installed
	$(PY) -m procedures export-nlu --out $@

nlu-data: $(GENERATED)

# The list of training files, rewritten only when it changes: removing a data file retrains too.
TRAIN_LIST := models/.train-files
$(shell mkdir -p models; echo "$(sort $(TRAIN_DEPS))" | cmp -s - $(TRAIN_LIST) || echo "$(sort $(TRAIN_DEPS))" > $(TRAIN_LIST))

$(MODEL): $(TRAIN_DEPS) $(TRAIN_LIST) $(VENV_RASA)/.installed
	$(PY) -m procedures validate
	@mkdir -p models
	time $(RASA) train --fixed-model-name current --out models --num-threads 2

model: $(MODEL)

run: setup $(MODEL)
	$(PY) -m bot stack

# Catalogue schema/aliases, generated NLU data in sync with the catalogue, and `rasa data validate`
# Two kinds of its warnings are expected and filtered out: text fragments used only by custom
# actions ("not used in any story or rule"), and ask_procedure declared both in domain.yml and by the
# retrieval-intent responses generated into data/nlu/generated/ ("duplicated intents").
validate: setup $(GENERATED)
	$(PY) -m procedures validate
	$(PY) -m procedures export-nlu --check --out $(GENERATED)
	$(PY) -m bot staff check
	@out=$$($(RASA) data validate --max-history 5 2>&1) || { echo "$$out"; exit 1; }; \
	  bad=$$(echo "$$out" | grep -E "UserWarning|ERROR" | grep -v -e "is not used in any story or rule" -e "duplicated intents have been found across multiple domain files: ask_procedure" || true); \
	  if [ -n "$$bad" ]; then echo "$$bad"; exit 1; fi; echo "rasa data validate: OK"

test: setup $(MODEL) browser-deps
	$(MAKE) validate
	$(VENV_RASA)/bin/python -m pytest -q --confcutdir=tests/rasa_env tests/rasa_env
	$(PY) -m pytest -q --ignore=tests/rasa_env --ignore=tests/browser
	$(PY) -m pytest -q tests/browser
	$(MAKE) test-stories

test-stories: $(MODEL)
	$(RASA) test core --stories tests/stories --model $(MODEL) --fail-on-prediction-errors --out results/stories

# NLU report for staff: 5-fold cross-validation of config.yml (25-45 min on 2 cores) → results/evaluate/index.html
# (confusion matrix, F1 per intent and per procedure; history.csv compares runs before/after new examples).
evaluate: setup $(GENERATED)
	$(PY) -m bot.nlu.evaluate cross-validate --rasa $(RASA) --folds 5 config.yml
	$(PY) -m bot staff nlu-report results/cv/config --out results/evaluate

# Load benchmark (issue 6): starts the stack on free ports, N concurrent conversations of 4 turns
# through /api/chat; prints messages/s, p50/p95/p99 ms, errors, lost, peak RSS per process and one
# JSON line per level. Levels: 1, 20, 50 without pause (capacity), then 20 conversations offered
# 42 messages/s in all (latency at the target load of >= 40 msg/s; the last line).
# `make bench CONCURRENCY=20` for one level; REPLICAS rasa processes (4: measured best on 2 cores,
# ~2.2 GB each; REPLICAS=1 on small machines). Needs the trained model.
CONCURRENCY ?= 1,20,50,20@42
REPLICAS ?= 4
.PHONY: bench
bench: setup $(MODEL)
	$(PY) -m bot.bench --concurrency $(CONCURRENCY) --replicas $(REPLICAS) --turns 4 --conversations 100

# NLU comparison (issue 2): 5-fold cross-validation of each configuration under configs/.
cross-validate: setup $(GENERATED)
	$(PY) -m bot.nlu.evaluate cross-validate --rasa $(RASA) --folds 5 configs/*.yml

# FAQ retrieval (issue 5): Hit@k, MRR, Recall@10, ms per query on the development FAQ (tests/data/faq); last line JSON.
faq-evaluate: $(VENV)/.installed
	$(PY) -m bot.faq evaluate --corpus tests/data/faq/corpus.json --queries tests/data/faq/queries_dev.json --qrels tests/data/faq/qrels_dev.json --json
	$(PY) -m bot.faq evaluate --corpus tests/data/faq/corpus.json --queries tests/data/faq/queries_test.json --qrels tests/data/faq/qrels_test.json --json

# Browser tests (tests/browser, issue 4): Debian's chromium (and Japanese fonts for the screenshots)
# from apt only when missing (as root, else with sudo), Node's npm when missing, and axe-core pinned
# in tests/browser/package-lock.json (npm ci). Playwright drives /usr/bin/chromium; nothing is
# downloaded at test time (never `playwright install`).
CHROMIUM     ?= /usr/bin/chromium
BROWSER_NPM  := tests/browser/node_modules/.installed
.PHONY: browser-deps browser-system
browser-deps: browser-system $(BROWSER_NPM)

browser-system:
	@pkgs=""; test -x "$(CHROMIUM)" || pkgs="chromium"; \
	  dpkg -s fonts-noto-cjk >/dev/null 2>&1 || pkgs="$$pkgs fonts-noto-cjk"; \
	  command -v npm >/dev/null 2>&1 || pkgs="$$pkgs nodejs npm"; \
	  if [ -n "$$pkgs" ]; then sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); echo "apt-get install$$pkgs"; \
	    $$sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q $$pkgs; fi

$(BROWSER_NPM): tests/browser/package.json tests/browser/package-lock.json | browser-system
	cd tests/browser && npm ci --no-audit --no-fund
	touch $@

clean:
	rm -rf models results .pytest_cache
