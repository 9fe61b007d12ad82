.PHONY: check test smoke demo simulator system-test bench lint clean

# Everything runs from pinned virtualenvs that the scripts create on first use.
# The contributor's loop: ruff and the whole suite on Airflow 3.3, in parallel; under 5 minutes.
check:
	./scripts/check.sh

# The test command (README): lint, the build check, the suite on Airflow 3.3, the floor pins and 3.0.6
# (each older environment the tests that can differ in it; README, "Running the tests").
test:
	./scripts/test.sh

# Each pinned Airflow environment starts its api-server, scheduler, dag-processor and triggerer,
# answers health and version behind a login; on 3.1 and 3.2 also the example DAGs run. One
# environment at a time (`./scripts/smoke.sh 3.2` for one).
smoke:
	./scripts/smoke.sh

demo:
	./scripts/demo.sh

simulator:
	./scripts/simulator.sh

# The example DAGs on a real distributed Airflow (Celery, PostgreSQL, Redis, S3); installs
# postgresql and redis-server with apt if missing (needs root) and .venv-system.
system-test:
	./scripts/system_test.sh

# The published comparison (docs/performance.md): the provider against hand-written loops, dlt and
# the http provider, at 0 and 50 ms per request, campaigns then messages; then CPU per record against a
# minimal client. Not part of CI or `make test`; builds .venv-bench from requirements/bench.txt.
# About 17 minutes on 2 busy cores.
bench:
	bash -c 'source scripts/venv.sh && ensure_venv .venv-bench requirements/bench.txt'
	.venv-bench/bin/python benchmarks/compare.py --resource campaigns
	.venv-bench/bin/python benchmarks/compare.py --resource messages --latency-ms 0
	.venv-bench/bin/python benchmarks/cpu_per_record.py

lint:
	.venv/bin/ruff check .

clean:
	rm -rf .venv .venv-airflow-3.0 .venv-airflow-3.1 .venv-airflow-3.2 .venv-floor .venv-system .venv-bench .demo build dist *.egg-info \
		.venv*.lock .venv*.prefetch.log
