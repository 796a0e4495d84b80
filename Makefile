# Two entry points (README, Quick start): `make reproduce` and `make test`.
# Both create .venv with pip and install the pinned project into it first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install-stamp
PROFILE ?= quick

.PHONY: install reproduce rehearse test test-fast benchmarks gpu-check clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# Every notebook executed by papermill into runs/$(PROFILE)/, then a summary table and runs/$(PROFILE)/report.html.
reproduce: install
	$(BIN)/python -m amodal.harness.run_notebooks --profile $(PROFILE)

# The full profile on this CPU: stand-in weights at the released sizes and in the released formats
# (random values, about 10 GB, kept for the next run) in a hub cache read offline, a stand-in ADIW
# folder in the official layout, every notebook with its rehearsal counts; writes runs/rehearse/
# (report.html, rehearsal.md: each notebook's wall time and peak RSS).
rehearse: install
	$(BIN)/python -m amodal.harness.rehearsal --output runs/rehearse

# Library tests, notebook conventions, papermill parameters, and every notebook under nbval.
# tests/app/test_browser.py and test_jupyterlab.py drive Chromium; run as root they install Debian's chromium (README).
test: install
	$(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider

# The library's tests without those marked slow (and without the notebooks): under 2 minutes on 2 cores.
test-fast: install
	$(BIN)/python -m pytest tests -m "not slow" -p no:cacheprovider

benchmarks: install
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

# On a CUDA machine with the real weights (README, "GPU readiness"): the released DAV2-L and
# Amodal-DAV2-L against the official code, 200 bf16 training steps of Amodal-DAV2-S, notebook 04
# on CUDA; one table, under 10 minutes. Required: DAV2_CODE, AMODAL_CODE (clones of the official
# repositories), DAV2_L, AMODAL_DAV2 (weights); optional: DAV2_S (the training starts from it),
# DEPTHFM, VAE and AMODAL_DEPTHFM together (notebook 04's full profile).
gpu-check: install
	$(BIN)/python scripts/gpu_check.py --dav2 $(DAV2_CODE) --official $(AMODAL_CODE) \
		--dav2-checkpoint $(DAV2_L) --amodal-dav2-checkpoint $(AMODAL_DAV2) \
		$(if $(DAV2_S),--dav2-s-checkpoint $(DAV2_S)) \
		$(if $(DEPTHFM),--depthfm-checkpoint $(DEPTHFM) --vae $(VAE) --amodal-depthfm-checkpoint $(AMODAL_DEPTHFM))

clean:
	rm -rf $(VENV) runs .pytest_cache
