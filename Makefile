# seg_perception — the README's commands.
SHELL := /bin/bash
ENV := source scripts/env.sh
PYTEST_ARGS ?=
DATA ?= ../shared/datasets/camvid

.PHONY: setup build test test-unit test-ros lint demo bench clean

setup:            ## create .venv (pinned), fix the ROS wheels, colcon build (idempotent)
	bash scripts/setup_env.sh

build: setup

test: setup       ## the whole suite: lint, unit, ROS integration (GPU tests skip without a GPU)
	$(ENV) && ruff check . && cd test && pytest -c ../pyproject.toml --rootdir .. -q -ra $(PYTEST_ARGS) .

test-unit: setup
	$(ENV) && cd test && pytest -c ../pyproject.toml --rootdir .. -q -m "not ros" $(PYTEST_ARGS) .

test-ros: setup
	$(ENV) && cd test && pytest -c ../pyproject.toml --rootdir .. -q -m ros $(PYTEST_ARGS) .

lint: setup
	$(ENV) && ruff check . && ruff format --check seg_perception

demo: setup       ## stream CamVid test (or synthetic) frames through the live node; writes demo_output/
	$(ENV) && seg-perception demo --data "$(DATA)" --out demo_output

bench: setup      ## latency figures: model, grid projection, queries, per-frame path, live node vs naive node
	$(ENV) && python scripts/bench_model.py && python scripts/bench_grid.py && python scripts/bench_query.py && python scripts/bench_query_service.py && python scripts/bench_frame_path.py && python scripts/bench_stream.py

clean:
	rm -rf build install log demo_output
