.PHONY: test demo simulator system-test lint clean

# Everything runs from pinned virtualenvs that the scripts create on first use.
test:
	./scripts/test.sh

demo:
	./scripts/demo.sh

simulator:
	./scripts/simulator.sh

# The example DAGs on a real distributed Airflow (Celery, PostgreSQL, Redis, S3); installs
# postgresql and redis-server with apt if missing (needs root) and .venv-system.
system-test:
	./scripts/system_test.sh

lint:
	.venv/bin/ruff check .

clean:
	rm -rf .venv .venv-airflow-3.0 .venv-floor .venv-system .demo build dist *.egg-info
