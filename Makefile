# The commands a newcomer and CI run. Every target installs what it needs first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CDK := node_modules/.bin/cdk
STAGE ?= dev
STAMPS := .make

# jsii prints an end-of-life banner on every start under Node 20.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: help demo install image-envs synth test lint format typecheck unit e2e java pipeline-local etl-local ci-train deploy-endpoint smoke-test version-metrics publish-baseline costs bootstrap-policy lock bench clean mlflow-env mlflow-ui

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

demo: install java image-envs ## The whole lifecycle on embedded AWS emulation: data, ETL, training, approval, deploy, traffic, drift, retraining
	$(BIN)/python -m demo $(ARGS)

install: $(STAMPS)/python $(STAMPS)/node ## Create .venv and node_modules (again if pins changed)

$(STAMPS)/toolchain:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required (found " + sys.version.split()[0] + "); set PYTHON=python3.x")'
	@command -v node >/dev/null || { echo "Node.js 20 or newer is required for the CDK CLI: node not found on PATH"; exit 1; }
	@node -e 'const v=+process.versions.node.split(".")[0]; if (v < 20) { console.error("Node.js 20 or newer is required (found " + process.version + ")"); process.exit(1) }'
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/python: pyproject.toml requirements.lock tools/pip.lock | $(STAMPS)/toolchain
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r tools/pip.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r requirements.lock  # exactly the lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .  # the mlops console script
	$(BIN)/python tools/lock_closure.py unlocked requirements.lock tools/pip.lock | xargs -r $(BIN)/python -m pip uninstall --quiet -y
	@# --no-deps installs in reverse name order, not dependencies first: put back each file a dependency overwrote
	$(BIN)/python tools/lock_closure.py overwritten requirements.lock > $(STAMPS)/overwritten.lock
	test ! -s $(STAMPS)/overwritten.lock || $(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall --require-hashes -r $(STAMPS)/overwritten.lock
	$(BIN)/python tools/lock_closure.py check requirements.lock  # every requirement met but the exclusions
	@touch $@

$(STAMPS)/node: package.json package-lock.json | $(STAMPS)/toolchain
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The Python environments of the SageMaker images (pipelines_src/images/*.txt) in .venv-images, each on
# its image's CPython (PYTHON39, PYTHON310, pyenv or PATH). Rebuilt when its requirements file changes.
# Without such an interpreter it says so and goes on (the parity tests then skip); MLOPS_REQUIRE_PARITY=1
# (CI) makes that an error.
image-envs: install ## Build the SageMaker images' Python environments the steps and the endpoint run on
	$(BIN)/python -m pipelines_src.local.images build $(if $(filter 1,$(MLOPS_REQUIRE_PARITY)),--require)

synth: install ## Synthesize every stack of STAGE (default dev) with cdk-nag and CloudFormation validation
	@rm -rf cdk.out
	$(CDK) synth --quiet -c stage=$(STAGE)
	@$(BIN)/python -m stacks.summary cdk.out

test: install lint typecheck unit e2e ## Lint, type-check, run every test: unit, then end-to-end

lint: install ## ruff lint and format check; vermin: code that runs in SageMaker images needs no newer Python than theirs
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/vermin --quiet --violations --no-tips --backport dataclasses --backport typing -t=3.9- pipelines_src/steps
	$(BIN)/vermin --quiet --violations --no-tips -t=3.10- pipelines_src/serving/inference.py pipelines_src/local/script_mode_server.py

format: install ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install ## mypy --strict over stacks, lambdas, pipelines_src
	$(BIN)/mypy

# JUNIT_DIR=reports writes JUnit XML reports there (CI's test reports).
JUNIT_DIR ?=
unit: install ## The fast tests (pytest -m "not slow")
	$(BIN)/pytest -m "not slow" $(if $(JUNIT_DIR),--junitxml=$(JUNIT_DIR)/unit.xml)

e2e: install java image-envs mlflow-env ## The end-to-end tests: local pipelines and serving on the images' Python, local Spark, synth with validation, cfn-lint
	$(BIN)/pytest -m slow $(if $(JUNIT_DIR),--junitxml=$(JUNIT_DIR)/e2e.xml)

java: # Spark (the curation job's tests and local runs) needs a Java runtime
	@command -v java >/dev/null || test -x "$$JAVA_HOME/bin/java" || { echo "Spark needs Java 17: install a JDK (e.g. apt install openjdk-17-jre-headless) or set JAVA_HOME"; exit 1; }

# The local MLflow server (pipeline-local, the end-to-end tests, mlflow-ui) in .venv-mlflow, from the hashed
# tools/mlflow.lock: its own environment, apart from .venv. MLFLOW_STORE is the local tracking store.
MLFLOW_VENV := .venv-mlflow
MLFLOW_STORE ?= .mlflow
mlflow-env: $(STAMPS)/mlflow ## Build .venv-mlflow: the pinned MLflow server local runs log to

$(STAMPS)/mlflow: tools/mlflow.lock tools/pip.lock | $(STAMPS)/toolchain
	@test -x $(MLFLOW_VENV)/bin/python || $(PYTHON) -m venv $(MLFLOW_VENV)
	$(MLFLOW_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r tools/pip.lock
	$(MLFLOW_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r tools/mlflow.lock
	@touch $@

mlflow-ui: install mlflow-env ## The MLflow UI on the local tracking store (MLFLOW_STORE=, default .mlflow) on 127.0.0.1; prints its URL
	$(BIN)/python -m pipelines_src.local.mlflow_server ui --store $(MLFLOW_STORE) $(ARGS)

ROWS ?= 20000
pipeline-local: install image-envs mlflow-env ## Run the model-build pipeline on this machine (ROWS=, ARGS= e.g. ARGS="--bad-rows 20" or "--python project")
	$(BIN)/python -m pipelines_src.local.run --stage $(STAGE) --rows $(ROWS) $(ARGS)

etl-local: install java ## Run the curation job on local folders .etl/ (ROWS=, ARGS= e.g. ARGS="--full-refresh")
	$(BIN)/python -m etl.local --raw-dir .etl/raw --lake-dir .etl/lake --generate-rows $(ROWS) --bad-rows 40 $(ARGS)

ci-train: install ## CI: run the deployed model-build pipeline on this checkout's step code, wait for the outcome
	@mkdir -p reports
	$(BIN)/python -m pipelines_src.cicd run --summary reports/train-summary.json

TARGET ?= staging
MODEL_PACKAGE_ARN ?=
deploy-endpoint: install ## Deploy MODEL_PACKAGE_ARN to the TARGET (staging|production) endpoint of STAGE
	@test -n "$(MODEL_PACKAGE_ARN)" || { echo "deploy-endpoint: set MODEL_PACKAGE_ARN=arn:aws:sagemaker:...:model-package/<group>/<version>"; exit 2; }
	$(BIN)/python -m stacks.release --stage $(STAGE) --target $(TARGET) --model-package-arn "$(MODEL_PACKAGE_ARN)" $(if $(ARTIFACTS_BUCKET),--baseline-bucket "$(ARTIFACTS_BUCKET)")

smoke-test: install ## Invoke the TARGET endpoint of STAGE with payloads drawn from the data contract
	@mkdir -p reports
	$(BIN)/python -m pipelines_src.serving.smoke_test --endpoint-name "$$($(BIN)/python -m resolver.naming endpoint $(STAGE) $(TARGET))" \
		--contract "$$($(BIN)/python -m resolver.naming contract $(STAGE))" --report reports/smoke-test.json

version-metrics: install ## One line: MODEL_PACKAGE_ARN's version and its evaluation metrics
	@$(BIN)/python -m pipelines_src.version_info --model-package-arn "$(MODEL_PACKAGE_ARN)"

publish-baseline: install ## Make MODEL_PACKAGE_ARN's data baseline the drift check's reference in STAGE
	$(BIN)/python -m pipelines_src.promote --model-package-arn "$(MODEL_PACKAGE_ARN)" \
		--prefix "$$($(BIN)/python -m resolver.naming baseline-prefix $(STAGE))" \
		$$(test "$$($(BIN)/python -m resolver.naming drift-engine $(STAGE))" = model_monitor && echo --require-monitor-baseline)

costs: install ## Idle cost per stage (USD a month) from each stage's synthesized templates; ARGS=--markdown for the README
	@rm -rf cdk.out/costs
	@for stage in dev staging prod; do $(CDK) synth --quiet -c stage=$$stage -o cdk.out/costs/$$stage >/dev/null || exit 1; done
	$(BIN)/python -m stacks.costs cdk.out/costs/dev cdk.out/costs/staging cdk.out/costs/prod $(ARGS)

bootstrap-policy: install ## Rewrite bootstrap/ (CDK bootstrap execution policy, permissions boundary) from every stage's templates
	@rm -rf cdk.out/bootstrap
	@for stage in dev staging prod; do $(CDK) synth --quiet -c stage=$$stage -o cdk.out/bootstrap/$$stage >/dev/null || exit 1; done
	$(BIN)/python -m stacks.bootstrap_policy cdk.out/bootstrap/dev cdk.out/bootstrap/staging cdk.out/bootstrap/prod --write bootstrap

# The resolution keeps only what the project needs, less the exclusions of tools/lock_closure.py (what
# only they need goes too): make install installs the lock with --no-deps, so nothing comes back.
lock: ## Re-resolve requirements.lock from pyproject.toml in a scratch venv; the sha256 of every file of it and of the image environments
	rm -rf $(STAMPS)/lock-venv
	$(PYTHON) -m venv $(STAMPS)/lock-venv
	$(STAMPS)/lock-venv/bin/pip install --quiet pip==25.3
	$(STAMPS)/lock-venv/bin/pip install --quiet -e '.[dev]'
	$(STAMPS)/lock-venv/bin/pip freeze --exclude-editable | grep -v '^-e' > requirements.lock
	$(STAMPS)/lock-venv/bin/python tools/lock_closure.py prune requirements.lock
	$(STAMPS)/lock-venv/bin/python tools/lock_hashes.py requirements.lock  # every file's sha256: --require-hashes
	for file in pipelines_src/images/*.txt; do $(STAMPS)/lock-venv/bin/python tools/lock_hashes.py $$file || exit 1; done
	rm -rf $(STAMPS)/lock-venv

bench: install java ## Synth and test times; local pipeline, Spark job, drift and handler-import figures
	$(BIN)/python benchmarks/synth_and_test.py
	$(BIN)/python benchmarks/local_pipeline.py
	$(BIN)/python benchmarks/etl_local.py
	$(BIN)/python benchmarks/drift.py
	$(BIN)/python benchmarks/handler_import.py

clean: ## Remove build outputs (not the environments)
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache .build .etl
