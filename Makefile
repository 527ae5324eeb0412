# Builds the Lambda packages (the consumer, the archive's Firehose transform, the entity stores'
# change-data-capture functions, which also ship producers/, and the stores' migrations: one recipe). `sam build` calls `make build-<LogicalId>` (e.g. `make build-ConsumerFunction`) with
# ARTIFACTS_DIR set (template.yaml: `Metadata: BuildMethod: makefile`), in a copy of the project or,
# with `--build-in-source`, in the project itself; this recipe writes nothing outside ARTIFACTS_DIR.
#
# The package is the code (pipeline/, consumers/: no tests, no caches) plus the core dependencies of
# pyproject.toml at the versions in uv.lock, as wheels for the function's platform (Linux, arm64,
# CPython 3.12). Dev tools, load tests and Flink are never in it. PyPI is needed; AWS is not.
#
# uv: $(PIPELINE_UV) if set (./dev exports it), else $(UV) (uv sets it for the commands it runs, such as
# `uv tool run ... sam build`), else `uv` on PATH.

UV_BIN := $(or $(PIPELINE_UV),$(UV),uv)
LAMBDA_PLATFORM ?= aarch64-manylinux2014
LAMBDA_PYTHON ?= 3.12
LAMBDA_CODE := pipeline consumers

FUNCTIONS := ConsumerFunction FirehoseTransformFunction OrderStreamBridgeFunction OutboxRelayFunction \
	StoresMigrationsFunction

.PHONY: $(addprefix build-,$(FUNCTIONS))

# The entity stores' change-data-capture functions publish with the services' producer: they ship it too.
build-OrderStreamBridgeFunction build-OutboxRelayFunction: LAMBDA_CODE += producers

$(addprefix build-,$(FUNCTIONS)):
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set: run 'sam build', or 'make $@ ARTIFACTS_DIR=<dir>'" >&2; exit 2; }
	mkdir -p "$(ARTIFACTS_DIR)"
	tar -c --exclude='__pycache__' --exclude='*.pyc' --exclude='tests' $(LAMBDA_CODE) | tar -x -C "$(ARTIFACTS_DIR)"
	"$(UV_BIN)" export --frozen --no-dev --no-hashes --no-emit-project --no-header --quiet \
		--output-file "$(ARTIFACTS_DIR)/.requirements.txt"
	"$(UV_BIN)" pip install --quiet --target "$(ARTIFACTS_DIR)" --requirement "$(ARTIFACTS_DIR)/.requirements.txt" \
		--python-platform "$(LAMBDA_PLATFORM)" --python-version "$(LAMBDA_PYTHON)" --only-binary :all:
	rm -rf "$(ARTIFACTS_DIR)/.requirements.txt" "$(ARTIFACTS_DIR)/bin"
