# napari-dmqpm: `make demo` runs the main job, `make test` runs the whole suite.
# Both create .venv and install everything on a fresh Debian machine (root, no display).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The CPU build of torch; the package itself only asks for a range.
TORCH  ?= torch==2.13.0
XVFB_PACKAGES := xvfb xauth libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 \
	libxcb-shape0 libxcb-xinerama0 libxcb-image0 libxcb-render-util0 libdbus-1-3 \
	libgl1 libegl1 libfontconfig1 libglib2.0-0

.PHONY: demo test venv xvfb lint bench results docs clean mutation

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# Xvfb gives napari a real OpenGL context (Qt's offscreen platform crashes when napari draws).
xvfb:
	@if ! command -v xvfb-run >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "Installing Xvfb and the X/GL libraries napari needs (apt-get)"; \
			DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(XVFB_PACKAGES) >/dev/null; \
		else \
			echo "xvfb-run is missing and this is not root: GUI tests will be skipped"; \
		fi; \
	fi

test: venv xvfb
	@if command -v xvfb-run >/dev/null 2>&1; then \
		xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) -m pytest $(PYTEST_ARGS); \
	else \
		$(PY) -m pytest $(PYTEST_ARGS); \
	fi

demo: venv
	@if [ -n "$$DISPLAY" ]; then \
		$(PY) -m napari_dmqpm.demo --gui; \
	else \
		$(PY) -m napari_dmqpm.demo --out demo_output; \
	fi

lint: venv
	$(VENV)/bin/ruff check src benchmarks scripts
	$(VENV)/bin/ruff format --check src benchmarks scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/numpydoc lint $$(find src/napari_dmqpm -name '*.py' | sort)

bench: venv
	$(PY) benchmarks/run_all.py

# Break the science on purpose and check the tests notice (docs/testing.md; about 10 min).
mutation: venv
	$(PY) scripts/mutation_check.py --baseline

clean:
	rm -rf $(VENV) demo_output .pytest_cache
