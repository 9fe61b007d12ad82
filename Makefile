.PHONY: test demo simulator lint clean

# Everything runs from pinned virtualenvs that the scripts create on first use.
test:
	./scripts/test.sh

demo:
	./scripts/demo.sh

simulator:
	./scripts/simulator.sh

lint:
	.venv/bin/ruff check .

clean:
	rm -rf .venv .venv-airflow-3.0 .demo build *.egg-info
